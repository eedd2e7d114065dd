"""fp64 runs give the same numbers and byte-identical run files whatever CPU kernels torch picks (the demo's setting).

The tiny experiment runs twice in fresh processes: with the CPU's own kernels, and with AVX2 kernels forced
(``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``; on a CPU without AVX-512 both are AVX2). In fp32 the two
differ in the last bits of every score, which flips near-ties; in fp64, stored as float32, they agree.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.tiny_experiment import write_tiny_experiment

FP64 = ["stage1.encoder.precision=fp64", "stage1.index.type=torch", "stage1.index.use_gpu=false",
        "stage2.device=cpu", "stage2.precision=fp64", "stage2.vision_precision=fp64"]


def _run(config: Path, root: Path, name: str, env_extra: dict[str, str]) -> Path:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1", **env_extra}
    argv = ["run", str(config), *FP64, f"cache_dir={root / ('cache_' + name)}", f"output_dir={root / ('out_' + name)}"]
    script = ("import sys, open_clip; from eval.cli import main; "  # the tiny CLIP architecture is registered per process
              f"open_clip.add_model_config({str(root / 'rrbench-e2e-clip.json')!r}); sys.exit(main({argv!r}))")
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, env=env, cwd=Path(__file__).resolve().parents[3], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / f"out_{name}" / "tiny"


def test_fp64_demo_settings_agree_across_cpu_kernels(tmp_path):
    config = write_tiny_experiment(tmp_path)
    native = _run(config, tmp_path, "native", {})
    avx2 = _run(config, tmp_path, "avx2", {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"})
    first, second = (json.loads((d / "results.json").read_text()) for d in (native, avx2))
    assert first["metrics"] == second["metrics"]
    files = sorted(p.name for p in (native / "runs").iterdir())
    assert files and files == sorted(p.name for p in (avx2 / "runs").iterdir())
    for name in files:  # the scores themselves, not only the metrics
        assert (native / "runs" / name).read_bytes() == (avx2 / "runs" / name).read_bytes(), name
