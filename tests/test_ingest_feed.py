"""Tests for the RSS/Atom feed parser (feedparser) and its HTML-to-text step."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.domain import BriefInfo, Link
from bot.errors import ContentError
from bot.ingest import fetch_feed, parse_feed, parse_file

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"


def test_rss_entries_become_items_on_their_shanghai_day() -> None:
    doc = parse_file(FIXTURES / "feed.rss")

    first, second, third = doc.items
    # 17:30 UTC on the 13th is 01:30 on the 14th in Shanghai; 15:00 UTC is 23:00 on the 13th.
    assert (first.date, second.date, third.date) == (
        dt.date(2022, 10, 14),
        dt.date(2022, 10, 13),
        dt.date(2022, 10, 14),
    )
    assert [i.position for i in doc.items] == [0, 0, 1]
    assert first.title == "谷歌发布新一代TPU芯片"
    assert first.paragraphs == [
        "谷歌发布新一代TPU芯片，训练性能提升3倍。",
        "新芯片采用 液冷设计 & 支持 C++ <templates>。",
    ]
    assert "alert" not in first.summary
    assert first.links == (Link("原文", "https://example.com/news/abc"),)
    assert first.tags == ("芯片",)
    assert second.paragraphs == ["Meta released a model.", "It is open-source."]
    assert BriefInfo(dt.date(2022, 10, 13), None, "AI简报 & friends") in doc.briefs


def test_atom_content_html_is_stripped() -> None:
    doc = parse_file(FIXTURES / "feed.atom")

    quant, updated = doc.items
    assert quant.title == "Quantization <4-bit> goes mainstream"
    assert quant.paragraphs == ["量化", "First bold paragraph.", "one", "two"]
    assert quant.primary_url == "https://example.com/news/quant"
    assert quant.date == dt.date(2022, 10, 14)
    assert updated.date == dt.date(2022, 10, 14)  # 20:00 UTC on the 13th, from <updated>
    assert updated.summary == "Updated only."


def test_explicit_date_applies_to_every_entry() -> None:
    day = dt.date(2030, 1, 2)
    doc = parse_file(FIXTURES / "feed.rss", feed_date=day)
    assert {i.date for i in doc.items} == {day}
    assert [i.position for i in doc.items] == [0, 1, 2]


def test_feed_as_text() -> None:
    text = (FIXTURES / "feed.atom").read_text(encoding="utf-8")
    assert len(parse_feed(text).items) == 2


def test_entry_without_date_needs_an_explicit_one() -> None:
    rss = (
        "<rss version='2.0'><channel><title>t</title><item><title>无日期</title>"
        "<link>https://example.com/a</link><description>x</description></item></channel></rss>"
    )
    with pytest.raises(ContentError, match=r"entry 1 \('无日期'\) has no published"):
        parse_feed(rss)
    assert parse_feed(rss, date=dt.date(2022, 1, 1)).items[0].date == dt.date(2022, 1, 1)


def test_entry_without_link_is_an_error() -> None:
    rss = (
        "<rss version='2.0'><channel><title>t</title><item><title>无链接</title>"
        "<description>x</description></item></channel></rss>"
    )
    with pytest.raises(ContentError, match="has no link"):
        parse_feed(rss, date=dt.date(2022, 1, 1))


def test_not_a_feed() -> None:
    with pytest.raises(ContentError, match="not an RSS or Atom feed") as info:
        parse_feed(b"hello, this is not xml", path="x.xml")
    assert info.value.path == "x.xml"


def test_fetch_feed_rejects_non_http_urls() -> None:
    with pytest.raises(ContentError, match="http:// or https://"):
        fetch_feed("file:///etc/passwd")
