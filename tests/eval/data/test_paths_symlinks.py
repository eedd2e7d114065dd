"""Symlinked datasets load (issue 18 case 11): containment is checked on the path as written, then links followed."""

from __future__ import annotations

import os

import numpy as np
import pytest

from eval.data.assemble import RootedPaths
from eval.data.bad_input import resolve_under
from eval.data.benchmark import BadInputError
from eval.data.dataset_config import DatasetConfig
from eval.data.flickr8k import load_flickr8k
from eval.data.tabular import load_table

from .conftest import write_image


def table_dataset(root, refs):
    """A CSV of two captions per image ref under ``root`` (images written by the caller)."""
    root.mkdir(parents=True, exist_ok=True)
    rows = ["image,caption"] + [f"{ref},photo {k} take {j}" for k, ref in enumerate(refs) for j in range(2)]
    (root / "caps.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root / "caps.csv"


def load_csv(annotations, cache_dir, **kw):
    return load_table(DatasetConfig(format="table", annotations=annotations, cache_dir=cache_dir, **kw))


def same_benchmark(a, b):
    assert [(i.id, i.fingerprint()) for i in a.images] == [(i.id, i.fingerprint()) for i in b.images]
    assert a.captions == b.captions and a.skipped == b.skipped == []
    assert a.text_to_image().tolist() == b.text_to_image().tolist()
    for x, y in zip(a.images, b.images):
        np.testing.assert_array_equal(np.asarray(x.open()), np.asarray(y.open()))


def test_root_symlink_and_symlinked_image_files_load_like_the_real_files(tmp_path):
    real = tmp_path / "real"
    refs = ["a.png", "sub/b.png", "c.png"]
    for k, ref in enumerate(refs):
        write_image(real / ref, colour=(60 * k, 90, 200))
    reference = load_csv(table_dataset(real, refs), tmp_path / "cache0")

    linked_root = tmp_path / "linked_root"  # the dataset root itself is a symlink
    linked_root.symlink_to(real, target_is_directory=True)
    via_root_link = load_csv(linked_root / "caps.csv", tmp_path / "cache1")

    farm = tmp_path / "farm"  # a folder of symlinks to files elsewhere, one a relative link
    (farm / "sub").mkdir(parents=True)
    (farm / "a.png").symlink_to(real / "a.png")
    (farm / "sub" / "b.png").symlink_to(real / "sub" / "b.png")
    (farm / "c.png").symlink_to(os.path.relpath(real / "c.png", farm))
    via_file_links = load_csv(table_dataset(farm, refs), tmp_path / "cache2")

    same_benchmark(reference, via_root_link)
    same_benchmark(reference, via_file_links)

    # escaping the root as written stays refused, whether the root is a link or not
    write_image(tmp_path / "x.png")
    for root in (real, linked_root, farm):
        paths = RootedPaths(root)
        for ref in ("../x.png", "sub/../../x.png", "/etc/passwd", str(tmp_path / "x.png")):
            assert paths.resolve(ref) is None and resolve_under(root, ref) is None, (root, ref)
        for ref in ("a.png", "sub/../a.png", str(root / "a.png")):
            assert paths.resolve(ref) == resolve_under(root, ref) == real / "a.png", (root, ref)
    assert resolve_under(linked_root, str(real / "a.png")) == real / "a.png"  # the root's real spelling
    for bad in ("../x.png", "/etc/passwd"):
        with pytest.raises(BadInputError, match=rf"image '{bad}': path escapes dataset root"):
            load_csv(table_dataset(farm, ["a.png", bad]), tmp_path / "cache3")


def test_flickr8k_with_an_images_folder_of_symlinks(flickr8k_dir, tmp_path):
    reference = load_flickr8k(DatasetConfig(format="flickr8k", root=flickr8k_dir, cache_dir=tmp_path / "c0"))
    store = tmp_path / "store"
    (flickr8k_dir / "images").rename(store)
    (flickr8k_dir / "images").mkdir()
    for image in store.iterdir():
        (flickr8k_dir / "images" / image.name).symlink_to(image)
    linked = load_flickr8k(DatasetConfig(format="flickr8k", root=flickr8k_dir, cache_dir=tmp_path / "c1"))
    assert [i.id for i in linked.images] == [i.id for i in reference.images] == ["a.jpg", "b.jpg"]
    assert linked.captions == reference.captions and linked.skipped == []
    assert [i.path for i in linked.images] == [store / "a.jpg", store / "b.jpg"]
