"""Loaders on the real data in ../shared/data (skipped when it is absent)."""

import json

import datasets
import numpy as np
import pytest
from PIL import Image

from eval.data.benchmark import BadInputError
from eval.data.dataset_config import DatasetConfig
from eval.data.loaders import load_benchmark

from .conftest import SHARED_DATA

TEDDY = SHARED_DATA / "teddy2024"
FLICKR8K = SHARED_DATA / "flickr8k"
TEDDY_MISSING = ["Image14001001-2540.jpg", "Image14001005-3174.jpg"]

pytestmark = [pytest.mark.shared_data,
              pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="../shared/data is absent")]


def test_teddy2024_skip_reports_exactly_the_two_missing_images(cache_dir):
    bench = load_benchmark(DatasetConfig(format="competition", root=TEDDY, cache_dir=cache_dir, on_bad_input="skip"))
    images = [s for s in bench.skipped if s.kind == "image"]
    assert [s.item for s in images] == TEDDY_MISSING
    assert all(s.reason.startswith("missing image file") for s in images)
    assert {s.reason for s in bench.skipped if s.kind == "caption"} == {
        f"image skipped: image {name!r} (missing image file)" for name in TEDDY_MISSING}
    assert (len(bench.images), len(bench.captions)) == (998, 998)
    assert {c.language for c in bench.captions} == {"zh"}
    not_jpeg = []
    for item in bench.images:
        with Image.open(item.path) as img:
            if img.format != "JPEG" or img.mode != "RGB":
                not_jpeg.append((item, img.format))
    assert {fmt for _, fmt in not_jpeg} >= {"GIF", "PNG"}  # the sample really has lying extensions
    for item, _ in not_jpeg:
        assert item.path.suffix == ".jpg" and item.open().mode == "RGB"


def test_teddy2024_error_names_a_missing_image(cache_dir):
    with pytest.raises(BadInputError, match="|".join(TEDDY_MISSING).replace(".", r"\.")):
        load_benchmark(DatasetConfig(format="competition", root=TEDDY, cache_dir=cache_dir))


@pytest.mark.parametrize("language", ["en", "zh"])
def test_flickr8k_test_split(cache_dir, language):
    bench = load_benchmark(DatasetConfig(format="flickr8k", root=FLICKR8K, language=language, cache_dir=cache_dir))
    assert (len(bench.images), len(bench.captions), bench.skipped) == (1000, 5000, [])
    assert all(len(pos) == 5 for pos in bench.image_to_texts())
    split_names = (FLICKR8K / "splits" / "test.txt").read_text().split()
    assert [i.id for i in bench.images] == split_names


def test_flickr8k_train_split(cache_dir):
    bench = load_benchmark(DatasetConfig(format="flickr8k", root=FLICKR8K, split="train", verify_images=False,
                                         cache_dir=cache_dir))
    assert (len(bench.images), len(bench.captions)) == (6000, 30000)


def _karpathy_from_flickr8k(path):
    captions: dict[str, list[str]] = {}
    for line in (FLICKR8K / "captions_en.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        image, _, text = line.split("\t")
        captions.setdefault(image, []).append(text)
    entries, sentid = [], 0
    for split in ("train", "val", "test"):
        for name in (FLICKR8K / "splits" / f"{split}.txt").read_text().split():
            entries.append({"filename": name, "imgid": len(entries), "split": split,
                            "sentences": [{"raw": t, "sentid": sentid + k} for k, t in enumerate(captions[name])]})
            sentid += len(captions[name])
    path.write_text(json.dumps({"images": entries, "dataset": "flickr8k"}), encoding="utf-8")
    return path


def test_karpathy_json_of_flickr8k_matches_flickr8k_loader(tmp_path, cache_dir):
    ann = _karpathy_from_flickr8k(tmp_path / "dataset_flickr8k.json")
    kar = load_benchmark(DatasetConfig(format="karpathy", root=FLICKR8K / "images", annotations=ann,
                                       verify_images=False, cache_dir=cache_dir))
    ref = load_benchmark(DatasetConfig(format="flickr8k", root=FLICKR8K, verify_images=False, cache_dir=cache_dir))
    assert [i.path for i in kar.images] == [i.path for i in ref.images]
    assert sorted((c.image_id, c.text) for c in kar.captions) == sorted((c.image_id, c.text) for c in ref.captions)


def test_table_loader_on_flickr8k_tsv(cache_dir):
    bench = load_benchmark(DatasetConfig(format="table", annotations=FLICKR8K / "captions_en.tsv",
                                         root=FLICKR8K / "images", limit=50, cache_dir=cache_dir))
    assert (len(bench.images), len(bench.captions)) == (50, 250)
    assert bench.captions[0].id == "0" and bench.images[0].id == "1000268201_693b08cb0e.jpg"


def test_hf_save_to_disk_of_flickr8k_images(tmp_path, cache_dir):
    ref = load_benchmark(DatasetConfig(format="flickr8k", root=FLICKR8K, language="zh", limit=20, cache_dir=cache_dir))
    positions = ref.image_to_texts()
    ds = datasets.Dataset.from_dict(
        {"image": [{"bytes": img.path.read_bytes(), "path": img.id} for img in ref.images],
         "caption": [[ref.captions[p].text for p in pos] for pos in positions]},
        features=datasets.Features({"image": datasets.Image(), "caption": datasets.List(datasets.Value("string"))}))
    ds.save_to_disk(str(tmp_path / "f8k_hf"))
    bench = load_benchmark(DatasetConfig(format="hf", hf_dataset=str(tmp_path / "f8k_hf"), language="zh",
                                         cache_dir=cache_dir))
    assert [i.id for i in bench.images] == [i.id for i in ref.images] and len(bench.captions) == 100
    for mine, theirs in zip(bench.images[:3], ref.images[:3]):
        assert np.array_equal(np.asarray(mine.open()), np.asarray(theirs.open()))
