"""Issue 18 case 10: bad dataset input or config gives one line naming the file, row or key, not a traceback.

Each case runs the command line (``rrbench data`` / ``rrbench config``): exit code 2 and exactly one
``ERROR`` line, without "Traceback"; the loaders' own errors are checked where the policy matters.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from eval.cli import main
from eval.data.benchmark import BadInputError
from eval.data.dataset_config import DatasetConfig
from eval.data.karpathy import load_karpathy

from .conftest import karpathy_entry, write_image, write_karpathy


def one_error_line(argv: list[str], caplog, capsys) -> str:
    """Run the CLI; assert exit 2, exactly one ERROR line and no traceback; return that line."""
    caplog.clear()
    with caplog.at_level(logging.INFO):
        rc = main(argv)
    captured = capsys.readouterr()
    assert rc == 2, captured.out[-500:]
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "Traceback" not in caplog.text and "Traceback" not in captured.err
    return errors[0]


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def karpathy_dir(tmp_path: Path) -> Path:
    for name in ("1.jpg", "2.jpg"):
        write_image(tmp_path / "images" / name, fmt="JPEG")
    return tmp_path


def karpathy_config(tmp_path: Path, cache_dir: Path, **kw) -> Path:
    return write_yaml(tmp_path / "data.yaml", {"experiment": "k", "dataset": {
        "format": "karpathy", "root": str(tmp_path / "images"), "annotations": str(tmp_path / "dataset_x.json"),
        "cache_dir": str(cache_dir), **kw}})


# ---- Karpathy entries whose fields have the wrong JSON type ----

@pytest.mark.parametrize("field, value, expected", [
    ("sentences", None, "field 'sentences' is null"),
    ("sentences", "a cat", "field 'sentences' is string"),
    ("sentences", {"raw": "a cat"}, "field 'sentences' is object"),
    ("filename", 7, "field 'filename' is number"),
    ("filename", None, "field 'filename' is null"),
    ("split", ["test"], "field 'split' is list"),
    ("filepath", 5, "field 'filepath' is number"),
])
def test_karpathy_wrongly_typed_field_is_one_line(karpathy_dir, cache_dir, caplog, capsys, field, value, expected):
    broken = karpathy_entry(1, "2.jpg", "test", ["two"], first_sentid=1)
    broken[field] = value
    write_karpathy(karpathy_dir / "dataset_x.json", [karpathy_entry(0, "1.jpg", "test", ["one"]), broken])
    line = one_error_line(["data", str(karpathy_config(karpathy_dir, cache_dir))], caplog, capsys)
    assert "BadInputError" in line and "dataset_x.json:images[1]" in line and expected in line


def test_karpathy_null_sentences_skipped_and_recorded(karpathy_dir, cache_dir):
    broken = karpathy_entry(1, "2.jpg", "test", ["two"], first_sentid=1)
    broken["sentences"] = None
    path = write_karpathy(karpathy_dir / "dataset_x.json", [karpathy_entry(0, "1.jpg", "test", ["one"]), broken])
    cfg = DatasetConfig(format="karpathy", root=karpathy_dir / "images", annotations=path, cache_dir=cache_dir)
    with pytest.raises(BadInputError, match=r"images\[1\].*'sentences' is null"):
        load_karpathy(cfg)
    cfg.on_bad_input = "skip"
    bench = load_karpathy(cfg)
    assert [i.id for i in bench.images] == ["1.jpg"]
    assert [(s.kind, s.item) for s in bench.skipped] == [("image", "images[1]")]
    assert "'sentences' is null" in bench.skipped[0].reason


# ---- split without split_column (table, hf, competition) ----

def test_table_split_without_split_column(tmp_path, cache_dir, caplog, capsys):
    write_image(tmp_path / "a.png")
    (tmp_path / "caps.csv").write_text("image,caption\na.png,a red square\n", encoding="utf-8")
    config = write_yaml(tmp_path / "t.yaml", {"dataset": {
        "format": "table", "annotations": str(tmp_path / "caps.csv"), "cache_dir": str(cache_dir), "split": "test"}})
    line = one_error_line(["data", str(config)], caplog, capsys)
    assert "t.yaml" in line and "dataset.split" in line and "no split_column is set" in line
    assert main(["data", str(config), "split=all"]) == 0  # 'all' reads every row


def test_hf_split_without_split_column(tmp_path, cache_dir, caplog, capsys):
    config = write_yaml(tmp_path / "h.yaml", {"dataset": {
        "format": "hf", "hf_dataset": str(tmp_path / "no_such_dataset"), "cache_dir": str(cache_dir), "split": "test"}})
    line = one_error_line(["data", str(config)], caplog, capsys)
    assert "h.yaml" in line and "dataset.split" in line and "no split_column is set" in line


def test_competition_split_is_refused_at_load(tmp_path, cache_dir, caplog, capsys):
    config = write_yaml(tmp_path / "c.yaml", {"dataset": {
        "format": "competition", "root": str(tmp_path), "cache_dir": str(cache_dir), "split": "test"}})
    line = one_error_line(["data", str(config)], caplog, capsys)
    assert "dataset.split" in line and "no splits" in line


# ---- an hf dataset whose image column holds paths, without dataset.root ----

def test_hf_path_column_without_root(tmp_path, cache_dir, caplog, capsys):
    import datasets

    write_image(tmp_path / "imgs" / "a.png")
    datasets.Dataset.from_dict({"image": ["a.png"], "caption": ["a red square"]}).save_to_disk(str(tmp_path / "ds"))
    config = write_yaml(tmp_path / "h.yaml", {"dataset": {
        "format": "hf", "hf_dataset": str(tmp_path / "ds"), "cache_dir": str(cache_dir)}})
    line = one_error_line(["data", str(config)], caplog, capsys)
    assert "ConfigError" in line and "dataset.root" in line and "'image' holds image paths" in line
    assert main(["data", str(config), f"root={tmp_path / 'imgs'}"]) == 0


# ---- an unknown stage-2 backend, refused by `rrbench config` ----

def test_unknown_stage2_backend_refused_at_load(tmp_path, caplog, capsys):
    config = write_yaml(tmp_path / "e.yaml", {
        "experiment": "e", "dataset": {"format": "synthetic"}, "stage1": {"depth": 10},
        "stage2": {"backend": "clip_itm", "model": "some/dir", "device": "cpu"}, "ablation": {"depths": [0, 5]}})
    line = one_error_line(["config", str(config)], caplog, capsys)
    assert "e.yaml" in line and "stage2.backend" in line and "unknown reranker backend 'clip_itm'" in line
    assert "known: blip2_itm" in line


def test_backend_name_tuples_match_the_backend_dicts():
    from stage1_dual.config import ENCODER_BACKEND_NAMES
    from stage1_dual.encoders import ENCODER_BACKENDS
    from stage2_rerank.backends import BACKENDS
    from stage2_rerank.config import BACKEND_NAMES, VISION_PROVIDER_NAMES
    from stage2_rerank.vision import VISION_PROVIDERS

    assert sorted(BACKEND_NAMES) == sorted(BACKENDS)
    assert sorted(VISION_PROVIDER_NAMES) == sorted(VISION_PROVIDERS)
    assert sorted(ENCODER_BACKEND_NAMES) == sorted(ENCODER_BACKENDS)


# ---- a directory where a file is expected ----

@pytest.mark.parametrize("command", ["data", "config"])
def test_directory_as_config_file(tmp_path, caplog, capsys, command):
    line = one_error_line([command, str(tmp_path)], caplog, capsys)
    assert "ConfigError" in line and str(tmp_path) in line and "is a directory" in line


@pytest.mark.parametrize("fmt, annotations", [("table", "caps.csv"), ("karpathy", "dataset_x.json")])
def test_directory_as_annotation_file(tmp_path, cache_dir, caplog, capsys, fmt, annotations):
    (tmp_path / annotations).mkdir()
    config = write_yaml(tmp_path / "d.yaml", {"dataset": {
        "format": fmt, "root": str(tmp_path), "annotations": str(tmp_path / annotations), "cache_dir": str(cache_dir)}})
    line = one_error_line(["data", str(config)], caplog, capsys)
    assert "BadInputError" in line and annotations in line and "is a directory" in line
