"""Provenance of a run: package versions, git SHA, hardware, time (stored in every results.json)."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata
import platform
import subprocess
from pathlib import Path
from typing import Any, Optional

PACKAGES = ("rrbench", "torch", "torchvision", "open_clip_torch", "transformers", "accelerate", "faiss-cpu",
            "faiss-gpu", "numpy", "pandas", "datasets", "pillow")


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
    """``{"sha": ..., "dirty": bool}`` of the checkout at ``repo``; ``sha`` None outside a git checkout."""
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
    """CPU name and count, torch's CPU threads for this run, GPU names (empty without CUDA), OS."""
    import os

    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "gpus": gpus,
            "platform": platform.platform()}


def provenance(config: dict[str, Any], seed: int, repo: Path,
               threads: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Everything needed to reproduce a run: resolved config, seed, versions, git state, hardware, time, and
    (when given) ``threads``: the run's effective torch thread count and its source (``{"count", "source"}``)."""
    out = {
        "config": config,
        "seed": seed,
        "versions": package_versions(),
        "git": git_state(repo),
        "hardware": hardware(),
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if threads is not None:
        out["threads"] = threads
    return out
