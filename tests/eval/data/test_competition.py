"""The competition format: ImageWordData.csv + ImageData/, Chinese captions, lying extensions."""

import numpy as np
import pytest

from eval.data.benchmark import BadInputError
from eval.data.dataset_config import DatasetConfig
from eval.data.competition import load_competition


def cfg(root, cache_dir, **kw) -> DatasetConfig:
    return DatasetConfig(format="competition", root=root, cache_dir=cache_dir, **kw)


def test_error_names_missing_image(competition_dir, cache_dir):
    with pytest.raises(BadInputError, match=r"ImageWordData\.csv:6: image 'img4\.jpg': missing image file"):
        load_competition(cfg(competition_dir, cache_dir))


def test_skip_loads_odd_files_and_records_missing(competition_dir, cache_dir):
    bench = load_competition(cfg(competition_dir, cache_dir, on_bad_input="skip"))
    assert (bench.name, bench.split) == ("teddy", "all")
    assert [i.id for i in bench.images] == ["img0.jpg", "img1.jpg", "img2.jpg", "img3.jpg"]
    assert [(c.id, c.image_id) for c in bench.captions] == [
        ("0", "img0.jpg"), ("1", "img1.jpg"), ("2", "img2.jpg"), ("3", "img3.jpg"), ("5", "img0.jpg")]
    assert bench.captions[1].text == "蓝色,天空" and {c.language for c in bench.captions} == {"zh"}
    assert [(s.kind, s.item) for s in bench.skipped] == [("image", "img4.jpg"), ("caption", "4")]
    colours = [np.asarray(img.open()).reshape(-1, 3).mean(0).round() for img in bench.images]
    for img, colour, want in zip(bench.images, colours, [(200, 30, 30), (0, 0, 255), (0, 255, 0), (90, 90, 90)]):
        assert img.open().mode == "RGB"
        assert np.abs(colour - want).max() <= 6, (img.id, colour)


def test_split_other_than_all_is_refused(competition_dir, cache_dir):
    with pytest.raises(ValueError, match="no split_column"):
        load_competition(cfg(competition_dir, cache_dir, split="test"))
