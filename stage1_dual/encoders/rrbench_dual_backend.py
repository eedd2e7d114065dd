"""``rrbench_dual`` backend: a dual encoder trained by ``stage1_dual.training``, loaded from its checkpoint
directory (``config.json`` + ``model.safetensors``; see ``stage1_dual.trainable.checkpoint``).

``EncoderConfig(backend="rrbench_dual", model="<checkpoint dir>")``. The fingerprint holds the content
hashes of both files (so retraining into the same directory invalidates cached embeddings), the
identities of the frozen pretrained parts and of the text tower's tokenizer, never the directory's path
or name; preprocessing is the image tower's own (resize the short side, centre crop, normalise). A
``SHA256SUMS`` file in the directory is verified on load (``stage1_dual.trainable.checkpoint``).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from PIL import Image

from rrbench_base.config_paths import path_note
from stage1_dual.config import EncoderConfig
from stage1_dual.encoders.base import EncoderParts, TorchDualEncoder, resolve_device, resolve_precision
from stage1_dual.encoders.hub import file_identity
from stage1_dual.tokenizer_identity import tokenizer_identity
from stage1_dual.protocols import ModelNotFoundError
from stage1_dual.trainable.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_model_dir, read_checkpoint_config
from stage1_dual.trainable.model import DualEncoderModel

log = logging.getLogger(__name__)


class RRBenchDualEncoder(TorchDualEncoder):
    """A :class:`DualEncoderModel` behind the DualEncoder interface."""

    backend = "rrbench_dual"

    def __init__(self, model: DualEncoderModel, device: torch.device, precision: str,
                 identity: dict[str, Any]) -> None:
        tower = model.image_tower
        super().__init__(model, device, precision, identity, embed_dim=model.config.embed_dim,
                         image_size=(tower.image_size, tower.image_size), image_mean=tower.image_mean,
                         image_std=tower.image_std)

    def image_features(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.model.image_projection(self.model.image_tower(pixels))

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """The text tower's frozen features of ``texts`` (token ids, frozen-layer states or pooled vectors)."""
        return self.model.text_tower.frozen_features(list(texts))

    def text_features(self, tokens: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model.text_projection(self.model.text_tower.trainable_forward(tokens))

    def image_transform(self) -> Callable[[Image.Image], torch.Tensor]:
        return self.model.image_tower.eval_transform()

    def preprocess_description(self) -> str:
        return self.model.image_tower.preprocess_description()

    def parts(self) -> EncoderParts:
        return EncoderParts(model=self.model, image_tower=self.model.image_tower, text_tower=self.model.text_tower,
                            image_projection=self.model.image_projection, text_projection=self.model.text_projection)


def checkpoint_identity(directory: Path, model: Optional[DualEncoderModel] = None) -> dict[str, Any]:
    """Content identity of a checkpoint directory: hashes of its config and weights, the pretrained parts'
    recorded identities, and (with ``model``) the identity of the text tower's tokenizer as installed.
    No path: the same checkpoint copied elsewhere has the same identity."""
    config_bytes = (directory / CONFIG_FILE).read_bytes()
    identity = {"weights": file_identity(directory / WEIGHTS_FILE),
                "config": "sha256:" + hashlib.sha256(config_bytes).hexdigest(),
                "pretrained": read_checkpoint_config(directory).get("pretrained", {})}
    tokenizer = getattr(model.text_tower, "tokenizer", None) if model is not None else None
    if tokenizer is not None:
        identity["text_tokenizer"] = tokenizer_identity(tokenizer)
    return identity


def load_rrbench_dual(cfg: EncoderConfig) -> RRBenchDualEncoder:
    """Load the checkpoint directory ``cfg.model`` (``cfg.pretrained`` must be empty)."""
    directory = Path(cfg.model)
    if cfg.pretrained:
        raise ValueError("encoder.pretrained must be empty for backend rrbench_dual (weights live in encoder.model)")
    if not (directory / CONFIG_FILE).is_file() or not (directory / WEIGHTS_FILE).is_file():
        raise ModelNotFoundError(
            f"rrbench_dual checkpoint not found: looked for {directory / CONFIG_FILE} and {directory / WEIGHTS_FILE}"
            f"{path_note(directory)}. "
            f"Train one with scripts/train_stage1.py (it writes <run dir>/best), or point encoder.model at such a "
            f"directory.")
    device = resolve_device(cfg.device)
    model = load_model_dir(directory, device)
    log.info("loaded rrbench_dual checkpoint %s on %s", directory, device)
    return RRBenchDualEncoder(model, device, resolve_precision(cfg.precision, device),
                              checkpoint_identity(directory, model))
