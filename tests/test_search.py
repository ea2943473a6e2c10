"""Keyword search: two-character Chinese words, English case-insensitively, ranking, safety."""

from __future__ import annotations

import datetime as dt

from bot.search import search, search_page
from bot.search.tokens import parse_query
from bot.store import Store
from tests.factories import DAY, make_item


def seed(store: Store) -> None:
    store.upsert_items(
        [
            make_item(
                "英伟达发布新款AI芯片", summary="新芯片面向推理。", position=0, tags=("芯片",)
            ),
            make_item(
                "Meta open-sources a Transformer variant",
                summary="The TRANSFORMER is small.",
                position=1,
            ),
            make_item("大模型量化新方法", summary="4比特量化几乎无损。", position=2),
            make_item("机器人新闻", summary="与芯片无关的描述里提到芯片一次。", position=3),
            make_item(
                "旧闻：芯片出口",
                date=DAY - dt.timedelta(days=3),
                summary="旧的芯片新闻。",
                position=0,
            ),
        ]
    )


def test_two_character_chinese_words(store: Store) -> None:
    seed(store)
    titles = [r.item.title for r in search(store, "芯片", limit=10)]
    assert set(titles) == {"英伟达发布新款AI芯片", "机器人新闻", "旧闻：芯片出口"}
    assert titles[0] == "英伟达发布新款AI芯片"  # title and tag hits rank first
    assert [r.item.title for r in search(store, "量化")] == ["大模型量化新方法"]


def test_english_is_case_insensitive(store: Store) -> None:
    seed(store)
    for query in ("transformer", "TRANSFORMER", "Transformer"):
        assert [r.item.title for r in search(store, query)] == [
            "Meta open-sources a Transformer variant"
        ]
    assert [r.item.title for r in search(store, "open-sources")] == [
        "Meta open-sources a Transformer variant"
    ]


def test_full_width_query_matches_ascii_text(store: Store) -> None:
    seed(store)
    assert [r.item.title for r in search(store, "ＡＩ芯片")] == ["英伟达发布新款AI芯片"]


def test_all_terms_must_match(store: Store) -> None:
    seed(store)
    assert [r.item.title for r in search(store, "芯片 推理")] == ["英伟达发布新款AI芯片"]
    page = search_page(store, "芯片 不存在的词")
    assert page.partial  # nothing has both: the items with one of them, and the page says so
    assert {r.item.title for r in page.results} == {
        "英伟达发布新款AI芯片",
        "机器人新闻",
        "旧闻：芯片出口",
    }


def test_newer_first_among_equal_scores(store: Store) -> None:
    store.upsert_items(
        [
            make_item("芯片甲", date=DAY - dt.timedelta(days=1), summary="x", position=0),
            make_item("芯片乙", date=DAY, summary="x", position=0),
        ]
    )
    assert [r.item.title for r in search(store, "芯片")] == ["芯片乙", "芯片甲"]


def test_hostile_queries_are_plain_text(store: Store) -> None:
    seed(store)
    for query in ("'; DROP TABLE items; --", "%", "_", "\\", "<script>", "{{ 7*7 }}"):
        assert search(store, query) == []
    assert store.count_items() == 5
    assert search(store, "   ") == []


def test_control_characters_in_a_query_are_not_syntax_nor_stored(store: Store) -> None:
    """A NUL byte matched every item on SQLite and failed on PostgreSQL (first wave)."""
    seed(store)
    assert search(store, "\x00") == [] and search(store, "\x01\x7f") == []
    page = search_page(store, "芯片\x00")
    assert list(page.query.terms) == ["芯片"]
    assert page.total == search_page(store, "芯片").total > 0
    store.count_query(" ".join(page.query.terms), found=True, day=DAY)
    assert [c.query for c in store.query_counts(since=DAY)] == ["芯片"]


def test_query_terms_are_folded_deduplicated_and_bounded() -> None:
    assert parse_query("  Foo  ＢＡＲ foo ").terms == ("foo", "bar")
    assert len(parse_query(" ".join(f"w{i}" for i in range(50)), max_length=500).terms) == 8
    assert parse_query("x" * 500, max_length=64).terms == ("x" * 64,)
