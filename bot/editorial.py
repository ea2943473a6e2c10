"""The editors' workflow: a day's brief is a draft, then approved, then published (then
corrected). One module decides every transition; the CLI, the chat commands, the console and
the schedule call it.

An approval is given to content, not to a day: it records the hash of the brief as it was
approved, so a later change to the items (a re-ingest, an edit) makes the brief a draft again
instead of silently sending what nobody approved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import replace
from typing import Any

from bot.brief import assemble_brief
from bot.core import Core
from bot.domain import Brief, BriefState, BriefStatus
from bot.errors import NothingToSend, UsageError
from bot.reports import brief_json, item_json
from bot.store.content import item_identity


def content_hash(brief: Brief) -> str:
    """A fingerprint of what readers get: title, intro, footer and every item."""
    canonical = json.dumps(brief_json(brief), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def snapshot_of(brief: Brief) -> list[dict[str, Any]]:
    """The items as readers got them, each with its identity (a correction compares by it)."""
    return [{**item_json(item), "identity": item_identity(item)} for item in brief.items]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def current_brief(core: Core, date: dt.date) -> Brief | None:
    return assemble_brief(core.store, date, core.settings.brief)


def status(core: Core, date: dt.date) -> BriefStatus:
    """The brief's state as editors see it: an approval whose content has changed since is a
    draft again (``approved_by`` still says who approved the earlier content)."""
    stored = core.store.brief_status(date)
    if stored is None:
        return BriefStatus(date, BriefState.DRAFT)
    if stored.state is BriefState.APPROVED:
        brief = current_brief(core, date)
        if brief is None or content_hash(brief) != stored.content_hash:
            return replace(stored, state=BriefState.DRAFT)
    return stored


def approve(core: Core, date: dt.date, actor: str, *, seen: str | None = None) -> BriefStatus:
    """Approve the brief of ``date`` as it is now; ``actor`` is who (``telegram:123``,
    ``console:alice``, ``cli``). ``seen`` is the content hash of what the editor looked at (the
    console's page): a brief changed since is not approved unseen. Raises when there is
    nothing to approve, it changed, or it is out."""
    brief = current_brief(core, date)
    if brief is None:
        raise NothingToSend(f"no items on {date.isoformat()}: nothing to approve")
    if seen is not None and content_hash(brief) != seen:
        raise UsageError(
            f"the brief of {date.isoformat()} changed since this page was loaded: check it "
            "again, then approve"
        )
    stored = core.store.brief_status(date)
    if stored is not None and stored.state in (BriefState.PUBLISHED, BriefState.CORRECTED):
        raise UsageError(
            f"the brief of {date.isoformat()} is already published; to change it, edit the "
            f"items and run `briefbot correct --date {date.isoformat()}`"
        )
    approved = BriefStatus(
        date, BriefState.APPROVED, content_hash(brief), approved_by=actor, approved_at=_now()
    )
    core.store.save_brief_status(approved)
    core.store.audit(actor, "approve", date.isoformat(), content_hash=approved.content_hash)
    return approved


def held_reason(core: Core, date: dt.date) -> str | None:
    """Why the schedule must not send the brief of ``date`` (None: it may). With
    ``[schedule] require_approval`` only the content an editor approved goes out: a draft is
    held, and so is a published brief whose items changed since (until `correct` has taken
    the change to the readers who have it, the others do not get it either)."""
    if not core.settings.schedule.require_approval:
        return None
    brief = current_brief(core, date)
    if brief is None:
        return None  # nothing to send: the send says so
    current = status(core, date)
    day = date.isoformat()
    if current.state is BriefState.DRAFT:
        if current.approved_by is not None:
            return f"the brief of {day} changed after {current.approved_by} approved it: approve it again"
        return f"the brief of {day} is not approved yet"
    if current.state is not BriefState.APPROVED and content_hash(brief) != current.content_hash:
        return (
            f"the brief of {day} changed after it was published: run `briefbot correct --date "
            f"{day}` so that readers who have it get the correction, then it goes out"
        )
    return None


def expected_hash(core: Core, date: dt.date) -> str | None:
    """The content the schedule may send for ``date`` (None: any, approval not required)."""
    if not core.settings.schedule.require_approval:
        return None
    stored = core.store.brief_status(date)
    return stored.content_hash if stored is not None else None


def mark_published(core: Core, date: dt.date, brief: Brief | None = None) -> BriefStatus:
    """After a send that reached someone: the brief is published (once; later sends of the
    same day keep the first time). ``brief`` is what that send rendered: an edit made while
    it ran must not pass for what readers got."""
    stored = core.store.brief_status(date)
    if stored is not None and stored.state in (BriefState.PUBLISHED, BriefState.CORRECTED):
        return stored
    brief = brief if brief is not None else current_brief(core, date)
    published = BriefStatus(
        date,
        BriefState.PUBLISHED,
        content_hash(brief) if brief is not None else None,
        approved_by=stored.approved_by if stored else None,
        approved_at=stored.approved_at if stored else None,
        published_at=_now(),
    )
    core.store.save_brief_status(published)
    if brief is not None:  # what readers got: a correction compares with it
        core.store.save_brief_snapshot(date, snapshot_of(brief))
    return published


def after_ingest(core: Core, dates: list[dt.date], *, actor: str = "ingest") -> list[str]:
    """What a change to these days' items did to their briefs, as warnings for the editor:
    an approved brief whose content changed is a draft again; a published one needs a
    correction. ``actor`` made the change (the audit log says who unapproved it)."""
    warnings: list[str] = []
    for date in sorted(set(dates)):
        stored = core.store.brief_status(date)
        if stored is None:
            continue
        brief = current_brief(core, date)
        now_hash = content_hash(brief) if brief is not None else None
        if now_hash == stored.content_hash:
            continue
        day = date.isoformat()
        if stored.state is BriefState.APPROVED:
            core.store.save_brief_status(replace(stored, state=BriefState.DRAFT))
            core.store.audit(actor, "unapprove", day, reason="content changed")
            warnings.append(
                f"the brief of {day} was approved by {stored.approved_by}; its content changed, "
                f"so it is a draft again: check it and approve it again (briefbot approve --date {day})"
            )
        elif stored.state in (BriefState.PUBLISHED, BriefState.CORRECTED):
            warnings.append(
                f"the brief of {day} is already published; readers keep the old text until "
                f"you run: briefbot correct --date {day}"
            )
    return warnings


def readers_day(core: Core, today: dt.date) -> dt.date | None:
    """The brief a reader means by "the latest" (/latest, 今日简报): with approval required,
    the newest published one (a draft is the editors' until it goes out); else the newest
    day with items (:func:`bot.reports.latest_day`)."""
    if not core.settings.schedule.require_approval:
        from bot.reports import latest_day

        return latest_day(core.store, today)
    published = core.store.published_dates(on_or_before=today)
    return published[0] if published else None


def is_public(core: Core, date: dt.date, today: dt.date) -> bool:
    """Whether readers may be shown the brief of ``date`` on request (a digest's 全文 button,
    whose date a client can forge): a published brief with approval required; else a day up
    to today, or a later one that was already sent to someone."""
    if not core.settings.schedule.require_approval:
        return date <= today or core.store.sent_at(date) is not None
    return date in core.store.published_dates(on_or_before=date)[:1]
