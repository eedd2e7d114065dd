"""Provenance, memory readings and the Markdown tables of the stage-1 benchmark.

Memory: ``peak_rss_gib`` is the process's high-water mark so far (``resource.getrusage(RUSAGE_SELF)
.ru_maxrss``); ``rss_delta_gib`` is the growth of the current resident set (``/proc/self/statm``)
across one index build, an estimate of that index's memory.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
from datetime import datetime, timezone
from importlib import metadata
from typing import Any, Sequence

_PACKAGES = ("torch", "faiss-cpu", "open_clip_torch", "transformers", "numpy")


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (or platform.processor())."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_sha() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(argv: Sequence[str], threads: int) -> dict[str, Any]:
    """Command, time, versions, CPU, threads, load and git SHA of this run."""
    return {"command": " ".join(argv), "timestamp_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "versions": {name: _version(name) for name in _PACKAGES},
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "threads": threads,
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()], "git_sha": _git_sha(),
            "memory_method": "peak: getrusage(RUSAGE_SELF).ru_maxrss; delta: /proc/self/statm resident growth"}


def current_rss_gib() -> float:
    """Resident set size of this process now, GiB."""
    with open("/proc/self/statm", encoding="utf-8") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def peak_rss_gib() -> float:
    """High-water mark of this process's resident set so far, GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _params(info: dict[str, Any]) -> str:
    keys = ("nlist", "nprobe", "pq_m", "pq_nbits", "fast_scan", "by_residual", "refine_factor", "m", "ef_construction", "ef_search",
            "gallery_chunk")
    return ", ".join(f"{k}={info[k]}" for k in keys if k in info)


def render_markdown(results: dict[str, Any]) -> str:
    """Encoding and search tables, the 1M target line, and provenance, as Markdown."""
    prov = results["provenance"]
    lines = ["# Stage-1 benchmark", "",
             f"CPU: {prov['cpu']} ({prov['cpu_count']} logical cores, {prov['threads']} thread(s) used, "
             f"load average at start {prov['load_average_at_start']}); versions: "
             + ", ".join(f"{k} {v}" for k, v in prov["versions"].items() if v) + f"; git {prov['git_sha']}.",
             f"Command: `{prov['command']}`", ""]
    enc = results.get("encoding")
    if enc:
        lines += ["## Encoding (open_clip, random weights, CPU)", "",
                  "| model | batch | workers | images | images/s (decode+preprocess+forward) | images/s (forward only) "
                  "| texts | texts/s |", "|---|---|---|---|---|---|---|---|",
                  f"| {enc['model']} | {enc['batch_size']} | {enc['num_workers']} | {enc['images']} | "
                  f"{enc['images_per_s']:.1f} | {enc['images_per_s_forward_only']:.1f} | {enc['texts']} | "
                  f"{enc['texts_per_s']:.1f} |", ""]
    search = results["search"]
    lines += ["## Search (synthetic clustered vectors, d={dim}, {queries} queries, recall@{depth} vs exact flat)"
              .format(**search["setup"]), "", search["setup"]["data"], "",
              "| gallery | index | parameters | device | build s | search s | queries/s | speed-up vs flat | "
              f"recall@{search['setup']['depth']} | RSS Δ MiB | peak RSS GiB |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in search["rows"]:
        lines.append(f"| {row['gallery']:,} | {row['index']} | {_params(row['info'])} | {row['info'].get('device', '')} "
                     f"| {row['build_seconds']:.1f} | {row['search_seconds']:.2f} | {row['queries_per_s']:.0f} | "
                     f"{row['speedup_vs_flat']:.1f}x | {row['recall']:.4f} | {row['rss_delta_gib'] * 1024:.0f} | "
                     f"{row['peak_rss_gib']:.2f} |")
    lines += ["", *[f"- {line}" for line in search["target"]], ""]
    return "\n".join(lines)
