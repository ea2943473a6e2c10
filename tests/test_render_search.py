"""Replies to keyword queries: the best few items with date, title and primary link."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.domain import Item, Link
from bot.platforms.wechat import LIMITS as WECHAT_LIMITS
from bot.render import Renderer

renderer = Renderer()


def found(n: int) -> Item:
    day = dt.date(2026, 11, n % 28 + 1)
    links = (Link("原文", f"https://example.com/{n}"), Link("论文地址", f"https://arxiv.org/{n}"))
    return Item(day, f"开源模型 {n} <新>", "摘要。", links)


def test_telegram_results_show_date_title_and_primary_link() -> None:
    (reply,) = renderer.search_results("开源 & <模型>", [found(1), found(2)], "telegram")
    assert reply.parse_mode == "html"
    assert "「开源 &amp; &lt;模型&gt;」的搜索结果" in reply.text
    assert "共 2 条 / 2 matches" in reply.text
    assert (
        '1. 2026-11-02 <b>开源模型 1 &lt;新&gt;</b>\n<a href="https://example.com/1">原文</a>'
        in (reply.text)
    )
    assert "arxiv" not in reply.text  # only the primary source


def test_wechat_results_write_links_out() -> None:
    (reply,) = renderer.search_results("开源", [found(3)], "wechat")
    assert reply.parse_mode is None
    assert "1. 2026-11-04 开源模型 3 <新>\n原文: https://example.com/3" in reply.text


def test_markdown_results_link_titles() -> None:
    (reply,) = renderer.search_results("开源", [found(3)], "markdown")
    assert "1. 2026-11-04 [开源模型 3 <新>](https://example.com/3)" in reply.text


@pytest.mark.parametrize("platform", ["telegram", "wechat", "markdown"])
def test_no_results_says_so_in_chinese_then_english(platform: str) -> None:
    (reply,) = renderer.search_results("量子", [], platform)
    assert reply.text == "没有找到与「量子」相关的内容 / No items match “量子”."


def test_only_the_best_few_are_shown_and_the_total_is_told() -> None:
    items = [found(n) for n in range(1, 16)]
    (reply,) = renderer.search_results("开源", items, "wechat", total=40)
    assert "共 40 条，显示前 10 条 / 40 matches, the best 10 shown" in reply.text
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
