"""Trained ITM rerankers as checkpoint directories that ``load_reranker`` loads like any ``blip2_itm`` checkpoint.

A checkpoint directory holds (no pickles):

- ``config.json`` + ``model.safetensors``: the ``Blip2ForImageTextRetrieval`` (``save_pretrained``); its config
  names the vision provider (``rrbench_vision_provider``);
- the processor files (``processor_config.json`` / image processor, tokenizer files; ``save_pretrained``);
- the vision module's own files when it was trained (``conv_grid_config.json`` + ``conv_grid.safetensors``);
- ``rrbench_itm.json``: provenance (trainer config, step, epoch, validation metrics).

``RerankerConfig(backend="blip2_itm", model=<dir>)`` -> ``load_reranker`` -> ``Reranker.score_pairs`` scores
with it. The directory is written next to its final place and renamed into it, so a crash never leaves a
half-written checkpoint under the final name.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from transformers import AutoProcessor, Blip2ForImageTextRetrieval

from stage2_rerank.training.trainable import ItmTrainable
from stage2_rerank.vision.conv_grid import CONFIG_FILE as CONV_GRID_CONFIG
from stage2_rerank.vision.conv_grid import load_conv_grid

INFO_FILE = "rrbench_itm.json"


def save_itm_checkpoint(directory: Path, trainable: ItmTrainable, processor: Any, info: dict[str, Any],
                        extra_writer=None) -> Path:
    """Write the checkpoint of ``trainable`` + ``processor`` to ``directory`` (replacing it atomically).

    ``extra_writer(tmp_dir)``, if given, adds files (e.g. the training state) before the rename.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        trainable.model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        trainable.vision.save_to(tmp)
        (tmp / INFO_FILE).write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
        if extra_writer is not None:
            extra_writer(tmp)
        old = None
        if directory.exists():
            old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(directory, old)
        os.rename(tmp, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory


def read_checkpoint_info(directory: Path) -> dict[str, Any]:
    """The provenance written with a checkpoint (``{}`` when absent)."""
    path = Path(directory) / INFO_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def load_itm_checkpoint(directory: Path) -> tuple[ItmTrainable, Any]:
    """(trainable in eval mode, processor) of a checkpoint: for in-memory analysis (e.g. its own ITC ranking);
    scoring for results goes through ``load_reranker``. The vision module is the saved conv grid, or cached
    provider features when the checkpoint has none."""
    directory = Path(directory)
    model = Blip2ForImageTextRetrieval.from_pretrained(str(directory), local_files_only=True)
    processor = AutoProcessor.from_pretrained(str(directory), local_files_only=True)
    vision = load_conv_grid(directory) if (directory / CONV_GRID_CONFIG).is_file() else None
    return ItmTrainable(model, vision).eval(), processor
