"""The error a typed config's check raises for one field: :class:`ConfigFieldError` names the dotted key.

Raised by the ``__post_init__`` checks of every config dataclass (stage 1, stage 2 and ``eval``); config
loaders (``eval.typed_config``) read ``key`` and report the error under the full dotted key of the file.
"""

from __future__ import annotations


class ConfigFieldError(ValueError):
    """A check of field ``key`` (dotted, relative to its dataclass) failed.

    The message is a whole sentence, best starting with the key (``"limit must be at least 1, got 0"``),
    which config loaders then extend to the full dotted key (``"dataset.limit must be ..."``).
    """

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key
