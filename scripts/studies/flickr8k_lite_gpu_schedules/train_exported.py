"""One-off GPU schedule diagnostic (results/flickr8k_lite_gpu_schedules/README.md); not part of the package.

Trains the Flickr8k-lite reranker recipe (``configs/train/stage2_flickr8k_lite.yaml``: its ``trainer``, the
stand-in stage-1 negatives, val-100 selection) on the folders ``export_for_gpu.py`` writes, once per schedule
``name:epochs:steps_per_epoch:batch:max_train_seconds`` (``steps_per_epoch``: a number, ``full`` = all captions, or
``auto`` = as many full-data steps as fit 85% of the budget at the previous run's pace); mined negatives from half
of the planned steps. Each validation also reranks the real stage 1's test top-10 lists (logged as ``test_*``;
selection stays on the val-100 rsum). Writes ``<name>_log.jsonl`` to OUT_DIR. Runs as the copy that
``export_for_gpu.py`` puts in .gpuC, with .gpuA and .gpuB beside that folder:

    python .gpuC/train_exported.py OUT_DIR cuda ctrl:5:240:32:150 long:5:auto:32:320
"""

import argparse
import dataclasses
import json
import logging
import os
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import Blip2Config, Blip2ForImageTextRetrieval, Blip2Processor

from eval import typed_config
from eval.reranker_recipes.common import metrics_of_rankings, rerank_validator
from eval.reranker_recipes.training_run import Stage2TrainingRun
from rrbench_base.candidates import Candidates
from stage2_rerank.config import FusionConfig
from stage2_rerank.training.losses import Stage1Embeddings
from stage2_rerank.training.trainable import ItmTrainable, ItmTrainingData
from stage2_rerank.training.trainer import ItmTrainer
from stage2_rerank.training.validation import rerank_in_memory

HERE = Path(__file__).resolve().parent
RECIPE = typed_config.load_config(
    Stage2TrainingRun, Path(typed_config.__file__).resolve().parents[1] / "configs/train/stage2_flickr8k_lite.yaml")
FOLDER_A, FOLDER_B = HERE.parent / ".gpuA", HERE.parent / ".gpuB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, metavar="OUT_DIR", help="where the <name>_log.jsonl files go")
    parser.add_argument("device", help="torch device: cuda or cpu")
    parser.add_argument("schedules", nargs="+", metavar="SCHEDULE",
                        help="name:epochs:steps_per_epoch:batch:max_train_seconds")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    out, device = args.out, torch.device(args.device)
    out.mkdir(parents=True, exist_ok=True)
    test_depth = int(os.environ.get("TEST_DEPTH", "10"))
    eval_batch = 64 if device.type == "cpu" else 1024
    start_time = time.time()
    head = {k: v.to(device) for k, v in torch.load(HERE / "head.pt").items()}

    def grids(quantised: np.ndarray) -> torch.Tensor:
        """int8 ``[N, 49, 320]`` pre-head activations -> fp16 ``[N, 49, 1280]`` Lite0 grid tokens (CPU): head conv
        + BN + ReLU6 + parameter-free layer norm, as the ``efficientnet_lite0`` provider computes them."""
        weight = head["conv"].flatten(1).T
        parts = []
        for s in range(0, len(quantised), 500):
            x = torch.from_numpy(quantised[s:s + 500]).to(device).float() * head["scale"]
            y = (x @ weight - head["bn_m"]) / torch.sqrt(head["bn_v"] + head["bn_eps"]) * head["bn_w"] + head["bn_b"]
            parts.append(torch.nn.functional.layer_norm(y.clamp(0, 6), (1280,)).half().cpu())
        return torch.cat(parts)

    train_grids = torch.cat([grids(np.load(FOLDER_A / "train_a.npy")), grids(np.load(FOLDER_B / "train_b.npy"))])
    val_grids, test_grids = grids(np.load(HERE / "val100.npy")), grids(np.load(FOLDER_B / "test.npy"))
    tokens = pickle.load(open(HERE / "tokens.pkl", "rb"))
    stage1 = pickle.load(open(HERE / "stage1.pkl", "rb"))
    evaluation = pickle.load(open(HERE / "eval.pkl", "rb"))
    copied = pickle.load(open(HERE / "report.pkl", "rb"))["copied"]
    processor = Blip2Processor.from_pretrained(str(HERE / "ckpt"))
    pad = processor.tokenizer.pad_token_id
    print(f"data ready in {time.time() - start_time:.1f} s: train {tuple(train_grids.shape)}", flush=True)

    def initial_model() -> Blip2ForImageTextRetrieval:
        """The exported initial Q-Former (word embeddings of unused tokens zero; deduplicated query FFNs restored)."""
        model = Blip2ForImageTextRetrieval(Blip2Config.from_pretrained(str(HERE / "ckpt")))
        state = load_file(str(HERE / "init.safetensors"))
        with safe_open(str(HERE / "init.safetensors"), "pt") as handle:
            meta = handle.metadata()
        embedding = torch.zeros(int(meta["vocab"]), state["__used_rows"].shape[1], dtype=torch.float16)
        embedding[state.pop("__used_ids").long()] = state.pop("__used_rows")
        state[meta["emb_key"]] = embedding
        for key in filter(None, meta.get("dedup", "").split(",")):
            source = key.replace(".intermediate_query.", ".intermediate.").replace(".output_query.", ".output.")
            state[key] = state[source]
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        model.embeddings.word_embeddings.weight.requires_grad_(False)
        return model

    test_data = ItmTrainingData(test_grids, tokens["test"][0], tokens["test"][1], pad)
    lists = evaluation["test_lists"]
    test_candidates = {direction: Candidates(direction, lists[f"{direction}_ids"], lists[f"{direction}_s1"],
                                             np.arange(len(lists[f"{direction}_ids"])))
                       for direction in ("t2i", "i2t")}
    val_rows = np.flatnonzero(np.asarray(tokens["val"][1]) < 100)
    if not np.array_equal(np.asarray(tokens["val"][1])[val_rows], evaluation["val_small"].text_to_image()):
        raise ValueError("val-100 captions do not match the exported benchmark")
    val_data = ItmTrainingData(val_grids, [tokens["val"][0][i] for i in val_rows],
                               evaluation["val_small"].text_to_image(), pad)
    base_validate = rerank_validator(val_data, evaluation["val_small"], 5, evaluation["val_cands"])
    test_fusions = {"itm": FusionConfig(rule="itm"), "alpha0.5": FusionConfig(rule="alpha", alpha=0.5)}

    def validate(trainable: ItmTrainable) -> dict[str, float]:
        """val-100 metrics (selection) + ``test_<rule>/<metric>`` on the real stage-1 test lists at depth TEST_DEPTH
        (an environment variable, default 10)."""
        metrics = base_validate(trainable)
        test_bench = evaluation["test"]
        test = {"stage1/" + k: v for k, v in metrics_of_rankings(test_bench, test_candidates["t2i"].ids,
                                                                 test_candidates["i2t"].ids).items()}
        for name, (t2i, i2t) in rerank_in_memory(trainable, test_data, test_candidates, test_depth, test_fusions,
                                                 batch_size=eval_batch).items():
            test.update({f"{name}/{k}": v for k, v in metrics_of_rankings(test_bench, t2i, i2t).items()})
        metrics.update({f"test_{k}": v for k, v in test.items()})
        print(json.dumps({k: round(v, 1) for k, v in metrics.items() if k.endswith("R@1") or "rsum" in k}), flush=True)
        return metrics

    train_data = ItmTrainingData(train_grids, tokens["train"][0], tokens["train"][1], pad)
    in_batch = Stage1Embeddings(stage1["img"].astype(np.float32),
                                stage1["txt_q"].astype(np.float32) * stage1["txt_scale"], 0.3)
    seconds_per_step = None
    for spec in args.schedules:
        name, epochs, per_epoch, batch, budget = spec.split(":")
        if per_epoch == "auto":
            full = len(train_data.caption_tokens) // int(batch)
            per_epoch = str(min(full, int(0.85 * float(budget) / seconds_per_step / int(epochs))))
        steps_per_epoch = None if per_epoch == "full" else int(per_epoch)
        per_epoch_steps = len(train_data.caption_tokens) // int(batch) if steps_per_epoch is None else steps_per_epoch
        planned = per_epoch_steps * int(epochs)
        config = dataclasses.replace(RECIPE.trainer, epochs=int(epochs), steps_per_epoch=steps_per_epoch,
                                     batch_size=int(batch), mined_from_step=planned // 2,
                                     max_train_seconds=float(budget), progress=False)
        torch.manual_seed(config.seed)
        run = Path("/tmp/gpu_runs") / name
        shutil.rmtree(run, ignore_errors=True)
        trainer = ItmTrainer(ItmTrainable(initial_model(), temperature=config.temperature_init).to(device), processor,
                             train_data, config, run, validate=validate, topk=stage1["topk"], stage1=in_batch,
                             pretrained_parameters={f"model.{n}" for n in copied})
        print(f"== {name}: {planned} steps planned, batch {batch}", flush=True)
        began = time.time()
        result = trainer.fit()
        records = [json.loads(line) for line in open(run / "log.jsonl")]
        train_records = [r for r in records if r["event"] == "train"]
        pace = (train_records[-1]["seconds"] - train_records[0]["seconds"]) / max(1, len(train_records) - 1)
        seconds_per_step = pace * 1.15  # validations
        print(f"== {name}: {result.steps} steps in {time.time() - began:.1f} s ({pace * 1000:.0f} ms/step incl. "
              f"validations); best val rsum {result.best_metrics.get('rsum')}", flush=True)
        shutil.copy(run / "log.jsonl", out / f"{name}_log.jsonl")
    print(f"total {time.time() - start_time:.1f} s", flush=True)


if __name__ == "__main__":
    main()
