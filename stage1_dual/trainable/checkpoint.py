"""Checkpoint directories of trainable dual encoders (no pickles).

Layout of a model directory::

    config.json         {"format": "rrbench_dual", "format_version": 1,
                         "model": DualModelConfig as a dict (tower names, sizes, word vocabulary, ...),
                         "pretrained": identity of each tower's frozen pretrained part (weights hash),
                         "info": free-form JSON (training metrics, data, timings)}
    model.safetensors   every state-dict tensor except the frozen pretrained ones, which are rebuilt
                        from their packages and checked against the recorded weights hash

A training checkpoint (``last/`` of ``stage1_dual.training.trainer``) adds ``training_state.safetensors`` and
``training_state.json`` (``rrbench_base.training_state``) to the same directory. Directories are written to a temporary sibling and
renamed into place, so a reader never sees a half-written checkpoint.

A directory may also hold ``SHA256SUMS`` (standard ``sha256sum`` output, names relative to the directory,
subfolders allowed), e.g. one shipped with a released checkpoint: :func:`load_model_dir` then verifies every
listed file first and raises :class:`CheckpointError` (a stage-1 user error) naming the file that is missing
or whose bytes do not match.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from safetensors.torch import load_file, save_file

from rrbench_base.config_paths import path_note
from stage1_dual.protocols import Stage1Error
from stage1_dual.trainable.file_identity import CHECKSUMS_FILE, parse_sha256sums, sha256_hex
from stage1_dual.trainable.model import DualEncoderModel
from stage1_dual.trainable.model_config import model_config_from_dict, model_config_to_dict

CHECKPOINT_FORMAT = "rrbench_dual"
CHECKPOINT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(Stage1Error):
    """A checkpoint directory that is missing, malformed, fails its ``SHA256SUMS``, or does not fit the
    installed pretrained parts (a ValueError, like every stage-1 user error)."""


def _pretrained_identities(model: DualEncoderModel) -> dict[str, Any]:
    towers = {"image_tower": model.image_tower, "text_tower": model.text_tower}
    return {name: tower.identity() for name, tower in towers.items() if tower.frozen_state_keys()}


def write_directory_atomically(directory: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp_dir)``, then replace ``directory`` by ``tmp_dir`` (old content removed)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        write(tmp)
        old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
        if directory.exists():
            os.rename(directory, old)
        os.rename(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_model_files(model: DualEncoderModel, directory: Path, info: Optional[dict[str, Any]] = None) -> None:
    """Write ``config.json`` and ``model.safetensors`` of ``model`` into an existing ``directory``."""
    config = {"format": CHECKPOINT_FORMAT, "format_version": CHECKPOINT_VERSION,
              "model": model_config_to_dict(model.config), "pretrained": _pretrained_identities(model),
              "info": info or {}}
    (Path(directory) / CONFIG_FILE).write_text(json.dumps(config, indent=1, ensure_ascii=False), encoding="utf-8")
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.trainable_state().items()}
    save_file(tensors, str(Path(directory) / WEIGHTS_FILE), metadata={"format": CHECKPOINT_FORMAT})


def save_model_dir(model: DualEncoderModel, directory: Path, info: Optional[dict[str, Any]] = None) -> Path:
    """Save ``model`` as a model directory (see module docstring), atomically; returns ``directory``."""
    write_directory_atomically(Path(directory), lambda tmp: write_model_files(model, tmp, info))
    return Path(directory)


def read_checkpoint_config(directory: Path) -> dict[str, Any]:
    """The parsed ``config.json`` of a model directory; CheckpointError when absent or not ours."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"not an rrbench_dual checkpoint: {path} not found (expected a directory with "
                              f"{CONFIG_FILE} and {WEIGHTS_FILE}, written by stage1_dual training){path_note(path)}")
    config = json.loads(path.read_text(encoding="utf-8"))
    if config.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: format is {config.get('format')!r}, expected {CHECKPOINT_FORMAT!r}")
    if int(config.get("format_version", 0)) > CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: format_version {config['format_version']} is newer than this code "
                              f"({CHECKPOINT_VERSION})")
    return config


def load_weights_into(model: DualEncoderModel, directory: Path) -> None:
    """Load a model directory's ``model.safetensors`` into ``model`` (same architecture); CheckpointError
    when keys are missing (other than the frozen pretrained ones) or unexpected."""
    weights = Path(directory) / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"checkpoint {directory} has no {WEIGHTS_FILE}{path_note(weights)}")
    try:
        tensors = load_file(str(weights))
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own types for truncated / garbled files
        raise CheckpointError(f"checkpoint weights {weights} are unreadable (truncated or damaged?): "
                              f"{type(exc).__name__}: {exc}") from exc
    result = model.load_state_dict(tensors, strict=False)
    missing = set(result.missing_keys) - model.frozen_state_keys()
    if missing or result.unexpected_keys:
        raise CheckpointError(f"checkpoint {directory} does not fit its config: missing {sorted(missing)[:5]}, "
                              f"unexpected {sorted(result.unexpected_keys)[:5]}")


def verify_sha256sums(directory: Path) -> int:
    """Check every file listed in ``directory/SHA256SUMS`` (when present) against its digest; the number of
    files checked (0 without the file). CheckpointError naming the first missing or mismatching file."""
    sums = Path(directory) / CHECKSUMS_FILE
    if not sums.is_file():
        return 0
    try:
        entries = parse_sha256sums(sums)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {directory}: unreadable {CHECKSUMS_FILE}: {exc}") from exc
    for expected, name in entries:
        path = Path(directory) / name
        if not path.is_file():
            raise CheckpointError(f"checkpoint {directory}: {name} is listed in {CHECKSUMS_FILE} but missing "
                                  f"({path} not found)")
        actual = sha256_hex(path)
        if actual != expected:
            raise CheckpointError(f"checkpoint {directory}: {path} does not match {CHECKSUMS_FILE} (sha256 {actual}, "
                                  f"expected {expected}); the file is damaged or was replaced")
    return len(entries)


def load_model_dir(directory: Path, device: str | torch.device = "cpu") -> DualEncoderModel:
    """Rebuild the model of a model directory on ``device`` (eval mode), after verifying its ``SHA256SUMS``
    when it has one; CheckpointError on any mismatch."""
    directory = Path(directory)
    verify_sha256sums(directory)
    config = read_checkpoint_config(directory)
    model = DualEncoderModel(model_config_from_dict(config["model"]))
    for name, recorded in config.get("pretrained", {}).items():
        current = getattr(model, name).identity()
        if current.get("weights") != recorded.get("weights"):
            raise CheckpointError(f"checkpoint {directory} was trained on {name} weights {recorded.get('weights')}, "
                                  f"but the installed package provides {current.get('weights')}")
    load_weights_into(model, directory)
    return model.to(device).eval()
