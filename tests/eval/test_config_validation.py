"""Issue 18 cases 6 and 9: a bad experiment config is refused when it loads, before anything is computed.

Every check goes through the command line, ``rrbench config CONFIG key=value``: exit code 2 and one
``ERROR`` line that names the file and the dotted key, never a traceback.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
import yaml

from eval.cli import main
from eval.experiment_config import load_experiment
from eval.typed_config import ConfigError

BASE = {
    "experiment": "x",
    "dataset": {"format": "synthetic", "split": "test"},
    "stage1": {"depth": 10, "encoder": {"backend": "rrbench_dual", "model": "some/dir", "device": "cpu"}},
    "stage2": {"backend": "blip2_itm", "model": "some/reranker", "device": "auto"},
    "ablation": {"depths": [0, 1, 5], "rules": ["itm", "alpha", "rrf"]},
}


def write_config(tmp_path: Path, **sections) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({**BASE, **sections}, allow_unicode=True), encoding="utf-8")
    return path


def refused(path: Path, overrides: list[str], caplog, capsys) -> str:
    """Run ``rrbench config``; assert exit 2, exactly one ERROR line naming the file, no traceback.

    Returns the message after the file name (and its overrides).
    """
    caplog.clear()
    with caplog.at_level(logging.INFO):
        rc = main(["config", str(path), *overrides])
    captured = capsys.readouterr()
    assert rc == 2, f"accepted: {overrides}\n{captured.out[-500:]}"
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "Traceback" not in caplog.text and "Traceback" not in captured.err
    line = errors[0]
    assert path.name in line
    rest = line[line.index(path.name) + len(path.name):]
    if rest.startswith(" (with overrides"):
        rest = rest[rest.index("): ") + 1:]
    return rest.lstrip(": ")


def names_key(rest: str, key: str) -> bool:
    """The message (after the file name) starts with the full dotted key: ``key ...`` or ``key 'key': ...``."""
    return rest.startswith((f"{key} ", f"{key}:", f"key '{key}'"))


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


# ---- case 6: experiment names that are not one plain folder name ----

@pytest.mark.parametrize("name", ["..", ".", "../up", "a/b", "a\\b", "", " x", ".hidden", "x\0y", "tab\there"])
def test_experiment_name_must_be_one_plain_folder(tmp_path, caplog, capsys, name):
    path = write_config(tmp_path, experiment=name)
    line = refused(path, [], caplog, capsys)
    assert names_key(line, "experiment") and "folder name" in line
    with pytest.raises(ConfigError, match="experiment must be a single folder name"):
        load_experiment(path)


@pytest.mark.parametrize("override", ["experiment=..", "experiment=."])
def test_experiment_name_override_cannot_leave_output_dir(tmp_path, caplog, capsys, override):
    for name in ("demo", "flickr8k_lite-2", "résumé.v2", "a..b"):  # plain names still load
        cfg = load_experiment(write_config(tmp_path, experiment=name))
        assert cfg.results_dir.parent == cfg.output_dir and cfg.results_dir.name == name
    line = refused(write_config(tmp_path), [override], caplog, capsys)
    assert names_key(line, "experiment") and "outside output_dir" in line


# ---- case 9: every value checked at load, with its reason and the dotted key ----

@pytest.mark.parametrize("override, key, reason", [
    ("ablation.alpha=2", "ablation.alpha", "[0, 1]"),
    ("ablation.alpha=-0.1", "ablation.alpha", "[0, 1]"),
    ("ablation.alpha=.nan", "ablation.alpha", "finite"),
    ("ablation.rrf_k=-1", "ablation.rrf_k", ">= 0"),
    ("ablation.stage1_scale=-2", "ablation.stage1_scale", ">= 0"),
    ("ablation.depths=[0,-1]", "ablation.depths", ">= 0"),
    ("ablation.depths=[0,20]", "ablation.depths", "exceed stage1.depth=10"),
    ("ablation.rules=[]", "ablation.rules", "at least one"),
    ("ablation.stage1_variants={'..': {index.type: hnsw}}", "ablation.stage1_variants", "'..'"),
    ("ablation.stage1_variants={small: {depth: 2}}", "ablation.depths", "stage1_variants.small.depth=2"),
    ("stage2.pair_batch_size=0", "stage2.pair_batch_size", "must be >= 1, got 0"),
    ("stage2.vision_batch_size=0", "stage2.vision_batch_size", "must be >= 1"),
    ("stage2.kv_chunk_mb=0", "stage2.kv_chunk_mb", "must be >= 1"),
    ("stage2.vision_memory_mb=-1", "stage2.vision_memory_mb", ">= 0"),
    ("stage2.text_max_length=2", "stage2.text_max_length", ">= 3"),
    ("stage2.precision=fp8", "stage2.precision", "not one of"),
    ("stage2.device=tpu", "stage2.device", "auto, cpu, cuda or cuda:N"),
    ("stage2.device=mps", "stage2.device", "auto, cpu, cuda or cuda:N"),
    ("stage2.model=''", "stage2.model", "hub id or a local directory"),
    ("stage2.vision_provider=resnet", "stage2.vision_provider", "known: blip2_vit"),
    ("stage2.on_bad_input=ignore", "stage2.on_bad_input", "not one of"),
    ("stage1.depth=0", "stage1.depth", "must be >= 1"),
    ("stage1.cache_shard_size=0", "stage1.cache_shard_size", "must be >= 1"),
    ("stage1.encoder.batch_size=0", "stage1.encoder.batch_size", "must be >= 1"),
    ("stage1.encoder.num_workers=-1", "stage1.encoder.num_workers", ">= 0"),
    ("stage1.encoder.seed=-1", "stage1.encoder.seed", "[0, 2**32)"),
    ("stage1.encoder.hub_probe_timeout_s=0", "stage1.encoder.hub_probe_timeout_s", "> 0"),
    ("stage1.encoder.backend=clip", "stage1.encoder.backend", "known backends: blip2_itc, hf_clip, open_clip, rrbench_dual"),
    ("stage1.index.ivf_nprobe=0", "stage1.index.ivf_nprobe", "must be >= 1"),
    ("stage1.index.refine_factor=-1", "stage1.index.refine_factor", ">= 0"),
    ("stage1.index.pq_nbits=9", "stage1.index.pq_nbits", "4..8"),
    ("stage1.index.seed=-3", "stage1.index.seed", "[0, 2**32)"),
    ("seed=-1", "seed", "[0, 2**32)"),
    ("threads=0", "threads", "at least 1"),
    ("dataset.limit=0", "dataset.limit", "at least 1"),
    ("dataset.split=dev", "dataset.split", "train, val, test"),
    ("dataset.synthetic.image_size=8", "dataset.synthetic.image_size", "at least 32"),
    ("dataset.synthetic.seed=-1", "dataset.synthetic.seed", ">= 0"),
    ("dataset.split_column=part", "dataset.split_column", "not read by format 'synthetic'"),
])
def test_invalid_values_are_refused_at_load_naming_the_key(tmp_path, caplog, capsys, no_cuda, override, key, reason):
    line = refused(write_config(tmp_path), [override], caplog, capsys)
    assert names_key(line, key) and reason in line, line


def test_optional_section_keeps_the_real_reason(tmp_path, caplog, capsys):
    line = refused(write_config(tmp_path), ["stage2.pair_batch_size=0"], caplog, capsys)
    assert line == "stage2.pair_batch_size must be >= 1, got 0"


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1"])
def test_cuda_device_refused_at_load_without_cuda(tmp_path, caplog, capsys, no_cuda, device):
    assert main(["config", str(write_config(tmp_path)), "stage2.device=cpu"]) == 0  # cpu and auto load
    assert "experiment: x" in capsys.readouterr().out
    line = refused(write_config(tmp_path), [f"stage2.device={device}"], caplog, capsys)
    assert names_key(line, "stage2.device") and "CUDA is not available" in line
    line = refused(write_config(tmp_path), [f"stage1.encoder.device={device}"], caplog, capsys)
    assert names_key(line, "stage1.encoder.device") and "CUDA is not available" in line


def test_cuda_index_out_of_range_refused(tmp_path, caplog, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    line = refused(write_config(tmp_path), ["stage2.device=cuda:1"], caplog, capsys)
    assert names_key(line, "stage2.device") and "1 CUDA device" in line
    line = refused(write_config(tmp_path), ["stage1.encoder.device=cuda:3"], caplog, capsys)
    assert names_key(line, "stage1.encoder.device") and "cuda:3" in line


def test_mps_and_gpu_index_refused_without_them(tmp_path, caplog, capsys, no_cuda):
    line = refused(write_config(tmp_path), ["stage1.encoder.device=mps"], caplog, capsys)
    assert names_key(line, "stage1.encoder.device") and "MPS is not available" in line
    line = refused(write_config(tmp_path), ["stage1.index.use_gpu=true"], caplog, capsys)
    assert names_key(line, "stage1.index.use_gpu") and "CUDA" in line
    line = refused(write_config(tmp_path), ["ablation.stage1_variants={gpu: {encoder.device: cuda}}"], caplog, capsys)
    assert "ablation.stage1_variants.gpu.encoder.device" in line


def test_fp16_refused_where_it_cannot_run(tmp_path, caplog, capsys, no_cuda):
    line = refused(write_config(tmp_path), ["stage2.device=cpu", "stage2.precision=fp16"], caplog, capsys)
    assert names_key(line, "stage2.precision") and "fp16 is not supported on CPU" in line
    line = refused(write_config(tmp_path), ["stage2.vision_precision=fp16"], caplog, capsys)  # auto -> cpu here
    assert names_key(line, "stage2.vision_precision") and "fp16 is not supported on CPU" in line


def test_text_max_length_within_the_checkpoint_position_embeddings(tmp_path, caplog, capsys):
    checkpoint = tmp_path / "reranker"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps({"qformer_config": {"max_position_embeddings": 40}}))
    path = write_config(tmp_path)
    line = refused(path, [f"stage2.model={checkpoint}", "stage2.text_max_length=64"], caplog, capsys)
    assert "stage2.text_max_length must be <= 40" in line
    assert load_experiment(path, [f"stage2.model={checkpoint}", "stage2.text_max_length=40"]).stage2.text_max_length == 40


def test_output_folders_that_are_files_refused_at_load(tmp_path, caplog, capsys):
    (tmp_path / "taken").write_text("a file")
    path = write_config(tmp_path)
    line = refused(path, [f"output_dir={tmp_path / 'taken'}"], caplog, capsys)
    assert names_key(line, "output_dir") and "is not a folder" in line
    line = refused(path, [f"output_dir={tmp_path}", "experiment=taken"], caplog, capsys)
    assert names_key(line, "experiment") and "is not a folder" in line
    line = refused(path, [f"cache_dir={tmp_path / 'taken'}"], caplog, capsys)
    assert names_key(line, "cache_dir") and "is not a folder" in line
