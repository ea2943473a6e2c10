"""Tests for deriving an archive item's headline from its first paragraph."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.ingest.cleanup import TITLE_MAX_WIDTH, clean_line, derive_title, width


@pytest.mark.parametrize(
    ("paragraph", "title"),
    [
        (
            "谷歌发布新一代TPU芯片，训练性能提升3倍。新芯片采用液冷设计。",
            "谷歌发布新一代TPU芯片，训练性能提升3倍",
        ),
        ("英伟达发布新芯片！性能翻倍。", "英伟达发布新芯片"),
        ("模型已开源；代码见下。", "模型已开源"),
        ("Meta open-sourced a model. It is 7B.", "Meta open-sourced a model"),
        ("Version 3.5 is out. More later.", "Version 3.5 is out"),
        ("“这是一个里程碑，”他说。", "“这是一个里程碑，”他说"),
        ("Short title without a stop", "Short title without a stop"),
        # Too long as a sentence: keep the leading clauses that fit.
        (
            "据外媒报道，英伟达正在为中国市场开发一款新的AI芯片，该芯片将符合美国最新的出口管制规定，"
            "预计明年第一季度开始量产。",
            "据外媒报道，英伟达正在为中国市场开发一款新的AI芯片",
        ),
    ],
)
def test_derive_title(paragraph: str, title: str) -> None:
    assert derive_title(paragraph) == title


def test_long_english_clause_is_cut_at_a_word() -> None:
    paragraph = (
        "OpenAI today released a new open-source Transformer library for training large "
        "language models on commodity hardware with sharded data parallelism."
    )
    title = derive_title(paragraph)
    assert title.endswith("…")
    assert paragraph.startswith(title[:-1])
    assert paragraph[len(title) - 1] == " "  # the cut falls between words
    assert width(title) <= TITLE_MAX_WIDTH


def test_long_chinese_clause_prefers_a_particle_boundary() -> None:
    head = "清华大学联合团队近日发布了一个面向长文本理解的大语言模型训练框架"
    paragraph = head + "并在多个基准测试上取得了当前最好成绩"
    assert derive_title(paragraph) == head + "…"


@given(st.text(min_size=1, max_size=300))
def test_title_is_never_longer_than_the_limit(paragraph: str) -> None:
    paragraph = clean_line(paragraph)
    title = derive_title(paragraph)
    assert width(title) <= TITLE_MAX_WIDTH
