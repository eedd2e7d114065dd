"""Load and memory readings and the Markdown tables of the stage-1 benchmark (provenance:
``rrbench_base.provenance``).

Memory: ``peak_rss_gib`` is the process's high-water mark so far (``resource.getrusage(RUSAGE_SELF)
.ru_maxrss``); ``rss_delta_gib`` is the growth of the current resident set (``/proc/self/statm``)
across one index build, an estimate of that index's memory.
"""

from __future__ import annotations

import os
import resource
from typing import Any

from rrbench_base.provenance import describe

MEMORY_METHOD = "peak: getrusage(RUSAGE_SELF).ru_maxrss; delta: /proc/self/statm resident growth"


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages now, rounded to 2 decimals."""
    return [round(value, 2) for value in os.getloadavg()]


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
    load = results["load_average"]
    lines = ["# Stage-1 benchmark", "", *describe(results["provenance"]),
             f"Load average at start {load['start']}, at end {load['end']}.", ""]
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
