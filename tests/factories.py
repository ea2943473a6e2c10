"""Small builders of domain values for tests."""

from __future__ import annotations

import datetime as dt

from bot.domain import Item, Link

DAY = dt.date(2026, 11, 27)


def make_item(
    title: str = "谷歌发布新一代TPU芯片",
    *,
    date: dt.date = DAY,
    summary: str = "新芯片训练性能提升3倍。\n\n据介绍，它面向大模型训练。",
    url: str | None = None,
    tags: tuple[str, ...] = (),
    position: int = 0,
    section: str | None = None,
) -> Item:
    link_url = url or f"https://example.com/{date.isoformat()}/{position}"
    return Item(
        date=date,
        title=title,
        summary=summary,
        links=(Link("原文", link_url),),
        tags=tags,
        section=section,
        position=position,
    )
