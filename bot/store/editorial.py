"""The editors' workflow in the store: each day's brief state, and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from bot.domain import AuditEntry, BriefState, BriefStatus
from bot.store.database import Database, aware
from bot.store.models import AuditRow, BriefStateRow


def _status(row: BriefStateRow) -> BriefStatus:
    def moment(value: dt.datetime | None) -> dt.datetime | None:
        return aware(value) if value is not None else None

    return BriefStatus(
        date=row.date,
        state=BriefState(row.state),
        content_hash=row.content_hash,
        approved_by=row.approved_by,
        approved_at=moment(row.approved_at),
        published_at=moment(row.published_at),
        corrected_at=moment(row.corrected_at),
    )


class EditorialStore(Database):
    def brief_status(self, date: dt.date) -> BriefStatus | None:
        """The stored state of ``date``'s brief (None: never approved nor sent: a draft)."""
        with self.session() as s:
            row = s.get(BriefStateRow, date)
            return _status(row) if row is not None else None

    def brief_statuses(self, start: dt.date, end: dt.date) -> dict[dt.date, BriefStatus]:
        """The stored states of the days from ``start`` to ``end`` (inclusive)."""
        with self.session() as s:
            rows = s.scalars(
                select(BriefStateRow).where(BriefStateRow.date >= start, BriefStateRow.date <= end)
            )
            return {row.date: _status(row) for row in rows}

    def save_brief_status(self, status: BriefStatus) -> None:
        with self.session() as s:
            row = s.get(BriefStateRow, status.date)
            if row is None:
                row = BriefStateRow(date=status.date)
                s.add(row)
            row.state = status.state.value
            row.content_hash = status.content_hash
            row.approved_by = status.approved_by
            row.approved_at = status.approved_at
            row.published_at = status.published_at
            row.corrected_at = status.corrected_at

    def audit(self, actor: str, action: str, subject: str = "", **detail: Any) -> None:
        """Record one editorial change."""
        with self.session() as s:
            s.add(AuditRow(actor=actor, action=action, subject=subject, detail=detail))

    def audit_entries(self, limit: int = 100) -> list[AuditEntry]:
        """The newest changes first."""
        with self.session() as s:
            rows = s.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(limit))
            return [
                AuditEntry(aware(r.at), r.actor, r.action, r.subject, dict(r.detail or {}))
                for r in rows
            ]
