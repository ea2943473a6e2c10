"""Replies to keyword queries: the best few items with date, title and primary link."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.domain import Item, Link
from bot.platforms.wechat import LIMITS as WECHAT_LIMITS
from bot.render import Renderer
from bot.search import SearchResult

renderer = Renderer()


def found(n: int) -> Item:
    day = dt.date(2026, 11, n % 28 + 1)
    links = (Link("原文", f"https://example.com/{n}"), Link("论文地址", f"https://arxiv.org/{n}"))
    return Item(day, f"开源模型 {n} <新>", "摘要。", links)


def test_telegram_results_link_the_headline_to_its_source_and_label_further_links() -> None:
    (reply,) = renderer.search_results("开源 & <模型>", [found(1), found(2)], "telegram")
    assert reply.parse_mode == "html"
    assert reply.text.startswith("🔎 <b>开源 &amp; &lt;模型&gt;</b>：共 2 条，第 1–2 条")
    assert (
        '1. <a href="https://example.com/1">开源模型 1 &lt;新&gt;</a> · 2026-11-02\n摘要。\n'
        '<a href="https://arxiv.org/1">论文地址</a>'
    ) in reply.text
    assert "Results" not in reply.text  # one language per reply


def test_telegram_results_in_english_for_an_english_reader() -> None:
    (reply,) = renderer.search_results("open", [found(1)], "telegram", lang="en")
    assert reply.text.startswith("🔎 <b>open</b>: 1–1 of 1 match")
    assert "共" not in reply.text


def test_hits_are_bold_in_telegram_and_bracketed_in_wechat() -> None:
    from bot.search.snippet import highlight
    from bot.search.tokens import parse_query

    atoms = parse_query("模型").atoms
    item = found(1)
    result = SearchResult(
        item, 1, 1.0, highlight(item.title, atoms), highlight("新模型发布", atoms)
    )
    (html,) = renderer.search_results("模型", [], "telegram", results=[result])
    assert "开源<b>模型</b> 1 &lt;新&gt;</a>" in html.text
    assert "新<b>模型</b>发布" in html.text
    (text,) = renderer.search_results("模型", [], "wechat", results=[result])
    assert "1. 开源【模型】 1 <新> · 2026-11-02\n新【模型】发布" in text.text


def test_wechat_results_write_links_out() -> None:
    (reply,) = renderer.search_results("开源", [found(3)], "wechat")
    assert reply.parse_mode is None
    assert (
        "1. 开源模型 3 <新> · 2026-11-04\n摘要。\n原文: https://example.com/3\n"
        "论文地址: https://arxiv.org/3"
    ) in reply.text


def test_markdown_results_link_titles() -> None:
    (reply,) = renderer.search_results("开源", [found(3)], "markdown")
    assert "1. 2026-11-04 [开源模型 3 <新>](https://example.com/3)" in reply.text


@pytest.mark.parametrize("platform", ["telegram", "wechat", "markdown"])
@pytest.mark.parametrize(
    ("lang", "expected"),
    [("zh", "没有找到与「量子」相关的内容。"), ("en", "No items match “量子”.")],
)
def test_no_results_says_so_in_the_readers_language(
    platform: str, lang: str, expected: str
) -> None:
    (reply,) = renderer.search_results("量子", [], platform, lang=lang)
    assert reply.text == expected


def test_a_later_page_is_numbered_on_and_says_how_to_see_more() -> None:
    items = [found(n) for n in range(1, 6)]
    (reply,) = renderer.search_results(
        "开源", items, "wechat", total=40, offset=5, more="回复 #更多 查看后续结果"
    )
    assert "共 40 条，第 6–10 条" in reply.text
    assert "6. 开源模型 1" in reply.text and "10. 开源模型 5" in reply.text
    assert reply.text.endswith("回复 #更多 查看后续结果")


def test_only_the_best_few_are_shown_and_the_total_is_told() -> None:
    items = [found(n) for n in range(1, 16)]
    (reply,) = renderer.search_results("开源", items, "wechat", total=40)
    assert "共 40 条，第 1–10 条" in reply.text
    assert "10. " in reply.text and "11. " not in reply.text


def test_many_results_split_between_results() -> None:
    items = [found(n) for n in range(1, 11)]
    limits = WECHAT_LIMITS.with_overrides(max_length=200)
    messages = renderer.search_results("开源", items, "wechat", limits)
    assert len(messages) > 1
    for n in range(1, 11):
        holding = [m.text for m in messages if f"开源模型 {n} <新>" in m.text]
        assert len(holding) == 1
        assert f"原文: https://example.com/{n}" in holding[0]
