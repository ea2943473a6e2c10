"""Broadcast a day's brief: who gets it, rendered per platform, handed to the delivery engine.

The CLI, the admins' chat commands and the scheduler all send through :func:`send_brief`.
(Not a "dispatcher": in bot frameworks that word routes incoming updates; this is the
outgoing fan-out.)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from bot.brief import assemble_brief
from bot.core import Core
from bot.delivery import DeliveryEngine, DeliveryReport, ProgressCallback
from bot.domain import Brief, DeliveryStatus, OutgoingMessage, Target, TargetKind
from bot.errors import BriefbotError, NothingToSend, UsageError
from bot.platforms import spec
from bot.platforms.base import Platform

log = logging.getLogger("briefbot.broadcast")

# Subscribers read from the store at a time while a fan-out streams them.
SUBSCRIBER_PAGE = 500


class Audience(StrEnum):
    ALL = "all"
    CHANNELS = "channels"  # configured channels and groups
    SUBSCRIBERS = "subscribers"


@dataclass
class PlannedDelivery:
    target: Target
    status: DeliveryStatus
    parts: int


@dataclass
class SendResult:
    date: dt.date
    title: str
    report: DeliveryReport | None = None  # None for a dry run
    plan: list[PlannedDelivery] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        if self.report is None:
            counts: dict[str, int] = {}
            for p in self.plan:
                counts[p.status.value] = counts.get(p.status.value, 0) + 1
            return counts
        counts = self.report.summary()
        counts["unresolved"] = len(self.unresolved)
        return counts


async def configured_targets(
    core: Core,
    platforms: Mapping[str, Platform | None],
    audience: Audience,
    *,
    only: Sequence[str] = (),
    unresolved: list[str],
) -> AsyncIterator[list[Target]]:
    """Pages of targets: the configured channels and groups of each platform first, then its
    subscribers, read from the store a page at a time. A configured group that cannot be
    found is described in ``unresolved``. ``platforms`` maps names to connected adapters
    (None: not connected, e.g. a dry run; configured chats are then taken as written).

    ``only`` keeps the configured channels and groups whose name or id it lists (a schedule
    of their own) and no subscribers.
    """
    for name, adapter in platforms.items():
        settings = core.settings.platform(name)
        if audience in (Audience.ALL, Audience.CHANNELS):
            page: list[Target] = []
            for configured in spec(name).configured_targets(settings):
                if only and configured.name not in only and configured.chat_id not in only:
                    continue
                if adapter is not None:
                    chat_id = await adapter.resolve(configured)
                else:  # a dry run: a group known only by its name is shown by that name
                    chat_id = configured.chat_id or configured.name
                if chat_id is None:
                    unresolved.append(spec(name).unresolved(settings, configured))
                    continue
                page.append(Target(name, chat_id, configured.kind, configured.name))
            if page:
                yield page
        if (
            audience in (Audience.ALL, Audience.SUBSCRIBERS)
            and not only
            and spec(name).has_subscribers
        ):
            pages = core.store.subscriber_pages(name, page=SUBSCRIBER_PAGE)
            while (subscribers := await asyncio.to_thread(next, pages, None)) is not None:
                yield [s.target for s in subscribers]


def explicit_targets(
    core: Core, platform: str, chat_ids: Sequence[str], date: dt.date | None = None
) -> list[Target]:
    """Targets named by id (the CLI's --target, resuming a send); their kind comes from the
    settings, the ledger and the store (it decides their pacing)."""
    known = {s.chat_id: s.kind for s in core.store.subscribers(platform, active_only=False)}
    if date is not None:
        known.update({d.chat_id: d.kind for d in core.store.deliveries(date, platform)})
    for configured in spec(platform).configured_targets(core.settings.platform(platform)):
        if configured.chat_id:
            known[configured.chat_id] = configured.kind
    return [Target(platform, c, known.get(c, TargetKind.SUBSCRIBER)) for c in chat_ids]


def render_for(
    core: Core, brief: Brief, platforms: Sequence[str]
) -> dict[str, list[OutgoingMessage]]:
    return {name: core.renderer.brief(brief, name, core.limits(name)) for name in platforms}


async def send_brief(
    core: Core,
    engine: DeliveryEngine | None,
    platforms: Mapping[str, Platform | None],
    date: dt.date,
    *,
    audience: Audience = Audience.ALL,
    chat_ids: Sequence[str] = (),
    only: Sequence[str] = (),
    force: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
    detailed: bool = True,
) -> SendResult:
    """Send the brief of ``date`` through the ledger to ``platforms``: each target once
    unless ``force``. ``chat_ids`` names chats directly (the CLI's --target). Without
    ``detailed`` the report lists only the targets not sent or skipped."""
    brief = assemble_brief(core.store, date, core.settings.brief)
    if brief is None:
        raise NothingToSend(f"no items on {date.isoformat()}: nothing to send")
    if not platforms:
        raise BriefbotError("no platform is configured to send to")
    messages = render_for(core, brief, list(platforms))
    result = SendResult(date, brief.title)
    if chat_ids:
        if len(platforms) != 1:
            raise UsageError("--target needs --platform: chat ids belong to one platform")
        [name] = platforms
        targets: list[Target] | AsyncIterator[list[Target]] = explicit_targets(
            core, name, chat_ids, date
        )
    else:
        targets = configured_targets(
            core, platforms, audience, only=only, unresolved=result.unresolved
        )
    if dry_run:
        ledger = {(d.platform, d.chat_id): d for d in core.store.deliveries(date)}
        async for page in _as_pages(targets):
            for target in page:
                row = ledger.get((target.platform, target.chat_id))
                status = row.status if row and not force else DeliveryStatus.PENDING
                result.plan.append(PlannedDelivery(target, status, len(messages[target.platform])))
        return result
    assert engine is not None, "a real send needs the delivery engine"
    result.report = await engine.deliver(
        date, messages, targets, force=force, progress=progress, detailed=detailed
    )
    for problem in result.unresolved:
        log.warning("cannot deliver: %s", problem)
    log.info("brief sent date=%s summary=%s", date.isoformat(), result.summary())
    return result


async def _as_pages(
    targets: list[Target] | AsyncIterator[list[Target]],
) -> AsyncIterator[list[Target]]:
    if isinstance(targets, list):
        yield targets
        return
    async for page in targets:
        yield page
