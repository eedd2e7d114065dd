"""An experiment with caption preprocessing: recorded in results.json's config, part of both stages' cache keys
(switching misses the caches, switching back hits them), and a caption it empties follows
``dataset.on_bad_input``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eval.data.benchmark import BadInputError
from eval.experiment_config import load_experiment
from eval.runner.experiment import run_experiment
from tests.tiny_experiment import write_tiny_experiment

BLIP = ["stage1.caption_preprocessing.name=blip_caption", "stage2.caption_preprocessing.name=blip_caption"]


def run(config: Path, overrides: list[str]) -> dict:
    return json.loads(Path(run_experiment(load_experiment(config, overrides))).read_text())


def test_recorded_and_keyed_in_both_stages(tmp_path):
    config = write_tiny_experiment(tmp_path)
    results = [run(config, choice) for choice in ([], BLIP, [], BLIP)]
    recorded = [(r["provenance"]["config"]["stage1"]["caption_preprocessing"],
                 r["provenance"]["config"]["stage2"]["caption_preprocessing"]) for r in results]
    none, blip = {"name": "none", "max_words": 50}, {"name": "blip_caption", "max_words": 50}
    assert recorded == [(none, none), (blip, blip), (none, none), (blip, blip)]
    texts = [(r["counts"]["stage1"]["texts"]["cached_items"], r["counts"]["stage1"]["texts"]["encoded_items"])
             for r in results]
    captions = results[0]["counts"]["dataset"]["captions"]
    assert texts == [(0, captions), (0, captions), (captions, 0), (captions, 0)]
    stage2 = [r["counts"]["stage2"] for r in results]
    assert [s["pairs_from_cache"] for s in stage2] == [0, 0, stage2[2]["unique_keys"], stage2[3]["unique_keys"]]
    assert stage2[0]["unique_keys"] > 0
    assert results[2]["metrics"] == results[0]["metrics"] and results[3]["metrics"] == results[1]["metrics"]
    assert results[1]["metrics"] != results[0]["metrics"]  # "from right to left: ..." loses its colon


def write_table(root: Path) -> Path:
    rng = np.random.default_rng(0)
    rows = ["image,caption,image_id,caption_id"]
    for i in range(4):
        Image.fromarray(rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(root / f"img{i}.png")
        rows += [f"img{i}.png,A red circle (left) #{i}.,i{i},c{i}a", f"img{i}.png,a blue square on the right,i{i},c{i}b"]
    rows.append('img3.png,"(...)",i3,c3c')
    path = root / "captions.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize("policy", ["error", "skip"])
def test_a_caption_it_empties_follows_the_dataset_policy(tmp_path, policy):
    config = write_tiny_experiment(tmp_path)
    table = ["dataset.format=table", f"dataset.annotations={write_table(tmp_path)}", "dataset.split=all",
             "dataset.image_id_column=image_id", "dataset.caption_id_column=caption_id",
             f"dataset.on_bad_input={policy}"]
    if policy == "error":
        with pytest.raises(BadInputError, match=r"caption 'c3c': empty after caption preprocessing"):
            run(config, table + BLIP)
        return
    results = run(config, table + BLIP)
    assert results["counts"]["dataset"]["captions"] == 8
    assert [(s["kind"], s["item"]) for s in results["counts"]["skipped_items"]] == [("caption", "c3c")]
    assert run(config, table)["counts"]["dataset"]["captions"] == 9  # none keeps it
