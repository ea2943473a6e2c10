"""What the archive's templates and feeds are given: briefs and items as pages, with their paths."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from bot.domain import Brief, Item, Link
from bot.store.content import item_identity

# The site's own words; content is shown as written. {n} and {shown} are replaced literally.
UI_WORDS: dict[str, dict[str, str]] = {
    "zh": {
        "home": "首页",
        "search": "搜索",
        "subscribe": "订阅",
        "archive": "往期简报",
        "older": "上一期",
        "newer": "下一期",
        "items": "{n} 条",
        "contents": "本期目录",
        "in_brief": "当期简报",
        "back_to_brief": "返回当期简报",
        "sources": "来源",
        "tags": "标签",
        "section": "栏目",
        "search_title": "搜索往期简报",
        "search_label": "关键词",
        "search_placeholder": "例如：芯片、开源、Transformer",
        "search_button": "搜索",
        "search_count": "找到 {n} 条",
        "search_more": "找到 {n} 条，显示前 {shown} 条；换个更具体的词试试",
        "search_none": "没有找到相关内容",
        "search_prompt": "输入关键词，搜索所有往期简报（繁体、全角、大小写都能找到）。",
        "search_noscript": "搜索需要启用 JavaScript；也可以在首页按日期浏览。",
        "not_found": "页面不存在",
        "not_found_text": "这个地址没有内容，可以回到首页按日期浏览。",
        "empty": "还没有公开的简报。",
        "feeds": "订阅：",
    },
    "en": {
        "home": "Home",
        "search": "Search",
        "subscribe": "Subscribe",
        "archive": "Archive",
        "older": "Previous",
        "newer": "Next",
        "items": "{n} items",
        "contents": "In this brief",
        "in_brief": "the day's brief",
        "back_to_brief": "Back to the day's brief",
        "sources": "Sources",
        "tags": "Tags",
        "section": "Section",
        "search_title": "Search the archive",
        "search_label": "Keywords",
        "search_placeholder": "e.g. chip, open source, Transformer",
        "search_button": "Search",
        "search_count": "{n} found",
        "search_more": "{n} found, showing the first {shown}; try a more specific word",
        "search_none": "Nothing found",
        "search_prompt": "Type a keyword to search every published brief.",
        "search_noscript": "Search needs JavaScript; the home page lists every brief by date.",
        "not_found": "Page not found",
        "not_found_text": "There is nothing at this address; the home page lists every brief.",
        "empty": "No brief has been published yet.",
        "feeds": "Feeds: ",
    },
}
# The BCP 47 tag of each UI language, for <html lang> and the feeds' language.
LANG_TAGS = {"zh": "zh-CN", "en": "en"}

_WEEKDAYS_ZH = "一二三四五六日"
_WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# Characters XML 1.0 does not allow (C0 controls but tab/newline/return, lone surrogates,
# U+FFFE/U+FFFF): a feed with one is not well-formed, so they are dropped from all content.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_URL_WEB_SCHEMES = frozenset({"http", "https"})


def date_label(day: dt.date, language: str) -> str:
    """``2026年11月27日 星期五`` or ``Friday, 27 November 2026`` (no locale involved)."""
    if language == "en":
        return f"{_WEEKDAYS_EN[day.weekday()]}, {day.day} {_MONTHS_EN[day.month - 1]} {day.year}"
    return f"{day.year}年{day.month}月{day.day}日 星期{_WEEKDAYS_ZH[day.weekday()]}"


def month_label(day: dt.date, language: str) -> str:
    if language == "en":
        return f"{_MONTHS_EN[day.month - 1]} {day.year}"
    return f"{day.year}年{day.month}月"


def clean(text: str) -> str:
    """``text`` without the characters XML 1.0 forbids."""
    return _NOT_XML.sub("", text)


def web_href(url: str) -> str | None:
    """``url`` if it may be an href: http(s) with a host and no whitespace or control
    characters inside (browsers drop a tab from ``java\\tscript:``); else None: shown as text."""
    candidate = url.strip()
    if not candidate or any(ch.isspace() or ord(ch) < 0x20 or ch == "\x7f" for ch in candidate):
        return None
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in _URL_WEB_SCHEMES or not parts.netloc:
        return None
    return candidate


def item_slug(item: Item) -> str:
    """A short stable name for an item: a hash of its identity (primary URL, else title), so
    it does not move when items are reordered. Unique within its day, as the identity is."""
    return hashlib.sha256(item_identity(item).encode("utf-8")).hexdigest()[:12]


def clean_item(item: Item) -> Item:
    return replace(
        item,
        title=clean(item.title),
        summary=clean(item.summary),
        links=tuple(Link(clean(link.label), clean(link.url)) for link in item.links),
        tags=tuple(clean(tag) for tag in item.tags),
        section=clean(item.section) if item.section is not None else None,
    )


@dataclass(frozen=True, slots=True)
class LinkView:
    """A source link: ``href`` is set only when the URL may be a link (http or https)."""

    label: str
    url: str
    href: str | None


@dataclass(frozen=True, slots=True)
class EntryView:
    """An item on its brief's page and its own permalink page."""

    number: int
    item: Item
    # the section heading that starts at this item (its section differs from the previous)
    section: str | None
    slug: str
    links: tuple[LinkView, ...]

    @property
    def anchor(self) -> str:
        """The item's ``id`` on its brief's page."""
        return f"item-{self.slug}"

    @property
    def path(self) -> str:
        """The permalink page, relative to the site's root."""
        return f"items/{self.item.date.isoformat()}-{self.slug}.html"


@dataclass(frozen=True, slots=True)
class BriefView:
    """A published brief as its page shows it."""

    brief: Brief
    entries: tuple[EntryView, ...]
    date_label: str
    count_label: str

    @property
    def date(self) -> dt.date:
        return self.brief.date

    @property
    def title(self) -> str:
        return self.brief.title

    @property
    def publisher(self) -> str | None:
        return self.brief.publisher

    @property
    def intro(self) -> list[str]:
        return _paragraphs(self.brief.intro)

    @property
    def footer(self) -> list[str]:
        return _paragraphs(self.brief.footer)

    @property
    def path(self) -> str:
        return f"briefs/{self.brief.date.isoformat()}.html"


@dataclass(frozen=True, slots=True)
class MonthView:
    label: str
    briefs: tuple[BriefView, ...]


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def brief_view(brief: Brief, language: str) -> BriefView:
    """``brief`` cleaned of characters XML forbids, its items numbered and named."""
    items = [clean_item(item) for item in brief.items]
    cleaned = replace(
        brief,
        title=clean(brief.title),
        items=tuple(items),
        intro=clean(brief.intro),
        footer=clean(brief.footer),
        publisher=clean(brief.publisher) if brief.publisher else None,
    )
    entries: list[EntryView] = []
    seen: set[str] = set()
    previous: str | None = None
    for number, item in enumerate(items, start=1):
        slug = item_slug(item)
        while slug in seen:  # identities are unique per day; this is only belt and braces
            slug = hashlib.sha256(slug.encode()).hexdigest()[:12]
        seen.add(slug)
        starts = item.section if item.section and item.section != previous else None
        previous = item.section
        links = tuple(LinkView(link.label, link.url, web_href(link.url)) for link in item.links)
        entries.append(EntryView(number, item, starts, slug, links))
    words = UI_WORDS.get(language, UI_WORDS["zh"])
    return BriefView(
        brief=cleaned,
        entries=tuple(entries),
        date_label=date_label(brief.date, language),
        count_label=words["items"].replace("{n}", str(len(entries))),
    )


def months_of(briefs: list[BriefView], language: str) -> list[MonthView]:
    """``briefs`` (newest first) grouped by month, newest month first."""
    months: list[MonthView] = []
    for view in briefs:
        label = month_label(view.date, language)
        if months and months[-1].label == label:
            months[-1] = MonthView(label, (*months[-1].briefs, view))
        else:
            months.append(MonthView(label, (view,)))
    return months
