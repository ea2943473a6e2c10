"""Template lookup: built-in folder, a user's override folder first, clear errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.domain import Brief, Item, Link
from bot.errors import RenderError
from bot.render import Renderer, default_template_dir

DAY = dt.date(2026, 11, 27)
BRIEF = Brief(DAY, "AI 简报", (Item(DAY, "标题", "摘要。", (Link("原文", "https://e.com/1"),)),))


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def test_default_template_dir_holds_every_platform_template() -> None:
    root = default_template_dir()
    assert root.name == "templates"
    for platform in ("telegram", "wechat"):
        for name in ("brief.j2", "search.j2", "help.j2", "stats.j2"):
            assert (root / platform / name).is_file()
    for name in ("brief.j2", "search.j2"):
        assert (root / "markdown" / name).is_file()


def test_override_folder_takes_precedence_per_template(tmp_path: Path) -> None:
    write(
        tmp_path / "telegram", "brief.j2", "<b>{{ brief.title }}</b> custom: {{ entries|length }}"
    )
    renderer = Renderer(tmp_path)
    (message,) = renderer.brief(BRIEF, "telegram")
    assert message.text == "<b>AI 简报</b> custom: 1"
    # templates the override folder lacks come from the built-in folder
    (reply,) = renderer.search_results("标题", BRIEF.items, "telegram")
    assert "标题" in reply.text and "共 1 条" in reply.text
    (plain,) = renderer.brief(BRIEF, "wechat")
    assert plain.text.startswith("AI 简报 · 2026-11-27")


def test_override_templates_are_escaped_like_built_in_ones(tmp_path: Path) -> None:
    write(tmp_path / "telegram", "note.j2", "<i>{{ note }}</i>")
    write(tmp_path / "wechat", "note.j2", "{{ note }}")
    renderer = Renderer(tmp_path)
    assert renderer.text("telegram", "note.j2", note="<b>&")[0].text == "<i>&lt;b&gt;&amp;</i>"
    assert renderer.text("wechat", "note.j2", note="<b>&")[0].text == "<b>&"


def test_missing_template_names_template_and_folders(tmp_path: Path) -> None:
    with pytest.raises(RenderError) as caught:
        Renderer(tmp_path).text("telegram", "nope.j2")
    message = str(caught.value)
    assert "nope.j2" in message
    assert str(tmp_path / "telegram") in message
    assert str(default_template_dir() / "telegram") in message


def test_markdown_has_no_help_template() -> None:
    with pytest.raises(RenderError, match=r"help\.j2"):
        Renderer().text("markdown", "help.j2")


def test_template_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "wechat", "brief.j2", "line one\n{% for x in %}\n")
    with pytest.raises(RenderError, match=r"brief\.j2:2: template syntax error"):
        Renderer(tmp_path).brief(BRIEF, "wechat")


def test_template_runtime_error_names_template(tmp_path: Path) -> None:
    write(tmp_path / "wechat", "brief.j2", "{{ no_such_variable }}")
    with pytest.raises(RenderError, match=r"brief\.j2.*no_such_variable"):
        Renderer(tmp_path).brief(BRIEF, "wechat")


def test_override_template_writing_bad_html_is_a_render_error(tmp_path: Path) -> None:
    write(tmp_path / "telegram", "brief.j2", "<div>{{ brief.title }}</div>")
    with pytest.raises(RenderError, match=r"brief\.j2.*<div> is not allowed"):
        Renderer(tmp_path).brief(BRIEF, "telegram")


def test_templates_are_sandboxed(tmp_path: Path) -> None:
    write(tmp_path / "wechat", "evil.j2", "{{ brief.__class__.__mro__ }}")
    with pytest.raises(RenderError, match=r"evil\.j2"):
        Renderer(tmp_path).text("wechat", "evil.j2", brief=BRIEF)


def test_missing_override_folder_and_unknown_platform_are_render_errors(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match=r"template_dir"):
        Renderer(tmp_path / "absent")
    with pytest.raises(RenderError, match="unknown platform 'qq'"):
        Renderer().brief(BRIEF, "qq")


@pytest.mark.parametrize("platform", ["telegram", "wechat"])
def test_help_in_chinese_and_english(platform: str) -> None:
    renderer = Renderer()
    commands = [("/search 关键词", "搜索 <简报>"), ("/latest", "最新一期")]
    (zh,) = renderer.text(platform, "help.j2", lang="zh", commands=commands)
    (en,) = renderer.text(platform, "help.j2", lang="en", commands=commands)
    assert "AI 简报机器人" in zh.text
    assert "AI news brief bot" in en.text
    for reply in (zh, en):
        assert "/search 关键词" in reply.text and "/latest" in reply.text
    if platform == "telegram":
        assert "<code>/latest</code> — 最新一期" in zh.text
        assert "搜索 &lt;简报&gt;" in zh.text
        assert zh.parse_mode == "html"
    else:
        assert "/latest — 最新一期" in zh.text
        assert "搜索 <简报>" in zh.text
        assert zh.parse_mode is None
    (bare,) = renderer.text(platform, "help.j2")
    assert "AI 简报机器人" in bare.text


@pytest.mark.parametrize("platform", ["telegram", "wechat"])
def test_stats_render_any_counts(platform: str) -> None:
    renderer = Renderer()
    stats = {"items": 120, "subscribers": 7, "last_delivery": {"sent": 6, "failed": 1}}
    (reply,) = renderer.text(platform, "stats.j2", lang="en", stats=stats)
    assert "Stats" in reply.text
    assert "items: " in reply.text and "120" in reply.text
    assert "sent 6, failed 1" in reply.text
    (empty,) = renderer.text(platform, "stats.j2", counts={})
    assert "暂无数据" in empty.text


def test_long_replies_are_split_too() -> None:
    commands = [(f"/command{n}", "说明" * 50) for n in range(100)]
    messages = Renderer().text("telegram", "help.j2", commands=commands)
    assert len(messages) > 1
    assert all(len(m.text) <= 4096 for m in messages)
    assert all(m.text.count("<code>") <= 100 for m in messages)


def test_tags_become_working_telegram_hashtags_or_plain_text() -> None:
    from bot.render.environment import hashtag

    assert [hashtag(t) for t in ("GPT-5", "Llama 3.1", "芯片", "C++", "开源 模型")] == [
        "#GPT_5",
        "#Llama_3_1",
        "#芯片",
        "C++",
        "#开源_模型",
    ]
