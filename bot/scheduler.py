"""Scheduled sends: APScheduler jobs persisted in the store's database, one per schedule.

Jobs reference the module-level :func:`run_scheduled_send` (PTB JobQueue jobs cannot be
pickled); it finds the running service through a per-process registry. The delivery
ledger, not the scheduler, guarantees that a restart never sends a brief twice.

Readers who chose their own time (``/time 07:30`` in their ``/tz``) need no job each: one
job per platform runs every minute (:func:`run_readers`), asks the store which readers'
time has come (within ``misfire_grace``, so a restart catches up), are not paused and have
not had today's brief, and sends it to those, through the same send as every schedule.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.asyncio import AsyncIOExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from bot.config import Settings
from bot.errors import ConfigError
from bot.platforms import specs
from bot.store import Store

log = logging.getLogger("briefbot.scheduler")

JOB_PREFIX = "brief:"
# the minute jobs of readers with a time of their own, one per platform ("readers:telegram");
# not "brief:": they follow the platforms, not the configured schedules
READERS_PREFIX = "readers:"
JOBS_TABLE = "apscheduler_jobs"
_HH_MM = re.compile(r"^(\d{1,2}):(\d{2})$")
# A minute job that starts later than this (a busy loop, a restart) is skipped: the next
# minute's run looks back over misfire_grace anyway.
READERS_MISFIRE = 50

# The scheduled-send callback of the service running in this process, by registry key.
ScheduledSend = Callable[[str, str, Sequence[str]], Awaitable[None]]
_registry: dict[str, ScheduledSend] = {}
# The schedulers running in this process, by registry key (the minute jobs find them here).
_schedulers: dict[str, BriefScheduler] = {}


@dataclass(frozen=True)
class ScheduleEntry:
    """One persisted job: a platform's audience (or some named chats) at one schedule."""

    platform: str
    audience: str  # "subscribers" or "channels" (channels and groups from config)
    schedule: str
    only: tuple[str, ...] = field(default=())  # config names (channel chat, group topic/id)

    @property
    def job_id(self) -> str:
        return f"{JOB_PREFIX}{self.platform}:{self.audience}:{self.schedule}"


_CRON_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def _cron_day_of_week(field: str) -> str:
    """Translate crontab day numbers (0 or 7 = Sunday) to names: APScheduler 3 numbers
    days from Monday, so ``from_crontab("… 1-5")`` would mean Tuesday to Saturday."""

    def name(number: str) -> str:
        index = int(number)
        if index > 7:
            raise ValueError(f"day of week {index} is out of range (0-7)")
        return _CRON_DAYS[index]

    parts = []
    for part in field.split(","):
        step = ""
        if "/" in part:
            part, step = part.split("/", 1)
            step = "/" + step
        if "-" in part and part.replace("-", "").isdigit():
            first, last = part.split("-", 1)
            if int(first) == 0:  # "0-5": Sunday, then Monday-Friday (APScheduler ends on Sunday)
                parts.append("sun")
                first = "1"
            parts.append(f"{name(first)}-{name(last)}{step}")
        elif part.isdigit():
            parts.append(name(part) + step)
        else:
            parts.append(part + step)
    return ",".join(parts)


def parse_trigger(spec: str, timezone: str, setting: str) -> CronTrigger:
    """ "HH:MM" or a five-field cron expression, in ``timezone``."""
    tz = ZoneInfo(timezone)
    match = _HH_MM.match(spec.strip())
    try:
        if match:
            if int(match[1]) > 23 or int(match[2]) > 59:
                raise ValueError("hour must be 0-23 and minute 0-59")
            return CronTrigger(hour=int(match[1]), minute=int(match[2]), timezone=tz)
        fields = spec.split()
        if len(fields) != 5:
            raise ValueError(f"a cron expression has 5 fields, this has {len(fields)}")
        return CronTrigger(
            minute=fields[0],
            hour=fields[1],
            day=fields[2],
            month=fields[3],
            day_of_week=_cron_day_of_week(fields[4]),
            timezone=tz,
        )
    except ValueError as exc:
        raise ConfigError(
            f'{setting}: {spec!r} is not a schedule (use "HH:MM" or a cron expression '
            f'like "30 7 * * 1-5"): {exc}'
        ) from exc


def schedule_entries(settings: Settings, platforms: Sequence[str]) -> list[ScheduleEntry]:
    """The jobs the settings ask for, per platform in the registry: its subscribers at their
    schedule, and its configured channels and groups grouped by theirs."""
    default = settings.schedule.default
    grouped: dict[tuple[str, str, str], list[str]] = {}
    entries: list[ScheduleEntry] = []
    for name, platform in specs().items():
        if name not in platforms:
            continue
        section = settings.platform(name)
        if platform.has_subscribers:
            entries.append(
                ScheduleEntry(name, "subscribers", platform.subscriber_schedule(section) or default)
            )
        for configured in platform.configured_targets(section):
            key = (name, "channels", configured.schedule or default)
            grouped.setdefault(key, []).append(configured.chat_id or configured.name)
    entries += [ScheduleEntry(p, a, s, tuple(only)) for (p, a, s), only in grouped.items()]
    for entry in entries:  # fail at start, naming the setting, not at 08:00
        parse_trigger(entry.schedule, settings.schedule.timezone, f"schedule of {entry.job_id}")
    return entries


async def run_scheduled_send(
    registry_key: str, platform: str, audience: str, only: Sequence[str]
) -> None:
    """The persisted job's callable: hand over to the service running in this process."""
    send = _registry.get(registry_key)
    if send is None:
        log.error("no running service for scheduled job key=%s", registry_key)
        return
    await send(platform, audience, only)


async def run_readers(registry_key: str, platform: str) -> None:
    """The minute job's callable: send today's brief to the readers whose time has come."""
    scheduler = _schedulers.get(registry_key)
    if scheduler is None:
        log.error("no running service for the readers' job key=%s", registry_key)
        return
    await scheduler.send_due_readers(platform)


class BriefScheduler:
    """An AsyncIOScheduler whose jobs live in the store's database and follow the config."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        send: ScheduledSend,
        *,
        registry_key: str = "default",
    ) -> None:
        self.settings = settings
        self.registry_key = registry_key
        grace = settings.schedule.misfire_grace
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=store.engine, tablename=JOBS_TABLE)},
            executors={"default": AsyncIOExecutor()},
            job_defaults={
                # Missed runs collapse into one; a run later than the grace is skipped
                # (a morning brief is not sent in the evening after a long outage).
                "coalesce": True,
                "misfire_grace_time": grace,
                "max_instances": 1,
            },
            timezone=ZoneInfo(settings.schedule.timezone),
        )
        self.store = store
        _registry[registry_key] = send
        _schedulers[registry_key] = self

    def start(self, entries: Sequence[ScheduleEntry]) -> None:
        """Load stored jobs, apply the config to them, then let due jobs run."""
        self.scheduler.start(paused=True)
        self.sync(entries)
        self.sync_readers(sorted({e.platform for e in entries if e.audience == "subscribers"}))
        self.scheduler.resume()
        for job in self.scheduler.get_jobs():
            log.info("scheduled job=%s next=%s", job.id, job.next_run_time)

    def sync(self, entries: Sequence[ScheduleEntry]) -> None:
        """Add, change and remove stored jobs to match ``entries``.

        An unchanged job is kept as stored, with its pending run time: that is what lets a
        process that was down at 08:00 and back at 08:40 still send that morning's brief.
        """
        wanted = {entry.job_id: entry for entry in entries}
        for job in self.scheduler.get_jobs():
            if job.id.startswith(JOB_PREFIX) and job.id not in wanted:
                log.info("removing job=%s (no longer configured)", job.id)
                job.remove()
        tz = self.settings.schedule.timezone
        for entry in entries:
            trigger = parse_trigger(entry.schedule, tz, f"schedule of {entry.job_id}")
            kwargs: dict[str, Any] = {
                "registry_key": self.registry_key,
                "platform": entry.platform,
                "audience": entry.audience,
                "only": list(entry.only),
            }
            existing = self.scheduler.get_job(entry.job_id)
            if (
                existing is not None
                and str(existing.trigger) == str(trigger)
                and str(getattr(existing.trigger, "timezone", "")) == tz
                and existing.kwargs == kwargs
                and existing.misfire_grace_time == self.settings.schedule.misfire_grace
            ):
                continue
            self.scheduler.add_job(
                run_scheduled_send,
                trigger=trigger,
                id=entry.job_id,
                name=entry.job_id,
                kwargs=kwargs,
                replace_existing=True,
                misfire_grace_time=self.settings.schedule.misfire_grace,
            )
            log.info("job=%s set to %s", entry.job_id, entry.schedule)

    def sync_readers(self, platforms: Sequence[str]) -> None:
        """One every-minute job per platform with subscribers; stale ones removed."""
        wanted = {f"{READERS_PREFIX}{name}": name for name in platforms}
        for job in self.scheduler.get_jobs():
            if job.id.startswith(READERS_PREFIX) and job.id not in wanted:
                job.remove()
        tz = ZoneInfo(self.settings.schedule.timezone)
        for job_id, platform in wanted.items():
            kwargs = {"registry_key": self.registry_key, "platform": platform}
            existing = self.scheduler.get_job(job_id)
            if existing is not None and existing.kwargs == kwargs:
                continue
            self.scheduler.add_job(
                run_readers,
                trigger=CronTrigger(minute="*", timezone=tz),
                id=job_id,
                name=job_id,
                kwargs=kwargs,
                replace_existing=True,
                misfire_grace_time=READERS_MISFIRE,
            )

    async def send_due_readers(self, platform: str, now: dt.datetime | None = None) -> list[str]:
        """Send today's brief (the day in ``[brief] timezone``) to the readers of
        ``platform`` whose own time fell within the last ``misfire_grace`` seconds and who
        have not had it; returns their chat ids. Nothing is sent, and no one is told, when
        nobody is due or the day has no items (the platform's own schedule reports that)."""
        now = now or dt.datetime.now(dt.UTC)
        today = now.astimezone(ZoneInfo(self.settings.brief.timezone)).date()
        due = await asyncio.to_thread(
            self.store.due_readers,
            platform,
            now,
            today,
            window=float(self.settings.schedule.misfire_grace),
            default_timezone=self.settings.schedule.timezone,
        )
        if not due:
            return []
        if not await asyncio.to_thread(self.store.items_on, today):
            log.info("readers due platform=%s count=%d: no items on %s", platform, len(due), today)
            return []
        send = _registry.get(self.registry_key)
        if send is None:
            return []
        log.info("readers due platform=%s count=%d date=%s", platform, len(due), today)
        await send(platform, "subscribers", due)
        return due

    def next_runs(self) -> dict[str, dt.datetime | None]:
        return {job.id: job.next_run_time for job in self.scheduler.get_jobs()}

    def pause(self) -> None:
        if self.scheduler.running:
            self.scheduler.pause()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        _registry.pop(self.registry_key, None)
        if _schedulers.get(self.registry_key) is self:
            del _schedulers[self.registry_key]


def next_runs_from_config(
    settings: Settings, platforms: Sequence[str], now: dt.datetime
) -> dict[str, dt.datetime | None]:
    """When each configured job would next run (for ``briefbot status``)."""
    out: dict[str, dt.datetime | None] = {}
    for entry in schedule_entries(settings, platforms):
        trigger = parse_trigger(entry.schedule, settings.schedule.timezone, entry.job_id)
        out[entry.job_id] = trigger.get_next_fire_time(None, now)
    return out
