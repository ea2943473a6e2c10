"""Measure text the way a platform counts it: UTF-16 code units, code points or UTF-8 bytes."""

from __future__ import annotations

from bot.platforms.base import LengthUnit


def utf16_len(text: str) -> int:
    """Return the length of ``text`` in UTF-16 code units (a character outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def measure(text: str, unit: LengthUnit) -> int:
    """Return the length of ``text`` as a platform that counts in ``unit`` sees it."""
    if unit is LengthUnit.UTF16:
        return utf16_len(text)
    if unit is LengthUnit.BYTES:
        return len(text.encode("utf-8"))
    return len(text)
