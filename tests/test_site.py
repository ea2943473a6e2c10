"""Tests for the public archive: what is public, the pages, the feeds, the search index, the
atomic swap of a rebuild, and the server that serves the folder."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import feedparser
import httpx
import pytest

from bot.config import Settings, load_settings
from bot.domain import DeliveryStatus, Item, Link, Target
from bot.errors import ConfigError
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.site import SiteReport, build_site, parse_listen, public_dates, resolve_base_url
from bot.site.server import SiteServer, locate
from bot.site.swap import MARKER
from bot.store import Store
from tests.factories import make_item

BASE = "https://brief.example.com/archive/"
AFTER_WEEK = dt.date(2026, 11, 28)  # every sample day (2026-11-20 … 27) is in the past
SAMPLE_DAYS = [dt.date(2026, 11, d) for d in range(27, 19, -1)]
SHANGHAI = ZoneInfo("Asia/Shanghai")
ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"

HOSTILE_DAY = dt.date(2026, 11, 19)
HOSTILE = Item(
    date=HOSTILE_DAY,
    title="<script>alert('t')</script>\"引号\" & <img src=x onerror=alert(1)>",
    summary="正文<img src=x onerror=alert(2)>\x01控制字符\x0b\n\n第二段 </p><script>alert(3)</script>",
    links=(
        Link("恶意", "javascript:alert(4)"),
        Link("大写", "  JaVaScript:alert(5)"),
        Link("制表符", "java\tscript:alert(6)"),
        Link("数据", "data:text/html,<script>alert(7)</script>"),
        Link('原文"><b>', 'https://ok.example/?a="b"&c=<d>'),
    ),
    tags=("<b>标签</b>", "a&b"),
    section='"><svg onload=alert(8)>',
    position=0,
)


class _Markup(HTMLParser):
    """Every tag and attribute of an HTML document."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(tag, name, value or "") for name, value in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def markup(html: str) -> _Markup:
    parser = _Markup()
    parser.feed(html)
    parser.close()
    return parser


def assert_inert(html: str, where: str) -> None:
    """No element, attribute or link that item content could have smuggled in."""
    parsed = markup(html)
    assert not {"img", "svg", "b", "iframe"} & set(parsed.tags), where
    for tag, name, value in parsed.attributes:
        assert not name.startswith("on"), (where, tag, name)
        if name in ("href", "src"):
            lowered = value.strip().lower()
            assert not lowered.startswith(("javascript:", "data:", "java")), (where, value)
            assert "script:" not in lowered, (where, value)
    scripts = [value for tag, name, value in parsed.attributes if tag == "script"]
    assert parsed.tags.count("script") == len(scripts), f"{where}: an inline script"


def settings_with(**site: Any) -> Settings:
    base = load_settings(environ={})
    return replace(base, site=replace(base.site, **site))


@pytest.fixture
def settings() -> Settings:
    return settings_with(base_url=BASE)


@pytest.fixture
def sample_store(tmp_path: Path) -> Iterator[Store]:
    store = Store.open(f"sqlite:///{tmp_path / 'data' / 'briefbot.db'}")
    import_paths(store, [SAMPLES_DIR])
    try:
        yield store
    finally:
        store.close()


def build(
    store: Store, settings: Settings, out: Path, today: dt.date = AFTER_WEEK, **kwargs: Any
) -> SiteReport:
    return build_site(store, settings, out, today=today, **kwargs)


def deliver(store: Store, day: dt.date, status: DeliveryStatus, chat: str = "42") -> None:
    [record] = store.prepare_deliveries(
        day,
        [Target("telegram", chat)],
        parts_total={"telegram": 1},
        content_hash={"telegram": "digest"},
        force=False,
    )
    store.finish_delivery(record.id, status)


# --- what is public -------------------------------------------------------------------------


def test_only_past_days_and_today_once_sent_are_public(store: Store) -> None:
    today = dt.date(2026, 11, 27)
    for day in (today - dt.timedelta(days=1), today, today + dt.timedelta(days=1)):
        store.upsert_items([make_item(date=day)])
    assert public_dates(store, today) == [today - dt.timedelta(days=1)]
    deliver(store, today, DeliveryStatus.FAILED, chat="1")
    deliver(store, today, DeliveryStatus.PENDING, chat="2")
    assert public_dates(store, today) == [today - dt.timedelta(days=1)]
    deliver(store, today, DeliveryStatus.SENT, chat="3")
    assert public_dates(store, today) == [today, today - dt.timedelta(days=1)]
    # a future day is not public even when it was (wrongly) sent early
    deliver(store, today + dt.timedelta(days=1), DeliveryStatus.SENT)
    assert today + dt.timedelta(days=1) not in public_dates(store, today)


def test_build_shows_public_days_only(
    sample_store: Store, settings: Settings, tmp_path: Path
) -> None:
    today = dt.date(2026, 11, 26)  # 26 is today (not sent yet), 27 is the future
    out = tmp_path / "site"
    report = build(sample_store, settings, out, today=today)
    assert report.briefs == 6 and report.latest == dt.date(2026, 11, 25)
    assert not (out / "briefs" / "2026-11-26.html").exists()
    assert not (out / "briefs" / "2026-11-27.html").exists()
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "20261126" not in index and "20261127" not in index
    search_index = (out / "search-index.js").read_text(encoding="utf-8")
    assert "2026-11-26" not in search_index and "2026-11-27" not in search_index

    deliver(sample_store, today, DeliveryStatus.SENT)
    report = build(sample_store, settings, out, today=today)
    assert report.briefs == 7 and report.latest == today
    assert (out / "briefs" / "2026-11-26.html").exists()
    assert not (out / "briefs" / "2026-11-27.html").exists()
    assert "2026-11-27" not in (out / "feed.xml").read_text(encoding="utf-8")


# --- pages ------------------------------------------------------------------------------------


def test_pages_of_the_sample_week(sample_store: Store, settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "site"
    seen: list[tuple[int, int]] = []
    report = build(
        sample_store, settings, out, progress=lambda done, total: seen.append((done, total))
    )
    assert (report.briefs, report.items, report.latest) == (8, 43, dt.date(2026, 11, 27))
    assert report.out_dir == out and report.base_url == BASE
    assert seen[0] == (0, 8) and seen[-1] == (8, 8)
    written = [p for p in out.rglob("*") if p.is_file() and p.name != MARKER]
    assert report.files == len(written)
    assert report.bytes == sum(p.stat().st_size for p in written)
    assert json.loads(json.dumps(report.as_json()))["latest"] == "2026-11-27"

    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in index
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in index
    assert "2026年11月" in index
    positions = [index.index(f'href="briefs/{day.isoformat()}.html"') for day in SAMPLE_DAYS]
    assert positions == sorted(positions), "newest first"
    assert "开源推理引擎 FlowServe 支持 FP4 量化推理" in index  # a headline under its brief

    page = (out / "briefs" / "2026-11-27.html").read_text(encoding="utf-8")
    assert "【AI简报20261127】开源推理引擎支持 FP4" in page
    assert 'href="../briefs/2026-11-26.html"' in page  # the older brief
    assert "2026-11-28" not in page  # no newer one
    middle = (out / "briefs" / "2026-11-24.html").read_text(encoding="utf-8")
    assert 'rel="prev" href="../briefs/2026-11-23.html"' in middle
    assert 'rel="next" href="../briefs/2026-11-25.html"' in middle
    assert '<h2 class="section">芯片与算力</h2>' in middle
    assert f'<link rel="canonical" href="{BASE}briefs/2026-11-24.html">' in middle

    # every item: an anchor on its brief's page and a permalink page linking back to it
    items = sorted((out / "items").glob("*.html"))
    assert len(items) == 43
    for item_page in items:
        day, slug = item_page.stem[:10], item_page.stem[11:]
        brief = (out / "briefs" / f"{day}.html").read_text(encoding="utf-8")
        assert f'id="item-{slug}"' in brief
        assert f'href="../items/{item_page.name}"' in brief
        text = item_page.read_text(encoding="utf-8")
        assert f'href="../briefs/{day}.html#item-{slug}"' in text

    for name in ("site.css", "search.js", "search.html", "404.html"):
        assert (out / name).is_file()
    css = (out / "site.css").read_text(encoding="utf-8")
    assert "overflow-wrap: anywhere" in css and "prefers-color-scheme: dark" in css
    assert '"PingFang SC"' in css and "line-height: 1.8" in css and "max-width: 40em" in css


def test_site_language_english(sample_store: Store, tmp_path: Path) -> None:
    out = tmp_path / "site"
    build(sample_store, settings_with(base_url=BASE, language="en"), out)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in index and "November 2026" in index and "Search" in index
    assert "<language>en</language>" in (out / "feed.xml").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[site\] language"):
        build(sample_store, settings_with(base_url=BASE, language="fr"), out)


def test_template_dir_overrides_site_files(
    sample_store: Store, settings: Settings, tmp_path: Path
) -> None:
    custom = tmp_path / "custom"
    (custom / "site").mkdir(parents=True)
    (custom / "site" / "site.css").write_text("body { color: teal; }\n", encoding="utf-8")
    out = tmp_path / "site"
    build(
        sample_store,
        replace(settings, render=replace(settings.render, template_dir=str(custom))),
        out,
    )
    assert (out / "site.css").read_text(encoding="utf-8") == "body { color: teal; }\n"
    assert (out / "index.html").is_file()  # the other templates are the built-in ones


def test_an_empty_archive_still_builds(tmp_path: Path, settings: Settings) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        report = build(store, settings, tmp_path / "site")
    finally:
        store.close()
    assert (report.briefs, report.items, report.latest) == (0, 0, None)
    assert "还没有公开的简报" in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    for name in ("feed.xml", "atom.xml"):
        parsed = feedparser.parse((tmp_path / "site" / name).read_bytes())
        assert parsed.bozo == 0 and parsed.entries == []
    assert json.loads((tmp_path / "site" / "feed.json").read_text(encoding="utf-8"))["items"] == []


# --- feeds ------------------------------------------------------------------------------------


def test_rss_feed(sample_store: Store, tmp_path: Path) -> None:
    out = tmp_path / "site"
    build(sample_store, settings_with(base_url=BASE, feed_briefs=5), out)
    data = (out / "feed.xml").read_bytes()
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    links = [f"{BASE}briefs/{day.isoformat()}.html" for day in SAMPLE_DAYS[:5]]
    assert [e.link for e in parsed.entries] == links
    assert [e.id for e in parsed.entries] == links
    assert parsed.entries[0].title.startswith("【AI简报20261127】")
    assert parsed.entries[0].published_parsed[:6] == (2026, 11, 27, 0, 0, 0)  # 08:00 +08:00

    channel = ET.fromstring(data).find("channel")
    assert channel is not None
    assert channel.findtext("language") == "zh-CN"
    assert channel.findtext("link") == BASE
    self_link = channel.find(f"{ATOM}link")
    assert self_link is not None and self_link.get("rel") == "self"
    assert self_link.get("href") == BASE + "feed.xml"
    first = channel.find("item")
    assert first is not None
    guid = first.find("guid")
    assert guid is not None and guid.get("isPermaLink") == "true" and guid.text == links[0]
    assert first.findtext("pubDate") == "Fri, 27 Nov 2026 08:00:00 +0800"
    content = first.findtext(CONTENT_ENCODED) or ""
    assert "<h3>" in content and "开源推理引擎 FlowServe" in content
    # links in the content are absolute
    assert f'href="{BASE}items/2026-11-27-' in content


def test_atom_feed(sample_store: Store, settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "site"
    build(sample_store, settings, out)
    data = (out / "atom.xml").read_bytes()
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    links = [f"{BASE}briefs/{day.isoformat()}.html" for day in SAMPLE_DAYS]
    assert [e.link for e in parsed.entries] == links
    assert [e.id for e in parsed.entries] == links
    root = ET.fromstring(data)
    assert root.tag == f"{ATOM}feed"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "zh-CN"
    assert root.findtext(f"{ATOM}updated") == "2026-11-27T08:00:00+08:00"
    self_links = [link for link in root.findall(f"{ATOM}link") if link.get("rel") == "self"]
    assert [link.get("href") for link in self_links] == [BASE + "atom.xml"]
    entry = root.find(f"{ATOM}entry")
    assert entry is not None
    assert entry.findtext(f"{ATOM}published") == "2026-11-27T08:00:00+08:00"
    content = entry.find(f"{ATOM}content")
    assert content is not None and content.get("type") == "html"
    assert "开源推理引擎 FlowServe" in (content.text or "")
    assert parsed.entries[0].author == "AI简报编辑部"


def test_json_feed(sample_store: Store, settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "site"
    build(sample_store, settings, out)
    feed = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == "AI 简报"
    assert feed["home_page_url"] == BASE and feed["feed_url"] == BASE + "feed.json"
    assert feed["language"] == "zh-CN"
    links = [f"{BASE}briefs/{day.isoformat()}.html" for day in SAMPLE_DAYS]
    assert [item["id"] for item in feed["items"]] == links
    assert [item["url"] for item in feed["items"]] == links
    for item in feed["items"]:
        assert item["content_html"].startswith("<")
        published = dt.datetime.fromisoformat(item["date_published"])
        assert published.utcoffset() == dt.timedelta(hours=8)
    assert feed["items"][0]["date_published"] == "2026-11-27T08:00:00+08:00"
    assert "芯片" in feed["items"][0]["tags"]


def test_feed_date_is_the_first_send(
    sample_store: Store, settings: Settings, tmp_path: Path
) -> None:
    today = dt.date(2026, 11, 27)
    deliver(sample_store, today, DeliveryStatus.SENT, chat="1")
    deliver(sample_store, today, DeliveryStatus.SENT, chat="2")
    first = min(r.sent_at for r in sample_store.deliveries(today) if r.sent_at is not None)
    out = tmp_path / "site"
    build(sample_store, settings, out, today=today)
    feed = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    published = dt.datetime.fromisoformat(feed["items"][0]["date_published"])
    expected = first.replace(tzinfo=first.tzinfo or dt.UTC).astimezone(SHANGHAI)
    assert published == expected and published.utcoffset() == dt.timedelta(hours=8)
    assert feed["items"][1]["date_published"] == "2026-11-26T08:00:00+08:00"


# --- hostile content ---------------------------------------------------------------------------


def test_hostile_content_comes_out_inert(
    sample_store: Store, settings: Settings, tmp_path: Path
) -> None:
    sample_store.upsert_items([HOSTILE])
    out = tmp_path / "site"
    build(sample_store, settings, out)

    pages = sorted(out.rglob("*.html"))
    assert pages
    for page in pages:
        assert_inert(page.read_text(encoding="utf-8"), str(page))
    brief = (out / "briefs" / f"{HOSTILE_DAY.isoformat()}.html").read_text(encoding="utf-8")
    text = "".join(markup(brief).text)
    assert "<script>alert('t')</script>\"引号\" & <img src=x onerror=alert(1)>" in text
    assert "javascript:alert(4)" in text  # shown, not linked
    assert "\x01" not in brief and "\x0b" not in brief
    hrefs = [v for tag, name, v in markup(brief).attributes if tag == "a" and name == "href"]
    assert 'https://ok.example/?a="b"&c=<d>' in hrefs  # quotes escaped in the attribute

    for name in ("feed.xml", "atom.xml"):
        data = (out / name).read_bytes()
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0, (name, parsed.get("bozo_exception"))
        ET.fromstring(data)  # well-formed despite the control characters
        hostile = parsed.entries[-1]
        assert hostile.title == "【AI简报20261119】" + HOSTILE.title
    rss = ET.fromstring((out / "feed.xml").read_bytes())
    contents = [e.text or "" for e in rss.iter(CONTENT_ENCODED)]
    assert_inert(contents[-1], "rss content")
    descriptions = [e.text or "" for e in rss.iter("description")]
    assert_inert(descriptions[-1], "rss description")
    assert "&lt;img src=x onerror=alert(1)&gt;" in descriptions[-1]
    atom = ET.fromstring((out / "atom.xml").read_bytes())
    assert_inert(atom.findall(f"{ATOM}entry")[-1].findtext(f"{ATOM}content") or "", "atom")
    feed = json.loads((out / "feed.json").read_text(encoding="utf-8"))
    assert_inert(feed["items"][-1]["content_html"], "json feed")
    assert feed["items"][-1]["title"] == "【AI简报20261119】" + HOSTILE.title

    script = (out / "search-index.js").read_text(encoding="utf-8")
    assert "<" not in script and ">" not in script and "\x01" not in script
    payload = json.loads(script.removeprefix("window.BRIEFBOT_SEARCH = ").removesuffix(";\n"))
    record = next(r for r in payload["items"] if r["date"] == HOSTILE_DAY.isoformat())
    assert record["title"] == HOSTILE.title
    assert record["section"] == HOSTILE.section


# --- the search index -------------------------------------------------------------------------


def test_search_index_has_every_item_and_the_folding_table(
    sample_store: Store, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    build(sample_store, settings, out)
    script = (out / "search-index.js").read_text(encoding="utf-8")
    assert script.startswith("window.BRIEFBOT_SEARCH = ")
    payload = json.loads(script.removeprefix("window.BRIEFBOT_SEARCH = ").removesuffix(";\n"))
    assert len(payload["items"]) == 43
    table = list(payload["t2s"])
    pairs = dict(zip(table[0::2], table[1::2], strict=True))
    assert pairs["開"] == "开" and pairs["機"] == "机" and pairs["體"] == "体"
    first = payload["items"][0]
    assert first["date"] == "2026-11-27" and (out / first["url"]).is_file()
    assert set(first) == {"url", "date", "title", "summary", "tags", "section"}
    search = (out / "search.html").read_text(encoding="utf-8")
    assert '<script src="search-index.js"></script>' in search
    assert '<script src="search.js"></script>' in search
    assert "http" not in (out / "search.js").read_text(encoding="utf-8")  # nothing remote


# --- stable permalinks and atomic rebuilds ----------------------------------------------------


def test_permalinks_are_stable(sample_store: Store, settings: Settings, tmp_path: Path) -> None:
    out = tmp_path / "site"
    build(sample_store, settings, out)
    first = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    build(sample_store, settings, out)
    second = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert first == second, "the same archive builds to the same bytes"

    # a new first item on a day moves the others down; their permalinks stay
    day = dt.date(2026, 11, 27)
    items = sample_store.items_on(day)
    moved = [replace(item, position=item.position + 1) for item in items]
    sample_store.upsert_items([make_item("新的头条", date=day, position=0), *moved])
    build(sample_store, settings, out)
    after = {p.relative_to(out) for p in out.rglob("*.html")}
    assert {p for p in first if p.suffix == ".html"} <= after
    assert len(list((out / "items").glob(f"{day.isoformat()}-*.html"))) == len(items) + 1


def test_rebuild_swaps_the_folder_whole(
    sample_store: Store, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "public" / "site"
    build(sample_store, settings, out)
    assert out.is_symlink()
    first = out.resolve()
    build(sample_store, settings, out)
    second = out.resolve()
    assert second != first and first.is_dir(), "the previous build is kept one build long"
    build(sample_store, settings, out)
    assert not first.exists() and second.is_dir() and out.resolve() not in (first, second)
    leftovers = sorted(p.name for p in out.parent.iterdir())
    assert len([n for n in leftovers if n.startswith(".site.build-")]) == 2
    assert not [n for n in leftovers if ".link-" in n]

    # a build that fails half-way leaves the site as it was and no folder behind
    current = out.resolve()
    before = sorted(out.parent.iterdir())

    def fail(done: int, total: int) -> None:
        if done == 3:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        build(sample_store, settings, out, progress=fail)
    assert out.resolve() == current and sorted(out.parent.iterdir()) == before
    assert (out / "index.html").is_file()


def test_readers_never_see_half_a_site(
    sample_store: Store, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    build(sample_store, settings, out)
    stop = threading.Event()
    problems: list[str] = []
    reads = 0

    def read() -> None:
        nonlocal reads
        while not stop.is_set():
            try:
                index = (out / "index.html").read_text(encoding="utf-8")
                feed = (out / "feed.json").read_text(encoding="utf-8")
            except OSError as exc:
                problems.append(repr(exc))
                continue
            reads += 1
            if not index.endswith("</html>\n") or not feed.endswith("}\n"):
                problems.append("a partial file")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(8):
            build(sample_store, settings, out)
    finally:
        stop.set()
        reader.join()
    assert reads > 0 and problems == []


def test_out_dir_that_briefbot_did_not_build_is_refused(
    sample_store: Store, settings: Settings, tmp_path: Path
) -> None:
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(ConfigError, match="did not write"):
        build(sample_store, settings, foreign)
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".home.build-")]

    blocked = tmp_path / "a-file"
    blocked.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="cannot write there"):
        build(sample_store, settings, blocked / "site")

    # an empty folder, or a real folder an older build left (it has the marker), is taken over
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / MARKER).write_text("built by briefbot\n", encoding="utf-8")
    build(sample_store, settings, legacy)
    assert legacy.is_symlink() and (legacy / "index.html").is_file()


# --- the base URL -------------------------------------------------------------------------------


def test_a_missing_base_url_is_a_clear_config_error(sample_store: Store, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"set \[site\] base_url"):
        build(sample_store, settings_with(), tmp_path / "site")
    assert not (tmp_path / "site").exists()

    assert resolve_base_url(settings_with(listen="127.0.0.1:8080").site) == "http://127.0.0.1:8080/"
    assert resolve_base_url(settings_with().site, "https://x.example/a") == "https://x.example/a/"
    assert resolve_base_url(settings_with(base_url=BASE, listen="127.0.0.1:1").site) == BASE
    with pytest.raises(ConfigError, match=r"\[site\] base_url"):
        resolve_base_url(settings_with(listen="0.0.0.0:8080").site)
    with pytest.raises(ConfigError, match="absolute http"):
        resolve_base_url(settings_with(base_url="ftp://files.example/").site)
    with pytest.raises(ConfigError, match="host:port"):
        parse_listen("8080")
    assert parse_listen("[::1]:8080") == ("::1", 8080)


# --- the server -------------------------------------------------------------------------------


async def test_server_serves_pages_and_feeds_with_their_types(
    sample_store: Store, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    await asyncio.to_thread(build, sample_store, settings, out)
    server = SiteServer(out, "127.0.0.1", 0)
    await server.start()
    try:
        assert server.url == f"http://127.0.0.1:{server.port}/" and server.port > 0
        async with httpx.AsyncClient(base_url=server.url) as client:
            expected = {
                "/": "text/html; charset=utf-8",
                "/index.html": "text/html; charset=utf-8",
                "/briefs/2026-11-27.html": "text/html; charset=utf-8",
                "/feed.xml": "application/rss+xml; charset=utf-8",
                "/atom.xml": "application/atom+xml; charset=utf-8",
                "/feed.json": "application/feed+json; charset=utf-8",
                "/search-index.js": "text/javascript; charset=utf-8",
                "/site.css": "text/css; charset=utf-8",
            }
            for path, content_type in expected.items():
                response = await client.get(path)
                assert response.status_code == 200, path
                assert response.headers["content-type"] == content_type, path
                assert "default-src 'self'" in response.headers["content-security-policy"]
                assert response.headers["x-content-type-options"] == "nosniff"
            home = await client.get("/")
            assert "【AI简报20261127】" in home.text
            head = await client.head("/feed.xml")
            assert head.status_code == 200 and head.content == b""
            missing = await client.get("/briefs/1999-01-01.html")
            assert missing.status_code == 404 and "页面不存在" in missing.text
            folder = await client.get("/briefs")
            assert folder.status_code == 301 and folder.headers["location"] == "/briefs/"
            assert (await client.post("/index.html")).status_code == 405

            # a rebuild is served at once, through the swapped folder
            sample_store.upsert_items(
                [make_item("服务器看到的新条目", date=dt.date(2026, 11, 27), position=9)]
            )
            await asyncio.to_thread(build, sample_store, settings, out)
            page = await client.get("/briefs/2026-11-27.html")
            assert "服务器看到的新条目" in page.text
    finally:
        await server.stop()


async def test_server_started_before_the_first_build(
    sample_store: Store, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "site"
    server = SiteServer(out, "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/")).status_code == 404
            await asyncio.to_thread(build, sample_store, settings, out)
            assert (await client.get("/")).status_code == 200
    finally:
        await server.stop()


async def _raw_get(port: int, target: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
    return status, response


async def test_server_refuses_paths_outside_the_site(
    sample_store: Store, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "data" / "site"
    await asyncio.to_thread(build, sample_store, settings, out)
    (out.parent / "secret.txt").write_text("TOP-SECRET", encoding="utf-8")
    server = SiteServer(out, "127.0.0.1", 0)
    await server.start()
    try:
        for target in (
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/briefs/..%2f..%2fsecret.txt",
            "/briefs/%2e%2e/%2e%2e/secret.txt",
            "/..%5csecret.txt",
            "/.briefbot-site",
            "/%2e%2e/briefbot.db",
            "/../site/../secret.txt",
        ):
            status, response = await _raw_get(server.port, target)
            assert status in (400, 404), (target, response[:200])
            assert b"TOP-SECRET" not in response and b"SQLite" not in response, target
        status, response = await _raw_get(server.port, "//evil.example/briefs")
        assert b"Location: //" not in response
    finally:
        await server.stop()

    assert locate(out, "/../secret.txt").file is None
    assert locate(out, "/%2e%2e/secret.txt").file is None
    assert locate(out, "/index.html").file == out.resolve() / "index.html"
    assert locate(out, "/").file == out.resolve() / "index.html"
    assert locate(out, "//briefs").redirect == "/briefs/"
