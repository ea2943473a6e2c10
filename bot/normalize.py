"""Text normalisation shared by storage and search, so both see Chinese and English alike."""

from __future__ import annotations

import re
import unicodedata

_SPACE = re.compile(r"[\s\u200b\u200c\u200d\ufeff]+")


def normalize(text: str) -> str:
    """NFKC (full-width → ASCII), case-folded, whitespace collapsed: the form search compares."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()
