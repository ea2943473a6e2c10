"""Assemble the Brief for a date from the store and the brief settings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from bot.config import BriefSettings
from bot.domain import Brief, Item
from bot.store import Store


def brief_title(date: dt.date, items: Sequence[Item], settings: BriefSettings) -> str:
    """``【AI简报20221014】first headline、second headline`` by default (pattern in config).

    Placeholders are replaced literally (no str.format), so braces in headlines stay text.
    """
    headlines = settings.headline_separator.join(
        item.title for item in items[: max(settings.title_headlines, 0)]
    )
    return (
        settings.title_pattern.replace("{yyyymmdd}", date.strftime("%Y%m%d"))
        .replace("{date}", date.isoformat())
        .replace("{headlines}", headlines)
    )


def assemble_brief(store: Store, date: dt.date, settings: BriefSettings) -> Brief | None:
    """The day's items in order with title, intro and footer; None when the day has no items.

    A title published with the brief (an archive's 原文标题 line) wins over the pattern.
    """
    items = store.items_on(date)
    if not items:
        return None
    info = store.brief_info(date)
    title = info.title if info and info.title else brief_title(date, items, settings)
    return Brief(
        date=date,
        title=title,
        items=tuple(items),
        intro=settings.intro,
        footer=settings.footer,
        publisher=info.publisher if info else None,
    )
