"""Caption preprocessing both stages apply before a caption reaches a model: :class:`CaptionPreprocessing`.

Choices (the plain dict :data:`CAPTION_PREPROCESSORS`):

- ``none``: the caption as given (rrbench's behaviour without this option).
- ``blip_caption``: what LAVIS's ``blip_caption`` text processor does to every caption of a BLIP / BLIP-2
  retrieval evaluation, in this order: lower-case (``str.lower``, so Unicode letters too); each of the ten
  characters ``. ! " ( ) * # : ; ~`` replaced by a space; every run of two or more whitespace characters
  (Unicode ``\\s``: tabs, newlines, no-break and ideographic spaces) replaced by one space; trailing
  newlines removed, then leading and trailing spaces; at most ``max_words`` words kept, words being the
  pieces between single spaces. A lone tab or newline inside a caption is kept, as LAVIS keeps it; other
  punctuation (``,`` ``'`` ``-`` ``?`` and every non-ASCII mark such as ``。`` or ``，``) is kept; a caption
  with no spaces (Chinese) is one word.

A caption that ``blip_caption`` leaves empty or whitespace-only (``"..."``, ``"(*)"``) cannot be scored:
:meth:`CaptionPreprocessing.apply_all` raises :class:`EmptyCaptionError` naming it (its id when given, else
its position). ``none`` never raises (empty captions are the dataset loaders' business).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Literal, Optional, Sequence

from rrbench_base.config_errors import ConfigFieldError

CaptionPreprocessingName = Literal["none", "blip_caption"]

BLIP_CAPTION_SPACED = '.!"()*#:;~'
"""The characters ``blip_caption`` turns into spaces (LAVIS ``BlipCaptionProcessor.pre_caption``)."""
BLIP_CAPTION_MAX_WORDS = 50
"""LAVIS's default ``max_words`` of ``blip_caption``, used by its retrieval evaluation configs."""

_TO_SPACE = str.maketrans({char: " " for char in BLIP_CAPTION_SPACED})
_WHITESPACE_RUN = re.compile(r"\s{2,}")


class EmptyCaptionError(ValueError):
    """A caption that caption preprocessing leaves empty; the message names it and the preprocessing."""


def blip_caption(text: str, max_words: int) -> str:
    """``text`` as LAVIS's ``blip_caption`` processor prepares it (see the module doc for the steps)."""
    spaced = text.lower().translate(_TO_SPACE)
    collapsed = _WHITESPACE_RUN.sub(" ", spaced)
    trimmed = collapsed.rstrip("\n").strip(" ")
    words = trimmed.split(" ")
    return " ".join(words[:max_words]) if len(words) > max_words else trimmed


def as_given(text: str, max_words: int) -> str:
    """``text`` unchanged (the ``none`` choice; ``max_words`` is not used)."""
    return text


CAPTION_PREPROCESSORS: dict[str, Callable[[str, int], str]] = {"none": as_given, "blip_caption": blip_caption}


@dataclass(frozen=True)
class CaptionPreprocessing:
    """How captions are prepared before a model sees them (see ``rrbench_base.caption_preprocessing``).

    Attributes:
        name: ``none`` (captions as given; the default) or ``blip_caption`` (LAVIS's BLIP / BLIP-2 retrieval
            protocol: lower-cased, the characters . ! " ( ) * # : ; ~ replaced by spaces, whitespace runs
            collapsed, stripped, at most ``max_words`` words). It changes the texts a model encodes, so it is
            part of the stage's cache keys; a caption it leaves empty is bad input (``dataset.on_bad_input``).
        max_words: ``blip_caption`` only: words kept per caption (LAVIS's retrieval evaluation: 50); >= 1.
    """

    name: CaptionPreprocessingName = "none"
    max_words: int = BLIP_CAPTION_MAX_WORDS

    def __post_init__(self) -> None:
        if self.name not in CAPTION_PREPROCESSORS:
            raise ConfigFieldError("name", f"name must be one of {', '.join(CAPTION_PREPROCESSORS)}, "
                                           f"got {self.name!r}")
        if isinstance(self.max_words, bool) or not isinstance(self.max_words, int) or self.max_words < 1:
            raise ConfigFieldError("max_words", f"max_words must be an integer >= 1, got {self.max_words!r}")

    @property
    def changes_text(self) -> bool:
        """False for ``none`` (texts, cache keys and results exactly as without preprocessing)."""
        return self.name != "none"

    def identity(self) -> str:
        """``none`` or ``blip_caption(max_words=N)``: what cache keys and provenance record."""
        return f"{self.name}(max_words={self.max_words})" if self.changes_text else self.name

    def apply(self, text: str) -> str:
        """One caption, preprocessed (may be empty; :meth:`apply_all` checks that)."""
        return CAPTION_PREPROCESSORS[self.name](text, self.max_words)

    def apply_all(self, texts: Sequence[str], ids: Optional[Sequence[str]] = None) -> list[str]:
        """Every caption of ``texts`` preprocessed, in order; ``texts`` itself (as a list) for ``none``.

        EmptyCaptionError names the first caption left empty or whitespace-only (``ids[i]`` when ``ids`` is
        given, else its position) with its original text."""
        if not self.changes_text:
            return list(texts)
        out = [self.apply(text) for text in texts]
        for position, text in enumerate(out):
            if not text.strip():
                who = f"caption {ids[position]!r}" if ids is not None else f"caption at position {position}"
                raise EmptyCaptionError(f"{who} is empty after caption preprocessing {self.identity()}: "
                                        f"{texts[position]!r} -> {text!r}")
        return out
