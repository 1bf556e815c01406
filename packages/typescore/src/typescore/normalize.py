"""Text normalisation applied to both the instructed and the extracted text before comparison."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_SPACE = re.compile(r"\s+")
_INNER_APOSTROPHE = re.compile(r"(?<=\w)['\u2019\u02bc](?=\w)")


@dataclass(frozen=True)
class Normalizer:
    """Configurable normaliser: Unicode form, case folding, punctuation removal, whitespace collapsing.

    The default (NFC, case-insensitive, punctuation dropped, whitespace collapsed) is our reading of the
    paper's comparison of *content* ("the original and extracted text"); the paper text available to us does
    not spell the normalisation out, so every step is switchable.
    """

    unicode_form: str | None = "NFC"
    casefold: bool = True
    strip_punctuation: bool = True
    collapse_whitespace: bool = True
    drop_whitespace: bool = False  # for extractors that do not segment words (RapidOCR often joins them)

    def __post_init__(self) -> None:
        if self.unicode_form not in (None, "NFC", "NFD", "NFKC", "NFKD"):
            raise ValueError(f"unicode_form must be None, NFC, NFD, NFKC or NFKD, got {self.unicode_form!r}")

    def __call__(self, text: str) -> str:
        if not isinstance(text, str):
            raise TypeError(f"expected a str, got {type(text).__name__}")
        if self.unicode_form:
            text = unicodedata.normalize(self.unicode_form, text)
        if self.casefold:
            text = text.casefold()
        if self.strip_punctuation:
            # An apostrophe inside a word joins it ("DON'T" and "DONT" agree; a space would split the word).
            text = _INNER_APOSTROPHE.sub("", text)
            # Unicode categories P* (punctuation) and S* (symbols: $, +, emoji...) become spaces, so that
            # "sale!now" and "sale now" agree after whitespace collapsing.
            text = "".join(" " if unicodedata.category(c)[0] in "PS" else c for c in text)
        if self.drop_whitespace:
            text = _SPACE.sub("", text)
        elif self.collapse_whitespace:
            text = _SPACE.sub(" ", text).strip()
        return text


RAW = Normalizer(unicode_form=None, casefold=False, strip_punctuation=False, collapse_whitespace=False)
