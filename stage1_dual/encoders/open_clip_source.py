"""Where an open_clip model comes from: architecture config, weights file, tokenizer - all local.

``resolve_open_clip_source(cfg)`` turns an :class:`EncoderConfig` into local files before open_clip
is called, so open_clip never contacts the hub itself (no ~25 s retries offline):
- ``ViT-B-32`` + ``pretrained=None``: built-in config, random weights;
- ``ViT-B-32`` + a pretrained tag: the tag's weights file from the HF cache (or download), the tag's
  preprocessing (mean, std, interpolation, resize mode) and QuickGELU setting;
- ``ViT-B-32`` + a file path: that checkpoint (a state dict saved with ``torch.save`` or safetensors);
- ``hf-hub:org/repo``: ``open_clip_config.json`` + weights of that repo from the cache (or download);
- ``local-dir:/path``: a directory with ``open_clip_config.json`` and a weights file.
Hugging Face text towers / tokenizers named in the config are resolved to local snapshots too.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import open_clip

from rrbench_base.config_paths import path_note
from stage1_dual.config import EncoderConfig
from stage1_dual.encoders.hub import directory_identity, file_identity, resolve_hub_file, resolve_hub_snapshot
from stage1_dual.protocols import ModelNotFoundError

_HF_HUB = "hf-hub:"
_LOCAL_DIR = "local-dir:"
_TAG_PREPROCESS_KEYS = ("mean", "std", "interpolation", "resize_mode")
_MODEL_FILES = ("*.safetensors", "*.bin", "*.pth", "*.pt", "*.json", "*.txt", "*.model")  # weights, config, tokenizer
_DEFAULT_HUB_WEIGHTS = "open_clip_pytorch_model.bin"
_DEFAULT_HUB_SAFE_WEIGHTS = "open_clip_model.safetensors"


@dataclass
class OpenClipSource:
    """Everything ``open_clip.create_model`` needs, resolved to local paths.

    ``create_name`` is passed as ``model_name``; ``checkpoint`` as ``pretrained`` (None = random init
    or weights found by open_clip in a ``local-dir:``); ``model_kwargs`` override config entries
    (hub text-tower names replaced by local snapshot directories); ``tokenizer_dir`` is a local
    Hugging Face tokenizer directory when the config names one (else open_clip's own tokenizer for
    ``tokenizer_name``); ``identity`` keys the embedding cache: content hashes only (weights files, the
    architecture config, a Hugging Face text tower's files), never a path, snapshot name or file time.
    """

    create_name: str
    model_cfg: dict[str, Any]
    checkpoint: Optional[Path]
    identity: dict[str, Any]
    tokenizer_name: str
    force_preprocess: dict[str, Any] = field(default_factory=dict)
    force_quick_gelu: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    tokenizer_dir: Optional[Path] = None


def _builtin(cfg: EncoderConfig) -> OpenClipSource:
    name = cfg.model
    model_cfg = open_clip.get_model_config(name)
    if model_cfg is None:
        known = open_clip.list_models()
        raise ModelNotFoundError(
            f"open_clip architecture {name!r} is not known ({len(known)} built-in, e.g. "
            f"{', '.join(known[:8])}, ...; add your own JSON with open_clip.add_model_config, or use "
            f"'hf-hub:org/repo' or 'local-dir:/path')")
    # the architecture config by content: a name can be re-registered (open_clip.add_model_config) with another
    config_hash = "sha256:" + hashlib.sha256(json.dumps(model_cfg, sort_keys=True, default=str).encode()).hexdigest()
    source = OpenClipSource(create_name=name, model_cfg=model_cfg, checkpoint=None,
                            identity={"model": name, "pretrained": cfg.pretrained, "model_cfg": config_hash},
                            tokenizer_name=name)
    if cfg.pretrained is None:
        source.identity["weights"] = f"random-init(seed={cfg.seed})"
        return source
    if os.path.isfile(cfg.pretrained):
        source.checkpoint = Path(cfg.pretrained)
        source.identity.update(pretrained="checkpoint file", weights=file_identity(source.checkpoint))
        return source
    tag_cfg = open_clip.get_pretrained_cfg(name, cfg.pretrained)
    if not tag_cfg:
        raise ModelNotFoundError(
            f"open_clip pretrained {cfg.pretrained!r} for {name!r} is neither an existing checkpoint file "
            f"nor a known tag (tags for {name}: {', '.join(open_clip.list_pretrained_tags_by_model(name)) or 'none'})")
    source.checkpoint = _tag_weights(name, cfg, tag_cfg)
    source.identity["weights"] = file_identity(source.checkpoint)
    source.force_preprocess = {k: tag_cfg[k] for k in _TAG_PREPROCESS_KEYS if k in tag_cfg}
    source.force_quick_gelu = bool(tag_cfg.get("quick_gelu", False))
    return source


def _tag_weights(name: str, cfg: EncoderConfig, tag_cfg: dict[str, Any]) -> Path:
    what = f"open_clip weights {name!r} / {cfg.pretrained!r}"
    if tag_cfg.get("file"):
        return Path(tag_cfg["file"])
    if tag_cfg.get("hf_hub"):
        # same convention as open_clip: "org/repo/filename", or "org/repo/" for the default file,
        # with a safetensors twin preferred when present
        repo, filename = os.path.split(tag_cfg["hf_hub"])
        filename = filename or _DEFAULT_HUB_WEIGHTS
        safe = _DEFAULT_HUB_SAFE_WEIGHTS if filename == _DEFAULT_HUB_WEIGHTS else (
            str(Path(filename).with_suffix(".safetensors")) if filename.endswith((".bin", ".pth")) else None)
        return resolve_hub_file(repo, [name for name in (safe, filename) if name], revision=cfg.revision,
                                cache_dir=cfg.hub_cache_dir, probe_timeout_s=cfg.hub_probe_timeout_s, what=what)
    url = tag_cfg.get("url", "")
    cached = Path(cfg.hub_cache_dir or os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
    if cached.is_file():
        return cached
    raise ModelNotFoundError(
        f"{what} not found: looked for {cached} (downloaded from {url}). Download it there, or pass the "
        f"file path as pretrained.")


def _config_dir_source(cfg: EncoderConfig, directory: Path, hub_repo: Optional[str]) -> OpenClipSource:
    config_path = directory / "open_clip_config.json"
    if not config_path.is_file():
        raise ModelNotFoundError(f"open_clip config not found: {config_path} (expected open_clip_config.json "
                                 f"with a 'model_cfg' entry){path_note(config_path)}")
    data = json.loads(config_path.read_text(encoding="utf-8"))
    if "model_cfg" not in data:
        raise ModelNotFoundError(f"{config_path} has no 'model_cfg' entry")
    files = directory_identity(directory, _MODEL_FILES)
    return OpenClipSource(create_name=_LOCAL_DIR + str(directory), model_cfg=data["model_cfg"], checkpoint=None,
                          identity={"model": hub_repo or "local directory", "weights": files},
                          tokenizer_name=_LOCAL_DIR + str(directory))


def _hub(cfg: EncoderConfig) -> OpenClipSource:
    repo = cfg.model[len(_HF_HUB):]
    what = f"open_clip model {cfg.model!r}"
    resolve = dict(revision=cfg.revision, cache_dir=cfg.hub_cache_dir, probe_timeout_s=cfg.hub_probe_timeout_s, what=what)
    config_path = resolve_hub_file(repo, ["open_clip_config.json"], **resolve)
    resolve_hub_file(repo, [_DEFAULT_HUB_SAFE_WEIGHTS, _DEFAULT_HUB_WEIGHTS], **resolve)
    return _config_dir_source(cfg, config_path.parent, hub_repo=repo)


def _local_dir(cfg: EncoderConfig) -> OpenClipSource:
    directory = Path(cfg.model[len(_LOCAL_DIR):])
    if not directory.is_dir():
        raise ModelNotFoundError(f"open_clip model directory not found: {directory}{path_note(directory)}")
    return _config_dir_source(cfg, directory, hub_repo=None)


_SCHEMA_RESOLVERS: dict[str, Callable[[EncoderConfig], OpenClipSource]] = {
    _HF_HUB: _hub,
    _LOCAL_DIR: _local_dir,
    "": _builtin,
}


def _localise_hf_text(cfg: EncoderConfig, source: OpenClipSource) -> None:
    """Replace hub names of a Hugging Face text tower / tokenizer by local snapshot directories."""
    text_cfg = dict(source.model_cfg.get("text_cfg", {}))
    resolve = dict(revision=None, cache_dir=cfg.hub_cache_dir, probe_timeout_s=cfg.hub_probe_timeout_s)
    for key in ("hf_model_name", "hf_tokenizer_name"):
        name = text_cfg.get(key)
        if name and not Path(name).is_dir():
            text_cfg[key] = str(resolve_hub_snapshot(name, what=f"Hugging Face text model {name!r}", **resolve))
    if text_cfg != source.model_cfg.get("text_cfg", {}):
        source.model_kwargs["text_cfg"] = text_cfg
    if text_cfg.get("hf_tokenizer_name"):
        source.tokenizer_dir = Path(text_cfg["hf_tokenizer_name"])
    if text_cfg.get("hf_model_name"):  # by content (weights, config, tokenizer files), not by snapshot name
        source.identity["text_tower"] = directory_identity(Path(text_cfg["hf_model_name"]), _MODEL_FILES)


def resolve_open_clip_source(cfg: EncoderConfig) -> OpenClipSource:
    """Resolve ``cfg`` to local files (see module docstring); ModelNotFoundError when impossible."""
    schema = next(prefix for prefix in _SCHEMA_RESOLVERS if cfg.model.startswith(prefix))
    if schema and cfg.pretrained:
        raise ValueError(f"encoder.pretrained must be empty with model {cfg.model!r} (weights come from there)")
    source = _SCHEMA_RESOLVERS[schema](cfg)
    _localise_hf_text(cfg, source)
    return source
