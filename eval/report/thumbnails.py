"""Small images of benchmark items for the example page (base64 JPEG data URIs) and figures (RGB arrays)."""

from __future__ import annotations

import base64
import io
import logging

import numpy as np
from PIL import Image

from eval.data.benchmark import BadInputError, ImageItem

logger = logging.getLogger(__name__)

THUMB_SIDE = 192  # pixels of the longer side: sharp at the page's 96-128 CSS px on 2x screens
JPEG_QUALITY = 85
PLACEHOLDER_GREY = 200


def thumbnail(item: ImageItem, side: int = THUMB_SIDE) -> Image.Image:
    """``item`` as RGB, its longer side scaled to ``side`` (small images are scaled up, so every thumbnail shows at
    the same size); a grey square, after a WARNING, when the file cannot be read."""
    try:
        image = item.open()
    except BadInputError as error:
        logger.warning("example page: %s", error)
        return Image.new("RGB", (side, side), (PLACEHOLDER_GREY,) * 3)
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC)


def data_uri(image: Image.Image) -> str:
    """``data:image/jpeg;base64,...`` of ``image``."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


class ThumbnailCache:
    """Thumbnails of a benchmark's images by position, each read and encoded once."""

    def __init__(self, images: list[ImageItem], side: int = THUMB_SIDE) -> None:
        self.images, self.side = images, side
        self._pictures: dict[int, Image.Image] = {}
        self._uris: dict[int, str] = {}

    def picture(self, position: int) -> Image.Image:
        """The thumbnail of image ``position``."""
        if position not in self._pictures:
            self._pictures[position] = thumbnail(self.images[position], self.side)
        return self._pictures[position]

    def array(self, position: int) -> np.ndarray:
        """The thumbnail of image ``position`` as uint8 ``[H, W, 3]``."""
        return np.asarray(self.picture(position).convert("RGB"))

    def uri(self, position: int) -> str:
        """The thumbnail of image ``position`` as a JPEG data URI."""
        if position not in self._uris:
            self._uris[position] = data_uri(self.picture(position))
        return self._uris[position]
