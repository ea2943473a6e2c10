"""Turn RSS and Atom feeds (read with feedparser) into dated items; fetch a feed by URL."""

from __future__ import annotations

import datetime as dt
import re
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import feedparser

from bot.domain import BriefInfo, Item, Link
from bot.errors import ContentError
from bot.ingest.cleanup import PRIMARY_LABEL, clean_line, derive_title
from bot.ingest.document import ParsedDocument

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")
FETCH_TIMEOUT = 20.0
_USER_AGENT = "briefbot/0.1 (+feed reader)"

_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "li", "ul", "ol", "blockquote", "pre", "table", "tr", "hr", "figure"}
    | {"h1", "h2", "h3", "h4", "h5", "h6", "section", "article"}
)
_SKIP_TAGS = frozenset(("script", "style", "head", "title"))
_SPACE_RE = re.compile(r"[ \t\r\n\f\v]+")


class _TextExtractor(HTMLParser):
    """Collect the text of an HTML fragment, one paragraph per block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)  # entities come out unescaped
        self.paragraphs: list[str] = []
        self._current: list[str] = []
        self._skipping = 0

    def _break(self) -> None:
        text = clean_line(_SPACE_RE.sub(" ", "".join(self._current)))
        if text:
            self.paragraphs.append(text)
        self._current = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self._break()

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self._current.append(data)

    def close(self) -> None:
        super().close()
        self._break()


def html_to_paragraphs(html: str) -> list[str]:
    """Plain-text paragraphs of an HTML fragment (or of plain text with entities)."""
    if "<" not in html:
        # Plain text: blank lines separate paragraphs; entities still need unescaping.
        html = "".join(f"<p>{block}</p>" for block in re.split(r"\n\s*\n", html))
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return extractor.paragraphs


def _entry_date(entry: Mapping[str, Any], tz: dt.tzinfo) -> dt.date | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        parsed = entry.get(key)
        if isinstance(parsed, time.struct_time):
            # feedparser normalises these to UTC; the brief's day is the local one.
            utc = dt.datetime(*parsed[:6], tzinfo=dt.UTC)
            return utc.astimezone(tz).date()
    return None


def _entry_body(entry: Mapping[str, Any]) -> str:
    contents = entry.get("content") or []
    for content in contents:
        value = content.get("value")
        if value:
            return str(value)
    return str(entry.get("summary") or entry.get("description") or "")


def parse_feed(
    data: bytes | str,
    *,
    date: dt.date | None = None,
    path: str = "<input>",
    tz: dt.tzinfo = DEFAULT_TZ,
) -> ParsedDocument:
    """Parse an RSS or Atom feed: one item per entry, linked as 原文.

    With ``date`` every entry belongs to that day; without it each entry takes the local
    (``tz``, default Asia/Shanghai) date of its published or updated time.
    """
    # feedparser would treat a str as a URL or file name; hand it the document itself.
    document = data.encode("utf-8") if isinstance(data, str) else data
    parsed = feedparser.parse(document)
    entries: list[Mapping[str, Any]] = list(parsed.entries)
    if not entries:
        reason = parsed.get("bozo_exception")
        detail = f" ({reason})" if parsed.get("bozo") and reason else ""
        raise ContentError(f"not an RSS or Atom feed with entries{detail}", path=path)
    publisher = clean_line(html_to_text(str(parsed.feed.get("title") or ""))) or None
    items: list[Item] = []
    positions: dict[dt.date, int] = {}
    for number, entry in enumerate(entries, start=1):
        paragraphs = html_to_paragraphs(_entry_body(entry))
        title = html_to_text(str(entry.get("title") or ""))
        if not title and paragraphs:
            title = derive_title(paragraphs[0])
        name = f"entry {number}" + (f" ({title!r})" if title else "")
        if not title:
            raise ContentError(f"{name} has neither a title nor any text", path=path)
        link = str(entry.get("link") or "").strip()
        if not link:
            raise ContentError(f"{name} has no link", path=path)
        day = date or _entry_date(entry, tz)
        if day is None:
            raise ContentError(
                f"{name} has no published or updated date: give the feed's date explicitly",
                path=path,
            )
        position = positions.get(day, 0)
        positions[day] = position + 1
        tags = tuple(
            dict.fromkeys(
                str(t.get("term")).strip() for t in entry.get("tags") or [] if t.get("term")
            )
        )
        items.append(
            Item(
                date=day,
                title=title,
                summary="\n\n".join(paragraphs),
                links=(Link(PRIMARY_LABEL, link),),
                tags=tags,
                position=position,
            )
        )
    briefs = [BriefInfo(day, None, publisher) for day in positions] if publisher else []
    return ParsedDocument(path=path, items=items, briefs=briefs)


def html_to_text(html: str) -> str:
    """One line of plain text from an HTML fragment such as a feed title."""
    return " ".join(html_to_paragraphs(html))


def fetch_feed(url: str, *, timeout: float = FETCH_TIMEOUT) -> bytes:
    """Download a feed over HTTP(S); any failure is a ContentError naming the URL."""
    if not url.lower().startswith(("http://", "https://")):
        raise ContentError("a feed URL must start with http:// or https://", path=url)
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        exc.close()  # an HTTPError holds the open response; leaving it leaks the socket
        raise ContentError(f"the server answered HTTP {exc.code} {exc.reason}", path=url) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ContentError(f"cannot fetch the feed: {reason}", path=url) from None
    return body
