"""Caption preprocessing in an experiment config: typed and validated per stage, both stages (and every stage-1
variant) must agree unless ``caption_preprocessing_per_stage: true``, and ``rrbench config --doc`` documents it."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
import yaml

from eval.cli import main
from eval.experiment_config import load_experiment
from eval.typed_config import ConfigError
from rrbench_base.caption_preprocessing import CaptionPreprocessing

BASE = {
    "experiment": "x",
    "dataset": {"format": "synthetic", "split": "test"},
    "stage1": {"depth": 10, "encoder": {"backend": "open_clip", "model": "ViT-B-32", "device": "cpu"}},
    "stage2": {"backend": "blip2_itm", "model": "some/reranker", "device": "cpu"},
    "ablation": {"depths": [0, 5], "rules": ["itm"]},
}
BLIP = ["stage1.caption_preprocessing.name=blip_caption", "stage2.caption_preprocessing.name=blip_caption"]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(BASE))
    return path


def test_default_is_none_in_both_stages(config):
    cfg = load_experiment(config)
    assert cfg.stage1.caption_preprocessing == CaptionPreprocessing() == cfg.stage2.caption_preprocessing
    assert cfg.caption_preprocessings() == [CaptionPreprocessing()]


def test_both_stages_set_alike(config):
    cfg = load_experiment(config, BLIP + ["stage1.caption_preprocessing.max_words=30",
                                          "stage2.caption_preprocessing.max_words=30"])
    assert cfg.stage2.caption_preprocessing == CaptionPreprocessing("blip_caption", 30)
    assert cfg.caption_preprocessings() == [CaptionPreprocessing("blip_caption", 30)]


@pytest.mark.parametrize("overrides", [
    ["stage2.caption_preprocessing.name=blip_caption"],
    [*BLIP, "stage2.caption_preprocessing.max_words=20"],
])
def test_stages_that_disagree_are_refused(config, overrides):
    with pytest.raises(ConfigError, match=r"stage2\.caption_preprocessing is blip_caption\(max_words=\d+\) but "
                                          r"stage1\.caption_preprocessing is .*caption_preprocessing_per_stage"):
        load_experiment(config, overrides)


def test_a_deliberate_difference_is_allowed_and_kept(config):
    cfg = load_experiment(config, ["stage2.caption_preprocessing.name=blip_caption",
                                   "caption_preprocessing_per_stage=true"])
    assert cfg.caption_preprocessings() == [CaptionPreprocessing(), CaptionPreprocessing("blip_caption")]


def test_a_stage1_variant_must_agree_too(config):
    variant = ['ablation.stage1_variants={"blip": {"caption_preprocessing.name": "blip_caption"}}']
    with pytest.raises(ConfigError, match=r"ablation\.stage1_variants\.blip\.caption_preprocessing"):
        load_experiment(config, variant)
    cfg = load_experiment(config, [*variant, "caption_preprocessing_per_stage=true"])
    assert cfg.caption_preprocessings() == [CaptionPreprocessing(), CaptionPreprocessing("blip_caption")]


def test_stage1_only_experiment_needs_no_agreement(config):
    cfg = load_experiment(config, ["stage1.caption_preprocessing.name=blip_caption", "stage2=null",
                                   "ablation.depths=[0]"])
    assert cfg.caption_preprocessings() == [CaptionPreprocessing("blip_caption")]


@pytest.mark.parametrize("override, message", [
    ("stage1.caption_preprocessing.name=lowercase", "stage1.caption_preprocessing.name"),
    ("stage2.caption_preprocessing.max_words=0", "stage2.caption_preprocessing.max_words must be"),
])
def test_bad_values_name_the_key(config, override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_experiment(config, [override])


def test_config_doc_describes_it():
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        assert main(["config", "--doc"]) == 0
    text = buffer.getvalue()
    for key in ("stage1.caption_preprocessing.name", "stage2.caption_preprocessing.max_words",
                "caption_preprocessing_per_stage"):
        block = text.split(f"\n{key}\n", 1)[1].split("\n\n", 1)[0]
        assert "(undocumented)" not in block, key
    name = text.split("\nstage2.caption_preprocessing.name\n", 1)[1].split("\n\n", 1)[0]
    assert "'none' | 'blip_caption'" in name and "LAVIS" in name
