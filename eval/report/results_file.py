"""Read and validate a results.json file (the experiment runner's output).

Schema (metrics in percent except MedR/MeanR; latencies in milliseconds per query)::

    {
      "experiment": "demo",
      "metrics": {"stage1/t2i/R@1": 41.2, "stage2/itm+itc/k=20/rsum": 480.1, ...},
      "settings": [{"key": "stage1", "label": "stage 1 (dual encoder)", "rule": null, "depth": 0,
                    "ms_per_query": {"t2i": 1.3, "i2t": 2.0},
                    "latency_source": {"t2i": "this run", "i2t": "ledger"}}, ...],
      "curves": {"stage1": {"t2i": [R@1, ..., R@N], "i2t": [...]}, ...},
      "analysis": {"intervals": {"stage1/t2i/R@1": [39.8, 42.6], ...},
                   "vs_stage1": {"stage2/itm/k=5/t2i/R@1": {"difference": 8.1, "p": 0.0001, "p_adjusted": 0.0002,
                                                            "significant": true, ...}, ...},
                   "vs_best": {...}, "win_loss": {...}, "ceiling": {...}, "ceiling_share": {...},
                   "recommendation": {"itm": {"depth": 5, "cell": "stage2/itm/k=5", ...}}, "method": {...}},
      "timings": {...}, "counts": {...}, "provenance": {...}
    }

``analysis`` (see ``eval.analysis``) is absent from files written before it existed; the report then shows no
significance marks, intervals, ceilings or recommendations.

A setting's metric ``t2i/R@1`` is stored as ``metrics[setting.key + "/t2i/R@1"]``. ``latency_source`` says
per direction where the latency comes from: ``"this run"`` (measured by the run that wrote the file) or
``"ledger"`` (per-item costs an earlier run measured in the same context; tables and plots mark these).
Files written before the field existed get it from their ``costs`` section (``legacy_latency_source``);
a direction found in neither counts as measured in the run.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ResultsFileError(ValueError):
    """A results.json file that does not follow the schema; the message names the file and the field."""


@dataclass
class Setting:
    """One table row: stage 1 or one ablation cell.

    Attributes:
        key: metric-key prefix, e.g. ``"stage1"`` or ``"stage2/itm+itc/k=20"``.
        label: display name.
        rule: fusion rule name, None for stage 1.
        depth: rerank depth k (0 for stage 1).
        ms_per_query: direction (``"t2i"``/``"i2t"``) -> milliseconds per query; missing = unknown.
        latency_source: direction -> ``"this run"`` or ``"ledger"`` (see the module docstring).
        variant: the stage-1 variant the setting builds on (None: the main stage-1 setting).
    """

    key: str
    label: str
    rule: str | None
    depth: int
    ms_per_query: dict[str, float] = field(default_factory=dict)
    latency_source: dict[str, str] = field(default_factory=dict)
    variant: str | None = None

    def latency_measured(self, direction: str) -> bool:
        """False when the direction's latency was not measured in the run itself (read from the cost ledger)."""
        return self.latency_source.get(direction, "this run") == "this run"


@dataclass
class Results:
    """A loaded results.json.

    Attributes:
        path: the file it came from.
        experiment: experiment name.
        metrics: flat metric dict (``"<setting key>/<direction>/<metric>"`` and ``"<setting key>/rsum"``).
        settings: table rows in display order.
        curves: setting key -> direction -> R@K for K = 1..N (percent).
        timings, counts, provenance: free-form dicts shown in table footers.
        analysis: the ``analysis`` section ({} in files written before it existed).
    """

    path: Path
    experiment: str
    metrics: dict[str, float]
    settings: list[Setting]
    curves: dict[str, dict[str, list[float]]]
    timings: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    analysis: dict[str, Any] = field(default_factory=dict)

    def metric(self, setting: Setting, name: str) -> float:
        """``metrics[setting.key + "/" + name]``, NaN when absent."""
        return float(self.metrics.get(f"{setting.key}/{name}", math.nan))

    def significant(self, setting: Setting, name: str) -> bool:
        """True when ``name`` (``t2i/R@1``) of ``setting`` differs significantly from its stage 1."""
        entry = self.analysis.get("vs_stage1", {}).get(f"{setting.key}/{name}")
        return bool(entry and entry.get("significant"))

    def interval(self, setting: Setting, name: str) -> tuple[float, float] | None:
        """The bootstrap confidence interval of ``name`` of ``setting`` (None when not computed)."""
        entry = self.analysis.get("intervals", {}).get(f"{setting.key}/{name}")
        return (float(entry[0]), float(entry[1])) if entry else None

    @property
    def dataset(self) -> str:
        """``"<name>, <split>"`` of the dataset as ``counts.dataset`` records it; "" when the file does not."""
        entry = self.counts.get("dataset") if isinstance(self.counts, dict) else None
        if not isinstance(entry, dict):
            return ""
        return ", ".join(str(entry[key]) for key in ("name", "split") if entry.get(key))


def _require(data: dict, name: str, kind: type | tuple[type, ...], where: str) -> Any:
    if name not in data:
        raise ResultsFileError(f"{where}: missing field '{name}'")
    value = data[name]
    if not isinstance(value, kind):
        raise ResultsFileError(f"{where}: field '{name}' should be {kind}, got {type(value).__name__}")
    return value


def legacy_latency_source(raw: dict, costs: Any) -> dict[str, str]:
    """Latency sources of a setting without ``latency_source``, from the file's ``costs`` section: stage 1 t2i
    = text encoding, i2t = image encoding; a rerank setting adds the pair cost (and, for i2t, the vision cost)."""
    if not isinstance(costs, dict):
        return {}
    tag = f"@{raw['variant']}" if raw.get("variant") else ""

    def source(section: str, name: str) -> str:
        entry = costs.get(section + tag)
        entry = entry.get(name) if isinstance(entry, dict) else None
        return entry.get("source", "this run") if isinstance(entry, dict) else "this run"

    parts = {"t2i": [source("stage1", "text")], "i2t": [source("stage1", "image")]}
    if raw.get("rule") is not None:
        parts["t2i"].append(source("stage2", "pair"))
        parts["i2t"] += [source("stage2", "pair"), source("stage2", "vision_image")]
    return {d: "ledger" if "ledger" in found else "this run" for d, found in parts.items()}


def _parse_setting(raw: Any, where: str, costs: Any = None) -> Setting:
    if not isinstance(raw, dict):
        raise ResultsFileError(f"{where}: should be an object, got {type(raw).__name__}")
    rule = raw.get("rule")
    if rule is not None and not isinstance(rule, str):
        raise ResultsFileError(f"{where}: field 'rule' should be a string or null")
    depth = _require(raw, "depth", int, where)
    latency = raw.get("ms_per_query") or {}
    if not isinstance(latency, dict):
        raise ResultsFileError(f"{where}: field 'ms_per_query' should be an object")
    ms_per_query = {str(d): float(v) for d, v in latency.items() if isinstance(v, (int, float))}
    sources = raw.get("latency_source")
    sources = legacy_latency_source(raw, costs) if sources is None else sources
    if not isinstance(sources, dict):
        raise ResultsFileError(f"{where}: field 'latency_source' should be an object")
    return Setting(
        key=_require(raw, "key", str, where),
        label=str(raw.get("label") or raw["key"]),
        rule=rule,
        depth=depth,
        ms_per_query=ms_per_query,
        latency_source={str(d): str(v) for d, v in sources.items()},
        variant=raw.get("variant") or None,
    )


def load_results(path: Path) -> Results:
    """Load and validate one results.json; raises ResultsFileError naming the file and field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ResultsFileError(f"{path}: cannot read results JSON: {error}") from error
    if not isinstance(data, dict):
        raise ResultsFileError(f"{path}: top level should be an object")
    metrics = _require(data, "metrics", dict, str(path))
    bad = [k for k, v in metrics.items() if not isinstance(v, (int, float)) or isinstance(v, bool)]
    if bad:
        raise ResultsFileError(f"{path}: metrics values must be numbers; not: {bad[:3]}")
    raw_settings = _require(data, "settings", list, str(path))
    settings = [_parse_setting(raw, f"{path}: settings[{i}]", data.get("costs")) for i, raw in enumerate(raw_settings)]
    keys = [s.key for s in settings]
    if len(set(keys)) != len(keys):
        raise ResultsFileError(f"{path}: settings keys are not unique: {keys}")
    curves = data.get("curves") or {}
    if not isinstance(curves, dict):
        raise ResultsFileError(f"{path}: field 'curves' should be an object")
    return Results(
        path=path,
        experiment=_require(data, "experiment", str, str(path)),
        metrics={k: float(v) for k, v in metrics.items()},
        settings=settings,
        curves=curves,
        timings=data.get("timings") or {},
        counts=data.get("counts") or {},
        provenance=data.get("provenance") or {},
        analysis=_analysis(data.get("analysis"), str(path)),
    )


def _analysis(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ResultsFileError(f"{where}: field 'analysis' should be an object")
    for name in ("intervals", "vs_stage1", "vs_best", "win_loss", "ceiling", "ceiling_share", "recommendation"):
        if name in raw and not isinstance(raw[name], dict):
            raise ResultsFileError(f"{where}: field 'analysis.{name}' should be an object")
    return raw


def flatten(data: Any, prefix: str = "") -> list[tuple[str, str]]:
    """``[("a.b", "value"), ...]`` for every leaf of nested dicts; lists are shown as one JSON value."""
    if isinstance(data, dict):
        items: list[tuple[str, str]] = []
        for key, value in data.items():
            items.extend(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return items
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    return [(prefix, text)]
