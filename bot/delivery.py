"""Platform-neutral fan-out of a rendered brief: ledger, pacing, retries and outcomes."""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import hashlib
import logging
import math
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.config import DeliverySettings
from bot.domain import DeliveryStatus, OutgoingMessage, Target, TargetKind
from bot.errors import (
    ConfigError,
    PermanentFailure,
    RetryLater,
    TargetGone,
    TargetMigrated,
    TransientFailure,
)
from bot.logs import scrub
from bot.platforms.base import Limits, Platform
from bot.store import DeliveryRecord, Store
from bot.text import log_target

log = logging.getLogger("briefbot.delivery")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
# At most this many 429s in a row for one delivery before it is left for a later run.
MAX_RATE_LIMITED = 20
# Upper bound on chats served at once; most of them wait out a chat's spacing between parts.
MAX_WORKERS = 256
# Upper bound on requests in flight per platform: enough for ~1000 msg/s at 20 ms round
# trips, and small enough that the HTTP client's pool does not become the bottleneck.
MAX_SENDS_IN_FLIGHT = 24
# The pacer also counts sends in a sliding window, stretched by this factor to leave room
# for the time a request takes to reach the platform.
WINDOW_MARGIN = 1.1
# Seconds after which a claim by another host that made no progress may be taken over
# (on this host a dead process is noticed at once).
CLAIM_LEASE = 600.0


class Pacer:
    """Spaces sends so a platform's limits are never exceeded, with no initial burst.

    Every send reserves the next global slot (1/global_rate apart) after the chat's own
    spacing has elapsed (per_chat_interval for private chats, 60/per_group_per_minute for
    groups and channels), plus random jitter where the platform wants it.
    """

    def __init__(
        self,
        limits: Limits,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        already_sent: Callable[[dt.date], int] | None = None,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._global_next = 0.0
        self._chat_next: dict[str, float] = {}
        self._started: collections.deque[float] = collections.deque()
        self._day: dt.date | None = None
        self._sent_today = 0
        # How many messages went out before this process started: a restart must not reset
        # the daily cap.
        self._already_sent = already_sent or (lambda _day: 0)

    def chat_interval(self, target: Target) -> float:
        if target.kind is TargetKind.SUBSCRIBER or self.limits.per_group_per_minute is None:
            return self.limits.per_chat_interval
        return max(self.limits.per_chat_interval, 60.0 / self.limits.per_group_per_minute)

    async def wait_turn(self, target: Target, today: dt.date) -> bool:
        """Wait for this chat's next slot; False (at once) if today's cap is used up."""
        if not self.reserve(today):
            return False
        await self.wait_for_chat(target)
        await self.wait_for_slot(target)
        return True

    def reserve(self, today: dt.date) -> bool:
        """Count one message against today's cap; False if it is used up."""
        cap = self.limits.daily_cap
        if self._day != today:
            self._day = today
            self._sent_today = self._already_sent(today) if cap is not None else 0
        if cap is not None and self._sent_today >= cap:
            return False
        self._sent_today += 1  # reserved before any await, so concurrent chats cannot overrun
        return True

    async def wait_for_chat(self, target: Target) -> None:
        """Wait until this chat may get its next message."""
        now = self._clock()
        chat_ready = self._chat_next.get(target.key, 0.0)
        if chat_ready > now:
            await self._sleep(chat_ready - now)

    async def wait_for_slot(self, target: Target) -> None:
        """Take the next global slot and wait for it. Call this right before the send (after
        any other wait), so the spacing the platform sees is the spacing reserved here."""
        now = self._clock()
        slot = max(now, self._global_next)
        self._global_next = slot + 1.0 / self.limits.global_rate
        if slot > now:
            await self._sleep(slot - now)
        started = await self._wait_for_window()
        jitter = self._rng.uniform(0, self.limits.jitter) if self.limits.jitter else 0.0
        # the chat's spacing counts from when its message really went out
        self._chat_next[target.key] = started + self.chat_interval(target) + jitter

    async def _wait_for_window(self) -> float:
        """Spacing alone is not enough when the event loop stalls: sends delayed past their
        slot then go out together. This keeps the sends actually started in any window of
        WINDOW seconds within the rate, whatever the delays."""
        rate = self.limits.global_rate
        if math.isinf(rate) or rate < 1:
            return self._clock()
        # ceil(rate) sends per ceil(rate)/rate seconds, as Telegram counts, plus the margin
        allowed = math.ceil(rate)
        window = allowed / rate * WINDOW_MARGIN
        recent = self._started
        while True:
            now = self._clock()
            while recent and recent[0] <= now - window:
                recent.popleft()
            if len(recent) < allowed:
                recent.append(now)
                return now
            await self._sleep(recent[0] + window - now)

    def hold(self, seconds: float) -> None:
        """Pause every chat (the platform answered 429: its limit is global in bulk)."""
        self._global_next = max(self._global_next, self._clock() + seconds)


@dataclass
class Outcome:
    target: Target
    status: DeliveryStatus
    parts_sent: int = 0
    error: str | None = None


@dataclass
class DeliveryReport:
    date: dt.date
    outcomes: list[Outcome] = field(default_factory=list)
    retries: int = 0
    rate_limited: int = 0

    def count(self, status: DeliveryStatus) -> int:
        return sum(o.status is status for o in self.outcomes)

    def summary(self) -> dict[str, int]:
        return {status.value: self.count(status) for status in DeliveryStatus}


ProgressCallback = Callable[[Outcome], None]


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class DeliveryEngine:
    """Sends each target the parts it has not yet received, recording every step."""

    def __init__(
        self,
        store: Store,
        platforms: Mapping[str, Platform],
        settings: DeliverySettings,
        *,
        worker_id: str | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        today: Callable[[], dt.date] = dt.date.today,
    ) -> None:
        self.store = store
        self.platforms = platforms
        self.settings = settings
        self.worker_id = worker_id or default_worker_id()
        self._sleep = sleep
        self._today = today
        self.pacers = {
            name: Pacer(
                platform.limits, clock=clock, sleep=sleep, already_sent=self._sent_in_last_day(name)
            )
            for name, platform in platforms.items()
        }
        self._in_flight = {name: asyncio.Semaphore(MAX_SENDS_IN_FLIGHT) for name in platforms}

    def _sent_in_last_day(self, platform: str) -> Callable[[dt.date], int]:
        # The ledger's count over the last 24 hours: a rolling day errs on the cautious side.
        return lambda _day: self.store.parts_sent_since(
            platform, dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        )

    async def deliver(
        self,
        date: dt.date,
        messages: Mapping[str, Sequence[OutgoingMessage]],
        targets: Sequence[Target],
        *,
        force: bool = False,
        progress: ProgressCallback | None = None,
    ) -> DeliveryReport:
        """Deliver ``messages[platform]`` to every target; already-sent targets are skipped
        unless ``force``. Parts go out in order per chat; chats are served concurrently.

        A platform error that no retry can fix (a rejected token) stops the fan-out and is
        raised after the rows it did not reach are left pending.
        """
        report = DeliveryReport(date)
        unique = list({t.key: t for t in targets}.values())
        digests = {name: parts_digest(parts) for name, parts in messages.items()}
        rows = self.store.prepare_deliveries(
            date,
            unique,
            parts_total={name: len(parts) for name, parts in messages.items()},
            content_hash=digests,
            force=force,
        )
        queue: asyncio.Queue[tuple[Target, DeliveryRecord]] = asyncio.Queue()
        for target, row in zip(unique, rows, strict=True):
            queue.put_nowait((target, row))
        fatal: list[ConfigError] = []

        async def worker() -> None:
            while not fatal:
                try:
                    target, row = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                job = _Job(target, row, messages[target.platform], digests[target.platform])
                # a claim name per delivery: two sends in one process exclude each other too
                worker_id = f"{self.worker_id}:{uuid.uuid4().hex[:8]}"
                try:
                    outcome = await self._deliver_one(job, worker_id, report)
                except ConfigError as exc:
                    fatal.append(exc)
                    outcome = Outcome(target, DeliveryStatus.PENDING, row.parts_sent, str(exc))
                except Exception as exc:  # a store or adapter bug fails one target, not all
                    log.exception("unexpected error delivering to %s", log_target(target))
                    error = scrub(f"unexpected error: {exc!r}")
                    self._finish_quietly(row.id, DeliveryStatus.FAILED, error, worker_id)
                    outcome = Outcome(target, DeliveryStatus.FAILED, row.parts_sent, error)
                report.outcomes.append(outcome)
                if progress is not None:
                    progress(outcome)

        workers = max(1, min(len(rows), self._concurrency(unique)))
        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())
        if fatal:
            raise fatal[0]
        return report

    def _finish_quietly(
        self, delivery_id: int, status: DeliveryStatus, error: str, worker_id: str
    ) -> None:
        try:
            self.store.finish_delivery(delivery_id, status, error=error, worker=worker_id)
        except Exception:
            log.exception("could not record the outcome of delivery %d", delivery_id)

    def _concurrency(self, targets: Sequence[Target]) -> int:
        # Enough chats in flight to fill each platform's global rate while single chats wait
        # out their own spacing between parts; bounded so a huge fan-out stays cheap.
        total = 0
        for name in {t.platform for t in targets}:
            limits = self.platforms[name].limits
            wanted = limits.global_rate * max(1.0, limits.per_chat_interval)
            total += MAX_WORKERS if math.isinf(wanted) else int(wanted) + 1
        return max(1, min(MAX_WORKERS, total))

    def _claim(self, job: _Job, worker_id: str) -> tuple[DeliveryRecord | None, str]:
        return self.store.start_attempt(
            job.row.id,
            worker_id,
            content_hash=job.digest,
            parts_total=len(job.parts),
            may_take_over=claim_is_stale,
        )

    async def _deliver_one(self, job: _Job, worker_id: str, report: DeliveryReport) -> Outcome:
        target, row = job.target, job.row
        claimed, why_not = self._claim(job, worker_id)
        if claimed is None:
            status = DeliveryStatus.FAILED if "changed" in why_not else DeliveryStatus.SKIPPED
            return Outcome(target, status, row.parts_sent, why_not)
        try:
            return await self._send_parts(job, claimed, worker_id, report)
        except asyncio.CancelledError:
            # shutdown: give the row back so the next run resumes it at once
            self.store.release_claim(claimed.id, worker_id)
            raise

    async def _send_parts(
        self, job: _Job, row: DeliveryRecord, worker_id: str, report: DeliveryReport
    ) -> Outcome:
        target, parts = job.target, job.parts
        platform = self.platforms[target.platform]
        pacer = self.pacers[target.platform]
        index = row.parts_sent
        transient = rate_limited = 0
        migrated = False
        while index < len(parts):
            if not pacer.reserve(self._today()):
                error = f"daily cap of {platform.limits.daily_cap} messages reached"
                self.store.finish_delivery(
                    row.id, DeliveryStatus.PENDING, error=error, worker=worker_id
                )
                return Outcome(target, DeliveryStatus.PENDING, index, error)
            await pacer.wait_for_chat(target)
            try:
                # the slot is taken once a request may go out, or queued sends would burst
                async with self._in_flight[target.platform]:
                    await pacer.wait_for_slot(target)
                    message_id = await platform.send(target, parts[index])
            except RetryLater as exc:
                rate_limited += 1
                report.rate_limited += 1
                if (
                    exc.retry_after > self.settings.max_retry_after
                    or rate_limited > MAX_RATE_LIMITED
                ):
                    return self._fail(row, target, index, str(exc), worker_id)
                log.warning(
                    "rate limited chat=%s retry_after=%s", log_target(target), exc.retry_after
                )
                pacer.hold(exc.retry_after)
                continue
            except TransientFailure as exc:
                transient += 1
                report.retries += 1
                if transient >= self.settings.max_attempts:
                    error = f"gave up after {transient} attempts: {exc}"
                    return self._fail(row, target, index, error, worker_id)
                delay = min(
                    self.settings.backoff_max, self.settings.backoff_base * 2 ** (transient - 1)
                )
                log.warning(
                    "transient failure chat=%s error=%s retry_in=%.1fs",
                    log_target(target),
                    scrub(str(exc)),
                    delay,
                )
                await self._sleep(delay)
                continue
            except TargetMigrated as exc:
                if migrated:  # one hop per delivery: a loop of migrations is a platform bug
                    return self._fail(row, target, index, f"migrated twice: {exc}", worker_id)
                migrated = True
                log.info("chat migrated old=%s new=%s", log_target(target), exc.new_chat_id)
                if target.kind is TargetKind.CHANNEL:
                    log.warning(
                        "configured chat %s is now %s: update the config",
                        target.chat_id,
                        exc.new_chat_id,
                    )
                self.store.move_subscriber(target.platform, target.chat_id, exc.new_chat_id)
                target = Target(target.platform, exc.new_chat_id, target.kind, target.name)
                moved = self.store.retarget_delivery(row.id, exc.new_chat_id)
                if moved is None:
                    return Outcome(target, DeliveryStatus.SKIPPED, index, "already delivered")
                if moved.id != row.id:  # the new chat has its own row: continue with that one
                    claimed, why_not = self.store.start_attempt(
                        moved.id,
                        worker_id,
                        content_hash=job.digest,
                        parts_total=len(parts),
                        may_take_over=claim_is_stale,
                    )
                    if claimed is None:
                        return Outcome(target, DeliveryStatus.SKIPPED, moved.parts_sent, why_not)
                    row, index = claimed, claimed.parts_sent
                continue
            except TargetGone as exc:
                reason = scrub(str(exc))
                self.store.deactivate_subscriber(target.platform, target.chat_id, reason)
                self.store.finish_delivery(
                    row.id, DeliveryStatus.GONE, error=reason, worker=worker_id
                )
                log.info("target gone chat=%s reason=%s", log_target(target), reason)
                return Outcome(target, DeliveryStatus.GONE, index, reason)
            except PermanentFailure as exc:
                return self._fail(row, target, index, str(exc), worker_id)
            except ConfigError:
                self.store.release_claim(row.id, worker_id)
                raise
            except Exception as exc:  # an adapter bug must not stop the other deliveries
                log.exception("unexpected error sending to %s", log_target(target))
                return self._fail(row, target, index, f"unexpected error: {exc!r}", worker_id)
            index += 1
            if not self.store.record_part_sent(
                row.id, worker_id, index - 1, message_id, last=index == len(parts)
            ):
                error = "another run took over this delivery"
                log.warning("%s chat=%s", error, log_target(target))
                return Outcome(target, DeliveryStatus.SKIPPED, index, error)
            transient = rate_limited = 0
        if row.parts_sent >= len(parts) or not parts:  # nothing left: close the row
            self.store.finish_delivery(row.id, DeliveryStatus.SENT, worker=worker_id)
        return Outcome(target, DeliveryStatus.SENT, index)

    def _fail(
        self, row: DeliveryRecord, target: Target, index: int, error: str, worker_id: str
    ) -> Outcome:
        error = scrub(error)
        self.store.finish_delivery(row.id, DeliveryStatus.FAILED, error=error, worker=worker_id)
        log.warning("delivery failed chat=%s part=%d error=%s", log_target(target), index, error)
        return Outcome(target, DeliveryStatus.FAILED, index, error)


@dataclass(frozen=True)
class _Job:
    target: Target
    row: DeliveryRecord
    parts: Sequence[OutgoingMessage]
    digest: str


def parts_digest(parts: Sequence[OutgoingMessage]) -> str:
    """Identifies a rendering, so a resumed delivery knows its sent parts still match."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.text.encode())
        digest.update(b"\x1e")
    return digest.hexdigest()


def claim_is_stale(claimed_by: str, updated_at: dt.datetime, *, lease: float = CLAIM_LEASE) -> bool:
    """May another run take over a row claimed by ``claimed_by``?

    Yes if that process is gone (same host, pid no longer running) or the claim has not
    moved for ``lease`` seconds (another host). A live process keeps its claim.
    """
    host, _, rest = claimed_by.partition(":")
    pid_text = rest.split(":", 1)[0]
    if host == socket.gethostname() and pid_text.isdigit():
        pid = int(pid_text)
        if pid != os.getpid():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
    return (dt.datetime.now(dt.UTC) - updated_at).total_seconds() > lease
