"""The subscribers part of the store: who gets the brief on each platform."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select, update

from bot.domain import Target, TargetKind
from bot.store.database import Database
from bot.store.models import SubscriberRow, utcnow


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

    @property
    def target(self) -> Target:
        return Target(self.platform, self.chat_id, self.kind, self.name)


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
    )


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

    def subscriber_pages(self, platform: str, *, page: int = 1000) -> Iterator[list[Subscriber]]:
        """Active subscribers of ``platform`` a page at a time (keyset order by id), so a
        fan-out to 100k chats never holds them all in memory."""
        after = 0
        while True:
            with self.session() as s:
                rows = list(
                    s.scalars(
                        select(SubscriberRow)
                        .where(
                            SubscriberRow.platform == platform,
                            SubscriberRow.active.is_(True),
                            SubscriberRow.id > after,
                        )
                        .order_by(SubscriberRow.id)
                        .limit(page)
                    )
                )
                if not rows:
                    return
                after = rows[-1].id
                batch = [_subscriber(r) for r in rows]
            yield batch

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
