"""DatasetConfig from YAML-ish dicts, its validation, and the format -> loader dispatch."""

from pathlib import Path

import pytest

from eval.config_doc import attribute_docs
from eval.data.dataset_config import FORMATS, DatasetConfig, SyntheticConfig
from eval.data.loaders import LOADERS, load_benchmark
from eval.typed_config import ConfigError, from_dict


def test_from_dict_builds_nested_config():
    cfg = from_dict(DatasetConfig, {
        "format": "synthetic", "split": "val", "limit": 5, "on_bad_input": "skip", "cache_dir": "/tmp/x",
        "synthetic": {"num_val": 7, "seed": 3, "image_size": 48},
    })
    assert cfg.cache_dir == Path("/tmp/x") and cfg.limit == 5 and cfg.on_bad_input == "skip"
    assert cfg.synthetic == SyntheticConfig(num_val=7, seed=3, image_size=48)


def test_from_dict_rejects_bad_keys_and_values():
    with pytest.raises(ConfigError, match="unknown key 'synthetic.num_imgs'"):
        from_dict(DatasetConfig, {"format": "synthetic", "synthetic": {"num_imgs": 3}}, "exp.yaml")
    with pytest.raises(ConfigError, match="unknown key 'colums'"):
        from_dict(DatasetConfig, {"format": "table", "annotations": "a.csv", "colums": "x"})
    with pytest.raises(ConfigError, match="'on_bad_input'.*not one of"):
        from_dict(DatasetConfig, {"format": "synthetic", "on_bad_input": "ignore"})
    with pytest.raises(ConfigError, match="format 'karpathy' needs 'annotations'"):
        from_dict(DatasetConfig, {"format": "karpathy", "root": "imgs"})
    with pytest.raises(ConfigError, match="missing required key 'format'"):
        from_dict(DatasetConfig, {"root": "x"})
    with pytest.raises(ConfigError, match="limit must be at least 1"):
        from_dict(DatasetConfig, {"format": "synthetic", "limit": 0})
    with pytest.raises(ConfigError, match="image_size must be at least 32"):
        from_dict(DatasetConfig, {"format": "synthetic", "synthetic": {"image_size": 8}})


def test_direct_construction_validates():
    with pytest.raises(ValueError, match="unknown dataset format 'coco'.*known: synthetic, flickr8k"):
        DatasetConfig(format="coco")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="flickr8k language must be 'en' or 'zh'"):
        DatasetConfig(format="flickr8k", root=Path("x"), language="de")
    assert DatasetConfig(format="table", annotations="a.csv").annotations == Path("a.csv")


def test_every_field_documented_once():
    for cls in (DatasetConfig, SyntheticConfig):
        documented = attribute_docs(cls)
        missing = [f for f in cls.__dataclass_fields__ if not documented.get(f)]
        assert not missing, f"{cls.__name__}: undocumented fields {missing}"


def test_dispatch_covers_every_format_and_rejects_unknown(tmp_path):
    assert sorted(LOADERS) == sorted(FORMATS)
    cfg = DatasetConfig(format="synthetic", cache_dir=tmp_path)
    cfg.format = "coco"  # type: ignore[assignment]  (bypasses __post_init__ on purpose)
    with pytest.raises(ValueError, match="unknown dataset format 'coco' \\(known: competition, flickr8k, hf"):
        load_benchmark(cfg)


def test_load_benchmark_synthetic_end_to_end(tmp_path):
    cfg = from_dict(DatasetConfig, {"format": "synthetic", "cache_dir": str(tmp_path),
                                    "synthetic": {"num_test": 6, "captions_per_image": 3}})
    bench = load_benchmark(cfg)
    assert (len(bench.images), len(bench.captions), bench.split) == (6, 18, "test")
