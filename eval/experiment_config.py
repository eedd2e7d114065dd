"""One YAML file = one experiment: :class:`ExperimentConfig` and its ablation grid.

The sections are the stages' own typed configs (``DatasetConfig``, ``Stage1Config``,
``RerankerConfig``); this module only composes them and adds the grid. Load with
:func:`load_experiment` (validation and ``key.sub=value`` overrides as in ``eval.typed_config``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from eval.analysis.config import AnalysisConfig
from eval.data.benchmark import Benchmark
from eval.data.caption_checks import drop_captions_empty_after
from eval.data.dataset_config import DatasetConfig
from eval.data.loaders import load_benchmark
from eval.typed_config import apply_overrides, check_field, from_dict, load_config, to_dict
from rrbench_base.caption_preprocessing import CaptionPreprocessing
from rrbench_base.config_errors import ConfigFieldError
from rrbench_base.config_paths import path_note
from stage1_dual.config import Stage1Config
from stage1_dual.config import check_loadable as check_stage1_loadable
from stage2_rerank.config import FusionParameters, RerankerConfig
from stage2_rerank.config import check_loadable as check_stage2_loadable
from stage2_rerank.fusion_rules import DEFAULT_RULES, FUSION_RULE_NAMES, FusionRuleName

SEED_LIMIT = 2**32  # seeds are 32-bit unsigned throughout (numpy, faiss)
MAX_NAME_BYTES = 255  # longest file name on common file systems


def plain_name_problem(name: str) -> str | None:
    """Why ``name`` is not a single plain folder name (so ``parent / name`` stays inside parent), or None.

    Refused: empty, leading/trailing spaces, ``.``/``..`` or any leading dot, ``/``, ``\\``, NUL or other
    control characters, more than 255 bytes.
    """
    if not name:
        return "is empty"
    if name.strip() != name:
        return "has leading or trailing spaces"
    if name in (".", ".."):
        return "names the current or parent folder, which would put the results outside output_dir"
    if name.startswith("."):
        return "starts with '.' (a hidden folder)"
    for char, label in (("/", "'/'"), ("\\", "'\\'"), ("\0", "a NUL byte")):
        if char in name:
            return f"contains {label}; it must be a single folder name, not a path"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "contains a control character"
    if len(name.encode("utf-8", errors="surrogateescape")) > MAX_NAME_BYTES:
        return f"is longer than {MAX_NAME_BYTES} bytes"
    return None


@dataclass(frozen=True)
class AblationConfig(FusionParameters):
    """The grid of settings derived from one stage-1 run and one stage-2 run per stage-1 setting.

    The fusion rules' parameters (``alpha``, ``rrf_k``, ``stage1_scale``) are those of
    ``stage2_rerank.config.FusionParameters``, shared by every rule of the grid.

    Attributes:
        depths: rerank depths k; k = 0 is stage 1 alone. The first k stage-1 candidates are
            reordered by the fused score, the rest keep their stage-1 order. Stage 2 scores the
            pairs of the largest k once; every smaller k reuses those scores.
        rules: fusion rules, each one ablation setting (described under "Fusion rules" below).
        stage1_variants: alternative stage-1 settings: name -> overrides of the stage1 section as
            dotted keys (for example {"hnsw": {"index.type": "hnsw"}}); each variant gets its own
            stage-1 run, stage-2 scores are shared through the score cache. Names are plain folder-safe
            words (no spaces, '/', leading dot); every depth must be within each variant's stage1.depth.
    """

    depths: list[int] = field(default_factory=lambda: [0, 1, 5, 10, 20, 50, 100])
    rules: list[FusionRuleName] = field(default_factory=lambda: list(DEFAULT_RULES))
    stage1_variants: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()  # alpha, rrf_k, stage1_scale (errors name those fields)
        if not self.depths or any(k < 0 for k in self.depths):
            raise ConfigFieldError("depths", f"depths must be a non-empty list of integers >= 0, got {self.depths}")
        object.__setattr__(self, "depths", sorted(set(self.depths)))
        if not self.rules:
            raise ConfigFieldError("rules", "rules must name at least one fusion rule")
        object.__setattr__(self, "rules", list(dict.fromkeys(self.rules)))
        unknown = [rule for rule in self.rules if rule not in FUSION_RULE_NAMES]
        if unknown:
            raise ConfigFieldError("rules", f"rules must be among {', '.join(FUSION_RULE_NAMES)}; got {unknown}")
        for name, overrides in self.stage1_variants.items():
            problem = plain_name_problem(name) or ("contains a space" if " " in name else None)
            if problem:
                raise ConfigFieldError("stage1_variants", f"stage1_variants name {name!r} {problem}")
            if not overrides:
                raise ConfigFieldError(f"stage1_variants.{name}", "needs at least one stage1 override "
                                       "(a dotted key such as index.type: hnsw)")


@dataclass
class ExperimentConfig:
    """One experiment: data, stage 1, optional stage 2, the ablation grid and where outputs go.

    Attributes:
        experiment: experiment name; outputs go to ``<output_dir>/<experiment>/``, so it must be one plain
            folder name (no ``/``, ``\\``, NUL, leading dot, ``.`` or ``..``; refused when the config loads).
        dataset: the benchmark to evaluate on (see ``eval.data.dataset_config.DatasetConfig``).
        stage1: dual encoder, index and retrieval depth N (see ``stage1_dual.config.Stage1Config``).
        stage2: the reranker (see ``stage2_rerank.config.RerankerConfig``); null = stage 1 only.
        ablation: rerank depths, fusion rules and stage-1 variants to compare (every value is checked when the
            config loads, before stage 1 runs).
        analysis: significance tests, depth recommendation and the example page (see
            ``eval.analysis.config.AnalysisConfig``).
        seed: seed of torch's global CPU generator during the run, recorded in the results; in [0, 2**32). It is
            scoped to the run (the caller's generator state is restored afterwards); what draws from it is the
            initialisation of modules whose weights a checkpoint then replaces, so the metrics do not depend on
            it. Random-weight encoders use their own seed (stage1.encoder.seed), the IVF sample stage1.index.seed.
        output_dir: parent folder of the experiment's results folder.
        cache_dir: root of every cache of the run (embeddings, vision features, pair scores, data)
            where a section does not set its own cache_dir; reruns reuse it and compute nothing new.
        write_trec: write TREC run files (gzipped) for stage 1 and every cell, plus the qrels.
        threads: torch CPU threads for the run (``torch.set_num_threads``, restored afterwards). None = the
            environment's ``OMP_NUM_THREADS`` (else ``MKL_NUM_THREADS``) when set, else torch's current setting
            (torch's default: one thread per physical core); results.json records the count and its source
            (``provenance.threads``). The default defers to the standard variables because schedulers and
            shared machines set them to a fair share, and otherwise leaves alone what the caller already chose.
            Tiny models gain nothing from several threads and lose much when the cores are shared (a tiny
            reranker: 162.5 s at 2 threads, 5.1 s at 1 on a busy 2-core machine): set 1 or OMP_NUM_THREADS=1 there.
        caption_preprocessing_per_stage: false (default): ``stage1.caption_preprocessing`` (and that of every
            stage-1 variant) must equal ``stage2.caption_preprocessing``, so both stages see the same captions;
            true: they may differ, deliberately (e.g. CLIP on captions as given, BLIP-2 on ``blip_caption``); each
            stage's choice is in the results' recorded config either way.
    """

    experiment: str
    dataset: DatasetConfig
    stage1: Stage1Config = field(default_factory=Stage1Config)
    stage2: Optional[RerankerConfig] = None
    ablation: AblationConfig = field(default_factory=AblationConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)
    seed: int = 0
    output_dir: Path = Path("results")
    cache_dir: Path = Path(".cache/rrbench")
    write_trec: bool = True
    threads: Optional[int] = None
    caption_preprocessing_per_stage: bool = False

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ConfigFieldError("threads", f"threads must be at least 1 (or null for torch's default), "
                                              f"got {self.threads}")
        problem = plain_name_problem(self.experiment)
        if problem:
            raise ConfigFieldError("experiment", f"experiment must be a single folder name under output_dir: "
                                                 f"{self.experiment!r} {problem}")
        if not 0 <= self.seed < SEED_LIMIT:
            raise ConfigFieldError("seed", f"seed must be in [0, 2**32), got {self.seed}")
        _check_depths(self.ablation.depths, self.stage1.depth, "stage1.depth")
        self.check_caption_preprocessing(self.stage1, "stage1")
        if self.stage2 is None and any(k > 0 for k in self.ablation.depths):
            raise ConfigFieldError("ablation.depths", "ablation.depths > 0 need a stage2 section (or set depths: [0])")
        cell = self.analysis.example_cell
        if cell is not None and cell not in self.setting_keys():
            raise ConfigFieldError("analysis.example_cell", f"analysis.example_cell {cell!r} is not a cell of this "
                                   f"experiment; cells: {', '.join(self.setting_keys())}")

    def check_caption_preprocessing(self, stage1: Stage1Config, what: str) -> None:
        """ConfigFieldError unless ``stage1`` (``what`` names it) and stage 2 preprocess captions alike, or the
        difference is allowed by ``caption_preprocessing_per_stage``."""
        if self.stage2 is None or self.caption_preprocessing_per_stage:
            return
        first, second = stage1.caption_preprocessing, self.stage2.caption_preprocessing
        if first != second:
            raise ConfigFieldError("stage2.caption_preprocessing", (
                f"stage2.caption_preprocessing is {second.identity()} but {what}.caption_preprocessing is "
                f"{first.identity()}: set both alike, or caption_preprocessing_per_stage: true if the stages are "
                "meant to see different captions"))

    def caption_preprocessings(self) -> list[CaptionPreprocessing]:
        """The distinct caption preprocessings of this experiment's stage-1 settings and stage 2, in that order."""
        found = [s.caption_preprocessing for s in self.stage1_settings().values()]
        if self.stage2 is not None:
            found.append(self.stage2.caption_preprocessing)
        return list(dict.fromkeys(found))

    def setting_keys(self) -> list[str]:
        """Every cell's setting key, in results order (``stage1``, ``stage2/<rule>/k=<k>``, then variants)."""
        from eval.runner.cells import main_depths, setting_key

        keys = []
        depths = main_depths(self.ablation.depths) if self.stage2 is not None else []
        for variant in ["", *self.ablation.stage1_variants]:
            keys.append(setting_key("stage1", variant))
            keys += [setting_key("stage2", variant, rule, k) for rule in self.ablation.rules for k in depths]
        return keys

    @property
    def results_dir(self) -> Path:
        """``<output_dir>/<experiment>``."""
        return Path(self.output_dir) / self.experiment

    def stage1_settings(self, source: str = "") -> dict[str, Stage1Config]:
        """``{"": main stage-1 config, variant name: variant config}`` (variants validated here).

        ``source`` (the config file) prefixes error messages.
        """
        settings = {"": self.stage1}
        base = to_dict(self.stage1)
        for name, overrides in self.ablation.stage1_variants.items():
            pairs = [f"{key}={_yaml_scalar(value)}" for key, value in overrides.items()]
            where = f"{source}: ablation.stage1_variants.{name}" if source else f"ablation.stage1_variants.{name}"
            settings[name] = from_dict(Stage1Config, apply_overrides(base, pairs), where)
            _check_depths(self.ablation.depths, settings[name].depth, f"ablation.stage1_variants.{name}.depth")
            self.check_caption_preprocessing(settings[name], f"ablation.stage1_variants.{name}")
        return settings


def _check_depths(depths: Sequence[int], stage1_depth: int, what: str) -> None:
    too_deep = [k for k in depths if k > stage1_depth]
    if too_deep:
        raise ConfigFieldError("ablation.depths", f"ablation.depths {too_deep} exceed {what}={stage1_depth}")


def _yaml_scalar(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)


def load_experiment_benchmark(cfg: ExperimentConfig) -> Benchmark:
    """The benchmark ``cfg`` evaluates: ``cfg.dataset`` loaded, minus the captions its caption preprocessing empties
    (``eval.data.caption_checks``; an error or a recorded skip by ``dataset.on_bad_input``). Query and gallery
    positions in a run's outputs (``per_query.npz``, run files) index this benchmark."""
    return drop_captions_empty_after(load_benchmark(cfg.dataset), cfg.caption_preprocessings(),
                                     cfg.dataset.on_bad_input)


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read and validate one experiment YAML; ConfigError names the key and the file on problems.

    Everything is checked here, before any work: every field's value, the stage-1 variants, the backend
    names and the devices (a CUDA device this machine lacks is refused now, not at model load).
    """
    cfg = load_config(ExperimentConfig, path, overrides)
    source = str(path) + (f" (with overrides {' '.join(overrides)})" if overrides else "")
    settings: dict[str, Stage1Config] = {}
    check_field(source, "", lambda: settings.update(cfg.stage1_settings(source)))  # variants now, not later
    for name, stage1 in settings.items():
        check_field(source, f"ablation.stage1_variants.{name}" if name else "stage1",
                    lambda stage1=stage1: check_stage1_loadable(stage1))
    if cfg.stage2 is not None:
        check_field(source, "stage2", lambda: check_stage2_loadable(cfg.stage2))
    check_field(source, "", lambda: _check_output_folders(cfg))
    return cfg


def _check_output_folders(cfg: ExperimentConfig) -> None:
    """output_dir, the results folder and cache_dir must be folders (or not exist yet), not files."""
    for key, path in (("output_dir", Path(cfg.output_dir)), ("experiment", cfg.results_dir),
                      ("cache_dir", Path(cfg.cache_dir))):
        if path.exists() and not path.is_dir():
            raise ConfigFieldError(key, f"{key}: {path} exists and is not a folder{path_note(path)}")


def with_cache_dirs(cfg: ExperimentConfig) -> ExperimentConfig:
    """Copy of ``cfg`` whose sections without a cache_dir use folders under ``cfg.cache_dir``."""
    root = Path(cfg.cache_dir)
    dataset = cfg.dataset
    if dataset.cache_dir == DatasetConfig.__dataclass_fields__["cache_dir"].default:
        dataset = dataclasses.replace(dataset, cache_dir=root / "data")
    stage1 = cfg.stage1
    if stage1.cache_dir is None:
        stage1 = dataclasses.replace(stage1, cache_dir=root / "stage1")
    stage2 = cfg.stage2
    if stage2 is not None and stage2.cache_dir is None:
        stage2 = dataclasses.replace(stage2, cache_dir=root / "stage2")
    return dataclasses.replace(cfg, dataset=dataset, stage1=stage1, stage2=stage2)
