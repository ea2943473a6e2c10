"""The subscribers part of the store: who gets the brief on each platform, and each reader's
choices (topics, the time of day and time zone, a pause)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import ColumnElement, Text, and_, cast, exists, func, or_, select, update

from bot.domain import DeliveryStatus, Target, TargetKind
from bot.store.database import Database, aware
from bot.store.models import DeliveryRow, SubscriberRow, utcnow

# How an empty topic list is stored (SQLAlchemy's JSON writes "[]"; a row written by hand may
# hold JSON null): both mean "every item".
_NO_TOPICS = ("[]", "null")
# Chat ids per statement when a list of them is the filter (SQLite allows 32766 variables).
_IDS_PER_QUERY = 500


@dataclass(frozen=True)
class Subscriber:
    platform: str
    chat_id: str
    kind: TargetKind
    name: str
    language: str | None
    active: bool
    inactive_reason: str | None
    created_at: dt.datetime
    # the reader's choices: topics (empty: every item); the time of day ("HH:MM") and the
    # IANA time zone it is in (None: the platform's schedule, the schedule's time zone);
    # paused until then (UTC; None: not paused)
    topics: tuple[str, ...] = ()
    send_time: str | None = None
    timezone: str | None = None
    paused_until: dt.datetime | None = None

    @property
    def target(self) -> Target:
        return Target(self.platform, self.chat_id, self.kind, self.name)

    def paused_at(self, now: dt.datetime) -> bool:
        return self.paused_until is not None and self.paused_until > now


def _subscriber(row: SubscriberRow) -> Subscriber:
    return Subscriber(
        platform=row.platform,
        chat_id=row.chat_id,
        kind=TargetKind(row.kind),
        name=row.name,
        language=row.language,
        active=row.active,
        inactive_reason=row.inactive_reason,
        created_at=row.created_at,
        topics=tuple(row.topics or ()),
        send_time=row.send_time,
        timezone=row.timezone,
        paused_until=aware(row.paused_until) if row.paused_until is not None else None,
    )


def _topics_text() -> ColumnElement[str]:
    # the JSON as stored: comparable on SQLite and PostgreSQL alike (PostgreSQL's json type
    # has no equality operator, its text does)
    return cast(SubscriberRow.topics, Text)


def _awake(now: dt.datetime) -> ColumnElement[bool]:
    """Not paused at ``now`` (a pause ends at its time)."""
    return or_(SubscriberRow.paused_until.is_(None), SubscriberRow.paused_until <= _utc(now))


def _utc(moment: dt.datetime) -> dt.datetime:
    # SQLite keeps timezone=True columns as naive text: every value written and compared
    # must be UTC for the comparisons to hold
    return moment.astimezone(dt.UTC)


@dataclass(frozen=True)
class SubscriberFilter:
    """Which active subscribers of a platform a fan-out reaches.

    ``awake_at``: not paused at that moment. ``timed``: True only readers with a time of
    their own, False only those without. ``no_topics``: only readers who take every item;
    ``topic_keys``: only readers whose stored topics are one of these (see
    :meth:`SubscriberStore.topic_sets`). ``chat_ids``: only these chats.
    """

    awake_at: dt.datetime | None = None
    timed: bool | None = None
    no_topics: bool = False
    topic_keys: tuple[str, ...] | None = None
    chat_ids: tuple[str, ...] | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        where: list[ColumnElement[bool]] = []
        if self.awake_at is not None:
            where.append(_awake(self.awake_at))
        if self.timed is True:
            where.append(SubscriberRow.send_time.is_not(None))
        elif self.timed is False:
            where.append(SubscriberRow.send_time.is_(None))
        if self.no_topics:
            where.append(or_(SubscriberRow.topics.is_(None), _topics_text().in_(_NO_TOPICS)))
        if self.topic_keys is not None:
            where.append(_topics_text().in_(self.topic_keys))
        return where


class SubscriberStore(Database):
    """Chats subscribed per platform; inactive ones are kept with the reason."""

    def add_subscriber(
        self,
        platform: str,
        chat_id: str,
        kind: TargetKind = TargetKind.SUBSCRIBER,
        *,
        name: str = "",
        language: str | None = None,
    ) -> bool:
        """Subscribe (or re-activate) a chat. Returns False if it was already active."""
        with self.session() as s:
            row = s.scalars(
                select(SubscriberRow).where(
                    SubscriberRow.platform == platform, SubscriberRow.chat_id == chat_id
                )
            ).one_or_none()
            if row is None:
                s.add(
                    SubscriberRow(
                        platform=platform,
                        chat_id=chat_id,
                        kind=kind.value,
                        name=name,
                        language=language,
                        active=True,
                    )
                )
                return True
            was_active = row.active
            row.active, row.inactive_reason = True, None
            row.name = name or row.name
            row.language = language or row.language
            return not was_active

    def deactivate_subscriber(self, platform: str, chat_id: str, reason: str) -> bool:
        """Mark a chat inactive (unsubscribed, blocked, kicked). Returns False if not active."""
        with self.session() as s:
            result = s.execute(
                update(SubscriberRow)
                .where(
                    SubscriberRow.platform == platform,
                    SubscriberRow.chat_id == chat_id,
                    SubscriberRow.active.is_(True),
                )
                .values(active=False, inactive_reason=reason, updated_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def move_subscriber(self, platform: str, old_chat_id: str, new_chat_id: str) -> None:
        """Follow a chat that changed id (a Telegram group upgraded to a supergroup)."""
        with self.session() as s:
            rows = {
                r.chat_id: r
                for r in s.scalars(
                    select(SubscriberRow).where(
                        SubscriberRow.platform == platform,
                        SubscriberRow.chat_id.in_([old_chat_id, new_chat_id]),
                    )
                )
            }
            old = rows.get(old_chat_id)
            if old is None:
                return
            if new_chat_id in rows:
                s.delete(old)
            else:
                old.chat_id = new_chat_id

    def subscribers(
        self, platform: str | None = None, *, active_only: bool = True
    ) -> list[Subscriber]:
        with self.session() as s:
            query = select(SubscriberRow).order_by(SubscriberRow.id)
            if platform:
                query = query.where(SubscriberRow.platform == platform)
            if active_only:
                query = query.where(SubscriberRow.active.is_(True))
            return [_subscriber(r) for r in s.scalars(query)]

    def subscriber(self, platform: str, chat_id: str) -> Subscriber | None:
        """One chat's subscription (active or not), or None if it never subscribed."""
        with self.session() as s:
            row = s.scalars(
                select(SubscriberRow).where(
                    SubscriberRow.platform == platform, SubscriberRow.chat_id == chat_id
                )
            ).one_or_none()
            return _subscriber(row) if row is not None else None

    def is_subscribed(self, platform: str, chat_id: str) -> bool:
        with self.session() as s:
            found = s.scalar(
                select(SubscriberRow.id).where(
                    SubscriberRow.platform == platform,
                    SubscriberRow.chat_id == chat_id,
                    SubscriberRow.active.is_(True),
                )
            )
            return found is not None

    # -- a reader's choices ------------------------------------------------------------------

    def set_topics(self, platform: str, chat_id: str, topics: Sequence[str]) -> bool:
        """Replace an active subscriber's topics (empty: every item). False if not active.

        Callers store them in one canonical order (:func:`bot.broadcast.canonical_topics`):
        readers with the same topics then have the same stored text, which is what a
        fan-out groups them by."""
        return self._set(platform, chat_id, topics=list(topics))

    def set_send_time(self, platform: str, chat_id: str, send_time: str | None) -> bool:
        """An active subscriber's time of day ("HH:MM"; None: the platform's schedule)."""
        return self._set(platform, chat_id, send_time=send_time)

    def set_timezone(self, platform: str, chat_id: str, timezone: str | None) -> bool:
        """An active subscriber's IANA time zone (None: the schedule's)."""
        return self._set(platform, chat_id, timezone=timezone)

    def pause_subscriber(self, platform: str, chat_id: str, until: dt.datetime | None) -> bool:
        """Pause an active subscriber until ``until`` (None: resume now)."""
        return self._set(platform, chat_id, paused_until=_utc(until) if until is not None else None)

    def _set(self, platform: str, chat_id: str, **values: Any) -> bool:
        with self.session() as s:
            result = s.execute(
                update(SubscriberRow)
                .where(
                    SubscriberRow.platform == platform,
                    SubscriberRow.chat_id == chat_id,
                    SubscriberRow.active.is_(True),
                )
                .values(**values, updated_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    # -- fan-outs ----------------------------------------------------------------------------

    def subscriber_pages(
        self,
        platform: str,
        *,
        page: int = 1000,
        where: SubscriberFilter | None = None,
    ) -> Iterator[list[Subscriber]]:
        """Active subscribers of ``platform`` a page at a time (keyset order by id), so a
        fan-out to 100k chats never holds them all in memory; ``where`` narrows them."""
        where = where or SubscriberFilter()
        if where.chat_ids is not None:
            # a list of chats (the readers due this minute, a --target list): in slices, each
            # a page of its own
            ids = list(dict.fromkeys(where.chat_ids))
            for start in range(0, len(ids), _IDS_PER_QUERY):
                chunk = ids[start : start + _IDS_PER_QUERY]
                with self.session() as s:
                    rows = s.scalars(
                        select(SubscriberRow)
                        .where(
                            SubscriberRow.platform == platform,
                            SubscriberRow.active.is_(True),
                            SubscriberRow.chat_id.in_(chunk),
                            *where.conditions(),
                        )
                        .order_by(SubscriberRow.id)
                    )
                    batch = [_subscriber(r) for r in rows]
                if batch:
                    yield batch
            return
        after = 0
        while True:
            with self.session() as s:
                rows_page = list(
                    s.scalars(
                        select(SubscriberRow)
                        .where(
                            SubscriberRow.platform == platform,
                            SubscriberRow.active.is_(True),
                            SubscriberRow.id > after,
                            *where.conditions(),
                        )
                        .order_by(SubscriberRow.id)
                        .limit(page)
                    )
                )
                if not rows_page:
                    return
                after = rows_page[-1].id
                batch = [_subscriber(r) for r in rows_page]
            yield batch

    def topic_sets(
        self, platform: str, where: SubscriberFilter | None = None
    ) -> list[tuple[str, tuple[str, ...]]]:
        """The distinct topic lists of ``platform``'s active subscribers who chose topics,
        as (the stored text, the topics): one statement, whatever the number of readers.
        The stored text is what :class:`SubscriberFilter` ``topic_keys`` matches."""
        import json

        where = where or SubscriberFilter()
        conditions = [
            SubscriberRow.platform == platform,
            SubscriberRow.active.is_(True),
            SubscriberRow.topics.is_not(None),
            _topics_text().not_in(_NO_TOPICS),
            *where.conditions(),
        ]
        found: set[str] = set()
        with self.session() as s:
            if where.chat_ids is None:
                found.update(s.scalars(select(_topics_text()).where(*conditions).distinct()))
            else:
                ids = list(dict.fromkeys(where.chat_ids))
                for start in range(0, len(ids), _IDS_PER_QUERY):
                    chunk = SubscriberRow.chat_id.in_(ids[start : start + _IDS_PER_QUERY])
                    found.update(
                        s.scalars(select(_topics_text()).where(*conditions, chunk).distinct())
                    )
        out: list[tuple[str, tuple[str, ...]]] = []
        for key in sorted(found):
            try:
                topics = json.loads(key)
            except ValueError:
                continue
            if isinstance(topics, list) and topics:
                out.append((key, tuple(str(t) for t in topics)))
        return out

    def due_readers(
        self,
        platform: str,
        now: dt.datetime,
        brief_date: dt.date,
        *,
        window: float,
        default_timezone: str,
    ) -> list[str]:
        """Chat ids of the readers whose own time of day, in their time zone, fell within
        the last ``window`` seconds up to ``now``, who are not paused and have not had the
        brief of ``brief_date`` (no ledger row for it, or one still pending).

        One statement per time zone in use: the window is a range of "HH:MM" texts in that
        zone (two ranges when it crosses midnight), so the schedule needs no job per reader.
        """
        base = [
            SubscriberRow.platform == platform,
            SubscriberRow.active.is_(True),
            SubscriberRow.send_time.is_not(None),
            _awake(now),
        ]
        had = exists(
            select(DeliveryRow.id).where(
                DeliveryRow.brief_date == brief_date,
                DeliveryRow.platform == SubscriberRow.platform,
                DeliveryRow.chat_id == SubscriberRow.chat_id,
                DeliveryRow.status != DeliveryStatus.PENDING.value,
            )
        )
        due: list[str] = []
        with self.session() as s:
            zones = list(s.scalars(select(SubscriberRow.timezone).where(*base).distinct()))
            for zone in sorted(zones, key=lambda z: z or ""):
                tz = _zone(zone, default_timezone)
                local = now.astimezone(tz)
                start = (now - dt.timedelta(seconds=max(window, 0.0))).astimezone(tz)
                # only the reader's time on the brief's own day counts: 23:30 is not due at
                # 00:05 for the next day's brief, however long the window
                if local.date() < brief_date or start.date() > brief_date:
                    continue
                low = start.strftime("%H:%M") if start.date() == brief_date else "00:00"
                high = local.strftime("%H:%M") if local.date() == brief_date else "23:59"
                in_window: ColumnElement[bool] = SubscriberRow.send_time.between(low, high)
                zone_is = (
                    SubscriberRow.timezone == zone
                    if zone is not None
                    else SubscriberRow.timezone.is_(None)
                )
                due.extend(
                    s.scalars(
                        select(SubscriberRow.chat_id)
                        .where(and_(*base, zone_is, in_window, ~had))
                        .order_by(SubscriberRow.id)
                    )
                )
        return due

    def count_subscribers(self, platform: str) -> int:
        with self.session() as s:
            return (
                s.scalar(
                    select(func.count(SubscriberRow.id)).where(
                        SubscriberRow.platform == platform, SubscriberRow.active.is_(True)
                    )
                )
                or 0
            )


def _zone(name: str | None, default: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or default)
    except (ZoneInfoNotFoundError, ValueError):
        # stored zones are checked when a reader sets them; one that vanished from the
        # system's database falls back to the schedule's rather than failing the minute
        return ZoneInfo(default)
