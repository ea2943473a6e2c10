"""Parse plain-text archives of briefs copied from WeChat articles into dated items."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from pathlib import PurePath

from bot.domain import BriefInfo, Item, Link
from bot.errors import ContentError
from bot.ingest.cleanup import (
    LABEL_PATTERN,
    PRIMARY_LABEL,
    URL_TRAILING,
    clean_line,
    date_in_name,
    derive_title,
    normalize_url,
    split_lines,
    without_headline,
)
from bot.ingest.document import ParsedDocument

_LABELLED_RE = re.compile(rf"^(?P<label>{LABEL_PATTERN})\s*[:：]\s*(?P<rest>.*)$")
_TITLE_LINE_RE = re.compile(r"^原文标题\s*[:：]\s*(?P<rest>.*)$")
_PUBLISHER_RE = re.compile(r"^文章出处\s*[:：]\s*(?P<rest>.*)$")
_BRACKET_RE = re.compile(r"【(?P<tag>[^】]*)】\s*(?P<title>.*)$")
# An article's end marker ("- END -", "—— END ——", "（完）"): layout, not content.
_END_MARKER_RE = re.compile(r"^[\s\-—–_=~·*]*(?:END|完|全文完)[\s\-—–_=~·*]*$|^[（(]完[)）]$", re.I)


@dataclass
class _Draft:
    line: int
    links: list[Link] = field(default_factory=list)
    body: list[str] = field(default_factory=list)


@dataclass
class _TitleLine:
    line: int
    date: dt.date
    title: str | None


@dataclass
class _Segment:
    """The items of one published brief and the footer lines that follow them."""

    drafts: list[_Draft] = field(default_factory=list)
    title: _TitleLine | None = None
    publisher: str | None = None


def _title_line(rest: str, *, path: str, line: int) -> _TitleLine:
    match = _BRACKET_RE.search(rest)
    found = date_in_name(match["tag"]) if match else None
    if match is None or found is None:
        raise ContentError(
            f"原文标题 line has no 【AI简报YYYYMMDD】 with a valid date, got {rest!r}: "
            "cannot tell the brief's date",
            path=path,
            line=line,
        )
    # The brief's title is the whole line as readers saw it, 【AI简报YYYYMMDD】 included.
    title = rest[match.start() :].strip() if match["title"].strip() else None
    return _TitleLine(line=line, date=found, title=title)


def _split(lines: list[str], path: str) -> list[_Segment]:
    segments: list[_Segment] = [_Segment()]
    draft: _Draft | None = None
    in_footer = False
    # A label whose URL should be on the next non-blank line: (label, line number, line text).
    pending: tuple[str, int, str] | None = None

    for lineno, raw in enumerate(lines, start=1):
        line = clean_line(raw)
        if pending is not None:
            if not line:
                continue
            label, label_line, label_text = pending
            pending = None
            url = normalize_url(line)
            if url is not None and not line[len(url) :].strip(URL_TRAILING):
                assert draft is not None
                draft.links.append(Link(label, url))
                continue
            if label == PRIMARY_LABEL:
                raise ContentError(
                    f"'{PRIMARY_LABEL}:' has no URL: put 'https://…' after the colon "
                    "or alone on the next line",
                    path=path,
                    line=label_line,
                )
            # "据介绍：" and the like end a sentence with a colon: that was text, not a link.
            assert draft is not None
            draft.body.append(label_text)

        segment = segments[-1]
        if match := _TITLE_LINE_RE.match(line):
            draft, in_footer = None, True
            if segment.title is None:
                segment.title = _title_line(match["rest"], path=path, line=lineno)
            continue
        if match := _PUBLISHER_RE.match(line):
            draft, in_footer = None, True
            segment.publisher = segment.publisher or match["rest"].strip() or None
            continue

        labelled = _LABELLED_RE.match(line)
        if labelled and labelled["label"] == PRIMARY_LABEL:
            if in_footer:
                segments.append(_Segment())
                in_footer = False
            draft = _Draft(line=lineno)
            segments[-1].drafts.append(draft)
            rest = labelled["rest"]
            if not rest:
                pending = (PRIMARY_LABEL, lineno, line)
                continue
            url = normalize_url(rest)
            if url is None:
                raise ContentError(
                    f"'{PRIMARY_LABEL}:' must be followed by a URL (https://…), got {rest!r}",
                    path=path,
                    line=lineno,
                )
            draft.links.append(Link(PRIMARY_LABEL, url))
            if extra := rest[len(url) :].strip(URL_TRAILING + " "):
                draft.body.append(extra)
            continue
        if in_footer or draft is None or _END_MARKER_RE.match(line):
            continue  # the article's header or end marker, or comment-box debris after it
        if labelled:
            rest = labelled["rest"]
            if not rest:
                pending = (labelled["label"], lineno, line)
                continue
            url = normalize_url(rest)
            if url is not None and not rest[len(url) :].strip(URL_TRAILING):
                draft.links.append(Link(labelled["label"], url))
                continue
        draft.body.append(line)

    if pending is not None:
        label, label_line, label_text = pending
        if label == PRIMARY_LABEL:
            raise ContentError(
                f"'{PRIMARY_LABEL}:' has no URL: the file ends after it", path=path, line=label_line
            )
        assert draft is not None
        draft.body.append(label_text)
    return [s for s in segments if s.drafts or s.title]


def _fallback_date(path: str) -> dt.date | None:
    return date_in_name(PurePath(path).name)


def parse_archive(text: str, *, path: str = "<input>") -> ParsedDocument:
    """Parse a plain-text brief archive: items start at '原文:' lines, '原文标题' gives the date.

    A file may hold several briefs one after another; each brief's items take the date of the
    '原文标题：【AI简报YYYYMMDD】…' line that follows them. When the file has no such line at all,
    a YYYYMMDD or YYYY-MM-DD date in the file name is used instead.
    """
    segments = _split(split_lines(text.lstrip("\ufeff")), path)
    if not any(s.drafts for s in segments):
        raise ContentError(
            f"no items: each item starts at a line '{PRIMARY_LABEL}: https://…'", path=path
        )
    has_title_line = any(s.title for s in segments)
    items: list[Item] = []
    briefs: list[BriefInfo] = []
    positions: dict[dt.date, int] = {}
    for segment in segments:
        if not segment.drafts:
            continue
        if segment.title is not None:
            date = segment.title.date
            title = segment.title.title
        elif not has_title_line and (fallback := _fallback_date(path)) is not None:
            date, title = fallback, None
        else:
            raise ContentError(
                "no 原文标题 line with 【AI简报YYYYMMDD】 after the items starting here: "
                "cannot tell the brief's date (add that line, or put the date in the file name, "
                "e.g. ai-brief-20221014.txt)",
                path=path,
                line=segment.drafts[0].line,
            )
        if title or segment.publisher:
            briefs.append(BriefInfo(date, title, segment.publisher))
        for draft in segment.drafts:
            paragraphs = [line for line in draft.body if line]
            if not paragraphs:
                raise ContentError(
                    "this item has no text after its links", path=path, line=draft.line
                )
            position = positions.get(date, 0)
            positions[date] = position + 1
            title = derive_title(paragraphs[0])
            items.append(
                Item(
                    date=date,
                    title=title,
                    summary="\n\n".join(without_headline(paragraphs, title)),
                    links=tuple(draft.links),
                    position=position,
                )
            )
    return ParsedDocument(path=path, items=items, briefs=briefs)
