"""Flickr8k / Flickr8k-CN in the layout of ``../shared/data/flickr8k``.

Layout: ``captions_en.tsv`` and ``captions_zh.tsv`` (columns ``image, caption_idx, caption``; rows in
any order), ``splits/{train,val,test}.txt`` (one image file name per line), ``images/``.
Image id = file name (``1000268201_693b08cb0e.jpg``); caption id = ``<image>#<caption_idx>`` (the
Flickr8k token convention). The images of a split are those of its split file, in file order
(``limit`` keeps the first N); captions of images outside the split are not read into the benchmark.
"""

from __future__ import annotations

from eval.data.assemble import AssembleOptions, SourceCaption, SourceImage, assemble
from eval.data.bad_input import BadInputLog
from eval.data.benchmark import BadInputError, Benchmark
from eval.data.dataset_config import DatasetConfig
from eval.data.text_files import decoded_lines, read_table
from rrbench_base.config_paths import path_note

CAPTION_COLUMNS = ("image", "caption_idx", "caption")


def load_flickr8k(cfg: DatasetConfig) -> Benchmark:
    """Benchmark of one Flickr8k split with English (``en``) or Chinese (``zh``) captions."""
    root = cfg.required_path("root")
    language = cfg.language_or("en")
    split = cfg.split_or("test")
    split_file = root / "splits" / f"{split}.txt"
    if not split_file.is_file():
        found = sorted(p.stem for p in (root / "splits").glob("*.txt"))
        raise BadInputError(f"{split_file}: no such split file (splits found: {', '.join(found) or 'none'})"
                            f"{path_note(split_file)}")
    bad = BadInputLog(cfg.on_bad_input)
    images = [SourceImage(text.strip(), text.strip(), f"{split_file}:{line}")
              for line, text in decoded_lines(split_file, bad, kind="image") if text.strip()]
    in_split = {img.id for img in images}
    captions_file = root / f"captions_{language}.tsv"
    rows = read_table(captions_file, CAPTION_COLUMNS, bad, fmt="tsv")
    captions = [
        SourceCaption(f"{row.fields['image']}#{row.fields['caption_idx']}", row.fields["caption"],
                      row.fields["image"], row.where)
        for row in rows if row.fields["image"] in in_split
    ]
    name = cfg.name or f"flickr8k-{language}"
    opts = AssembleOptions(name, split, root / "images", language, cfg.limit, cfg.verify_images, cfg.cache_dir)
    return assemble(images, captions, opts, bad)
