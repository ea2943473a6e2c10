"""Tests for the plain-text (WeChat-style) archive parser."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.domain import BriefInfo, Link
from bot.errors import ContentError
from bot.ingest import parse_archive, parse_file

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
DAY = dt.date(2022, 10, 14)
FOOTER = "原文标题：【AI简报20221014】标题一、标题二\n文章出处：AI简报编辑部\n"


def test_wechat_fixture_items_links_and_brief() -> None:
    doc = parse_file(FIXTURES / "wechat-brief.txt")

    assert [item.position for item in doc.items] == [0, 1, 2]
    assert {item.date for item in doc.items} == {DAY}
    first, second, third = doc.items
    assert first.title == "谷歌发布新一代TPU芯片，训练性能提升3倍"
    # the headline's sentence is not repeated as the summary's first sentence
    assert first.paragraphs == [
        "新芯片采用液冷设计。",
        "据介绍，开发者可以阅读论文原文了解更多细节。",
    ]
    assert first.links == (Link("原文", "https://example.com/news/abc"),)
    # URL on the next line, then several labelled links with ASCII and full-width colons.
    assert second.links == (
        Link("原文", "https://example.org/paper"),
        Link("论文地址", "https://arxiv.org/abs/2210.01234"),
        Link("项目地址", "https://example.com/code/mm"),
    )
    assert second.summary == "Meta开源了一个新的多模态模型，支持图像和文本输入。"  # \u200b removed
    assert second.title == "Meta开源了一个新的多模态模型，支持图像和文本输入"
    # 原文： followed by a line holding only a full-width space, then the URL.
    assert third.links[0] == Link("原文", "https://example.com/news/ghi")
    assert third.links[1] == Link("文章链接", "https://example.net/a?b=1&c=2")
    assert third.title == "OpenAI released a new Transformer library"
    assert doc.briefs == [
        BriefInfo(
            DAY, "【AI简报20221014】谷歌发布新一代TPU芯片、Meta开源多模态模型", "AI简报编辑部"
        )
    ]


def test_debris_after_footer_and_header_are_not_items() -> None:
    doc = parse_file(FIXTURES / "wechat-brief.txt")
    text = "\n".join(item.summary for item in doc.items)
    for debris in ("写下你的评论", "发表", "留言", "每天五分钟", "文章出处"):
        assert debris not in text
    assert not any("\u200b" in i.summary or "\xa0" in i.summary for i in doc.items)


def test_gbk_encoded_archive_is_decoded() -> None:
    raw = (FIXTURES / "gbk-archive.txt").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    doc = parse_file(FIXTURES / "gbk-archive.txt")
    assert doc.items[0].title == "百度发布文心大模型新版本，推理成本下降一半"
    assert doc.items[0].date == dt.date(2022, 10, 15)


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.txt"
    path.write_bytes(("原文: https://example.com/a\n正文。\n" + FOOTER).encode("utf-8-sig"))
    assert parse_file(path).items[0].summary == "正文。"


def test_undecodable_markdown_bytes_raise_content_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.md"
    path.write_bytes("---\ndate: 2022-10-14\n---\n## 标题\n".encode("gbk"))
    with pytest.raises(ContentError, match="UTF-8") as info:
        parse_file(path)
    assert info.value.path == str(path)


def test_original_inside_a_sentence_is_not_a_marker() -> None:
    text = (
        "原文：https://example.com/a\n"
        "研究者建议阅读原文：其中有更多细节。\n"
        "感兴趣的读者可以查看论文原文。\n" + FOOTER
    )
    doc = parse_archive(text)
    assert len(doc.items) == 1
    assert doc.items[0].title == "研究者建议阅读原文：其中有更多细节"
    assert doc.items[0].paragraphs == ["感兴趣的读者可以查看论文原文。"]


def test_label_with_colon_but_no_url_is_text() -> None:
    text = "原文：https://example.com/a\n据介绍：\n模型已经开源。\n" + FOOTER
    item = parse_archive(text).items[0]
    assert (item.title, item.paragraphs) == ("据介绍", ["模型已经开源。"])


def test_original_without_url_names_its_line() -> None:
    text = "原文：https://example.com/a\n第一条。\n\n原文：\n第二条没有链接。\n" + FOOTER
    with pytest.raises(ContentError, match="原文:' has no URL") as info:
        parse_archive(text, path="brief.txt")
    assert info.value.line == 4
    assert str(info.value).startswith("brief.txt:4: ")


def test_original_followed_by_text_on_the_same_line_is_an_error() -> None:
    with pytest.raises(ContentError, match="must be followed by a URL") as info:
        parse_archive("原文：见下文\n正文。\n" + FOOTER)
    assert info.value.line == 1


def test_original_at_end_of_file_without_url() -> None:
    with pytest.raises(ContentError, match="file ends") as info:
        parse_archive("原文：https://example.com/a\n正文。\n原文:\n\n")
    assert info.value.line == 3


def test_missing_title_line_is_an_error_naming_the_file() -> None:
    with pytest.raises(ContentError, match="no 原文标题 line") as info:
        parse_archive("原文：https://example.com/a\n正文。\n", path="archive.txt")
    assert info.value.path == "archive.txt"


@pytest.mark.parametrize(
    "name", ["ai-brief-20221014.txt", "2022-10-14.txt", "x/简报_20221014_v2.txt"]
)
def test_missing_title_line_falls_back_to_a_date_in_the_file_name(name: str) -> None:
    doc = parse_archive("原文：https://example.com/a\n正文。\n", path=name)
    assert doc.items[0].date == DAY
    assert doc.briefs == []


def test_title_line_wins_over_file_name() -> None:
    doc = parse_archive("原文：https://example.com/a\n正文。\n" + FOOTER, path="x-20990101.txt")
    assert doc.items[0].date == DAY


def test_title_line_without_date_is_an_error() -> None:
    text = "原文：https://example.com/a\n正文。\n原文标题：AI简报 今日要闻\n"
    with pytest.raises(ContentError, match="cannot tell the brief's date") as info:
        parse_archive(text, path="a-20221014.txt")
    assert info.value.line == 3


def test_title_line_with_invalid_date_is_an_error() -> None:
    with pytest.raises(ContentError, match="valid date"):
        parse_archive("原文：https://example.com/a\n正文。\n原文标题：【AI简报20221301】x\n")


def test_item_without_text_is_an_error() -> None:
    text = "原文：https://example.com/a\n论文地址：https://arxiv.org/abs/1\n\n" + FOOTER
    with pytest.raises(ContentError, match="no text") as info:
        parse_archive(text)
    assert info.value.line == 1


def test_no_items_is_an_error() -> None:
    with pytest.raises(ContentError, match="no items"):
        parse_archive("AI简报\n今天没有新闻。\n" + FOOTER)


def test_several_briefs_in_one_file_take_their_own_dates() -> None:
    text = (
        "原文：https://example.com/a\n第一天第一条。\n原文：https://example.com/b\n第一天第二条。\n"
        "原文标题：【AI简报20221014】第一天\n文章出处：编辑部\n写下你的评论...\n\n"
        "AI简报 | 每天五分钟\n原文：https://example.com/c\n第二天第一条。\n"
        "文章出处：另一个编辑部\n原文标题：【AI简报2022-10-15】第二天\n"
    )
    doc = parse_archive(text)
    assert [(i.date.day, i.position) for i in doc.items] == [(14, 0), (14, 1), (15, 0)]
    assert doc.briefs == [
        BriefInfo(DAY, "【AI简报20221014】第一天", "编辑部"),
        BriefInfo(dt.date(2022, 10, 15), "【AI简报2022-10-15】第二天", "另一个编辑部"),
    ]


def test_items_after_the_last_title_line_are_an_error() -> None:
    text = "原文：https://example.com/a\n一。\n" + FOOTER + "原文：https://example.com/b\n二。\n"
    with pytest.raises(ContentError, match="no 原文标题") as info:
        parse_archive(text)
    assert info.value.line == 5


def test_crlf_and_trailing_url_punctuation() -> None:
    text = "原文：https://example.com/a。\r\n正文。\r\n" + FOOTER.replace("\n", "\r\n")
    assert parse_archive(text).items[0].primary_url == "https://example.com/a"


def test_bytes_that_are_neither_utf8_nor_gb18030(tmp_path: Path) -> None:
    path = tmp_path / "binary.txt"
    path.write_bytes(b"\xff\xfe\x00\xff garbage")
    with pytest.raises(ContentError, match="cannot decode the file as UTF-8 or GB18030") as info:
        parse_file(path)
    assert info.value.path == str(path)


def test_headlines_keep_abbreviations_and_end_markers_are_not_content() -> None:
    text = (
        "原文：https://example.com/a\n"
        "U.S. regulators approved the first gene therapy for sickle cell. It costs $2M.\n"
        "- END -\n"
        "原文：https://example.com/b\n"
        "Dr. Li and colleagues built a robot hand. It folds shirts.\n"
        "—— END ——\n"
        "（完）\n" + FOOTER
    )
    first, second = parse_archive(text).items
    assert first.title == "U.S. regulators approved the first gene therapy for sickle cell"
    assert first.paragraphs == ["It costs $2M."]
    assert second.title == "Dr. Li and colleagues built a robot hand"
    assert second.paragraphs == ["It folds shirts."]


def test_invalid_utf8_names_the_line_not_a_byte_offset(tmp_path: Path) -> None:
    path = tmp_path / "broken.md"
    path.write_bytes("---\ndate: 2026-11-27\ntitle: 标题\n---\n正文\n坏".encode() + b"\xff\xfe\n")
    with pytest.raises(ContentError) as info:
        parse_file(path)
    assert info.value.line == 6
    assert "bad byte 0xff at column 4 (in bytes)" in str(info.value)
    assert str(info.value).startswith(f"{path}:6: cannot decode the file as UTF-8")
