"""Where a result matched: the hits of a query in a text, as segments a template marks up
(bold in Telegram HTML, 【】 in WeChat text), and a short window around the first hit."""

from __future__ import annotations

from collections.abc import Sequence

from bot.search.fold import fold_char
from bot.search.tokens import Atom, is_cjk

# (text, is a hit)
Segments = tuple[tuple[str, bool], ...]
SNIPPET_WIDTH = 80


def _wordish(char: str) -> bool:
    return char.isalnum() and not is_cjk(char)


def hit_spans(text: str, atoms: Sequence[Atom]) -> list[tuple[int, int]]:
    """Character spans of ``text`` where an atom matches, merged and in order."""
    folded: list[str] = []
    origin: list[int] = []  # folded position → position in text
    for index, char in enumerate(text):
        for f in fold_char(char):
            folded.append(f)
            origin.append(index)
    haystack = "".join(folded)
    spans: list[tuple[int, int]] = []
    for atom in atoms:
        for needle in atom.surface:
            start = haystack.find(needle)
            while start >= 0:
                end = start + len(needle)
                if not atom.cjk and haystack.startswith("s", end):
                    end += 1  # the plural of a word asked for in the singular
                whole = atom.cjk or (
                    (start == 0 or not _wordish(haystack[start - 1]))
                    and (end == len(haystack) or not _wordish(haystack[end]))
                )
                if whole:
                    spans.append((origin[start], origin[end - 1] + 1))
                start = haystack.find(needle, end)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def segments(text: str, spans: Sequence[tuple[int, int]]) -> Segments:
    out: list[tuple[str, bool]] = []
    at = 0
    for start, end in spans:
        if start > at:
            out.append((text[at:start], False))
        out.append((text[start:end], True))
        at = end
    if at < len(text):
        out.append((text[at:], False))
    return tuple(out)


def highlight(text: str, atoms: Sequence[Atom]) -> Segments:
    """All of ``text``, its hits marked."""
    return segments(text, hit_spans(text, atoms))


def snippet(text: str, atoms: Sequence[Atom], *, width: int = SNIPPET_WIDTH) -> Segments:
    """About ``width`` characters of ``text`` around its first hit (its start when there is
    none), hits marked, with … where it was cut."""
    text = " ".join(text.split())
    spans = hit_spans(text, atoms)
    if len(text) <= width:
        return segments(text, spans)
    start = 0
    if spans:
        first = spans[0][0]
        start = max(0, min(first - width // 4, len(text) - width))
    end = min(len(text), start + width)
    inside = [
        (max(s, start) - start, min(e, end) - start) for s, e in spans if e > start and s < end
    ]
    out = list(segments(text[start:end], inside))
    if start > 0:
        out.insert(0, ("…", False))
    if end < len(text):
        out.append(("…", False))
    return tuple(out)


def plain(parts: Segments) -> str:
    return "".join(text for text, _ in parts)
