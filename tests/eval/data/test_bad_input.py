"""Every bad-input case of issue 2 under both policies (through the CSV loader and ImageItem.open)."""

import os

import numpy as np
import pytest
from PIL import Image

from eval.data import image_checks
from eval.data.assemble import RootedPaths
from eval.data.bad_input import resolve_under
from eval.data.benchmark import BadInputError, ImageItem
from eval.data.dataset_config import DatasetConfig
from eval.data.tabular import load_table

from .conftest import truncate, write_image


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "data"
    write_image(root / "good.png")
    write_image(root / "good2.png", colour=(0, 0, 200))
    return root


def load(root, cache_dir, rows, policy="error", header="image,caption", **kw):
    path = root / "caps.csv"
    path.write_text("\n".join([header] + rows) + "\n", encoding="utf-8")
    cfg = DatasetConfig(format="table", annotations=path, cache_dir=cache_dir, on_bad_input=policy, **kw)
    return load_table(cfg)


def skipped(bench):
    return [(s.kind, s.item, s.reason.split(":")[0]) for s in bench.skipped]


def noisy_jpeg(path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path, format="JPEG")
    return path


@pytest.mark.parametrize("make, category", [
    (lambda p: None, "missing image file"),
    (lambda p: p.write_bytes(b"this is not an image at all"), "undecodable image"),
    (lambda p: truncate(noisy_jpeg(p), 0.6), "undecodable image"),
    (lambda p: p.write_bytes(b""), "undecodable image"),
])
def test_bad_image_files_both_policies(root, cache_dir, make, category):
    make(root / "bad.jpg")
    rows = ["good.png,fine", "bad.jpg,bad one", "bad.jpg,bad two"]
    with pytest.raises(BadInputError, match=rf"caps\.csv:3: image 'bad\.jpg': {category}"):
        load(root, cache_dir, rows)
    bench = load(root, cache_dir, rows, "skip")
    assert [i.id for i in bench.images] == ["good.png"] and [c.id for c in bench.captions] == ["0"]
    assert skipped(bench) == [("image", "bad.jpg", category), ("caption", "1", "image skipped"),
                              ("caption", "2", "image skipped")]
    assert bench.summary()["skipped_by_reason"] == {category: 1, "image skipped": 2}


def test_lying_extensions_load(root, cache_dir):
    write_image(root / "gif.jpg", mode="P", fmt="GIF", colour=(0, 0, 255))
    write_image(root / "png.jpg", mode="RGBA", fmt="PNG", colour=(0, 255, 0))
    write_image(root / "jpeg.png", fmt="JPEG")
    bench = load(root, cache_dir, ["gif.jpg,a gif", "png.jpg,a png", "jpeg.png,a jpeg"])
    assert len(bench.images) == 3 and not bench.skipped
    assert [img.open().mode for img in bench.images] == ["RGB"] * 3


@pytest.mark.parametrize("mode, fmt, want", [
    ("P", "PNG", (30, 60, 200)), ("P", "GIF", (30, 60, 200)), ("L", "PNG", None), ("LA", "PNG", None),
    ("RGBA", "PNG", (30, 60, 200)), ("CMYK", "JPEG", None), ("I;16", "PNG", None), ("1", "PNG", None),
])
def test_image_modes_open_as_rgb(tmp_path, mode, fmt, want):
    path = write_image(tmp_path / f"img.{fmt.lower()}", colour=(30, 60, 200), mode=mode, fmt=fmt)
    with Image.open(path) as raw:
        assert raw.mode != "RGB"  # the fixture really is in an odd mode
    rgb = ImageItem("x", path).open()
    assert rgb.mode == "RGB" and rgb.size == (12, 10)
    if want is not None:
        assert np.abs(np.asarray(rgb).reshape(-1, 3).mean(0) - want).max() <= 3


def test_transparent_pixels_become_white(tmp_path):
    path = tmp_path / "t.png"
    Image.new("RGBA", (4, 4), (255, 0, 0, 0)).save(path)
    assert np.asarray(ImageItem("t", path).open())[0, 0].tolist() == [255, 255, 255]


def test_paths_escaping_root(root, cache_dir, tmp_path):
    write_image(tmp_path / "outside.png")
    rows = ["good.png,fine", "../outside.png,dot dot", f"{tmp_path / 'outside.png'},absolute"]
    with pytest.raises(BadInputError, match=r"caps\.csv:3: image '\.\./outside\.png': path escapes dataset root"):
        load(root, cache_dir, rows)
    bench = load(root, cache_dir, rows, "skip")
    assert [i.id for i in bench.images] == ["good.png"]
    assert [s[2] for s in skipped(bench)] == ["path escapes dataset root"] * 2 + ["image skipped"] * 2
    inside = load(root, cache_dir, [f"{root / 'good.png'},absolute but inside"])
    assert inside.images[0].path == (root / "good.png").resolve()


def test_empty_captions_and_captionless_image(root, cache_dir):
    rows = ["good.png,fine", "good.png,   ", 'good2.png,""', "good2.png,\t"]
    with pytest.raises(BadInputError, match=r"caps\.csv:3: caption '1': empty caption"):
        load(root, cache_dir, rows)
    bench = load(root, cache_dir, rows, "skip")
    assert [i.id for i in bench.images] == ["good.png"] and [c.id for c in bench.captions] == ["0"]
    assert skipped(bench) == [("caption", "1", "empty caption"), ("caption", "2", "empty caption"),
                              ("caption", "3", "empty caption"), ("image", "good2.png", "no captions")]


def test_duplicate_ids(root, cache_dir):
    header = "image,caption,img,cid"
    rows = ["good.png,one,G,c1", "good.png,two,G,c1", "good2.png,three,G,c3", "good2.png,four,H,c4"]
    with pytest.raises(BadInputError, match=r"caps\.csv:4: caption 'c3': duplicate image id: 'G' is 'good\.png'"):
        load(root, cache_dir, rows, header=header, image_id_column="img", caption_id_column="cid")
    bench = load(root, cache_dir, rows, "skip", header=header, image_id_column="img", caption_id_column="cid")
    assert [(c.id, c.image_id) for c in bench.captions] == [("c1", "G"), ("c4", "H")]
    assert skipped(bench) == [("caption", "c3", "duplicate image id"), ("caption", "c1", "duplicate caption id")]


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_missing_column_is_always_an_error(root, cache_dir, policy):
    with pytest.raises(BadInputError, match=r"caps\.csv: missing column 'caption' \(columns found: image, text\)"):
        load(root, cache_dir, ["good.png,fine"], policy, header="image,text")


def test_non_utf8_row(root, cache_dir):
    path = root / "caps.csv"
    path.write_bytes("image,caption\ngood.png,fine\ngood2.png,caf".encode() + b"\xe9\ngood2.png,ok\n")
    cfg = DatasetConfig(format="table", annotations=path, cache_dir=cache_dir)
    with pytest.raises(BadInputError, match=r"caps\.csv:3: caption 'line 3': non-UTF-8 bytes: b'\\xe9\\n' at byte 13"):
        load_table(cfg)
    cfg.on_bad_input = "skip"
    bench = load_table(cfg)
    assert [c.text for c in bench.captions] == ["fine", "ok"]
    assert [(s.source.rsplit(":", 1)[1], s.item) for s in bench.skipped] == [("3", "line 3")]
    path.write_bytes(b"im\xffage,caption\n")
    with pytest.raises(BadInputError, match=r"caps\.csv:1: header line has non-UTF-8 bytes"):
        load_table(cfg)


def test_unknown_image(root, cache_dir):
    rows = ["good.png,fine", ",no image at all"]
    with pytest.raises(BadInputError, match=r"caps\.csv:3: caption '1': unknown image: empty 'image' field"):
        load(root, cache_dir, rows)
    assert skipped(load(root, cache_dir, rows, "skip")) == [("caption", "1", "unknown image")]


def test_limit_counts_images_in_order(root, cache_dir):
    write_image(root / "good3.png")
    rows = ["good2.png,a", "good.png,b", "good2.png,c", "good3.png,d", "missing.png,e"]
    bench = load(root, cache_dir, rows, limit=2)  # the missing image is beyond the limit: not checked
    assert [i.id for i in bench.images] == ["good2.png", "good.png"]
    assert [c.id for c in bench.captions] == ["0", "1", "2"]


def test_verification_is_cached_by_path_size_mtime(root, cache_dir, monkeypatch):
    decoded = []
    real = image_checks._decode_error
    monkeypatch.setattr(image_checks, "_decode_error", lambda item: decoded.append(item.id) or real(item))
    rows = ["good.png,a", "good2.png,b"]
    load(root, cache_dir, rows)
    assert sorted(decoded) == ["good.png", "good2.png"]
    assert list((cache_dir / "verified_images").glob("*.json"))
    decoded.clear()
    load(root, cache_dir, rows)
    assert decoded == []  # nothing decoded the second time
    noisy_jpeg(root / "good2.png")  # replaced: new size and mtime
    load(root, cache_dir, rows)
    assert decoded == ["good2.png"]
    decoded.clear()
    data = (root / "good.png").read_bytes()
    (root / "good.png").write_bytes(data[:-30] + b"\0" * 30)  # same size, corrupted, new mtime
    stat = (root / "good.png").stat()
    os.utime(root / "good.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))
    with pytest.raises(BadInputError, match="good.png': undecodable image"):
        load(root, cache_dir, rows)


def test_without_verification_bad_file_fails_when_opened(root, cache_dir):
    (root / "bad.jpg").write_bytes(b"junk")
    bench = load(root, cache_dir, ["bad.jpg,x"], verify_images=False)
    with pytest.raises(BadInputError, match=r"cannot decode image .*bad\.jpg"):
        bench.images[0].open()


def test_rooted_paths_agree_with_resolve_under(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "link_out").symlink_to(tmp_path / "elsewhere")
    (root / "file_link").symlink_to(tmp_path / "elsewhere" / "x.jpg")
    (root / "sub" / "in_link").symlink_to(root / "sub")
    refs = ["a.jpg", "sub/a.jpg", "sub/../a.jpg", "../x.jpg", "sub/../../x.jpg", "/etc/passwd",
            str(root / "sub" / "a.jpg"), "link_out/x.jpg", "file_link", "sub/in_link/a.jpg", ".", "sub/..", ".."]
    paths = RootedPaths(root)
    assert [paths.resolve(r) for r in refs] == [resolve_under(root, r) for r in refs]
    # a symlink inside the root is followed (issue 18 case 11); '..' out of the root is still refused
    assert paths.resolve("link_out/x.jpg") == (tmp_path / "elsewhere" / "x.jpg").resolve()
    assert paths.resolve("../x.jpg") is None and paths.resolve("sub/in_link/a.jpg") == (root / "sub" / "a.jpg").resolve()
