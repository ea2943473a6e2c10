"""What the console's pages show, read from the store and rendered with the real renderer:
the calendar of briefs, a day's state, the per-platform preview, the delivery report,
subscribers, the next scheduled runs and the audit log.

Blocking (the store, the renderer): the server runs these in a thread.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select

from bot.brief import brief_title
from bot.console.editing import EditableItem, ItemForm, items_with_ids
from bot.core import Core
from bot.domain import Brief, BriefState, BriefStatus, DeliveryStatus, Item
from bot.errors import BriefbotError
from bot.logs import scrub
from bot.render.length import measure
from bot.store.database import aware
from bot.store.models import AuditRow, ItemRow, SubscriberRow

CALENDAR_DAYS = 60
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
# delivery states a send is still working on: the report refreshes itself while any is left
ACTIVE_DELIVERY = frozenset({DeliveryStatus.PENDING, DeliveryStatus.SENDING})


def http_url(url: str) -> bool:
    """Whether ``url`` may become a link: http(s) with a host, nothing else."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


# -- a brief's state ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DayState:
    """A day's brief in the workflow as the console shows it."""

    state: BriefState  # as bot.editorial.status says (a changed approval is a draft)
    label: str  # draft, approved, published, corrected
    # the items changed since an editor approved (or since it was published)
    changed: bool = False
    note: str = ""
    approved_by: str | None = None
    approved_at: dt.datetime | None = None
    published_at: dt.datetime | None = None


def day_state(stored: BriefStatus | None, brief: Brief | None) -> DayState:
    """What the console says of a day's brief, given its stored state and its items now."""
    from bot.editorial import content_hash

    if stored is None:
        return DayState(BriefState.DRAFT, "draft")
    current = content_hash(brief) if brief is not None else None
    changed = current != stored.content_hash
    state, label, note = stored.state, stored.state.value, ""
    if stored.state is BriefState.DRAFT and stored.approved_by:
        # an approval the content moved away from (bot.editorial.after_ingest demoted it)
        changed = True
    if stored.state in (BriefState.APPROVED, BriefState.DRAFT) and changed:
        state, label = BriefState.DRAFT, "draft"
        note = f"changed since {stored.approved_by} approved it: approve it again"
    elif changed:
        note = "changed since it was published: readers have the old text until a correction"
    return DayState(
        state,
        label,
        changed,
        note,
        approved_by=stored.approved_by,
        approved_at=stored.approved_at,
        published_at=stored.published_at,
    )


def current_brief(core: Core, date: dt.date) -> Brief | None:
    from bot.editorial import current_brief as assemble

    return assemble(core, date)


# -- the calendar -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CalendarDay:
    date: dt.date
    weekday: str
    items: int
    state: DayState | None  # None: no items and no state
    today: bool
    future: bool


@dataclass(frozen=True, slots=True)
class Calendar:
    days: list[CalendarDay]  # newest first
    until: dt.date
    earlier: dt.date  # the ``until`` of the page before
    later: dt.date | None  # of the page after (None: this page ends today)


def calendar(core: Core, until: dt.date | None = None, days: int = CALENDAR_DAYS) -> Calendar:
    """The ``days`` days up to ``until`` (default today), plus, on the first page, every
    later day that has items (editors working ahead)."""
    today = core.today()
    end = min(until or today, today)
    start = end - dt.timedelta(days=days - 1)
    with core.store.session() as s:
        counted = s.execute(
            select(ItemRow.date, func.count(ItemRow.id))
            .where(ItemRow.date >= start, *([ItemRow.date <= end] if end < today else []))
            .group_by(ItemRow.date)
        )
        counts = {day: n for day, n in counted}
    last = max([end, *counts])
    stored = core.store.brief_statuses(start, last)
    entries: list[CalendarDay] = []
    day = last
    while day >= start:
        n = counts.get(day, 0)
        if day <= end or n:
            status = stored.get(day)
            state = None
            if n or status is not None:
                brief = current_brief(core, day) if status is not None else None
                state = day_state(status, brief)
            entries.append(
                CalendarDay(day, WEEKDAYS[day.weekday()], n, state, day == today, day > today)
            )
        day -= dt.timedelta(days=1)
    later = None if end >= today else min(end + dt.timedelta(days=days), today)
    return Calendar(entries, end, start - dt.timedelta(days=1), later)


# -- a day's preview ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PreviewPart:
    number: int
    total: int
    text: str
    size: int
    limit: int
    unit: str
    markup: str


@dataclass(frozen=True, slots=True)
class Preview:
    platform: str
    title: str
    parts: list[PreviewPart]
    error: str = ""
    draft: bool = False  # shows unsaved changes

    def as_json(self) -> dict[str, Any]:
        return {
            "platform": self.platform,
            "title": self.title,
            "draft": self.draft,
            "error": self.error,
            "parts": [
                {
                    "number": p.number,
                    "total": p.total,
                    "text": p.text,
                    "size": p.size,
                    "limit": p.limit,
                    "unit": p.unit,
                    "markup": p.markup,
                }
                for p in self.parts
            ],
        }


def with_draft(
    core: Core, date: dt.date, editable: list[EditableItem], item_id: int | None, form: ItemForm
) -> Brief | None:
    """The day's brief as it would be with the edit form's content saved (``item_id``
    None: added at the end). Raises :class:`~bot.console.editing.EditError`."""
    items = [e.item for e in editable]
    ids = [e.id for e in editable]
    if item_id is None:
        items.append(form.to_item(date, len(items)))
    elif item_id in ids:
        index = ids.index(item_id)
        items[index] = form.to_item(date, items[index].position)
    brief = current_brief(core, date)
    if brief is None and not items:
        return None
    info = core.store.brief_info(date)
    title = info.title if info and info.title else brief_title(date, items, core.settings.brief)
    settings = core.settings.brief
    if brief is None:
        return Brief(date, title, tuple(items), settings.intro, settings.footer)
    return replace(brief, title=title, items=tuple(items))


def preview(
    core: Core,
    date: dt.date,
    platform: str,
    *,
    draft: tuple[int | None, ItemForm] | None = None,
) -> Preview:
    """The brief of ``date`` rendered for ``platform`` as it would be sent: each message with
    its size in the platform's unit against its limit."""
    from bot.console.editing import EditError

    try:
        if draft is None:
            brief = current_brief(core, date)
        else:
            brief = with_draft(core, date, items_with_ids(core, date), *draft)
    except EditError as exc:
        return Preview(platform, "", [], error=f"not shown yet: {exc}", draft=True)
    if brief is None:
        return Preview(platform, "", [], error=f"no items on {date.isoformat()}")
    limits = core.limits(platform)
    try:
        messages = core.renderer.brief(brief, platform, limits)
    except BriefbotError as exc:
        return Preview(platform, brief.title, [], error=scrub(str(exc)), draft=draft is not None)
    parts = [
        PreviewPart(
            number,
            len(messages),
            message.text,
            measure(message.text, limits.length_unit),
            limits.max_length,
            limits.length_unit.value,
            limits.markup.value,
        )
        for number, message in enumerate(messages, start=1)
    ]
    return Preview(platform, brief.title, parts, draft=draft is not None)


# -- deliveries ---------------------------------------------------------------------------


def delivery_report(core: Core, date: dt.date) -> dict[str, Any]:
    """Every target's delivery of ``date`` (the JSON the report page polls)."""
    rows = core.store.deliveries(date)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.status.value] = counts.get(row.status.value, 0) + 1
    tz = core.settings.tz
    return {
        "date": date.isoformat(),
        "active": any(row.status in ACTIVE_DELIVERY for row in rows),
        "counts": counts,
        "rows": [
            {
                "platform": row.platform,
                "chat_id": row.chat_id,
                "kind": row.kind.value,
                "status": row.status.value,
                "parts_sent": row.parts_sent,
                "parts_total": row.parts_total,
                "attempts": row.attempts,
                "error": scrub(row.last_error) if row.last_error else "",
                "sent_at": aware(row.sent_at).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
                if row.sent_at
                else "",
            }
            for row in rows
        ],
    }


# -- subscribers --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubscriberView:
    platform: str
    chat_id: str
    kind: str
    name: str
    active: bool
    inactive_reason: str
    created_at: dt.datetime
    topics: tuple[str, ...] = ()  # the reader's choices (empty: every item)
    send_time: str = ""
    timezone: str = ""
    paused_until: dt.datetime | None = None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def find_subscribers(
    core: Core, query: str, platform: str = "", limit: int = 100
) -> list[SubscriberView]:
    """Subscribers whose id or name contains ``query`` (all when empty), newest first."""
    statement = select(SubscriberRow).order_by(SubscriberRow.id.desc()).limit(limit)
    query = query.strip()
    if query:
        pattern = _like(query)
        statement = statement.where(
            or_(
                SubscriberRow.chat_id.like(pattern, escape="\\"),
                SubscriberRow.name.like(pattern, escape="\\"),
            )
        )
    if platform:
        statement = statement.where(SubscriberRow.platform == platform)
    tz = core.settings.tz
    with core.store.session() as s:
        return [
            SubscriberView(
                r.platform,
                r.chat_id,
                r.kind,
                r.name,
                r.active,
                r.inactive_reason or "",
                aware(r.created_at).astimezone(tz),
                tuple(r.topics or ()),
                r.send_time or "",
                r.timezone or "",
                aware(r.paused_until).astimezone(tz) if r.paused_until else None,
            )
            for r in s.scalars(statement)
        ]


def deactivate_subscriber(core: Core, platform: str, chat_id: str, actor: str) -> bool:
    """Deactivate a subscriber (audited); False when it was not active."""
    done = core.store.deactivate_subscriber(platform, chat_id, f"deactivated by {actor}")
    if done:
        core.store.audit(actor, "deactivate_subscriber", f"{platform}:{chat_id}")
    return done


# -- schedule and audit -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NextRun:
    job: str
    at: dt.datetime | None


def next_runs(core: Core, now: dt.datetime | None = None) -> list[NextRun]:
    """When each configured schedule runs next (from the settings, as ``briefbot status``)."""
    from bot.platforms import specs
    from bot.scheduler import next_runs_from_config

    settings = core.settings
    scheduled = [
        name
        for name, entry in specs().items()
        if entry.has_schedule(settings.platform(name), settings.secret_values(name))
    ]
    moment = now or dt.datetime.now(settings.tz)
    runs = next_runs_from_config(settings, scheduled, moment)
    found = [
        NextRun(job.removeprefix("brief:"), when.astimezone(settings.tz) if when else None)
        for job, when in runs.items()
    ]
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    return sorted(found, key=lambda run: (run.at or far, run.job))


@dataclass(frozen=True, slots=True)
class AuditView:
    id: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, Any]


def audit_log(core: Core, limit: int = 200, *, subject: str | None = None) -> list[AuditView]:
    """The newest audit rows first (of one subject, such as a day, if given)."""
    statement = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
    if subject is not None:
        statement = statement.where(AuditRow.subject == subject)
    tz = core.settings.tz
    with core.store.session() as s:
        return [
            AuditView(
                r.id,
                aware(r.at).astimezone(tz),
                r.actor,
                r.action,
                r.subject,
                dict(r.detail or {}),
            )
            for r in s.scalars(statement)
        ]


def audit_summary(entry: AuditView) -> str:
    """One line of what an audit row's detail says (the whole detail is on the page too)."""
    detail = entry.detail
    if entry.action == "edit_item":
        after = detail.get("after") or {}
        return f"{after.get('title', '')} (changed: {', '.join(detail.get('changed', []))})"
    for key in ("item",):
        if isinstance(detail.get(key), dict):
            return str(detail[key].get("title", ""))
    for key in ("title", "reason", "platform"):
        if key in detail:
            return str(detail[key])
    return ""


def day_items(core: Core, date: dt.date) -> list[tuple[EditableItem, ItemForm]]:
    return [(e, ItemForm.of(e.item)) for e in items_with_ids(core, date)]


def item_links(item: Item) -> list[tuple[str, str, bool]]:
    """(label, url, may be a link) per link of ``item``."""
    return [(link.label, link.url, http_url(link.url)) for link in item.links]
