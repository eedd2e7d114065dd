"""``tune_malloc``: freed large blocks stay in the heap (no munmap / page faults on reuse); checked in child
processes, since the setting is process-wide."""

from __future__ import annotations

import importlib.util
import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="mallopt is glibc's")

_RSS_AFTER_FREE = """
import json, os, sys
from eval.malloc_tuning import tune_malloc
applied = tune_malloc() if sys.argv[1] == "tuned" else None
page = os.sysconf("SC_PAGE_SIZE")
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * page
before = rss()
block = bytearray(256 << 20)  # zero-filled: every page touched
del block
print(json.dumps({"applied": applied, "kept_mib": (rss() - before) / 2**20}))
"""


def _child(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _RSS_AFTER_FREE, mode], cwd=ROOT, check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


@glibc
def test_tuned_process_keeps_freed_large_blocks_for_reuse():
    default, tuned = _child("default"), _child("tuned")
    assert tuned["applied"] is True
    assert default["kept_mib"] < 16  # glibc default: a 256 MiB block is mmap'd and unmapped on free
    assert tuned["kept_mib"] > 200  # tuned: it came from the heap and stays there


@glibc
@pytest.mark.skipif(importlib.util.find_spec("efficientnet_lite_pytorch") is None,
                    reason="efficientnet-lite-pytorch not installed")
def test_bench_malloc_reports_both_settings(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import bench_malloc
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    report = bench_malloc.main(["--batch-size", "2", "--batches", "1", "--threads", "1",
                                "--out", str(tmp_path / "m.json")])
    for setting in ("glibc_default", "tune_malloc"):
        assert report[setting]["median_s_per_batch"] > 0 and report[setting]["child_user_cpu_s"] > 0
    assert report["speedup"] > 0 and json.loads((tmp_path / "m.json").read_text())["options"]["batch_size"] == 2
