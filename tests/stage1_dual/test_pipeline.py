"""Stage 1 end to end from a config: encode (cached), index, candidates both ways, with a skipped image."""

from __future__ import annotations

import json

import numpy as np

from eval.typed_config import from_dict
from stage1_dual import Stage1Config, run_stage1
from stage1_dual.encoders import load_encoder
from tests.stage1_dual.helpers import ForwardCounter, make_images


def test_run_stage1_from_config_with_cache_and_skip(tiny_open_clip_name, tmp_path, monkeypatch):
    images = make_images(tmp_path / "img", 8, corrupt=(5,))
    texts = [f"caption {i}" for i in range(16)]
    cfg = from_dict(Stage1Config, {
        "encoder": {"model": tiny_open_clip_name, "device": "cpu", "batch_size": 3, "num_workers": 0},
        "index": {"type": "flat"}, "depth": 10, "cache_dir": str(tmp_path / "cache"), "on_bad_input": "skip",
    })
    result = run_stage1(cfg, images, texts)
    t2i, i2t = result.candidates["t2i"], result.candidates["i2t"]
    assert t2i.ids.shape == (16, 7) and t2i.clamped and 5 not in t2i.ids        # 7 images left, depth clamped
    assert i2t.ids.shape == (7, 10) and i2t.query_positions.tolist() == [0, 1, 2, 3, 4, 6, 7]
    expected = np.argsort(-(result.texts.embeddings @ result.images.embeddings.T), axis=1)[:, :7]
    np.testing.assert_array_equal(t2i.ids, result.images.positions[expected])
    summary = json.loads(json.dumps(result.summary()))
    assert summary["images"]["skipped"][0]["id"] == "img5" and summary["candidates"]["t2i"]["depth"] == 7

    encoder = load_encoder(cfg.encoder)
    counter = ForwardCounter(encoder, monkeypatch)
    again = run_stage1(cfg, images, texts, encoder=encoder)
    assert (counter.images, counter.texts) == (0, 0)
    np.testing.assert_array_equal(again.candidates["i2t"].ids, i2t.ids)
