"""Typed configuration of a dataset: :class:`DatasetConfig` (one per experiment) and :class:`SyntheticConfig`.

Both are plain dataclasses validated in ``__post_init__`` and buildable from YAML with
``eval.typed_config.from_dict``; a failed check raises ``rrbench_base.config_errors.ConfigFieldError`` naming the field,
so a config file's error names ``dataset.<field>``. Everything that can be known without reading the
data is checked here (a split the format cannot honour, options the format does not read).
``eval.data.loaders.load_benchmark(cfg)`` turns one into a Benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from eval.typed_config import ConfigError
from rrbench_base.config_errors import ConfigFieldError

DatasetFormat = Literal["synthetic", "flickr8k", "karpathy", "table", "hf", "competition"]
FORMATS: tuple[str, ...] = ("synthetic", "flickr8k", "karpathy", "table", "hf", "competition")
DEFAULT_CACHE_DIR = Path(".cache/rrbench/data")
SYNTHETIC_SPLITS: tuple[str, ...] = ("train", "val", "test")
ALL_ROWS = "all"  # the split label of a table/hf/competition load that reads every row
# optional fields (default None) and the formats that read them; setting one elsewhere is refused
_USED_BY: dict[str, tuple[str, ...]] = {
    "root": ("flickr8k", "karpathy", "table", "hf", "competition"),
    "annotations": ("karpathy", "table", "competition"),
    "hf_dataset": ("hf",),
    "hf_split": ("hf",),
    "split_column": ("table", "hf"),
    "image_id_column": ("table", "hf"),
    "caption_id_column": ("table", "hf"),
}


@dataclass
class SyntheticConfig:
    """The generated shapes benchmark (``format: synthetic``).

    Attributes:
        num_train: number of images of the ``train`` split.
        num_val: number of images of the ``val`` split.
        num_test: number of images of the ``test`` split. Scenes are drawn test first, then val,
            then train, so changing ``num_train`` never changes the val or test images.
        image_size: side of the square PNG images in pixels (at least 32).
        seed: random seed; the same seed and sizes give identical pixels and captions.
        captions_per_image: paraphrased captions per image (1 to 5), each a full description.
    """

    num_train: int = 10000
    num_val: int = 1000
    num_test: int = 1000
    image_size: int = 64
    seed: int = 0
    captions_per_image: int = 5

    def __post_init__(self) -> None:
        for name in ("num_train", "num_val", "num_test"):
            if getattr(self, name) < 1:
                raise ConfigFieldError(name, f"{name} must be at least 1, got {getattr(self, name)}")
        if self.image_size < 32:
            raise ConfigFieldError("image_size", f"image_size must be at least 32 pixels, got {self.image_size}")
        if self.seed < 0:
            raise ConfigFieldError("seed", f"seed must be >= 0, got {self.seed}")
        if not 1 <= self.captions_per_image <= 5:
            raise ConfigFieldError("captions_per_image",
                                   f"captions_per_image must be between 1 and 5, got {self.captions_per_image}")

    def num_images(self, split: str) -> int:
        """Size of ``split`` (train, val or test); ValueError naming the known splits otherwise."""
        sizes = {"train": self.num_train, "val": self.num_val, "test": self.num_test}
        if split not in sizes:
            raise ConfigFieldError("split", f"synthetic split must be one of {', '.join(sizes)}, got {split!r}")
        return sizes[split]


def _as_path(value: Path | str | None) -> Path | None:
    return None if value is None else Path(value)


@dataclass
class DatasetConfig:
    """Which benchmark to load, from where, and how to treat bad input.

    Attributes:
        format: one of synthetic, flickr8k, karpathy, table, hf, competition.
        root: dataset directory. flickr8k: the folder with captions_*.tsv, splits/ and images/;
            karpathy: the image root that the JSON's (filepath/)filename are relative to;
            table: the image root (default: the annotation file's folder); competition: the folder
            with ImageWordData.csv and ImageData/; hf: the image root for path-string image columns.
            Every image path must stay inside this root.
        annotations: annotation file. karpathy: dataset_*.json; table: a .csv, .tsv or .jsonl file
            with one row per caption; competition: overrides root/ImageWordData.csv.
        hf_dataset: hf only: a local save_to_disk directory, or a Hugging Face hub name (needs
            network or the local datasets cache).
        hf_split: hf only: the split of a DatasetDict to read (default: its only split).
        split: the benchmark split. synthetic/flickr8k/karpathy: train, val or test (karpathy also
            restval, and unions like train+restval), default test; table/hf: the value of
            split_column to keep (default: all rows; a split other than all needs split_column);
            competition: all (the default; the format has no splits).
        split_column: table/hf: the column holding each row's split name (optional; refused for the
            other formats, as are hf_dataset/hf_split outside hf and the id columns outside table/hf).
        language: language tag of the captions. flickr8k: en or zh (picks captions_en.tsv or
            captions_zh.tsv); default zh for competition, en otherwise.
        image_column: table/hf: column with the image (a path relative to root; hf also PIL images
            and {bytes, path} dicts).
        caption_column: table/hf: column with the caption (hf: a string or a list of strings).
        image_id_column: table/hf: column with the image id (default: the image path; hf
            embedded images: their path, else a content hash).
        caption_id_column: table/hf: column with the caption id (default: the row number; hf lists:
            row#k).
        name: display name in logs and results (default: derived from the format and files).
        on_bad_input: error (default: stop with one message naming the file/row/field) or skip
            (drop the item, record it in Benchmark.skipped with the reason).
        verify_images: decode every image once at load time so a bad file is reported then; results
            are cached by (path, size, mtime) under cache_dir.
        limit: keep only the first N images of the split (in source order) and their captions.
        cache_dir: folder for generated synthetic images, decoded hf images and the verification cache.
        synthetic: sizes, seed and image size of the synthetic benchmark (format synthetic).
    """

    format: DatasetFormat
    root: Path | None = None
    annotations: Path | None = None
    hf_dataset: str | None = None
    hf_split: str | None = None
    split: str | None = None
    split_column: str | None = None
    language: str | None = None
    image_column: str = "image"
    caption_column: str = "caption"
    image_id_column: str | None = None
    caption_id_column: str | None = None
    name: str | None = None
    on_bad_input: Literal["error", "skip"] = "error"
    verify_images: bool = True
    limit: int | None = None
    cache_dir: Path = DEFAULT_CACHE_DIR
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)

    def __post_init__(self) -> None:
        self.root = _as_path(self.root)
        self.annotations = _as_path(self.annotations)
        self.cache_dir = Path(self.cache_dir)
        if self.format not in FORMATS:
            raise ConfigFieldError("format", f"unknown dataset format {self.format!r} (known: {', '.join(FORMATS)})")
        if self.on_bad_input not in ("error", "skip"):
            raise ConfigFieldError("on_bad_input", f"on_bad_input must be 'error' or 'skip', got {self.on_bad_input!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigFieldError("limit", f"limit must be at least 1 when set, got {self.limit}")
        needs = {"flickr8k": ("root",), "karpathy": ("root", "annotations"), "table": ("annotations",),
                 "competition": ("root",), "hf": ("hf_dataset",), "synthetic": ()}
        for key in needs[self.format]:
            if getattr(self, key) is None or getattr(self, key) == "":
                raise ConfigFieldError(key, f"format {self.format!r} needs '{key}'")
        for key, formats in _USED_BY.items():
            if getattr(self, key) is not None and self.format not in formats:
                raise ConfigFieldError(key, f"{key} is not read by format {self.format!r} "
                                            f"(only by {', '.join(formats)}); remove it")
        if self.format == "flickr8k" and self.language not in (None, "en", "zh"):
            raise ConfigFieldError("language", f"flickr8k language must be 'en' or 'zh', got {self.language!r}")
        if self.language is not None and not self.language.strip():
            raise ConfigFieldError("language", "language must be a non-empty language tag when set")
        for key in ("image_column", "caption_column"):
            if not getattr(self, key):
                raise ConfigFieldError(key, f"'{key}' must be a non-empty column name")
        self._check_split()

    def _check_split(self) -> None:
        """The split must be one the format can honour (known before any file is read)."""
        split = self.split
        if split is None:
            return
        if not split.strip():
            raise ConfigFieldError("split", "split must be a non-empty name when set")
        if self.format == "synthetic":
            self.synthetic.num_images(split)
        elif self.format in ("table", "hf", "competition") and split != ALL_ROWS and self.split_column is None:
            if self.format == "competition":
                raise ConfigFieldError("split", f"split {split!r} asked for but the competition format has no splits "
                                                f"and no split_column is set (leave split unset, or '{ALL_ROWS}')")
            raise ConfigFieldError("split", f"split {split!r} asked for but no split_column is set (set split_column, "
                                            f"or leave split unset, or '{ALL_ROWS}', to read every row)")
        elif self.format == "flickr8k" and ("/" in split or "\\" in split or split.startswith(".")):
            raise ConfigFieldError("split", "flickr8k split must name a file of splits/ (train, val, test), "
                                            f"got {split!r}")
        elif self.format == "karpathy" and not all(part.strip() for part in split.split("+")):
            raise ConfigFieldError("split", f"karpathy split {split!r} has an empty part (use e.g. train+restval)")

    def required_path(self, key: str) -> Path:
        """The path field ``key`` (root or annotations); ConfigError naming ``dataset.<key>`` when unset."""
        value = getattr(self, key)
        if value is None:
            raise ConfigError(f"key 'dataset.{key}': format {self.format!r} needs '{key}'")
        return value

    def split_or(self, default: str) -> str:
        """The configured split, or ``default`` when none was given."""
        return self.split if self.split is not None else default

    def language_or(self, default: str) -> str:
        """The configured language tag, or ``default`` when none was given."""
        return self.language if self.language is not None else default
