"""The delivery ledger: one row per (brief date, platform, chat), each step committed.

A row is claimed by one run at a time (a compare-and-set on ``attempts``), each part is
committed as sent before the next part to that chat is tried, and a row whose sent parts
came from another rendering is never resumed part by part. Writes come in batches (claims
for a page of targets, the parts sent by many chats in one commit) so that a large fan-out
costs a few commits per hundred messages, not two per message.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import JSON, Connection, Row, Table, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from bot.domain import ClaimResult, DeliveryStatus, Target, TargetKind
from bot.errors import StoreError
from bot.store.database import Database, aware
from bot.store.models import DeliveryRow, MessagesSentRow, utcnow

# A delivery in one of these states is done: a later run without --force leaves it alone.
FINAL_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.GONE, DeliveryStatus.SKIPPED)
_FINAL = frozenset(s.value for s in FINAL_STATUSES)
MayTakeOver = Callable[[str, dt.datetime], bool]
_DELIVERIES = cast(Table, DeliveryRow.__table__)


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    brief_date: dt.date
    platform: str
    chat_id: str
    kind: TargetKind
    status: DeliveryStatus
    parts_total: int
    parts_sent: int
    attempts: int
    last_error: str | None
    message_ids: list[str] = field(default_factory=list)
    sent_at: dt.datetime | None = None

    @property
    def target(self) -> Target:
        return Target(self.platform, self.chat_id, self.kind)


@dataclass(frozen=True, slots=True)
class PartSent:
    """One part the platform accepted, to be committed: ``message_ids`` is the row's whole
    list so far (the run holding the claim is the only writer of it)."""

    delivery_id: int
    worker: str
    parts_sent: int
    message_ids: tuple[str, ...]
    last: bool
    # counted towards (platform, day) for a daily cap, in the same transaction; None: not
    counts_for: tuple[str, dt.date] | None = None


def _record(row: Row[Any] | DeliveryRow) -> DeliveryRecord:
    """A ledger row (an ORM object or a Core row: the same attributes) as a value."""
    return DeliveryRecord(
        id=row.id,
        brief_date=row.brief_date,
        platform=row.platform,
        chat_id=row.chat_id,
        kind=TargetKind(row.kind),
        status=DeliveryStatus(row.status),
        parts_total=row.parts_total,
        parts_sent=row.parts_sent,
        attempts=row.attempts,
        last_error=row.last_error,
        message_ids=list(row.message_ids or []),
        sent_at=row.sent_at,
    )


def _part_params(part: PartSent) -> dict[str, object]:
    return {
        "b_id": part.delivery_id,
        "b_worker": part.worker,
        "b_parts": part.parts_sent,
        "b_ids": list(part.message_ids),
    }


def changed_brief_error(parts_sent: int, parts_total: int) -> str:
    return (
        f"the brief changed after {parts_sent} of {parts_total} parts were sent; "
        "send it again with --force to deliver the new version"
    )


class Ledger(Database):
    """Deliveries: who got which day's brief, part by part."""

    def prepare_deliveries(
        self,
        date: dt.date,
        targets: Sequence[Target],
        *,
        parts_total: Mapping[str, int],
        content_hash: Mapping[str, str],
        force: bool,
    ) -> list[DeliveryRecord]:
        """Make sure a ledger row exists per target (one statement for the whole batch);
        with ``force`` reset them to pending. Returns the rows in the targets' order."""
        if not targets:
            return []
        insert = postgresql_insert if self.dialect == "postgresql" else sqlite_insert
        values: list[dict[str, object]] = [
            {
                "brief_date": date,
                "platform": t.platform,
                "chat_id": t.chat_id,
                "kind": t.kind.value,
                "status": DeliveryStatus.PENDING.value,
                "parts_total": parts_total[t.platform],
                "parts_sent": 0,
                "attempts": 0,
                "message_ids": [],
                "content_hash": content_hash[t.platform],
                "created_at": utcnow(),
                "updated_at": utcnow(),
            }
            for t in targets
        ]
        try:
            with self.session() as s:
                s.execute(insert(DeliveryRow).values(values).on_conflict_do_nothing())
                rows = self._rows_for(s, date, targets)
                if force:
                    for target in targets:
                        row = rows[(target.platform, target.chat_id)]
                        row.status = DeliveryStatus.PENDING.value
                        row.parts_total, row.parts_sent = parts_total[target.platform], 0
                        row.message_ids = []
                        row.last_error, row.sent_at = None, None
                        row.content_hash = content_hash[target.platform]
                        # a run still sending the old version loses its claim
                        row.claimed_by, row.attempts = None, row.attempts + 1
                    s.flush()
                return [_record(rows[(t.platform, t.chat_id)]) for t in targets]
        except IntegrityError as exc:
            raise StoreError(
                f"ledger conflict preparing deliveries for {date}: {exc.orig}"
            ) from exc

    @staticmethod
    def _rows_for(
        s: object, date: dt.date, targets: Sequence[Target]
    ) -> dict[tuple[str, str], DeliveryRow]:
        from sqlalchemy.orm import Session

        assert isinstance(s, Session)
        by_platform: dict[str, list[str]] = {}
        for target in targets:
            by_platform.setdefault(target.platform, []).append(target.chat_id)
        rows: dict[tuple[str, str], DeliveryRow] = {}
        for platform, chat_ids in by_platform.items():
            for row in s.scalars(
                select(DeliveryRow).where(
                    DeliveryRow.brief_date == date,
                    DeliveryRow.platform == platform,
                    DeliveryRow.chat_id.in_(chat_ids),
                )
            ):
                rows[(row.platform, row.chat_id)] = row
        return rows

    def claim(
        self,
        delivery_id: int,
        worker: str,
        *,
        content_hash: str,
        parts_total: int,
        may_take_over: MayTakeOver,
    ) -> tuple[ClaimResult, DeliveryRecord | None]:
        """Claim one delivery for ``worker`` (see :meth:`claim_many`)."""
        [(result, record)] = self.claim_many(
            [delivery_id],
            worker,
            content_hash={delivery_id: content_hash},
            parts_total={delivery_id: parts_total},
            may_take_over=may_take_over,
        )
        return result, record

    def claim_many(
        self,
        delivery_ids: Sequence[int],
        worker: str,
        *,
        content_hash: Mapping[int, str],
        parts_total: Mapping[int, int],
        may_take_over: MayTakeOver,
    ) -> list[tuple[ClaimResult, DeliveryRecord | None]]:
        """Claim deliveries for ``worker`` in one transaction; per id, what happened and the
        claimed row.

        A row another worker is sending is left alone unless ``may_take_over`` says that
        worker is gone. Each claim is a compare-and-set on ``attempts`` (one statement run
        for the whole batch, then read back), so two runs racing for one row cannot both
        win. A row whose sent parts came from a different rendering is failed: resuming it
        part by part would repeat or skip text.
        """
        table = _DELIVERIES
        results: dict[int, tuple[ClaimResult, DeliveryRecord | None]] = {}
        now = utcnow()
        with self.engine.begin() as connection:
            rows = {
                r.id: r
                for r in connection.execute(select(table).where(table.c.id.in_(delivery_ids)))
            }
            wanted: list[dict[str, object]] = []
            changed: list[int] = []
            decided: set[int] = set()
            for delivery_id in delivery_ids:
                row = rows.get(delivery_id)
                digest = content_hash[delivery_id]
                if delivery_id in decided:
                    continue  # listed twice: the first one decides
                decided.add(delivery_id)
                if row is None or row.status in _FINAL:
                    results[delivery_id] = (ClaimResult.DONE, None)
                elif row.status == DeliveryStatus.SENDING.value and (
                    # a run never holds a row twice (a migration into a chat it is sending to)
                    row.claimed_by == worker
                    or (
                        row.claimed_by is not None
                        and not may_take_over(row.claimed_by, aware(row.updated_at))
                    )
                ):
                    results[delivery_id] = (ClaimResult.BUSY, None)
                elif row.parts_sent and row.content_hash not in (None, digest):
                    changed.append(delivery_id)
                else:
                    wanted.append(
                        {
                            "b_id": delivery_id,
                            "b_attempts": row.attempts,
                            "attempts": row.attempts + 1,
                            "content_hash": digest,
                            "parts_total": parts_total[delivery_id],
                        }
                    )
            for delivery_id in changed:
                row = rows[delivery_id]
                error = changed_brief_error(row.parts_sent, row.parts_total)
                connection.execute(
                    update(table)
                    .where(table.c.id == delivery_id)
                    .values(
                        status=DeliveryStatus.FAILED.value,
                        claimed_by=None,
                        last_error=error,
                        updated_at=now,
                    )
                )
            if wanted:
                connection.execute(
                    update(table)
                    .where(table.c.id == bindparam("b_id"))
                    .where(table.c.attempts == bindparam("b_attempts"))
                    .values(
                        status=DeliveryStatus.SENDING.value,
                        claimed_by=worker,
                        updated_at=now,
                        attempts=bindparam("attempts"),
                        content_hash=bindparam("content_hash"),
                        parts_total=bindparam("parts_total"),
                    ),
                    wanted,
                )
            touched = [w["b_id"] for w in wanted] + changed
            after = {
                r.id: r for r in connection.execute(select(table).where(table.c.id.in_(touched)))
            }
            for claim in wanted:
                row = after[cast(int, claim["b_id"])]
                ours = row.claimed_by == worker and row.attempts == claim["attempts"]
                results[row.id] = (
                    (ClaimResult.CLAIMED, _record(row)) if ours else (ClaimResult.BUSY, None)
                )
            for delivery_id in changed:
                results[delivery_id] = (ClaimResult.CONTENT_CHANGED, _record(after[delivery_id]))
        out, seen = [], set()
        for delivery_id in delivery_ids:
            out.append(
                results[delivery_id] if delivery_id not in seen else (ClaimResult.BUSY, None)
            )
            seen.add(delivery_id)
        return out

    def record_parts_sent(self, parts: Sequence[PartSent]) -> list[bool]:
        """Commit parts the platform accepted, many chats in one transaction (group commit).

        A row whose part is the last one is marked sent in the same statement. Per part:
        False if its worker no longer holds the claim (another run took the row over); the
        statement runs once for the batch and the rows are read back to tell.
        """
        if not parts:
            return []
        table = _DELIVERIES
        now = utcnow()
        guard = [
            table.c.id == bindparam("b_id"),
            table.c.claimed_by == bindparam("b_worker"),
            table.c.status == DeliveryStatus.SENDING.value,
        ]
        progress = {
            "parts_sent": bindparam("b_parts"),
            "message_ids": bindparam("b_ids", type_=JSON),
            "updated_at": now,
        }
        done = {
            "status": DeliveryStatus.SENT.value,
            "last_error": None,
            "claimed_by": None,
            "sent_at": now,
        }
        with self.engine.begin() as connection:
            for last, values in ((False, progress), (True, {**progress, **done})):
                batch = [_part_params(p) for p in parts if p.last is last]
                if batch:
                    connection.execute(update(table).where(*guard).values(**values), batch)
            stored = {
                r.id: list(r.message_ids or [])
                for r in connection.execute(
                    select(table.c.id, table.c.message_ids).where(
                        table.c.id.in_([p.delivery_id for p in parts])
                    )
                )
            }
            # the message ids are unique to this run's sends: they are there only if it wrote them
            ours = [stored.get(p.delivery_id) == list(p.message_ids) for p in parts]
            counted: dict[tuple[str, dt.date], int] = {}
            for part, mine in zip(parts, ours, strict=True):
                if mine and part.counts_for is not None:
                    counted[part.counts_for] = counted.get(part.counts_for, 0) + 1
            for (platform, day), sent in counted.items():
                self._count(connection, platform, day, sent)
        return ours

    def record_part_sent(
        self, delivery_id: int, worker: str, part_index: int, message_id: str, *, last: bool
    ) -> bool:
        """Commit one part as sent (see :meth:`record_parts_sent`)."""
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id)
            ids = tuple(row.message_ids or ()) if row is not None else ()
        return self.record_parts_sent(
            [PartSent(delivery_id, worker, part_index + 1, (*ids, message_id), last)]
        )[0]

    def finish_delivery(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        *,
        error: str | None = None,
        worker: str | None = None,
    ) -> None:
        """Record an outcome and release the claim (only ``worker``'s claim, if named: one
        guarded statement, so a row another run has just taken over is left to it)."""
        table = _DELIVERIES
        values: dict[str, object] = {
            "status": status.value,
            "last_error": error,
            "claimed_by": None,
            "updated_at": utcnow(),
        }
        if status is DeliveryStatus.SENT:
            values["sent_at"] = values["updated_at"]
        statement = update(table).where(table.c.id == delivery_id)
        if worker is not None:
            statement = statement.where(table.c.claimed_by == worker)
        with self.engine.begin() as connection:
            connection.execute(statement.values(**values))

    def touch_claim(self, delivery_id: int, worker: str) -> bool:
        """Renew ``worker``'s claim; False if the row is no longer its to send."""
        with self.session() as s:
            result = s.execute(
                update(DeliveryRow)
                .where(
                    DeliveryRow.id == delivery_id,
                    DeliveryRow.claimed_by == worker,
                    DeliveryRow.status == DeliveryStatus.SENDING.value,
                )
                .values(updated_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def release_claims(self, delivery_ids: Sequence[int], worker: str) -> None:
        """Give rows back as pending (a send cancelled at shutdown, a rejected token)."""
        if not delivery_ids:
            return
        with self.session() as s:
            s.execute(
                update(DeliveryRow)
                .where(
                    DeliveryRow.id.in_(delivery_ids),
                    DeliveryRow.claimed_by == worker,
                    DeliveryRow.status == DeliveryStatus.SENDING.value,
                )
                .values(status=DeliveryStatus.PENDING.value, claimed_by=None, updated_at=utcnow())
            )

    def release_claim(self, delivery_id: int, worker: str) -> None:
        self.release_claims([delivery_id], worker)

    def retarget_delivery(self, delivery_id: int, new_chat_id: str) -> DeliveryRecord | None:
        """Move a delivery to the chat's new id; returns the row to continue with.

        If the new chat already has a row for that day, the old row is closed as skipped and
        the new one is returned, or None when it is already finished.
        """
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id)
            if row is None:
                return None
            other = s.scalars(
                select(DeliveryRow).where(
                    DeliveryRow.brief_date == row.brief_date,
                    DeliveryRow.platform == row.platform,
                    DeliveryRow.chat_id == new_chat_id,
                )
            ).one_or_none()
            if other is None:
                row.chat_id = new_chat_id
                return _record(row)
            row.status = DeliveryStatus.SKIPPED.value
            row.claimed_by = None
            row.last_error = f"chat migrated to {new_chat_id}, which has its own delivery"
            if other.status in _FINAL:
                return None
            return _record(other)

    def count_message(self, platform: str, day: dt.date) -> None:
        """Count one message sent outside the ledger (a reply, a notice) on ``day``."""
        with self.engine.begin() as connection:
            self._count(connection, platform, day, 1)

    def _count(self, connection: Connection, platform: str, day: dt.date, sent: int) -> None:
        insert = postgresql_insert if self.dialect == "postgresql" else sqlite_insert
        table = cast(Table, MessagesSentRow.__table__)
        statement = insert(table).values(platform=platform, day=day, sent=sent)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=["platform", "day"], set_={"sent": table.c.sent + sent}
            )
        )

    def messages_counted(self, platform: str, day: dt.date) -> int:
        """Messages sent on ``day`` (in the brief's time zone) as counted for a daily cap:
        brief parts (committed with them) and replies and notices (:meth:`count_message`)."""
        with self.session() as s:
            row = s.get(MessagesSentRow, (platform, day))
            return row.sent if row is not None else 0

    def sent_at(
        self, date: dt.date, platform: str | None = None, chat_id: str | None = None
    ) -> dt.datetime | None:
        """When the brief of ``date`` was first delivered to that chat, or on that platform,
        or anywhere (None: it was not); one aggregate, however large the fan-out."""
        query = select(func.min(DeliveryRow.sent_at)).where(
            DeliveryRow.brief_date == date, DeliveryRow.status == DeliveryStatus.SENT
        )
        if platform is not None:
            query = query.where(DeliveryRow.platform == platform)
        if chat_id is not None:
            query = query.where(DeliveryRow.chat_id == chat_id)
        with self.session() as s:
            moment = s.scalar(query)
            return aware(moment) if moment is not None else None

    def deliveries(self, date: dt.date, platform: str | None = None) -> list[DeliveryRecord]:
        with self.session() as s:
            query = select(DeliveryRow).where(DeliveryRow.brief_date == date)
            if platform:
                query = query.where(DeliveryRow.platform == platform)
            return [_record(r) for r in s.scalars(query.order_by(DeliveryRow.id))]

    def delivery_counts(self, date: dt.date, platform: str | None = None) -> dict[str, int]:
        """How many deliveries of ``date`` are in each status (counted in the database)."""
        with self.session() as s:
            query = select(DeliveryRow.status, func.count()).where(DeliveryRow.brief_date == date)
            if platform:
                query = query.where(DeliveryRow.platform == platform)
            return {status: n for status, n in s.execute(query.group_by(DeliveryRow.status))}

    def last_delivery_date(self, platform: str | None = None) -> dt.date | None:
        with self.session() as s:
            query = select(func.max(DeliveryRow.brief_date))
            if platform:
                query = query.where(DeliveryRow.platform == platform)
            return s.scalar(query)
