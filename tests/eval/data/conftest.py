"""Small on-disk datasets built in tmp_path for the loader tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def write_image(path: Path, colour=(200, 30, 30), mode: str = "RGB", fmt: str = "PNG", size=(12, 10)) -> Path:
    """Write a small solid image in ``mode`` and container ``fmt`` (whatever ``path``'s suffix says)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, colour)
    if mode == "P":
        img = img.convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    elif mode != "RGB":
        img = img.convert(mode)
    img.save(path, format=fmt)
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def flickr8k_dir(tmp_path: Path) -> Path:
    """Flickr8k layout: 4 images (a, b test; c val; d train), 2 captions each in en and zh (zh unsorted)."""
    root = tmp_path / "flickr8k"
    names = {"a.jpg": "test", "b.jpg": "test", "c.jpg": "val", "d.jpg": "train"}
    for k, name in enumerate(names):
        write_image(root / "images" / name, colour=(40 * k, 100, 200), fmt="JPEG", size=(16, 16))
    (root / "splits").mkdir()
    for split in ("train", "val", "test"):
        (root / "splits" / f"{split}.txt").write_text(
            "".join(f"{n}\n" for n, s in names.items() if s == split), encoding="utf-8")
    en = ["image\tcaption_idx\tcaption"] + [
        f"{n}\t{i}\tA \"quoted\" photo {n[0]} number {i} ." for n in names for i in range(2)]
    (root / "captions_en.tsv").write_text("\n".join(en) + "\n", encoding="utf-8")
    zh = ["image\tcaption_idx\tcaption"] + [
        f"{n}\t{i}\t图片{n[0]}的第{i}句描述。" for i in range(2) for n in reversed(list(names))]
    (root / "captions_zh.tsv").write_text("\n".join(zh) + "\n", encoding="utf-8")
    return root


@pytest.fixture
def competition_dir(tmp_path: Path) -> Path:
    """Competition layout: ImageWordData.csv + ImageData/ with lying extensions and odd modes.

    img0: RGB JPEG; img1: a GIF named .jpg (palette); img2: an RGBA PNG named .jpg; img3: greyscale
    JPEG; img4: listed but missing. img0 has two rows.
    """
    root = tmp_path / "teddy"
    data = root / "ImageData"
    write_image(data / "img0.jpg", fmt="JPEG")
    write_image(data / "img1.jpg", mode="P", fmt="GIF", colour=(0, 0, 255))
    write_image(data / "img2.jpg", mode="RGBA", fmt="PNG", colour=(0, 255, 0))
    write_image(data / "img3.jpg", mode="L", fmt="JPEG", colour=(90, 90, 90))
    rows = ["image_id,caption", "img0.jpg,一只红色的猫", 'img1.jpg,"蓝色,天空"', "img2.jpg,绿色草地",
            "img3.jpg,灰色的墙", "img4.jpg,丢失的图片", "img0.jpg,红色背景"]
    (root / "ImageWordData.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def write_karpathy(path: Path, images: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"images": images, "dataset": "test"}, ensure_ascii=False), encoding="utf-8")
    return path


def karpathy_entry(imgid: int, filename: str, split: str, texts: list[str], filepath: str | None = None,
                   first_sentid: int = 0) -> dict:
    entry = {
        "imgid": imgid, "filename": filename, "split": split,
        "sentids": [first_sentid + k for k in range(len(texts))],
        "sentences": [{"raw": t, "tokens": t.lower().split(), "imgid": imgid, "sentid": first_sentid + k}
                      for k, t in enumerate(texts)],
    }
    if filepath is not None:
        entry["filepath"] = filepath
    return entry
