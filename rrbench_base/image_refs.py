"""Images as the pipeline takes them: the :class:`ImageRef` protocol, :class:`BadImageError`, and the adapter.

Both stages take images as :class:`ImageRef` objects (dataset items such as ``eval``'s ``ImageItem`` are
ones). :func:`as_image_ref` also accepts a PIL image or a file path (``str`` / ``os.PathLike``), wrapped in
:class:`PilImageRef` / :class:`PathImageRef`, whose ``fingerprint()`` is a content hash (sha1, 16 hex chars:
of the file bytes, or of mode, size and pixels), so caches key them by content. Anything else, and a path
that cannot be read or decoded, raises :class:`BadImageError` naming its position or file.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol, Sequence, runtime_checkable

from PIL import Image


class BadImageError(ValueError):
    """An image that is not a supported type, or that cannot be read, opened or preprocessed; the message names
    its position or file."""


@runtime_checkable
class ImageRef(Protocol):
    """An image reference: a unique ``id``, ``open()`` -> RGB PIL image (raises naming the file when it cannot),
    and ``fingerprint()`` -> a content hash used as cache key."""

    @property
    def id(self) -> str: ...

    def open(self) -> Image.Image: ...

    def fingerprint(self) -> str: ...


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
            raise BadImageError(f"image {self.path}: cannot be opened: {exc}") from exc

    def fingerprint(self) -> str:
        try:
            return hashlib.sha1(self.path.read_bytes()).hexdigest()[:16]
        except OSError as exc:
            raise BadImageError(f"image {self.path}: cannot be read: {exc}") from exc


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
    """``image`` as an :class:`ImageRef` (see the module doc); BadImageError for an unsupported type."""
    if isinstance(image, Image.Image):
        return PilImageRef(image, position)
    if isinstance(image, (str, os.PathLike)):
        return PathImageRef(Path(image))
    if isinstance(image, ImageRef):
        return image
    raise BadImageError(f"image {position}: expected a PIL image, a file path or an object with id, open() and "
                        f"fingerprint() (an ImageRef), got {type(image).__name__}")


def as_image_refs(images: Sequence[Any]) -> list[ImageRef]:
    """Every item of ``images`` through :func:`as_image_ref` (dataset items pass through unchanged)."""
    return [as_image_ref(image, position) for position, image in enumerate(images)]
