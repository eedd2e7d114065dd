"""Image-reference adapter: what stage 2 accepts as an image, turned into an :class:`ImageRef`.

Accepted: any :class:`~stage2_rerank.protocols.ImageRef` (dataset items such as ``eval``'s ``ImageItem``),
a PIL image, or a file path (``str`` / ``os.PathLike``). PIL images and paths are wrapped in
:class:`PilImageRef` / :class:`PathImageRef`, whose ``fingerprint()`` is a content hash (sha1, 16 hex chars:
of the file bytes, or of mode, size and pixels), so caches key them by content. Anything else raises
:class:`~stage2_rerank.protocols.RerankInputError` naming its position and type.
(``stage1_dual.image_refs`` is the same adapter for stage 1; the stages never import each other.)
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Sequence

from PIL import Image

from stage2_rerank.protocols import ImageRef, RerankInputError


@dataclass(frozen=True)
class PathImageRef:
    """An image file: ``id`` is the path; ``open()`` decodes it as RGB; ``fingerprint()`` hashes its bytes."""

    path: Path

    @property
    def id(self) -> str:
        return str(self.path)

    def open(self) -> Image.Image:
        try:
            with Image.open(self.path) as image:
                return image.convert("RGB")
        except (OSError, ValueError) as exc:
            raise RerankInputError(f"image {self.path}: cannot be opened: {exc}") from exc

    def fingerprint(self) -> str:
        try:
            return hashlib.sha1(self.path.read_bytes()).hexdigest()[:16]
        except OSError as exc:
            raise RerankInputError(f"image {self.path}: cannot be read: {exc}") from exc


@dataclass(frozen=True, eq=False)
class PilImageRef:
    """An in-memory PIL image: ``id`` is ``pil:<position>:<fingerprint>``; ``open()`` returns it as RGB."""

    image: Image.Image
    position: int = 0

    @property
    def id(self) -> str:
        return f"pil:{self.position}:{self.fingerprint()}"

    def open(self) -> Image.Image:
        return self.image.convert("RGB")

    @cached_property
    def _digest(self) -> str:  # computed once: the image is not expected to change while referenced
        digest = hashlib.sha1(f"{self.image.mode}|{self.image.size}".encode())
        digest.update(self.image.tobytes())
        return digest.hexdigest()[:16]

    def fingerprint(self) -> str:
        return self._digest


def as_image_ref(image: Any, position: int = 0) -> ImageRef:
    """``image`` as an :class:`ImageRef` (see the module doc); RerankInputError for an unsupported type."""
    if isinstance(image, Image.Image):
        return PilImageRef(image, position)
    if isinstance(image, (str, os.PathLike)):
        return PathImageRef(Path(image))
    if isinstance(image, ImageRef):
        return image
    raise RerankInputError(f"image {position}: expected a PIL image, a file path or an object with id, open() and "
                           f"fingerprint() (an ImageRef), got {type(image).__name__}")


def as_image_refs(images: Sequence[Any]) -> list[ImageRef]:
    """Every item of ``images`` through :func:`as_image_ref` (dataset items pass through unchanged)."""
    return [as_image_ref(image, position) for position, image in enumerate(images)]
