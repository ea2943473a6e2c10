"""Decide who gets a day's brief, render it per platform and hand it to the delivery engine.

The CLI, the admins' chat commands and the scheduler all send through :func:`send_brief`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

from bot.app import Core
from bot.brief import assemble_brief
from bot.delivery import DeliveryEngine, DeliveryReport, ProgressCallback
from bot.domain import Brief, DeliveryStatus, OutgoingMessage, Target, TargetKind
from bot.errors import BriefbotError
from bot.platforms.base import Platform

log = logging.getLogger("briefbot.dispatch")


class Audience(StrEnum):
    ALL = "all"
    CHANNELS = "channels"  # configured channels and groups
    SUBSCRIBERS = "subscribers"


class NothingToSend(BriefbotError):
    """The day has no items."""


@runtime_checkable
class RoomDirectory(Protocol):
    """A platform that can find a group by its name (WeChat rooms by topic)."""

    async def resolve_room(
        self, *, room_id: str | None = None, topic: str | None = None
    ) -> str | None: ...


@dataclass
class PlannedDelivery:
    target: Target
    status: DeliveryStatus
    parts: int


@dataclass
class SendResult:
    date: dt.date
    title: str
    targets: list[Target]
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
    core: Core, platforms: Mapping[str, Platform], audience: Audience
) -> tuple[list[Target], list[str]]:
    """Channels, groups and subscribers of the connected platforms, deduplicated.

    Returns the targets and a description of each configured group that could not be found.
    """
    targets: list[Target] = []
    unresolved: list[str] = []
    settings = core.settings
    if "telegram" in platforms:
        if audience in (Audience.ALL, Audience.CHANNELS):
            targets += [
                Target("telegram", ch.chat, TargetKind.CHANNEL, ch.chat)
                for ch in settings.telegram.channels
            ]
        if audience in (Audience.ALL, Audience.SUBSCRIBERS):
            targets += [s.target for s in core.store.subscribers("telegram")]
    if "wechat" in platforms:
        wechat = platforms["wechat"]
        if audience in (Audience.ALL, Audience.CHANNELS):
            for group in settings.wechat.groups:
                room_id: str | None = group.id or None
                if isinstance(wechat, RoomDirectory):
                    room_id = await wechat.resolve_room(
                        room_id=group.id or None, topic=group.topic or None
                    )
                if room_id is None:
                    unresolved.append(f"wechat group {group.id or group.topic!r} not found")
                    continue
                targets.append(Target("wechat", room_id, TargetKind.GROUP, group.topic or group.id))
        if audience in (Audience.ALL, Audience.SUBSCRIBERS):
            targets += [s.target for s in core.store.subscribers("wechat")]
    unique: dict[str, Target] = {}
    for target in targets:
        unique.setdefault(target.key, target)
    return list(unique.values()), unresolved


def explicit_targets(
    core: Core, platform: str, chat_ids: Sequence[str], date: dt.date | None = None
) -> list[Target]:
    """Targets named by id (the CLI's --target, resuming a send); their kind comes from what
    the ledger and the store know (it decides their pacing)."""
    known = {s.chat_id: s.kind for s in core.store.subscribers(platform, active_only=False)}
    if date is not None:
        known.update({d.chat_id: d.kind for d in core.store.deliveries(date, platform)})
    channels = (
        {c.chat for c in core.settings.telegram.channels} if platform == "telegram" else set()
    )
    groups = {g.id for g in core.settings.wechat.groups} if platform == "wechat" else set()
    out = []
    for chat_id in chat_ids:
        if chat_id in channels:
            kind = TargetKind.CHANNEL
        elif chat_id in groups:
            kind = TargetKind.GROUP
        else:
            kind = known.get(chat_id, TargetKind.SUBSCRIBER)
        out.append(Target(platform, chat_id, kind))
    return out


def render_for(
    core: Core, brief: Brief, platforms: Sequence[str]
) -> dict[str, list[OutgoingMessage]]:
    return {name: core.renderer.brief(brief, name, core.limits(name)) for name in platforms}


async def send_brief(
    core: Core,
    engine: DeliveryEngine,
    date: dt.date,
    *,
    audience: Audience = Audience.ALL,
    chat_ids: Sequence[str] = (),
    only: Sequence[str] = (),
    platform: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    progress: ProgressCallback | None = None,
) -> SendResult:
    """Send the brief of ``date`` through the ledger: each target once unless ``force``.

    ``chat_ids`` names chats directly (the CLI's --target); ``only`` keeps those configured
    channels and groups whose config name or id it lists (per-target schedules).
    """
    brief = assemble_brief(core.store, date, core.settings.brief)
    if brief is None:
        raise NothingToSend(f"no items on {date.isoformat()}: nothing to send")
    platforms = {
        name: p for name, p in engine.platforms.items() if platform is None or name == platform
    }
    if not platforms:
        raise BriefbotError(f"platform {platform!r} is not configured")
    if chat_ids:
        if len(platforms) != 1:
            raise BriefbotError("--target needs --platform: chat ids belong to one platform")
        [name] = platforms
        targets, unresolved = explicit_targets(core, name, chat_ids, date), list[str]()
    else:
        targets, unresolved = await configured_targets(core, platforms, audience)
        if only:  # a schedule of its own for some channels or groups: config names or ids
            targets = [t for t in targets if t.name in only or t.chat_id in only]
            unresolved = [u for u in unresolved if any(repr(name) in u for name in only)]
    messages = render_for(core, brief, list(platforms))
    result = SendResult(date, brief.title, targets, unresolved=unresolved)
    for problem in unresolved:
        log.warning("cannot deliver: %s", problem)
    if dry_run:
        ledger = {(d.platform, d.chat_id): d for d in core.store.deliveries(date)}
        for target in targets:
            row = ledger.get((target.platform, target.chat_id))
            status = row.status if row and not force else DeliveryStatus.PENDING
            result.plan.append(PlannedDelivery(target, status, len(messages[target.platform])))
        return result
    result.report = await engine.deliver(date, messages, targets, force=force, progress=progress)
    log.info("brief sent date=%s summary=%s", date.isoformat(), result.summary())
    return result
