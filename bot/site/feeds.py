"""The archive's feeds: RSS 2.0, Atom 1.0 and JSON Feed 1.1, one entry per published brief.

XML is built with ElementTree, which escapes every text and attribute; the content has been
cleaned of the characters XML 1.0 forbids (:func:`bot.site.views.clean`) before it gets here.
"""

from __future__ import annotations

import datetime as dt
import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import format_datetime

from markupsafe import escape

from bot.site.views import BriefView

ATOM_NS = "http://www.w3.org/2005/Atom"
CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
XML_NS = "http://www.w3.org/XML/1998/namespace"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR = "briefbot"

# The conventional prefixes (ElementTree would write ns0:, ns1:).
ET.register_namespace("atom", ATOM_NS)
ET.register_namespace("content", CONTENT_NS)


@dataclass(frozen=True, slots=True)
class FeedSite:
    """The feed-level facts: absolute ``base_url`` (ending in /), title, language tag."""

    base_url: str
    title: str
    description: str
    language: str


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One brief in a feed: its page, when it was published, its HTML."""

    view: BriefView
    published: dt.datetime  # aware
    content_html: str

    def url(self, site: FeedSite) -> str:
        return site.base_url + self.view.path

    @property
    def summary(self) -> str:
        """The headlines, as plain text: what a feed reader shows in a list."""
        return "；".join(entry.item.title for entry in self.view.entries)

    @property
    def tags(self) -> list[str]:
        seen: dict[str, None] = {}
        for entry in self.view.entries:
            for tag in entry.item.tags:
                seen.setdefault(tag, None)
        return list(seen)


def _updated(entries: Sequence[FeedEntry], fallback: dt.datetime) -> dt.datetime:
    # the newest entry's time, not the build's: the same archive gives the same bytes
    return max((e.published for e in entries), default=fallback)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _xml(root: ET.Element) -> bytes:
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + body + "\n").encode("utf-8")


def rss(site: FeedSite, entries: Sequence[FeedEntry], fallback: dt.datetime) -> bytes:
    """RSS 2.0 with ``content:encoded`` (the whole brief) and an ``atom:link`` to itself."""
    root = ET.Element("rss", {"version": "2.0"})
    channel = _sub(root, "channel")
    _sub(channel, "title", site.title)
    _sub(channel, "link", site.base_url)
    _sub(channel, "description", site.description)
    _sub(channel, "language", site.language)
    _sub(
        channel,
        f"{{{ATOM_NS}}}link",
        href=site.base_url + "feed.xml",
        rel="self",
        type="application/rss+xml",
    )
    _sub(channel, "lastBuildDate", format_datetime(_updated(entries, fallback)))
    _sub(channel, "generator", GENERATOR)
    for entry in entries:
        item = _sub(channel, "item")
        url = entry.url(site)
        _sub(item, "title", entry.view.title)
        _sub(item, "link", url)
        _sub(item, "guid", url, isPermaLink="true")
        _sub(item, "pubDate", format_datetime(entry.published))
        # RSS readers take a description as HTML: the plain headlines are escaped for it
        _sub(item, "description", str(escape(entry.summary)))
        _sub(item, f"{{{CONTENT_NS}}}encoded", entry.content_html)
        for tag in entry.tags:
            _sub(item, "category", tag)
    return _xml(root)


def atom(site: FeedSite, entries: Sequence[FeedEntry], fallback: dt.datetime) -> bytes:
    """Atom 1.0; each entry's id is its page's URL (stable while the base URL is)."""

    # plain names under an xmlns on the root: ElementTree's default_namespace option
    # refuses the unqualified attributes (rel, href) Atom uses
    root = ET.Element("feed", {"xmlns": ATOM_NS, f"{{{XML_NS}}}lang": site.language})
    _sub(root, "id", site.base_url)
    _sub(root, "title", site.title)
    _sub(root, "subtitle", site.description)
    _sub(root, "updated", _updated(entries, fallback).isoformat())
    _sub(root, "link", rel="self", type="application/atom+xml", href=site.base_url + "atom.xml")
    _sub(root, "link", rel="alternate", type="text/html", href=site.base_url)
    author = _sub(root, "author")
    _sub(author, "name", site.title)
    _sub(root, "generator", GENERATOR)
    for entry in entries:
        element = _sub(root, "entry")
        url = entry.url(site)
        _sub(element, "id", url)
        _sub(element, "title", entry.view.title)
        _sub(element, "link", rel="alternate", type="text/html", href=url)
        _sub(element, "published", entry.published.isoformat())
        _sub(element, "updated", entry.published.isoformat())
        if entry.view.publisher:
            by = _sub(element, "author")
            _sub(by, "name", entry.view.publisher)
        _sub(element, "summary", entry.summary, type="text")
        _sub(element, "content", entry.content_html, type="html")
        for tag in entry.tags:
            _sub(element, "category", term=tag)
    return _xml(root)


def json_feed(site: FeedSite, entries: Sequence[FeedEntry]) -> bytes:
    """JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""
    items = []
    for entry in entries:
        url = entry.url(site)
        item: dict[str, object] = {
            "id": url,
            "url": url,
            "title": entry.view.title,
            "content_html": entry.content_html,
            "summary": entry.summary,
            "date_published": entry.published.isoformat(),
        }
        if entry.view.publisher:
            item["authors"] = [{"name": entry.view.publisher}]
        if entry.tags:
            item["tags"] = entry.tags
        items.append(item)
    feed = {
        "version": JSON_FEED_VERSION,
        "title": site.title,
        "home_page_url": site.base_url,
        "feed_url": site.base_url + "feed.json",
        "description": site.description,
        "language": site.language,
        "authors": [{"name": site.title}],
        "items": items,
    }
    return (json.dumps(feed, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
