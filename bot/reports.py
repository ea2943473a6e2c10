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


# A failure that needs a person (a credential, a removed bot or robot), told at once.
_NEEDS_A_PERSON = ("rejected", "security setting", "signature", "logged out", "removed", "kicked")


def send_summary(result: Any, seconds: float) -> tuple[str, list[str]]:
    """One message for the editors after a scheduled or admin send (a
    :class:`bot.broadcast.SendResult`): how many targets, sent, failed grouped by reason,
    gone, how long; and the causes that need a person."""
    counts = result.summary()
    targets = sum(counts.get(k, 0) for k in ("sent", "failed", "gone", "skipped", "pending"))
    lines = [
        f"📮 briefbot · {result.date.isoformat()} · {targets} target(s): "
        f"sent {counts.get('sent', 0)}, failed {counts.get('failed', 0)}, "
        f"gone {counts.get('gone', 0)}, already had it {counts.get('skipped', 0)}, "
        f"pending {counts.get('pending', 0)} · {seconds:.1f} s"
    ]
    reasons: dict[str, int] = {}
    urgent: list[str] = []
    outcomes = result.report.outcomes if result.report is not None else []
    for outcome in outcomes:
        if outcome.status.value not in ("failed", "gone"):
            continue
        reason = f"{outcome.status.value}: {(outcome.error or 'no reason given')[:120]}"
        reasons[reason] = reasons.get(reason, 0) + 1
        gone_channel = outcome.status.value == "gone" and outcome.target.kind.value != "subscriber"
        if gone_channel or any(word in reason.lower() for word in _NEEDS_A_PERSON):
            urgent.append(f"{outcome.target.key} {reason}")
    for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n} × {reason}")
    lines += [f"  ⚠️ {problem}" for problem in result.unresolved]
    return "\n".join(lines), urgent
