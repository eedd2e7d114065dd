"""Provenance of a run: what it was asked to do, seed, package versions, git state, hardware, time.

One builder, :func:`provenance`, and one schema for every JSON the project writes: the experiment runner's
``results.json``, competition-mode ``report.json`` and the benchmark reports of both stages::

    {"config": {...}          # the resolved config (runs), and/or
     "command": "scripts/bench_stage1.py --quick",   # the command line (benchmarks)
     "seed": 0,               # null when the run has no seed
     "versions": {"python": "3.11.9", "torch": "2.4.1", ...},
     "git": {"sha": "...", "dirty": false},
     "hardware": {"cpu": ..., "cpu_count": 16, "torch_threads": 4, "gpus": [...], "platform": ...},
     "finished_at": "2024-05-06T07:08:09+00:00",
     "threads": {"count": 4, "source": "config"}}     # only when the caller set the thread count

``config`` and ``command`` appear only when given. Build it when the run ends (``finished_at`` is the time of the
call). Old ``results.json`` files have exactly this schema without ``command``.
"""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import os
import platform
import shlex
import subprocess
from pathlib import Path
from typing import Any, Optional, Sequence

PACKAGES = ("rrbench", "torch", "torchvision", "open_clip_torch", "transformers", "accelerate", "faiss-cpu",
            "faiss-gpu", "numpy", "pandas", "datasets", "pillow")

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The checkout this package runs from (its git state is recorded; outside a checkout ``sha`` is None)."""


def package_versions() -> dict[str, str]:
    """Installed version of each package of interest (absent ones are left out)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_state(repo: Path) -> dict[str, Any]:
    """``{"sha": ..., "dirty": bool}`` of the checkout at ``repo``; both None outside a git checkout."""
    try:
        sha = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout
        return {"sha": sha, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"sha": None, "dirty": None}


def cpu_name() -> str:
    """CPU model name from /proc/cpuinfo (falls back to platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """CPU name and count, torch's CPU threads now, GPU names (empty without CUDA), OS."""
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpus": gpus,
            "platform": platform.platform()}


def provenance(*, config: Optional[dict[str, Any]] = None, argv: Optional[Sequence[str]] = None,
               seed: Optional[int] = None, threads: Optional[dict[str, Any]] = None,
               repo: Path = REPO_ROOT) -> dict[str, Any]:
    """Everything needed to reproduce a run (schema in the module doc).

    ``config``: the resolved config as a dict; ``argv``: the command line (program first), stored as one
    shell-quoted string; at least one of the two is required. ``threads``: the run's thread setting and its
    source (``{"count", "source"}``), when the run chose one. ``repo``: the checkout whose git state is recorded.
    Raises ValueError when neither ``config`` nor ``argv`` is given.
    """
    if config is None and argv is None:
        raise ValueError("provenance needs the run's config or its command line (argv)")
    out: dict[str, Any] = {}
    if config is not None:
        out["config"] = config
    if argv is not None:
        out["command"] = shlex.join(str(arg) for arg in argv)
    out.update({"seed": seed, "versions": package_versions(), "git": git_state(repo), "hardware": hardware()})
    out["finished_at"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    if threads is not None:
        out["threads"] = threads
    return out


def describe(record: dict[str, Any]) -> list[str]:
    """Markdown lines of a :func:`provenance` record for a report's header: the command (when recorded), CPU,
    threads and GPUs, versions, git state, seed (when set) and time."""
    hw, git = record["hardware"], record["git"]
    threads = record.get("threads", {}).get("count", hw["torch_threads"])
    gpus = f"; GPUs: {', '.join(hw['gpus'])}" if hw.get("gpus") else ""
    sha = f"{git['sha']}{' (dirty)' if git.get('dirty') else ''}"
    seed = f"; seed {record['seed']}" if record.get("seed") is not None else ""
    lines = [f"Command: `{record['command']}`  "] if "command" in record else []
    return lines + [f"CPU: {hw['cpu']} ({hw['cpu_count']} logical cores, {threads} thread(s) used){gpus}  ",
                    "Versions: " + ", ".join(f"{k} {v}" for k, v in record["versions"].items())
                    + f"; git {sha}{seed}; finished {record['finished_at']}"]
