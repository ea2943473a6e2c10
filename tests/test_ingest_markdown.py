"""Tests for the Markdown parser: day files, one-item files and their error messages."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from bot.domain import BriefInfo, Link
from bot.errors import ContentError
from bot.ingest import parse_file, parse_markdown

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
DAY = dt.date(2022, 10, 14)


def md(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_day_file_items_sections_links_tags() -> None:
    doc = parse_file(FIXTURES / "day.md")

    assert doc.briefs == [
        BriefInfo(DAY, "谷歌发布新一代TPU芯片、Meta开源多模态模型", "AI简报编辑部")
    ]
    assert [(i.position, i.section, i.title) for i in doc.items] == [
        (0, "芯片", "谷歌发布新一代TPU芯片"),
        (1, "开源", "Meta open-sources a multimodal model"),
        (2, "开源", "量化工具发布"),
    ]
    tpu, meta, _ = doc.items
    # Wrapped lines join without a space in Chinese and with one in English.
    assert tpu.paragraphs == ["谷歌发布新一代TPU芯片，训练性能提升3倍。", "新芯片采用液冷设计。"]
    assert meta.summary == "Meta released a multimodal model under an open-source licence."
    # 原文 becomes the primary link even when written second.
    assert tpu.links == (
        Link("原文", "https://example.com/news/abc"),
        Link("论文地址", "https://arxiv.org/abs/2210.01234"),
    )
    assert tpu.tags == ("芯片", "TPU", "训练")
    assert meta.tags == ("开源",)
    assert all(i.date == DAY for i in doc.items)


def test_one_item_file() -> None:
    doc = parse_file(FIXTURES / "item.md")

    assert doc.briefs == []
    (item,) = doc.items
    assert item.title == "Meta open-sources a model: C++ & CUDA <fast>"
    assert item.links[0] == Link("原文", "https://example.com/news/def")
    assert {link.label for link in item.links} == {"原文", "代码", "论文地址"}
    assert item.tags == ("开源", "multimodal")
    assert item.section == "大模型"
    assert item.position == 3
    assert item.paragraphs == ["First paragraph continues here.", "第二段。"]


def test_one_item_file_links_as_mapping_and_tags_as_text() -> None:
    doc = parse_markdown(
        md("""
        ---
        date: 2022-10-14
        title: 标题
        links: {原文: "https://example.com/a", 代码: "https://example.com/b"}
        tags: 开源、量化
        ---
        正文。
        """)
    )
    assert doc.items[0].links == (
        Link("原文", "https://example.com/a"),
        Link("代码", "https://example.com/b"),
    )
    assert doc.items[0].tags == ("开源", "量化")
    assert doc.items[0].position == 0


def test_invalid_yaml_names_the_line() -> None:
    text = "---\ndate: 2022-10-14\ntitle: [unclosed\n---\n## x\n"
    with pytest.raises(ContentError, match="invalid YAML front matter") as info:
        parse_markdown(text, path="bad.md")
    assert info.value.path == "bad.md"
    assert info.value.line is not None and info.value.line >= 3


def test_missing_front_matter() -> None:
    with pytest.raises(ContentError, match="no YAML front matter") as info:
        parse_markdown("## 标题\n正文\n")
    assert info.value.line == 1


def test_unclosed_front_matter() -> None:
    with pytest.raises(ContentError, match="not closed"):
        parse_markdown("---\ndate: 2022-10-14\n## 标题\n")


def test_missing_date() -> None:
    with pytest.raises(ContentError, match="'date' is missing"):
        parse_markdown("---\ntitle: x\n---\n## 标题\n正文\n- 原文: https://example.com/a\n")


@pytest.mark.parametrize(
    ("value", "shown"),
    [("2022-13-01", "'2022-13-01'"), ("2022/10/14", "'2022/10/14'"), ("20221014", "'20221014'")],
)
def test_bad_date_says_what_it_got(value: str, shown: str) -> None:
    text = f"---\ntitle: x\ndate: {value}\n---\n## 标题\n正文\n- 原文: https://example.com/a\n"
    with pytest.raises(ContentError) as info:
        parse_markdown(text)
    assert info.value.reason.startswith(f"front matter: 'date' must be YYYY-MM-DD, got {shown}")
    assert info.value.line == 3


def test_day_item_without_link_is_named() -> None:
    text = md("""
        ---
        date: 2022-10-14
        ---
        ## 第一条
        正文。
        - 原文: https://example.com/a

        ## 第二条
        正文，链接写错了：htps://example.com/b
        """)
    with pytest.raises(ContentError, match=r"item 2 \('第二条'\) has no links") as info:
        parse_markdown(text)
    assert info.value.line == 8


def test_original_line_with_a_broken_url_is_an_error() -> None:
    text = "---\ndate: 2022-10-14\n---\n## 标题\n正文。\n- 原文: example.com/a\n"
    with pytest.raises(ContentError, match="原文 line needs") as info:
        parse_markdown(text)
    assert info.value.line == 6


def test_day_item_without_summary() -> None:
    text = "---\ndate: 2022-10-14\n---\n## 标题\n- 原文: https://example.com/a\n"
    with pytest.raises(ContentError, match="no summary"):
        parse_markdown(text)


def test_text_before_first_item_is_an_error() -> None:
    text = "---\ndate: 2022-10-14\n---\n\n今日导读\n## 标题\n正文\n- 原文: https://example.com/a\n"
    with pytest.raises(ContentError, match="belongs to no item") as info:
        parse_markdown(text)
    assert info.value.line == 5


def test_third_level_heading_is_an_error() -> None:
    text = "---\ndate: 2022-10-14\n---\n## 标题\n### 小标题\n正文\n- 原文: https://example.com/a\n"
    with pytest.raises(ContentError, match="'###' headings"):
        parse_markdown(text)


def test_day_file_without_items() -> None:
    with pytest.raises(ContentError, match="no items"):
        parse_markdown("---\ndate: 2022-10-14\n---\n\n")


def test_unknown_front_matter_key() -> None:
    text = "---\ndate: 2022-10-14\ntitle: x\nlniks: []\n---\n## 标题\n"
    with pytest.raises(ContentError, match="unknown key 'lniks'") as info:
        parse_markdown(text)
    assert info.value.line == 4


@pytest.mark.parametrize(
    ("links", "message"),
    [
        ("[]", "'links' is empty"),
        ("[https://example.com/a]", "needs a label and a URL"),
        ("{原文: ftp://example.com/a}", "needs an http:// or https:// URL"),
        ("some text", "must be a list or a mapping"),
    ],
)
def test_one_item_file_bad_links(links: str, message: str) -> None:
    text = f"---\ndate: 2022-10-14\ntitle: x\nlinks: {links}\n---\n正文\n"
    with pytest.raises(ContentError, match=message) as info:
        parse_markdown(text)
    assert info.value.line == 4


def test_one_item_file_needs_title_and_body() -> None:
    with pytest.raises(ContentError, match="'title' is missing"):
        parse_markdown("---\ndate: 2022-10-14\nlinks: {原文: https://example.com/a}\n---\n正文\n")
    with pytest.raises(ContentError, match="has no summary"):
        parse_markdown("---\ndate: 2022-10-14\ntitle: x\nlinks: {原文: https://e.com/a}\n---\n\n")


def test_one_item_file_rejects_bad_position() -> None:
    text = "---\ndate: 2022-10-14\ntitle: x\nposition: -1\nlinks: {原文: https://e.com/a}\n---\nx\n"
    with pytest.raises(ContentError, match="'position' must be"):
        parse_markdown(text)


def test_front_matter_must_be_a_mapping() -> None:
    with pytest.raises(ContentError, match="'key: value' lines"):
        parse_markdown("---\n- a\n- b\n---\n")
