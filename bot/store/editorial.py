"""The editors' workflow in the store: each day's brief state, and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from bot.domain import AuditEntry, BriefState, BriefStatus, Target
from bot.store.database import Database, aware
from bot.store.models import AuditRow, BriefStateRow, CorrectionRow


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

    def published_dates(self, on_or_before: dt.date | None = None) -> list[dt.date]:
        """The days whose brief went out (published or corrected), newest first."""
        query = select(BriefStateRow.date).where(
            BriefStateRow.state.in_((BriefState.PUBLISHED.value, BriefState.CORRECTED.value))
        )
        if on_or_before is not None:
            query = query.where(BriefStateRow.date <= on_or_before)
        with self.session() as s:
            return list(s.scalars(query.order_by(BriefStateRow.date.desc())))

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

    def brief_snapshot(self, date: dt.date) -> list[dict[str, Any]] | None:
        """The items of ``date`` as readers got them (saved when it was published)."""
        with self.session() as s:
            row = s.get(BriefStateRow, date)
            return list(row.snapshot) if row is not None and row.snapshot is not None else None

    def save_brief_snapshot(self, date: dt.date, items: list[dict[str, Any]]) -> None:
        with self.session() as s:
            row = s.get(BriefStateRow, date)
            if row is None:
                raise ValueError(f"no state for {date}: save the status first")
            row.snapshot = items

    # -- corrections, one row per (brief, target, revision) --------------------------------

    def correction(self, date: dt.date, target: Target, revision: str) -> tuple[str, int]:
        """The status and parts done of the correction ``revision`` to ``target``, creating
        it (pending, 0) the first time it is asked for."""
        with self.session() as s:
            row = s.scalar(
                select(CorrectionRow).where(
                    CorrectionRow.brief_date == date,
                    CorrectionRow.platform == target.platform,
                    CorrectionRow.chat_id == target.chat_id,
                    CorrectionRow.revision == revision,
                )
            )
            if row is None:
                row = CorrectionRow(
                    brief_date=date,
                    platform=target.platform,
                    chat_id=target.chat_id,
                    revision=revision,
                    status="pending",
                    parts_done=0,
                )
                s.add(row)
            return row.status, row.parts_done

    def record_correction(
        self,
        date: dt.date,
        target: Target,
        revision: str,
        *,
        status: str,
        parts_done: int,
        error: str | None = None,
    ) -> None:
        with self.session() as s:
            row = s.scalar(
                select(CorrectionRow).where(
                    CorrectionRow.brief_date == date,
                    CorrectionRow.platform == target.platform,
                    CorrectionRow.chat_id == target.chat_id,
                    CorrectionRow.revision == revision,
                )
            )
            if row is None:
                raise ValueError(f"no correction of {date} to {target.key} at {revision}")
            row.status, row.parts_done, row.last_error = status, parts_done, error

    def corrections(self, date: dt.date) -> list[tuple[Target, str, str, int]]:
        """Every correction of ``date``: (target, revision, status, parts done)."""
        with self.session() as s:
            rows = s.scalars(
                select(CorrectionRow)
                .where(CorrectionRow.brief_date == date)
                .order_by(CorrectionRow.id)
            )
            return [
                (Target(r.platform, r.chat_id), r.revision, r.status, r.parts_done) for r in rows
            ]

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
