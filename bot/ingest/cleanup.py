"""Source-text cleanup shared by the parsers: decoding, lines, paragraphs, links, dates, titles."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable

from bot.domain import Link
from bot.errors import ContentError

PRIMARY_LABEL = "原文"

# Characters WeChat (and copy-paste from its editor) leaves in text: zero-width marks are
# dropped, the various non-breaking and full-width spaces become ordinary spaces.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = dict.fromkeys(map(ord, "\xa0\u3000\u2002\u2003\u2009\u202f"), " ")

URL_RE = re.compile(r"https?://[^\s<>\"'，。；！？、（）《》【】「」]+", re.IGNORECASE)
URL_TRAILING = ".,;:!?)]}'\"，。；：！？、）】"

_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_COMPACT_DATE_RE = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")

_TAG_SPLIT_RE = re.compile(r"[,，、;；]")

# A link label: a short name without sentence punctuation ("原文", "论文地址", "Project page").
LABEL_PATTERN = r"[^\s:：，。！？、,;；](?:[^:：，。！？、,;；]{0,14}[^\s:：，。！？、,;；])?"


def decode(data: bytes, *, path: str, allow_gb18030: bool = False) -> str:
    """Decode file bytes as UTF-8 (BOM tolerated), falling back to GB18030 where allowed."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    if allow_gb18030:
        try:
            # GBK archives are common (Windows Notepad, old exports); GB18030 is its superset.
            return data.decode("gb18030")
        except UnicodeDecodeError:
            pass
    tried = "UTF-8 or GB18030" if allow_gb18030 else "UTF-8"
    offset = utf8_error.start
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    raise ContentError(
        f"cannot decode the file as {tried}: bad byte 0x{data[offset]:02x} at column {column} "
        "(in bytes): save it as UTF-8",
        path=path,
        line=line,
    )


def clean_line(line: str) -> str:
    """Drop invisible characters, turn odd spaces into plain ones and trim the line."""
    return line.translate(_INVISIBLE).translate(_SPACES).strip()


def split_lines(text: str) -> list[str]:
    """Split text into lines the way people number them (any newline convention)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _is_cjk(char: str) -> bool:
    return unicodedata.east_asian_width(char) in ("W", "F")


def join_wrapped(lines: Iterable[str]) -> str:
    """Join the lines of one paragraph: no space between CJK text, one space otherwise."""
    out = ""
    for line in lines:
        if not line:
            continue
        if out and not (_is_cjk(out[-1]) or _is_cjk(line[0])):
            out += " "
        out += line
    return out


def paragraphs_from_lines(lines: Iterable[str]) -> list[str]:
    """Group cleaned lines into paragraphs separated by blank lines."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line:
            current.append(line)
        elif current:
            paragraphs.append(join_wrapped(current))
            current = []
    if current:
        paragraphs.append(join_wrapped(current))
    return paragraphs


def normalize_url(raw: str) -> str | None:
    """Return the URL at the start of ``raw`` without trailing punctuation, or None."""
    match = URL_RE.match(raw.strip())
    if match is None:
        return None
    return match.group(0).rstrip(URL_TRAILING)


def primary_first(links: Iterable[Link]) -> tuple[Link, ...]:
    """Order links so a 原文 link comes first: the first link is the item's identity."""
    ordered = list(links)
    for index, link in enumerate(ordered):
        if link.label == PRIMARY_LABEL:
            ordered.insert(0, ordered.pop(index))
            break
    return tuple(ordered)


def parse_iso_date(value: str, *, what: str, path: str, line: int | None = None) -> dt.date:
    """Parse a strict YYYY-MM-DD date, with a message that names the field."""
    if not _ISO_DATE_RE.fullmatch(value):
        raise ContentError(f"{what} must be YYYY-MM-DD, got {value!r}", path=path, line=line)
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ContentError(
            f"{what} must be YYYY-MM-DD, got {value!r} ({exc})", path=path, line=line
        ) from None


def date_in_name(name: str) -> dt.date | None:
    """Find a YYYYMMDD or YYYY-MM-DD date in a file name, if there is exactly a valid one."""
    for match in _COMPACT_DATE_RE.finditer(name):
        try:
            return dt.date(int(match[1]), int(match[2]), int(match[3]))
        except ValueError:
            continue
    return None


def split_tags(value: str) -> tuple[str, ...]:
    """Split 'a, b、c' into distinct tags, keeping their order."""
    tags = (t.strip().lstrip("#") for t in _TAG_SPLIT_RE.split(value))
    return tuple(dict.fromkeys(t for t in tags if t))


# --- deriving a headline from a paragraph ---------------------------------------------------

# Width counts a CJK character as 2 and anything else as 1, so one limit fits both
# ~40 Chinese characters and ~80 English ones.
TITLE_MAX_WIDTH = 80
_SENTENCE_END_RE = re.compile(r"[。！？!?；;]|\.(?=\s|$)|…+")
# A full stop after these ends a word, not a sentence ("U.S. regulators", "Dr. Li").
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "mt",
        "inc",
        "ltd",
        "co",
        "corp",
        "vs",
        "etc",
        "no",
        "fig",
        "al",
        "approx",
        "dept",
        "est",
        "govt",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    ]
)
_WORD_BEFORE_RE = re.compile(r"([A-Za-z][A-Za-z.]*)$")
_CLAUSE_END_RE = re.compile(r"[，,：:]\s*|\s+[-–—]+\s+|——")
# Without a word segmenter, these characters are the likeliest word boundaries in a long run
# of Chinese: a cut before 的/与/和/并/及/将 or after 了 rarely splits a word.
_CUT_BEFORE = frozenset("的与和并及将")
_CUT_AFTER = frozenset("了")
_TRAILING_PUNCT = " \t，,。.！!？?；;：:、…—–-"


def width(text: str) -> int:
    """Display width: 2 for a wide (CJK) character, 1 otherwise."""
    return sum(2 if _is_cjk(c) else 1 for c in text)


def _strip_title(text: str) -> str:
    text = text.strip().rstrip(_TRAILING_PUNCT)
    # Drop an opening quote whose partner was cut off with the rest of the sentence.
    for opener, closer in ("“”", "「」", "《》", "（）", "()", "『』"):
        if text.count(opener) > text.count(closer):
            text = text[: text.rfind(opener)].rstrip(_TRAILING_PUNCT)
    return text


def _ends_sentence(text: str, match: re.Match[str]) -> bool:
    """Whether a sentence-end match is one: not the full stop of "U.S." or "Dr."."""
    if match.group() != ".":
        return True
    word = _WORD_BEFORE_RE.search(text[: match.start()])
    if word is None:
        return True
    token = word.group(1)
    # "U.S", "e.g", "a.m": letters with inner full stops
    if "." in token:
        return False
    return token.lower() not in _ABBREVIATIONS


def _sentence_end(paragraph: str) -> re.Match[str] | None:
    for match in _SENTENCE_END_RE.finditer(paragraph):
        if _ends_sentence(paragraph, match):
            return match
    return None


def first_sentence(paragraph: str) -> str:
    """The paragraph's first sentence, without its closing punctuation."""
    match = _sentence_end(paragraph)
    sentence = paragraph if match is None else paragraph[: match.start()]
    return _strip_title(sentence) or _strip_title(paragraph)


def without_headline(paragraphs: list[str], title: str) -> list[str]:
    """The summary's paragraphs without the sentence the headline was made of: readers
    would see it twice. Kept when the headline is only part of that sentence, or when
    nothing else would be left."""
    first = paragraphs[0].strip()
    match = _sentence_end(first)
    sentence = first if match is None else first[: match.start()]
    if _strip_title(sentence) != title:
        return paragraphs
    rest = first[match.end() :].strip() if match is not None else ""
    remaining = ([rest] if rest else []) + paragraphs[1:]
    return remaining or paragraphs


def _cut_at_word(text: str, limit: int) -> str:
    """Cut a long clause at the last space or script change (CJK↔Latin) that fits ``limit``."""
    best = 0
    used = 0
    for index, char in enumerate(text):
        used += 2 if _is_cjk(char) else 1
        if used > limit:
            break
        nxt = text[index + 1] if index + 1 < len(text) else ""
        if (
            nxt == ""
            or nxt.isspace()
            or char.isspace()
            or (_is_cjk(char) != _is_cjk(nxt))
            or nxt in _CUT_BEFORE
            or char in _CUT_AFTER
        ):
            best = index + 1
    if best < len(text) and width(text[:best]) < limit // 2:
        # No boundary near the limit (a long run of Chinese): a segmenter would be needed
        # for a clean cut, so cut at the limit and say so with an ellipsis.
        best = 0
        used = 0
        for index, char in enumerate(text):
            used += 2 if _is_cjk(char) else 1
            if used > limit - 2:
                break
            best = index + 1
    head = text[:best].rstrip(_TRAILING_PUNCT)
    return head if best >= len(text) else head + "…"


def derive_title(paragraph: str, *, max_width: int = TITLE_MAX_WIDTH) -> str:
    """A headline from an item's first paragraph: its first sentence, or leading clauses of it."""
    sentence = first_sentence(paragraph.strip())
    if width(sentence) <= max_width:
        return sentence
    # Keep as many whole clauses as fit; a clause is never cut unless it alone is too long.
    title = ""
    for match in _CLAUSE_END_RE.finditer(sentence):
        candidate = _strip_title(sentence[: match.start()])
        if width(candidate) > max_width:
            break
        title = candidate
    if title:
        return title
    return _cut_at_word(sentence, max_width)
