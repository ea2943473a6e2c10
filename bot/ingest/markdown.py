"""Parse Markdown content files with YAML front matter: one item per file, or a whole day."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from bot.domain import BriefInfo, Item, Link
from bot.errors import ContentError
from bot.ingest.cleanup import (
    LABEL_PATTERN,
    PRIMARY_LABEL,
    URL_TRAILING,
    clean_line,
    normalize_url,
    paragraphs_from_lines,
    parse_iso_date,
    primary_first,
    split_lines,
    split_tags,
)
from bot.ingest.document import ParsedDocument
from bot.ingest.limits import MAX_POSITION

ITEM_KEYS = ("date", "title", "links", "tags", "section", "position")
DAY_KEYS = ("date", "title", "publisher")

_FENCE = "---"
_SECTION_RE = re.compile(r"^#\s+(?P<text>.*?)\s*#*$")
_ITEM_RE = re.compile(r"^##\s+(?P<text>.*?)\s*#*$")
_DEEPER_RE = re.compile(r"^###")
_TAGS_RE = re.compile(r"^(?:[-*+]\s+)?(?:tags|标签)\s*[:：]\s*(?P<tags>.*)$", re.IGNORECASE)
_LINK_RE = re.compile(rf"^(?:[-*+]\s+)?(?P<label>{LABEL_PATTERN})\s*[:：]\s*(?P<url>.*)$")


class _FrontMatterLoader(yaml.SafeLoader):
    """A safe YAML loader that leaves dates as strings, so a bad date gets our own message."""


# PyYAML turns 2022-13-01 into a ValueError deep inside the loader; keep dates as text.
_FrontMatterLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class _FrontMatter:
    data: dict[str, Any]
    lines: list[str]  # the YAML lines, to point an error at its key
    body_start: int  # index in the file's lines of the first body line
    path: str

    def line_of(self, key: str) -> int | None:
        pattern = re.compile(rf"^{re.escape(key)}\s*:")
        for index, line in enumerate(self.lines):
            if pattern.match(line):
                return index + 2  # the opening fence is line 1
        return None

    def error(self, key: str, message: str) -> ContentError:
        return ContentError(f"front matter: {message}", path=self.path, line=self.line_of(key))

    def check_keys(self, allowed: tuple[str, ...], form: str) -> None:
        for key in self.data:
            if key not in allowed:
                expected = ", ".join(allowed)
                raise self.error(
                    str(key), f"unknown key {key!r} in {form} (expected one of: {expected})"
                )

    def date(self) -> dt.date:
        if "date" not in self.data:
            raise ContentError(
                "front matter: 'date' is missing (add a line 'date: YYYY-MM-DD')", path=self.path
            )
        value = self.data["date"]
        return parse_iso_date(
            str(value), what="front matter: 'date'", path=self.path, line=self.line_of("date")
        )

    def text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, dict | list):
            raise self.error(key, f"{key!r} must be text, got a {type(value).__name__}")
        return str(value).strip() or None


def _split_front_matter(text: str, path: str) -> _FrontMatter:
    lines = split_lines(text.lstrip("\ufeff"))
    if not lines or lines[0].strip() != _FENCE:
        raise ContentError(
            "no YAML front matter: the file must start with a '---' line, then 'date: YYYY-MM-DD'",
            path=path,
            line=1,
        )
    for index in range(1, len(lines)):
        if lines[index].strip() in (_FENCE, "..."):
            break
    else:
        raise ContentError(
            "front matter is not closed: add a '---' line after it", path=path, line=1
        )
    yaml_lines = lines[1:index]
    try:
        data = yaml.load("\n".join(yaml_lines), Loader=_FrontMatterLoader)  # a SafeLoader subclass
    except RecursionError:
        raise ContentError(
            "invalid YAML front matter: nested too deeply", path=path, line=2
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ContentError(f"invalid YAML front matter: {problem}", path=path, line=line) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ContentError(
            "front matter must be 'key: value' lines (date: …, title: …)", path=path, line=2
        )
    return _FrontMatter(data=data, lines=yaml_lines, body_start=index + 1, path=path)


def _yaml_links(fm: _FrontMatter) -> tuple[Link, ...]:
    value = fm.data.get("links")
    pairs: list[tuple[object, object]] = []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        for entry in value:
            if isinstance(entry, dict) and set(entry) == {"label", "url"}:
                pairs.append((entry["label"], entry["url"]))
            elif isinstance(entry, dict) and len(entry) == 1:
                pairs.append(next(iter(entry.items())))
            else:
                raise fm.error(
                    "links",
                    f"each entry of 'links' needs a label and a URL (like '- 原文: https://…' "
                    f"or '- {{label: 原文, url: https://…}}'), got {entry!r}",
                )
    elif value is not None:
        raise fm.error("links", "'links' must be a list or a mapping of label: URL")
    links: list[Link] = []
    for label, url in pairs:
        label_text = str(label).strip()
        url_text = str(url).strip() if url is not None else ""
        if not label_text:
            raise fm.error("links", f"a link has an empty label (URL {url_text!r})")
        if normalize_url(url_text) != url_text:
            raise fm.error(
                "links", f"link {label_text!r} needs an http:// or https:// URL, got {url_text!r}"
            )
        links.append(Link(label_text, url_text))
    if not links:
        raise fm.error("links", f"'links' is empty: add at least a '{PRIMARY_LABEL}' link")
    return primary_first(links)


def _yaml_tags(fm: _FrontMatter) -> tuple[str, ...]:
    value = fm.data.get("tags")
    if value is None:
        return ()
    if isinstance(value, str):
        return split_tags(value)
    if isinstance(value, list) and all(isinstance(t, str | int | float) for t in value):
        return tuple(dict.fromkeys(str(t).strip() for t in value if str(t).strip()))
    raise fm.error("tags", "'tags' must be a list of words or 'a, b, c'")


def _parse_item_file(fm: _FrontMatter, lines: list[str]) -> ParsedDocument:
    fm.check_keys(ITEM_KEYS, "a one-item file")
    date = fm.date()
    title = fm.text("title")
    if title is None:
        raise fm.error("title", "'title' is missing: a one-item file needs the item's headline")
    position = fm.data.get("position", 0)
    if (
        not isinstance(position, int)
        or isinstance(position, bool)
        or not 0 <= position <= MAX_POSITION
    ):
        raise fm.error(
            "position",
            f"'position' must be a whole number from 0 to {MAX_POSITION}, got {position!r}",
        )
    body: list[str] = []
    for index in range(fm.body_start, len(lines)):
        line = clean_line(lines[index])
        if _ITEM_RE.match(line):
            raise ContentError(
                "a one-item file ('links' in its front matter) cannot have '## ' item headings; "
                "for a whole day, move the links into the body",
                path=fm.path,
                line=index + 1,
            )
        body.append(line)
    paragraphs = paragraphs_from_lines(body)
    if not paragraphs:
        raise ContentError(
            f"item {title!r} has no summary: write it below the front matter", path=fm.path
        )
    item = Item(
        date=date,
        title=title,
        summary="\n\n".join(paragraphs),
        links=_yaml_links(fm),
        tags=_yaml_tags(fm),
        section=fm.text("section"),
        position=position,
    )
    return ParsedDocument(path=fm.path, items=[item])


@dataclass
class _Draft:
    number: int
    title: str
    line: int
    section: str | None
    body: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    tags: tuple[str, ...] = ()

    def finish(self, date: dt.date, path: str) -> Item:
        name = f"item {self.number} ({self.title!r})"
        if not self.links:
            raise ContentError(
                f"{name} has no links: add a line like '- {PRIMARY_LABEL}: https://…'",
                path=path,
                line=self.line,
            )
        paragraphs = paragraphs_from_lines(self.body)
        if not paragraphs:
            raise ContentError(f"{name} has no summary text", path=path, line=self.line)
        return Item(
            date=date,
            title=self.title,
            summary="\n\n".join(paragraphs),
            links=primary_first(self.links),
            tags=self.tags,
            section=self.section,
            position=self.number - 1,
        )


def _parse_day_file(fm: _FrontMatter, lines: list[str]) -> ParsedDocument:
    fm.check_keys(DAY_KEYS, "a day file")
    date = fm.date()
    path = fm.path
    items: list[Item] = []
    section: str | None = None
    draft: _Draft | None = None
    for index in range(fm.body_start, len(lines)):
        lineno = index + 1
        line = clean_line(lines[index])
        if (match := _ITEM_RE.match(line)) or (match := _SECTION_RE.match(line)):
            if draft is not None:
                items.append(draft.finish(date, path))
                draft = None
            text = match["text"].strip()
            if not text:
                raise ContentError("empty heading", path=path, line=lineno)
            if line.startswith("##"):
                draft = _Draft(number=len(items) + 1, title=text, line=lineno, section=section)
            else:
                section = text
            continue
        if _DEEPER_RE.match(line):
            raise ContentError(
                "'###' headings are not used: items are '## Headline', sections are '# Section'",
                path=path,
                line=lineno,
            )
        if draft is None:
            if line:
                raise ContentError(
                    "text before the first '## Headline' belongs to no item: "
                    "start an item with '## Headline' or remove the text",
                    path=path,
                    line=lineno,
                )
            continue
        if match := _TAGS_RE.match(line):
            draft.tags = tuple(dict.fromkeys(draft.tags + split_tags(match["tags"])))
            continue
        if match := _LINK_RE.match(line):
            rest = match["url"].strip()
            url = normalize_url(rest)
            if url is not None and not rest[len(url) :].strip(URL_TRAILING):
                draft.links.append(Link(match["label"], url))
                continue
            if match["label"] == PRIMARY_LABEL:
                # Only a link line starts with "原文:"; anything else there is a broken link.
                raise ContentError(
                    f"the {PRIMARY_LABEL} line needs just an http:// or https:// URL, got {rest!r}",
                    path=path,
                    line=lineno,
                )
        draft.body.append(line)
    if draft is not None:
        items.append(draft.finish(date, path))
    if not items:
        raise ContentError(
            "no items: add '## Headline' sections (a whole day), "
            "or 'title' and 'links' to the front matter (one item per file)",
            path=path,
        )
    title, publisher = fm.text("title"), fm.text("publisher")
    briefs = [BriefInfo(date, title, publisher)] if title or publisher else []
    return ParsedDocument(path=path, items=items, briefs=briefs)


def parse_markdown(text: str, *, path: str = "<input>") -> ParsedDocument:
    """Parse a Markdown content file; 'links' in the front matter makes it a one-item file."""
    fm = _split_front_matter(text, path)
    lines = split_lines(text.lstrip("\ufeff"))
    if "links" in fm.data:
        return _parse_item_file(fm, lines)
    return _parse_day_file(fm, lines)
