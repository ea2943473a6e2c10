"""Split one rendered message into pieces that fit a platform's :class:`Limits`.

This is the one splitting mechanism of every platform. It reads the rendered text as a
sequence of tokens (a character, an HTML entity, a tag, or a block break) and cuts only
between tokens, so a tag or an entity is never cut. Each cut falls at the most natural
boundary that still fills the piece as far as possible, in this order of preference:

0. a block break (:data:`BLOCK_BREAK`, written by templates between items),
1. a blank line (a whitespace run holding two or more newlines),
2. a line break,
3. a sentence end (``。！？`` anywhere, ``.!?`` before whitespace or the end),
4. any other whitespace,
5. between any two characters (a hard split),
6. inside a grapheme cluster (flag, ZWJ sequence, combining mark): only if nothing else fits.

A link is never cut: in HTML the ``<a href>`` tag is one token; in plain text and Markdown a
bare ``http(s)://`` URL and a Markdown link ``[label](url)`` are one token each (unless one
alone would take more than half a message: then it is cut like any text, rather than refused).
In byte-counted limits a multi-byte character is one token, so it is never cut either.

Whole blocks are packed greedily: if any block break fits, the furthest one is the cut.
Only a block too big on its own is cut inside: at the furthest fitting cut of the best level
that still fills at least half a message (so a headline does not go out alone), else at the
furthest fitting cut of the best level there is. So a big block is cut at paragraphs, then
lines, sentences, words, characters.

Guarantees (see the tests): every piece measures at most ``limits.max_length`` in
``limits.length_unit`` and, in HTML mode, holds at most ``limits.max_entities`` elements
(each start tag counts one, reopened ones included); every piece is a balanced HTML fragment:
elements open at a cut are closed at the end of one piece and reopened with the same
attributes at the start of the next. Each piece's visible text (tags stripped, entities
unescaped) begins and ends with a non-whitespace character. What lies between the last
visible non-whitespace character of one piece and the first of the next (whitespace as
``str.isspace`` sees it, block breaks, tags) is dropped, and the tags are rebalanced as
said; so the visible text of the whole equals the pieces' visible texts in order, each pair
separated by the whitespace dropped there (possibly none), plus leading and trailing
whitespace. Nothing visible but that whitespace is lost, added or reordered.
"""

from __future__ import annotations

import html
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Collection
from itertools import accumulate

from bot.errors import RenderError
from bot.platforms.base import LengthUnit, Limits
from bot.render.length import measure

BLOCK_BREAK = "\x1e"
"""Written by templates between blocks (items): the preferred place to split; never shown."""

_TEXT, _ENTITY, _START, _END, _BREAK = range(5)

_HTML_TOKEN = re.compile(
    r"(?P<tag></?[a-zA-Z][a-zA-Z0-9-]*(?:\s[^<>]*)?/?>)"
    r"|(?P<entity>&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);)"
    r"|(?P<bad>[<>&])"
    r"|(?P<break>\x1e)"
    r"|(?P<run>[^<>&\x1e]+)",
)
_TAG_NAME = re.compile(r"</?([a-zA-Z][a-zA-Z0-9-]*)")

# Kept whole in plain text and Markdown: a Markdown link, a bare URL, a WeCom <font> tag.
_ATOMIC = re.compile(
    r"\[(?:\\.|[^\]\\\n])*\]\([^()\s]*\)"
    r"|https?://[^\s<>\]）】」》\u3000，。；！？]+"
    r"|</?font(?:\s[^<>\n]*)?>"
)

_CJK_TERMINATORS = frozenset("。！？")
_ASCII_TERMINATORS = frozenset(".!?")
_CLOSERS = frozenset("\"'”’」』）)]】》")

_ZWJ = "\u200d"

_LEVEL_BLOCK, _LEVEL_BLANK, _LEVEL_LINE, _LEVEL_SENTENCE, _LEVEL_SPACE = 0, 1, 2, 3, 4
_LEVEL_ANY, _LEVEL_GRAPHEME = 5, 6


def split_rendered(
    text: str,
    limits: Limits,
    *,
    html_mode: bool,
    allowed_tags: Collection[str] | None = None,
) -> list[str]:
    """Split ``text`` into pieces within ``limits``; see the module docstring for guarantees.

    Args:
        text: the whole rendered message, block breaks included.
        limits: ``max_length`` and ``length_unit`` bound each piece; ``max_entities`` too
            in HTML mode.
        html_mode: read ``text`` as HTML (tags and entities); otherwise as plain text.
        allowed_tags: in HTML mode, the only element names accepted (None: any).

    Raises:
        RenderError: the HTML is malformed (stray ``<``, ``>`` or ``&``, unbalanced or
            unknown tags), or a single tag cannot fit in one piece.
    """
    tokens = _Tokens(
        text,
        limits.length_unit,
        html_mode=html_mode,
        allowed_tags=allowed_tags,
        atomic_max=limits.max_length // 2,
    )
    max_entities = limits.max_entities if html_mode else None
    return tokens.split(limits.max_length, max_entities)


def remove_block_breaks(text: str) -> str:
    """Return the whole rendered text as one message: block breaks removed, ends stripped."""
    return text.replace(BLOCK_BREAK, "").strip()


class _Tokens:
    """The rendered text as tokens, with prefix sums that price any slice in O(1)."""

    def __init__(
        self,
        text: str,
        unit: LengthUnit,
        *,
        html_mode: bool,
        allowed_tags: Collection[str] | None,
        atomic_max: int = 0,
    ) -> None:
        self.unit = unit
        self.atomic_max = atomic_max
        self.texts: list[str] = []
        self.kinds: list[int] = []
        # the visible character of a text or entity token, "" otherwise
        self.visible: list[str] = []
        # element names and start tags open before token i (tuples shared between tokens)
        self.stacks: list[tuple[tuple[str, str], ...]] = [()]
        if html_mode:
            self._read_html(text, allowed_tags)
        else:
            self._read_plain(text)
        self.n = len(self.texts)
        self._price(unit)
        self._bound_trims()
        self._grade_cuts()

    # -- reading ----------------------------------------------------------------------------

    def _add(self, text: str, kind: int, visible: str) -> None:
        self.texts.append(text)
        self.kinds.append(kind)
        self.visible.append(visible)

    def _add_run(self, run: str, stack: tuple[tuple[str, str], ...]) -> None:
        """Add one text token per character of ``run``."""
        self.texts.extend(run)
        self.visible.extend(run)
        self.kinds.extend([_TEXT] * len(run))
        self.stacks.extend([stack] * len(run))

    def _read_plain(self, text: str) -> None:
        for number, run in enumerate(text.split(BLOCK_BREAK)):
            if number:
                self._add("", _BREAK, "")
                self.stacks.append(())
            self._add_plain_run(run)

    def _add_plain_run(self, run: str) -> None:
        """Add ``run`` character by character, links and URLs as one token each."""
        position = 0
        for match in _ATOMIC.finditer(run):
            token = match.group()
            if measure(token, self.unit) > self.atomic_max:
                continue  # too long to keep whole: cut like text
            self._add_run(run[position : match.start()], ())
            self._add(token, _TEXT, token)
            self.stacks.append(())
            position = match.end()
        self._add_run(run[position:], ())

    def _read_html(self, text: str, allowed_tags: Collection[str] | None) -> None:
        stack: tuple[tuple[str, str], ...] = ()
        for match in _HTML_TOKEN.finditer(text):
            kind = match.lastgroup
            token = match.group()
            if kind == "run":
                self._add_run(token, stack)
                continue
            if kind == "break":
                self._add("", _BREAK, "")
            elif kind == "entity":
                self._add(token, _ENTITY, html.unescape(token))
            elif kind == "bad":
                start = match.start()
                around = text[max(0, start - 30) : start + 30]
                raise RenderError(
                    f"unescaped {token!r} at offset {start} of the rendered HTML: {around!r}"
                )
            else:
                name_match = _TAG_NAME.match(token)
                assert name_match is not None  # the tag pattern guarantees a name
                name = name_match.group(1).lower()
                if allowed_tags is not None and name not in allowed_tags:
                    allowed = ", ".join(sorted(allowed_tags))
                    raise RenderError(f"tag <{name}> is not allowed here (allowed: {allowed})")
                if token.startswith("</"):
                    if not stack or stack[-1][0] != name:
                        raise RenderError(f"unbalanced </{name}> in the rendered HTML")
                    stack = stack[:-1]
                    self._add(token, _END, "")
                else:
                    if token.endswith("/>"):
                        raise RenderError(f"self-closing tag {token!r} in the rendered HTML")
                    stack = (*stack, (name, token))
                    self._add(token, _START, "")
            self.stacks.append(stack)
        if stack:
            names = ", ".join(f"<{name}>" for name, _ in stack)
            raise RenderError(f"unclosed {names} at the end of the rendered HTML")

    # -- pricing ----------------------------------------------------------------------------

    def _price(self, unit: LengthUnit) -> None:
        n = self.n
        utf16 = unit is LengthUnit.UTF16
        if unit is LengthUnit.BYTES:
            sizes = [len(text.encode("utf-8")) for text in self.texts]
        else:
            sizes = [
                # most tokens are one character, priced without encoding
                (2 if utf16 and ord(text) > 0xFFFF else 1)
                if len(text) == 1
                else measure(text, unit)
                for text in self.texts
            ]
        self.cum_length = [0, *accumulate(sizes)]
        self.cum_starts = [0, *accumulate(int(kind == _START) for kind in self.kinds)]
        # visible non-whitespace tokens: pieces begin and end with one
        self.solid = [
            kind in (_TEXT, _ENTITY) and not char.isspace()
            for kind, char in zip(self.kinds, self.visible, strict=True)
        ]
        # cost of reopening / closing the elements open before token i
        self.open_length = [0] * (n + 1)
        self.close_length = [0] * (n + 1)
        costs: dict[tuple[tuple[str, str], ...], tuple[int, int]] = {(): (0, 0)}
        for i, stack in enumerate(self.stacks):
            cost = costs.get(stack)
            if cost is None:
                cost = (
                    sum(measure(tag, unit) for _, tag in stack),
                    sum(measure(f"</{name}>", unit) for name, _ in stack),
                )
                costs[stack] = cost
            self.open_length[i], self.close_length[i] = cost

    def _is_space(self, i: int) -> bool:
        return self.kinds[i] in (_TEXT, _ENTITY) and self.visible[i].isspace()

    def _bound_trims(self) -> None:
        """For a cut before token k: where the piece before ends and the next one starts.

        The piece before ends after the last visible non-whitespace token before k, and the
        next starts at the first one from k on. What lies between (whitespace, block breaks,
        tags) is dropped: the elements open at the end are closed by the piece before and
        those open at the start are reopened by the next, so no tag is lost either.
        """
        n = self.n
        solid = self.solid
        self.end_of = [0] * (n + 1)
        for k in range(1, n + 1):
            self.end_of[k] = k if solid[k - 1] else self.end_of[k - 1]
        self.start_of = [n] * (n + 1)
        for k in range(n - 1, -1, -1):
            self.start_of[k] = k if solid[k] else self.start_of[k + 1]

    def _grade_cuts(self) -> None:
        """Give every cut position its preference level (lower is better).

        Positions between the same two visible non-whitespace tokens are the same cut; the
        first of them carries the grade of what lies between (a break, newlines, a space).
        """
        n = self.n
        level = [_LEVEL_ANY] * (n + 1)
        after_terminator = False  # the visible text so far ends a sentence
        cjk_terminator = False
        regional_run = 0  # regional indicators just before: a flag is a pair of them
        i = 0
        while i < n:
            if not self.solid[i]:
                regional_run = 0
                j = i
                newlines = 0
                has_break = has_space = False
                while j < n and not self.solid[j]:
                    has_break = has_break or self.kinds[j] == _BREAK
                    if self._is_space(j):
                        has_space = True
                        newlines += self.visible[j].count("\n")
                    j += 1
                if has_break:
                    grade = _LEVEL_BLOCK
                elif newlines >= 2:
                    grade = _LEVEL_BLANK
                elif newlines == 1:
                    grade = _LEVEL_LINE
                elif after_terminator and (has_space or cjk_terminator):
                    grade = _LEVEL_SENTENCE
                elif has_space:
                    grade = _LEVEL_SPACE
                else:
                    grade = _LEVEL_ANY
                level[i] = grade
                if has_space or has_break:
                    after_terminator = False
                i = j
                continue
            char = self.visible[i]
            if after_terminator and cjk_terminator and char not in _CLOSERS:
                level[i] = _LEVEL_SENTENCE
            elif len(char) == 1 and ord(char) >= 0x300:  # below: no cluster-joining characters
                regional = _is_regional_indicator(char)
                if (regional and regional_run % 2 == 1) or _continues_cluster(
                    char, self.visible[i - 1] if i else ""
                ):
                    level[i] = _LEVEL_GRAPHEME
                regional_run = regional_run + 1 if regional else 0
            else:
                regional_run = 0
            if char in _CJK_TERMINATORS:
                after_terminator, cjk_terminator = True, True
            elif char in _ASCII_TERMINATORS:
                after_terminator, cjk_terminator = True, False
            elif char not in _CLOSERS:
                after_terminator = False
            i += 1
        self.level = level

    # -- splitting --------------------------------------------------------------------------

    def _length(self, start: int, cut: int) -> int:
        end = self.end_of[cut]
        return (
            self.open_length[start]
            + self.cum_length[end]
            - self.cum_length[start]
            + self.close_length[end]
        )

    def _fits(self, start: int, cut: int, max_length: int, max_entities: int | None) -> bool:
        end = self.end_of[cut]
        if end <= start or self._length(start, cut) > max_length:
            return False
        if max_entities is not None:
            entities = len(self.stacks[start]) + self.cum_starts[end] - self.cum_starts[start]
            if entities > max_entities:
                return False
        return True

    def _piece(self, start: int, cut: int) -> str:
        end = self.end_of[cut]
        reopen = "".join(tag for _, tag in self.stacks[start])
        close = "".join(f"</{name}>" for name, _ in reversed(self.stacks[end]))
        return reopen + "".join(self.texts[start:end]) + close

    def _best_cut(self, start: int, max_length: int, max_entities: int | None) -> int:
        budget = max_length - self.open_length[start]
        hi = bisect_right(self.cum_length, self.cum_length[start] + budget, lo=start) - 1
        if max_entities is not None:
            allowed = max_entities - len(self.stacks[start])
            hi_entities = bisect_right(self.cum_starts, self.cum_starts[start] + allowed, lo=start)
            hi = min(hi, hi_entities - 1)
        # the furthest fitting cut of each level
        furthest: list[int | None] = [None] * (_LEVEL_GRAPHEME + 1)
        for cut in range(min(hi, self.n), start, -1):
            grade = self.level[cut]
            if furthest[grade] is None and self._fits(start, cut, max_length, max_entities):
                furthest[grade] = cut
                if grade == _LEVEL_BLOCK:
                    return cut
        # Inside a block too big on its own: the best kind of cut that still fills half a
        # message, so a short headline or intro line does not go out alone.
        for candidate in furthest:
            if candidate is not None and 2 * self._length(start, candidate) >= max_length:
                return candidate
        for candidate in furthest:
            if candidate is not None:
                return candidate
        snippet = "".join(self.texts[start : start + 3])[:80]
        raise RenderError(
            f"cannot fit the text starting {snippet!r} into a message of {max_length} "
            f"units and {max_entities} entities: a tag, or the elements open around it, "
            "take too much room"
        )

    def split(self, max_length: int, max_entities: int | None) -> list[str]:
        pieces: list[str] = []
        start = self.start_of[0]
        n = self.n
        while start < n:
            if self._fits(start, n, max_length, max_entities):
                pieces.append(self._piece(start, n))
                break
            cut = self._best_cut(start, max_length, max_entities)
            pieces.append(self._piece(start, cut))
            start = self.start_of[cut]
        return pieces


def _continues_cluster(char: str, previous: str) -> bool:
    """Whether ``char`` extends the grapheme cluster of ``previous`` (roughly; flags apart)."""
    code = ord(char)
    return (
        char == _ZWJ
        or previous == _ZWJ
        or 0xFE00 <= code <= 0xFE0F  # variation selectors
        or 0x1F3FB <= code <= 0x1F3FF  # skin tone modifiers
        or 0xE0020 <= code <= 0xE007F  # tag characters (subdivision flags)
        or 0xE0100 <= code <= 0xE01EF
        or unicodedata.category(char) in ("Mn", "Me", "Mc")
    )


def _is_regional_indicator(char: str) -> bool:
    return len(char) == 1 and 0x1F1E6 <= ord(char) <= 0x1F1FF
