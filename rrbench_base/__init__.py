"""The base both stages and ``eval`` stand on: small pieces that would otherwise be written twice (once per
stage), because ``stage1_dual`` and ``stage2_rerank`` may not import each other or ``eval``.

Public API (each name is imported from its module on first use, so importing the package stays light):
- :class:`Candidates`: a direction's ranked candidate lists (ids, scores, query positions, direction), immutable;
  passed from stage 1 through stage 2 to the metrics;
- ``rrbench_base.provenance.provenance`` (not exported here: the module has its name) and :func:`describe`: the
  record of a run (config or command, seed, versions, git, hardware, threads, time) in results.json, competition
  output and benchmark reports;
- :class:`ConfigFieldError` (a config check naming its dotted key), :func:`path_note` (how config paths resolve);
- :class:`ImageRef`, :class:`BadImageError`, :func:`as_image_ref` / :func:`as_image_refs` (dataset items, PIL images
  or paths as image references);
- :class:`CaptionPreprocessing` (``none`` / LAVIS's ``blip_caption``; :class:`EmptyCaptionError`) and
  :class:`BlipImageEval` (LAVIS's ``blip_image_eval`` image transform): the BLIP-2 paper protocol's inputs, for both
  stages;
- :func:`file_sha256`: the SHA-256 of a file's bytes, used by every cache key and checkpoint identity;
- :func:`move_aside`: a damaged cache file set aside as ``<name>.corrupt-<UTC time>``;
- :class:`PrivateGlobalRng` / :func:`seeded_torch_rng`: draws from torch's global generator without changing the
  caller's; :func:`save_training_state` / :func:`load_training_state` / :func:`has_training_state`: the resumable
  optimizer, scheduler, random and counter state of both stages' trainers.

``rrbench_base`` imports nothing from ``stage1_dual``, ``stage2_rerank`` or ``eval``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BlipImageEval": "rrbench_base.blip_image_eval",
    "move_aside": "rrbench_base.cache_files",
    "Candidates": "rrbench_base.candidates",
    "CaptionPreprocessing": "rrbench_base.caption_preprocessing",
    "EmptyCaptionError": "rrbench_base.caption_preprocessing",
    "ConfigFieldError": "rrbench_base.config_errors",
    "file_sha256": "rrbench_base.file_digest",
    "RELATIVE_PATH_RULE": "rrbench_base.config_paths",
    "path_note": "rrbench_base.config_paths",
    "PrivateGlobalRng": "rrbench_base.global_rng",
    "seeded_torch_rng": "rrbench_base.global_rng",
    "BadImageError": "rrbench_base.image_refs",
    "ImageRef": "rrbench_base.image_refs",
    "as_image_ref": "rrbench_base.image_refs",
    "as_image_refs": "rrbench_base.image_refs",
    "describe": "rrbench_base.provenance",
    "TrainingState": "rrbench_base.training_state",
    "TrainingStateError": "rrbench_base.training_state",
    "has_training_state": "rrbench_base.training_state",
    "load_training_state": "rrbench_base.training_state",
    "save_training_state": "rrbench_base.training_state",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rrbench_base' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__() -> list[str]:
    return __all__
