"""Corrections in place: after a brief is published, a corrected item reaches the readers who
already have the brief.

Where a platform can edit a sent message (Telegram), each message of the brief is replaced
with its corrected text, by the message ids the ledger kept; elsewhere (WeChat, the work-chat
robots, the webhook) a short 更正 / Correction note names the changed items and gives their
corrected text. Each target gets each correction once: a row per (brief, target, revision)
records how far it got, so a crash mid-way resumes where it stopped and never sends a note
twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.broadcast import canonical_topics, personal_brief, render_for_target
from bot.domain import BriefState, DeliveryStatus, Item, OutgoingMessage, Target
from bot.editorial import content_hash, current_brief, snapshot_of
from bot.errors import DeliveryError, NothingToSend, PermanentFailure, UsageError
from bot.platforms import spec
from bot.reports import item_json
from bot.store.content import item_identity

log = logging.getLogger("briefbot.corrections")

# written over a message of the old brief that the corrected one no longer needs
SUPERSEDED = "（本期简报已更正，内容见上 / This brief was corrected: see above）"


@dataclass(frozen=True)
class Change:
    """One item that differs from what readers got: ``item`` is the corrected one (None:
    removed); ``number`` its place in the corrected brief."""

    number: int
    item: Item | None
    old_title: str


@dataclass
class CorrectionReport:
    date: dt.date
    revision: str
    changes: list[Change]
    edited: int = 0  # messages edited in place
    notes: int = 0  # correction messages sent
    targets: dict[str, str] = field(default_factory=dict)  # target key → done / failed: why
    dry_run: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "revision": self.revision,
            "dry_run": self.dry_run,
            "changes": [
                {"number": c.number, "title": c.item.title if c.item else None, "was": c.old_title}
                for c in self.changes
            ],
            "edited": self.edited,
            "notes": self.notes,
            "targets": self.targets,
        }


def changes(old: Sequence[Mapping[str, Any]], new: Sequence[Item]) -> list[Change]:
    """The items of ``new`` that differ from ``old`` (what readers got), by identity; items
    no longer there come last, as removed."""
    before = {str(entry.get("identity", "")): entry for entry in old}
    found: list[Change] = []
    seen: set[str] = set()
    for number, item in enumerate(new, start=1):
        key = item_identity(item)
        seen.add(key)
        previous = before.get(key)
        if previous is None:
            found.append(Change(number, item, ""))
            continue
        current = item_json(item)
        fields = ("title", "summary", "links", "tags", "section")
        if any(previous.get(name) != current.get(name) for name in fields):
            found.append(Change(number, item, str(previous.get("title", ""))))
    for key, entry in before.items():
        if key not in seen:
            found.append(Change(0, None, str(entry.get("title", ""))))
    return found


async def correct(
    service: Any, date: dt.date, *, dry_run: bool = False, actor: str = "cli"
) -> CorrectionReport:
    """Propagate the corrected brief of ``date`` to every target that has it (see the module
    docstring). ``service`` is a started :class:`bot.service.Service`."""
    core = service.core
    store = core.store
    stored = await asyncio.to_thread(store.brief_status, date)
    if stored is None or stored.state not in (BriefState.PUBLISHED, BriefState.CORRECTED):
        raise UsageError(
            f"the brief of {date.isoformat()} is not published: there is nothing to correct "
            "(edit it and approve it instead)"
        )
    brief = await asyncio.to_thread(current_brief, core, date)
    if brief is None:
        raise NothingToSend(f"no items on {date.isoformat()}: nothing to correct")
    revision = content_hash(brief)
    snapshot = await asyncio.to_thread(store.brief_snapshot, date) or []
    found = changes(snapshot, brief.items)
    report = CorrectionReport(date, revision, found, dry_run=dry_run)
    if revision == stored.content_hash or not found:
        return report
    rows = [
        row
        for row in await asyncio.to_thread(store.deliveries, date)
        if row.status is DeliveryStatus.SENT
    ]
    for row in rows:
        target = row.target
        if row.platform not in service.platforms:
            # not connected in this run: not done, so the brief is not marked corrected
            report.targets[target.key] = f"failed: {row.platform} is not configured here"
            continue
        if dry_run:
            how = "edit" if spec(row.platform).edits_messages else "note"
            report.targets[target.key] = f"would {how}"
            continue
        state, done = await asyncio.to_thread(store.correction, date, target, revision)
        if state == "done":
            report.targets[target.key] = "done before"
            continue
        try:
            done = await _correct_target(service, brief, found, row, revision, done, report)
        except DeliveryError as exc:
            log.warning("correction failed chat=%s: %s", target.key, exc)
            # keep the steps that were done: a rerun must not repeat them
            _, progress = await asyncio.to_thread(store.correction, date, target, revision)
            await asyncio.to_thread(
                store.record_correction,
                date,
                target,
                revision,
                status="failed",
                parts_done=max(done, progress),
                error=str(exc),
            )
            report.targets[target.key] = f"failed: {exc}"
            continue
        report.targets[target.key] = "done"
    if not dry_run and all(v.startswith("done") for v in report.targets.values()):
        corrected = replace(
            stored,
            state=BriefState.CORRECTED,
            content_hash=revision,
            corrected_at=dt.datetime.now(dt.UTC),
        )
        await asyncio.to_thread(store.save_brief_status, corrected)
        await asyncio.to_thread(store.save_brief_snapshot, date, snapshot_of(brief))
        await asyncio.to_thread(
            store.audit,
            actor,
            "correct",
            date.isoformat(),
            revision=revision,
            items=[c.number for c in found],
            edited=report.edited,
            notes=report.notes,
        )
    return report


async def _correct_target(
    service: Any,
    brief: Any,
    found: list[Change],
    row: Any,
    revision: str,
    done: int,
    report: CorrectionReport,
) -> int:
    """Correct one target from step ``done`` on; returns the steps done. Each step is
    recorded before the next, so a rerun after a crash repeats at most the step in flight."""
    core = service.core
    target: Target = row.target
    outbox = service.outboxes[target.platform]
    limits = core.limits(target.platform)
    steps: list[OutgoingMessage]
    edits = spec(target.platform).edits_messages and row.message_ids
    if edits:
        # what this target got: the platform's presentation, or a reader's own items
        parts = await asyncio.to_thread(render_for_target, core, brief, target)
        steps = [
            replace(part, edit=message_id)
            for part, message_id in zip(parts, row.message_ids, strict=False)
        ]
        # the corrected brief is longer: its last parts go out as new messages
        steps += parts[len(row.message_ids) :]
        # shorter: the old messages it no longer needs say so
        steps += [
            OutgoingMessage(SUPERSEDED, edit=message_id)
            for message_id in row.message_ids[len(parts) :]
        ]
    else:
        steps = _notes(
            core, brief.date, await _theirs(core, brief, found, target), target.platform, limits
        )
    for index in range(done, len(steps)):
        step = steps[index]
        try:
            await outbox.send(target, step)
        except PermanentFailure:
            if step.edit is None:
                raise
            # too old to edit, or deleted by the chat: a note tells them instead
            for note in _notes(core, brief.date, found, target.platform, limits):
                await outbox.send(target, note)
                report.notes += 1
            await asyncio.to_thread(
                core.store.record_correction,
                brief.date,
                target,
                revision,
                status="done",
                parts_done=len(steps),
            )
            return len(steps)
        if step.edit is not None:
            report.edited += 1
        else:
            report.notes += 1
        await asyncio.to_thread(
            core.store.record_correction,
            brief.date,
            target,
            revision,
            status="sending",
            parts_done=index + 1,
        )
    await asyncio.to_thread(
        core.store.record_correction,
        brief.date,
        target,
        revision,
        status="done",
        parts_done=len(steps),
    )
    return len(steps)


async def _theirs(core: Any, brief: Any, found: list[Change], target: Target) -> list[Change]:
    """The changes a reader with topics got items of: a note about an item they never
    received would be noise (a reader without topics got them all)."""
    subscriber = await asyncio.to_thread(core.store.subscriber, target.platform, target.chat_id)
    if subscriber is None or not subscriber.topics:
        return found
    mine = await asyncio.to_thread(personal_brief, core, brief, canonical_topics(subscriber.topics))
    kept = {item_identity(item) for item in (mine.items if mine is not None else ())}
    return [c for c in found if c.item is not None and item_identity(c.item) in kept]


def _notes(
    core: Any, date: dt.date, found: list[Change], platform: str, limits: Any
) -> list[OutgoingMessage]:
    if not found:
        return []
    messages: list[OutgoingMessage] = core.renderer.text(
        platform,
        "correction.j2",
        limits,
        date=date,
        changes=found,
        document=correction_json(date, found),
    )
    return messages


def correction_json(date: dt.date, found: Sequence[Change]) -> dict[str, Any]:
    """A correction as the outbound webhook posts it (schema ``briefbot.correction/1``)."""
    return {
        "schema": "briefbot.correction/1",
        "date": date.isoformat(),
        "changes": [
            {
                "number": c.number,
                "was": c.old_title,
                "item": item_json(c.item) if c.item is not None else None,
            }
            for c in found
        ],
    }
