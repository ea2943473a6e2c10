"""Folding: the one form that both the index and a query are written in.

NFKC (full-width → half-width, compatibility forms), case folding, control characters
dropped, and traditional → simplified Chinese character by character (擴散 → 扩散, 顯卡 → 显卡). The character table
``t2s.txt`` is generated from OpenCC's t2s conversion: OpenCC is not a dependency, only the
table is shipped. Regional vocabulary (晶片 for 芯片, 軟體 for 软件) is not a character
difference: that is what the alias table is for (:mod:`bot.search.aliases`).
"""

from __future__ import annotations

import functools
import sys
import unicodedata
from pathlib import Path

TABLE = Path(__file__).with_name("t2s.txt")


@functools.cache
def _t2s() -> dict[int, str | None]:
    # control characters are nothing (a NUL in a query failed on PostgreSQL), whitespace a space
    table: dict[int, str | None] = {
        code: " " if chr(code) in "\t\n\r" else None for code in (*range(0x20), *range(0x7F, 0xA0))
    }
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        for i in range(0, len(line) - 1, 2):
            table[ord(line[i])] = line[i + 1]
    return table


def fold(text: str) -> str:
    """The searchable form of ``text`` (not the same length: see :func:`fold_char`)."""
    return unicodedata.normalize("NFKC", text).casefold().translate(_t2s())


@functools.lru_cache(maxsize=8192)
def fold_char(char: str) -> str:
    """The folded form of one character ("" for a character NFKC removes, several for a
    ligature): snippets fold text character by character to map hits back onto it."""
    return unicodedata.normalize("NFKC", char).casefold().translate(_t2s())


def _regenerate() -> None:  # pragma: no cover - needs OpenCC, run by hand
    import opencc  # type: ignore[import-not-found]

    converter = opencc.OpenCC("t2s")
    pairs: list[str] = []
    for first, last in ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF), (0x20000, 0x2A6DF)):
        for code in range(first, last + 1):
            char = chr(code)
            out = converter.convert(char)
            if out != char and len(out) == 1:
                pairs.append(char + out)
    header = TABLE.read_text(encoding="utf-8").splitlines()[:2]
    rows = ["".join(pairs[i : i + 40]) for i in range(0, len(pairs), 40)]
    TABLE.write_text("\n".join([*header, *rows]) + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] == ["--regenerate"]:
        _regenerate()
