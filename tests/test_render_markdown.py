"""Markdown rendering: one document for previews and archives."""

from __future__ import annotations

import datetime as dt

from bot.domain import Brief, Item, Link
from bot.render import Renderer

DAY = dt.date(2026, 11, 27)


def test_markdown_document_shape() -> None:
    items = (
        Item(
            DAY,
            "谷歌发布新一代TPU",
            "性能提升3倍。\n\n面向大模型训练。",
            (Link("原文", "https://example.com/a"), Link("论文地址", "https://arxiv.org/abs/1")),
            tags=("芯片", "Google"),
            section="硬件",
        ),
        Item(DAY, "{{ 7*7 }}", "摘要。", (Link("原文", "https://example.com/b"),), section="硬件"),
    )
    brief = Brief(DAY, "AI 简报", items, intro="今天的要闻。", footer="— 完 —", publisher="AI 日报")
    (message,) = Renderer().brief(brief, "markdown")
    assert message.parse_mode is None
    assert message.text == (
        "# AI 简报\n"
        "\n"
        "2026-11-27 · AI 日报\n"
        "\n"
        "今天的要闻。\n"
        "\n"
        "**【硬件】**\n"
        "\n"
        "## 1. 谷歌发布新一代TPU\n"
        "\n"
        "性能提升3倍。\n"
        "\n"
        "面向大模型训练。\n"
        "\n"
        "- [原文](https://example.com/a)\n"
        "- [论文地址](https://arxiv.org/abs/1)\n"
        "\n"
        "标签 / Tags: 芯片, Google\n"
        "\n"
        "## 2. {{ 7*7 }}\n"
        "\n"
        "摘要。\n"
        "\n"
        "- [原文](https://example.com/b)\n"
        "\n"
        "---\n"
        "\n"
        "— 完 —"
    )


def test_link_labels_and_urls_are_escaped() -> None:
    link = Link("原文 [beta] (v2)", "https://example.com/a b_(c)")
    brief = Brief(DAY, "AI 简报 2026-11-27", (Item(DAY, "T", "S", (link,)),))
    (message,) = Renderer().brief(brief, "markdown")
    assert r"- [原文 \[beta\] \(v2\)](https://example.com/a%20b_%28c%29)" in message.text
    assert message.text.startswith("# AI 简报 2026-11-27\n\n## 1. T")  # date in title: not repeated


def test_markdown_is_one_message_however_long() -> None:
    items = tuple(Item(DAY, f"T{n}", "句子。" * 500, ()) for n in range(20))
    messages = Renderer().brief(Brief(DAY, "AI 简报", items), "markdown")
    assert len(messages) == 1
    assert len(messages[0].text) > 30000
