"""The synthetic shapes benchmark: determinism, uniqueness of captions, hard distractors, pixels, cache."""

import re
from collections import Counter

import numpy as np
import pytest
from PIL import Image

from eval.data import synthetic
from eval.data.dataset_config import DatasetConfig, SyntheticConfig
from eval.data.synthetic import load_synthetic, read_manifest, synthetic_split_dir
from eval.data.synthetic_scenes import COLOURS, SHAPES, SIZE_WORDS

SIZE_OF_WORD = {w: size for size, words in SIZE_WORDS.items() for w in words}
OBJECT_PHRASE = re.compile(rf"\b({'|'.join(SIZE_OF_WORD)}) ({'|'.join(COLOURS)}) ({'|'.join(SHAPES)})\b")


def small(tmp_path, split="test", **kw) -> DatasetConfig:
    sizes = {"num_train": 40, "num_val": 20, "num_test": 30, **kw}
    return DatasetConfig(format="synthetic", split=split, cache_dir=tmp_path, synthetic=SyntheticConfig(**sizes))


def entries(cfg: DatasetConfig) -> list[dict]:
    return read_manifest(synthetic_split_dir(cfg.synthetic, cfg.split, cfg.cache_dir))["images"]


def scene_key(entry) -> tuple:
    return entry["axis"], tuple(tuple(o) for o in entry["objects"])


def test_same_seed_identical_pixels_and_captions(tmp_path):
    a = load_synthetic(small(tmp_path / "a"))
    b = load_synthetic(small(tmp_path / "b"))
    assert [c.text for c in a.captions] == [c.text for c in b.captions]
    for x, y in zip(a.images, b.images):
        assert np.array_equal(np.asarray(x.open()), np.asarray(y.open()))
    c = load_synthetic(small(tmp_path / "c", seed=1))
    assert [x.text for x in c.captions] != [x.text for x in a.captions]


def test_ids_sizes_and_paraphrases(tmp_path):
    bench = load_synthetic(small(tmp_path))
    assert len(bench.images) == 30 and len(bench.captions) == 150
    assert bench.images[0].id == "syn-test-000000" and bench.images[0].open().size == (64, 64)
    assert [c.id for c in bench.captions[:2]] == ["syn-test-000000#0", "syn-test-000000#1"]
    for positions in bench.image_to_texts():
        texts = [bench.captions[p].text for p in positions]
        assert len(set(texts)) == 5  # five different paraphrases


def test_every_caption_states_exactly_its_scene(tmp_path):
    """Each caption names every object (size, colour, shape) and nothing else."""
    for entry in entries(small(tmp_path)):
        want = Counter(tuple(o) for o in entry["objects"])
        for text in entry["captions"]:
            found = Counter((SIZE_OF_WORD[s], c, sh) for s, c, sh in OBJECT_PHRASE.findall(text))
            assert found == want, (text, entry["objects"])


def test_captions_true_only_of_their_own_image(tmp_path):
    """Scene keys are unique in a split, and no 2-object scene is an ordered pair of a 3-object one."""
    split_entries = entries(small(tmp_path, split="train", num_train=300))
    keys = [scene_key(e) for e in split_entries]
    assert len(set(keys)) == len(keys)
    pairs_of_triples = {(axis, (objs[i], objs[j])) for axis, objs in keys if len(objs) == 3
                        for i in range(3) for j in range(i + 1, 3)}
    assert not [k for k in keys if len(k[1]) == 2 and k in pairs_of_triples]
    counts = Counter(len(k[1]) for k in keys)
    assert counts[2] > 0 and counts[3] > 0


def test_splits_are_disjoint_and_stable(tmp_path):
    keys = {s: {scene_key(e) for e in entries(small(tmp_path, split=s))} for s in ("train", "val", "test")}
    assert not keys["train"] & keys["val"] and not keys["train"] & keys["test"] and not keys["val"] & keys["test"]
    bigger_train = {scene_key(e) for e in entries(small(tmp_path / "other", split="test", num_train=99))}
    assert bigger_train == keys["test"]  # the train size never changes the test scenes


def test_groups_are_hard_distractors(tmp_path):
    """Siblings share geometry and vocabulary, and differ only by one swap."""
    manifest = entries(small(tmp_path, split="train", num_train=200))
    groups: dict[int, list[dict]] = {}
    for e in manifest:
        groups.setdefault(e["group"], []).append(e)
    assert sum(len(g) >= 2 for g in groups.values()) >= len(groups) - 1  # only the last may be cut
    variants = Counter(e["variant"] for e in manifest)
    assert variants["colour_swap"] and variants["position_swap"] and variants["size_swap"]
    for members in groups.values():
        base = members[0]
        assert base["variant"] == "base"
        for sib in members[1:]:
            assert sib["axis"] == base["axis"]
            assert Counter(o[1] for o in sib["objects"]) == Counter(o[1] for o in base["objects"])
            assert Counter(o[2] for o in sib["objects"]) == Counter(o[2] for o in base["objects"])
            assert Counter(o[0] for o in sib["objects"]) == Counter(o[0] for o in base["objects"])
            changed = [k for k, (a, b) in enumerate(zip(sib["objects"], base["objects"])) if a != b]
            assert len(changed) == 2


def test_pixels_show_the_described_colours_in_order(tmp_path):
    cfg = small(tmp_path)
    directory = synthetic_split_dir(cfg.synthetic, "test", tmp_path)
    scenes = synthetic.generate_scenes(0, {"test": 30, "val": 20, "train": 40}, "test")
    for entry, scene in zip(read_manifest(directory)["images"], scenes):
        assert [list((o.size, o.colour, o.shape)) for o in scene.objects] == entry["objects"]
        pixels = np.asarray(Image.open(directory / entry["file"]).convert("RGB"))
        along = [c[0] if scene.axis == "horizontal" else c[1] for c in scene.centres]
        assert along == sorted(along)  # objects listed left to right / top to bottom
        for obj, (x, y) in zip(scene.objects, scene.centres):
            px = pixels[int(y * 64), int(x * 64)]
            assert np.abs(px.astype(int) - COLOURS[obj.colour]).max() <= 2, (entry["id"], obj)


def test_cache_reused_and_interrupted_generation_not_trusted(tmp_path, monkeypatch):
    cfg = small(tmp_path)
    directory = synthetic_split_dir(cfg.synthetic, "test", tmp_path)
    stamp = (directory / "manifest.json").stat().st_mtime_ns
    assert synthetic_split_dir(cfg.synthetic, "test", tmp_path) == directory
    assert (directory / "manifest.json").stat().st_mtime_ns == stamp
    assert directory.name == "v1_seed0_px64_cap5_test_test30"

    calls = {"n": 0}
    real_render = synthetic.render

    def failing_render(scene, size):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt("simulated interruption")
        return real_render(scene, size)

    monkeypatch.setattr(synthetic, "render", failing_render)
    with pytest.raises(KeyboardInterrupt):
        synthetic_split_dir(cfg.synthetic, "val", tmp_path)
    val_dir = tmp_path / "synthetic" / "v1_seed0_px64_cap5_val_test30-val20"
    assert not val_dir.exists() and not list((tmp_path / "synthetic").glob(".*tmp*"))
    monkeypatch.setattr(synthetic, "render", real_render)
    val_dir.mkdir()  # a leftover directory without a manifest is regenerated, not trusted
    assert len(read_manifest(synthetic_split_dir(cfg.synthetic, "val", tmp_path))["images"]) == 20


def test_limit_unknown_split_and_language(tmp_path):
    cfg = small(tmp_path)
    cfg.limit = 4
    bench = load_synthetic(cfg)
    assert [i.id for i in bench.images] == [f"syn-test-00000{k}" for k in range(4)]
    with pytest.raises(ValueError, match="synthetic split must be one of train, val, test"):
        load_synthetic(small(tmp_path, split="dev"))
    zh = small(tmp_path)
    zh.language = "zh"
    with pytest.raises(ValueError, match="English"):
        load_synthetic(zh)


def test_parallel_generation_writes_the_same_bytes(tmp_path):
    cfg = SyntheticConfig(num_train=1, num_val=1, num_test=6, image_size=32, seed=5)
    serial = synthetic_split_dir(cfg, "test", tmp_path / "serial")
    parallel = synthetic_split_dir(cfg, "test", tmp_path / "parallel", workers=2)
    files = sorted(p.name for p in serial.iterdir())
    assert files == sorted(p.name for p in parallel.iterdir()) and len(files) == 7
    for name in files:
        assert (serial / name).read_bytes() == (parallel / name).read_bytes(), name
