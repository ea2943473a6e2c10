"""What the CLI, the chat's /stats and scripts read: "the latest day", status counts and the
JSON shapes the README promises. One module, so they cannot disagree."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.domain import Brief, Item
from bot.platforms import specs
from bot.store import Store


def latest_day(store: Store, today: dt.date) -> dt.date | None:
    """The day a reader means by "the latest brief": the newest day with items up to today,
    or, when only future days have items (an editor working ahead), the newest of those."""
    return store.latest_date(on_or_before=today) or store.latest_date()


def item_json(item: Item) -> dict[str, Any]:
    return {
        "date": item.date.isoformat(),
        "title": item.title,
        "summary": item.summary,
        "links": [{"label": link.label, "url": link.url} for link in item.links],
        "tags": list(item.tags),
        "section": item.section,
        "position": item.position,
    }


# The outbound webhook's contract: bump on an incompatible change (README, "Outbound webhook").
BRIEF_JSON_SCHEMA = "briefbot.brief/1"


def brief_json(brief: Brief) -> dict[str, Any]:
    """A day's brief as the outbound webhook posts it (and ``preview --json`` prints it)."""
    return {
        "schema": BRIEF_JSON_SCHEMA,
        "date": brief.date.isoformat(),
        "title": brief.title,
        "publisher": brief.publisher,
        "intro": brief.intro,
        "footer": brief.footer,
        "items": [item_json(item) for item in brief.items],
    }


def platform_status(store: Store, platform: str) -> dict[str, Any]:
    """Subscribers and the last delivery (its day and counts by status) of one platform."""
    last = store.last_delivery_date(platform)
    return {
        "subscribers": store.count_subscribers(platform),
        "last_delivery": None
        if last is None
        else {"date": last.isoformat(), **store.delivery_counts(last, platform)},
    }


def status(store: Store, today: dt.date, settings: Any) -> dict[str, Any]:
    """``briefbot status --json`` and the admins' /stats: items, the latest day, and per
    platform its subscribers, configured channels or groups, and last delivery."""
    latest = latest_day(store, today)
    platforms: dict[str, Any] = {}
    for name, entry in specs().items():
        platforms[name] = {
            **platform_status(store, name),
            "configured_targets": len(entry.configured_targets(settings.platform(name))),
        }
    return {
        "items": store.count_items(),
        "latest_day": latest.isoformat() if latest else None,
        "platforms": platforms,
    }
