"""The BLIP-2 paper protocol end to end: ``rrbench run`` with stage 1 = ``blip2_itc`` and stage 2 = ``blip2_itm`` on
one tiny random BLIP-2 checkpoint ranks every query of both directions exactly as LAVIS's algorithm does.

The reference below is written from the algorithm's description (LAVIS ``Blip2Qformer.compute_sim_matrix``), on
transformers' ``Blip2ForImageTextRetrieval`` alone (no rrbench code): the ITC similarity matrix (max over the
query embeddings of the image of their dot product with the caption's embedding); per query its top k by ITC; those
k scored ITM match logit + ITC similarity, every other candidate -100; ranked by score, ties in gallery order.
Features and scores are kept in float32 as LAVIS keeps them (the model runs in float64 so that no near-tie depends on
the order of float sums). Captions are already lower-case without punctuation (what LAVIS's ``blip_caption`` gives).
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor, Blip2ForImageTextRetrieval

from eval.experiment_config import load_experiment
from eval.runner.experiment import run_experiment
from eval.trec import read_run
from stage2_rerank.bench.random_checkpoint import save_random_checkpoint, tiny_blip2_itm_config
from tests.tiny_experiment import WORDS

NUM_IMAGES, CAPTIONS_PER_IMAGE, TEXT_MAX_LENGTH = 8, 3, 35
DEPTHS = (3, 24)  # 3 < both galleries; 24 >= both (the whole gallery is reranked)
RULES = ("itm+stage1", "itm+itc", "itm")
CONTENT = [w for w in WORDS if w.isalpha() and len(w) > 2]


def _write_dataset(root: Path) -> Path:
    rng = np.random.default_rng(11)
    entries = []
    (root / "images").mkdir(parents=True)
    for i in range(NUM_IMAGES):
        pixels = rng.integers(0, 256, size=(36 + 2 * i, 44, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"img{i}.png")
        sentences = [{"raw": " ".join(rng.choice(CONTENT, size=int(rng.integers(3, 9)))), "sentid": i * 10 + j}
                     for j in range(CAPTIONS_PER_IMAGE)]
        entries.append({"filename": f"img{i}.png", "split": "test", "sentences": sentences, "imgid": i})
    (root / "dataset_tiny.json").write_text(json.dumps({"images": entries}))
    return root / "dataset_tiny.json"


@pytest.fixture(scope="module")
def protocol_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper_protocol")
    checkpoint = root / "blip2"
    save_random_checkpoint(checkpoint, tiny_blip2_itm_config(image_size=32, vocab_size=256), WORDS, seed=5)
    annotations = _write_dataset(root / "data")
    config = root / "paper.yaml"
    config.write_text(f"""
experiment: paper
threads: 1
output_dir: {root / 'results'}
cache_dir: {root / 'cache'}
dataset: {{format: karpathy, root: {root / 'data' / 'images'}, annotations: {annotations}, split: test}}
stage1:
  depth: 24
  encoder: {{backend: blip2_itc, model: {checkpoint}, precision: fp64, device: cpu, batch_size: 3, num_workers: 0}}
  index: {{type: torch}}
stage2:
  backend: blip2_itm
  model: {checkpoint}
  precision: fp64
  vision_precision: fp64
  device: cpu
  text_max_length: {TEXT_MAX_LENGTH}
ablation:
  depths: [0, {', '.join(map(str, DEPTHS))}]
  rules: [{', '.join(RULES)}]
""")
    results = run_experiment(load_experiment(config))
    return checkpoint, json.loads(annotations.read_text()), root / "data" / "images", results


def _lavis_scores(checkpoint: Path, entries: list[dict], image_root: Path, k: int, add_itc: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """LAVIS's final score matrices ``(i2t [N, M], t2i [M, N])`` at depth ``k`` (``add_itc``: ITM + ITC, else ITM)."""
    model = Blip2ForImageTextRetrieval.from_pretrained(checkpoint).to(torch.float64).eval()
    processor = AutoProcessor.from_pretrained(checkpoint)
    images = [Image.open(image_root / e["filename"]).convert("RGB") for e in entries]
    captions = [s["raw"] for e in entries for s in e["sentences"]]
    pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"].to(torch.float64)
    tokens = processor.tokenizer(captions, padding="max_length", truncation=True, max_length=TEXT_MAX_LENGTH,
                                 return_tensors="pt")
    with torch.no_grad():
        itc = model(pixel_values=pixels, input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"],
                    use_image_text_matching_head=False)
        image_feats = itc.image_embeds.float()  # [N, Q, E], as LAVIS stores them
        text_feats = itc.text_embeds.float()  # [M, E]
        sim_i2t = torch.einsum("nqe,me->nqm", image_feats.double(), text_feats.double()).amax(dim=1).float()

        def itm(image_rows: np.ndarray, text_rows: np.ndarray) -> torch.Tensor:
            out = model(pixel_values=pixels[image_rows], input_ids=tokens["input_ids"][text_rows],
                        attention_mask=tokens["attention_mask"][text_rows], use_image_text_matching_head=True)
            return out.logits_per_image[:, 1].float()

        n, m = sim_i2t.shape
        score_i2t = torch.full((n, m), -100.0, dtype=torch.float64)
        for i in range(n):
            top = np.argsort(-sim_i2t[i].numpy(), kind="stable")[:k]
            score = itm(np.full(len(top), i), top).double()
            score_i2t[i, top] = score + (sim_i2t[i, top].double() if add_itc else 0.0)
        score_t2i = torch.full((m, n), -100.0, dtype=torch.float64)
        sim_t2i = sim_i2t.T
        for t in range(m):
            top = np.argsort(-sim_t2i[t].numpy(), kind="stable")[:k]
            score = itm(top, np.full(len(top), t)).double()
            score_t2i[t, top] = score + (sim_t2i[t, top].double() if add_itc else 0.0)
    return score_i2t.numpy(), score_t2i.numpy()


def _ranking(scores: np.ndarray) -> np.ndarray:
    """Each row's gallery positions by score descending, ties in gallery order."""
    return np.argsort(-scores, axis=1, kind="stable")


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("depth", DEPTHS)
def test_rankings_equal_lavis_query_by_query(protocol_run, rule, depth):
    checkpoint, annotations, image_root, results = protocol_run
    entries = annotations["images"]
    image_ids = [e["filename"] for e in entries]
    caption_ids = [str(s["sentid"]) for e in entries for s in e["sentences"]]
    score_i2t, score_t2i = _lavis_scores(checkpoint, entries, image_root, depth, add_itc=rule != "itm")
    runs = results.parent / "runs"
    for direction, scores, query_ids, gallery_ids in (("i2t", score_i2t, image_ids, caption_ids),
                                                      ("t2i", score_t2i, caption_ids, image_ids)):
        run = read_run(runs / f"stage2_{rule}_k={depth}.{direction}.trec.gz")
        expected = _ranking(scores)
        k = min(depth, len(gallery_ids))
        assert sorted(run.ranking) == sorted(query_ids)
        for q, query in enumerate(query_ids):
            got = run.ranking[query]
            want = [gallery_ids[g] for g in expected[q]]
            assert got[:k] == want[:k], f"{rule} k={depth} {direction} query {query}"
            # beyond k LAVIS ties every candidate at -100 (gallery order); rrbench keeps them in ITC order
            assert sorted(got[k:]) == sorted(want[k:])
            if rule == "itm+stage1":  # the run file carries LAVIS's scores of the reranked candidates
                np.testing.assert_allclose(run.scores[query][:k], scores[q, expected[q][:k]], rtol=0, atol=1e-6)


def test_one_vision_pass_per_image_for_both_stages(protocol_run):
    counts = json.loads(protocol_run[3].read_text())["counts"]
    assert counts["stage1"]["vision_features_to_stage2"] == {"images": NUM_IMAGES, "not_shared_because": None}
    assert counts["stage1"]["images"]["encoded_items"] == NUM_IMAGES
    assert counts["stage2"]["images_encoded"] == 0  # every image's ViT output came from stage 1
    assert counts["stage1"]["candidates"]["t2i"]["index"]["type"] == "multivector-torch"
