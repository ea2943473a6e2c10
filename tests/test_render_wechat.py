"""WeChat rendering: plain text, links written out, split at 1800 code points or a set limit."""

from __future__ import annotations

import datetime as dt
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.domain import Brief, Item, Link
from bot.platforms.base import Limits
from bot.platforms.wechat import LIMITS as WECHAT_LIMITS
from bot.render import BLOCK_BREAK, Renderer

DAY = dt.date(2026, 11, 27)
renderer = Renderer()


def item(n: int, summary: str = "第一段。\n\n第二段。", title: str | None = None) -> Item:
    links = (Link("原文", f"https://example.com/{n}"), Link("论文地址", f"https://arxiv.org/{n}"))
    return Item(DAY, title or f"标题 {n}", summary, links)


def brief_of(items: list[Item]) -> Brief:
    return Brief(DAY, "AI 简报", tuple(items), intro="今天的要闻。", footer="— 完 —")


def split_checked(brief: Brief, limits: Limits | None = None) -> list[str]:
    """Render for WeChat, check every piece fits and nothing but boundary whitespace is lost."""
    messages = renderer.brief(brief, "wechat", limits)
    resolved = limits or WECHAT_LIMITS
    texts = [m.text for m in messages]
    assert texts
    for message in messages:
        assert message.parse_mode is None
        assert 0 < len(message.text) <= resolved.max_length
        assert message.text == message.text.strip()
        assert BLOCK_BREAK not in message.text
    whole = renderer.brief_document(brief, "wechat", limits)
    pattern = r"\s*".join(re.escape(t) for t in texts)
    assert re.fullmatch(pattern, whole, flags=re.DOTALL), "text lost or changed"
    return texts


def test_a_short_brief_is_one_plain_message_with_links_written_out() -> None:
    (text,) = split_checked(brief_of([item(1), item(2)]))
    assert text.startswith("AI 简报 · 2026-11-27\n今天的要闻。")
    assert (
        "1. 标题 1\n第一段。\n\n第二段。\n原文: https://example.com/1\n论文地址: https://arxiv.org/1"
        in text
    )
    assert text.endswith("— 完 —")
    assert "<" not in text and "href" not in text


def test_content_is_neither_escaped_nor_interpreted_as_template() -> None:
    (text,) = split_checked(brief_of([item(1, 'a < b & "c" {% raw %}', title="{{ 7*7 }}")]))
    assert "1. {{ 7*7 }}" in text
    assert "49" not in text
    assert 'a < b & "c" {% raw %}' in text


def test_many_items_split_at_1800_between_items() -> None:
    items = [item(n, "这是一段新闻摘要，讲了一件事。" * 8) for n in range(1, 31)]
    texts = split_checked(brief_of(items))
    assert len(texts) > 3
    for n in range(1, 31):
        holding = [t for t in texts if f"{n}. 标题 {n}\n" in t]
        assert len(holding) == 1
        assert f"论文地址: https://arxiv.org/{n}" in holding[0]


def test_a_long_item_splits_at_paragraphs_then_sentences_at_a_custom_limit() -> None:
    limits = WECHAT_LIMITS.with_overrides(max_length=300)
    paragraphs = ["短段落。", "长句子在这里。" * 100, "Another sentence here. " * 30]
    texts = split_checked(brief_of([item(1, "\n\n".join(paragraphs))]), limits)
    assert len(texts) >= 5
    assert all(len(t) <= 300 for t in texts)
    for text in texts[:-1]:  # cut at a sentence end or a line end (between links)
        assert text[-1] in "。." or text.splitlines()[-1].startswith("原文: "), text


def test_code_points_are_counted_not_utf16_units() -> None:
    limits = WECHAT_LIMITS.with_overrides(max_length=500)
    texts = split_checked(brief_of([item(1, "🚀" * 1200)]), limits)
    assert len(texts) == 4  # the header, then 1200 emoji in three 500-character messages
    assert max(len(t) for t in texts) == 500


words = st.lists(st.sampled_from([*"ab 中文。.!?\n<&", "🚀", "🇨🇳", "\n\n"]), max_size=400).map(
    "".join
)


@settings(deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(words, min_size=1, max_size=8), st.integers(40, 2000))
def test_random_content_splits_without_loss(summaries: list[str], max_length: int) -> None:
    items = [item(n, summary) for n, summary in enumerate(summaries, start=1)]
    split_checked(brief_of(items), WECHAT_LIMITS.with_overrides(max_length=max_length))
