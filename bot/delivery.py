"""Platform-neutral fan-out of a rendered brief: ledger, pacing, retries and outcomes."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.config import DeliverySettings
from bot.domain import DeliveryStatus, OutgoingMessage, Target, TargetKind
from bot.errors import (
    PermanentFailure,
    RetryLater,
    TargetGone,
    TargetMigrated,
    TransientFailure,
)
from bot.platforms.base import Limits, Platform
from bot.store import DeliveryRecord, Store

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
        if self._day != today:
            self._day, self._sent_today = today, self._already_sent(today)
        cap = self.limits.daily_cap
        if cap is not None and self._sent_today >= cap:
            return False
        self._sent_today += 1  # reserved before any await, so concurrent chats cannot overrun
        now = self._clock()
        chat_ready = self._chat_next.get(target.key, 0.0)
        if chat_ready > now:
            await self._sleep(chat_ready - now)
            now = self._clock()
        slot = max(now, self._global_next)
        self._global_next = slot + 1.0 / self.limits.global_rate
        jitter = self._rng.uniform(0, self.limits.jitter) if self.limits.jitter else 0.0
        self._chat_next[target.key] = slot + self.chat_interval(target) + jitter
        if slot > now:
            await self._sleep(slot - now)
        return True

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
        unless ``force``. Parts go out in order per chat; chats are served concurrently."""
        report = DeliveryReport(date)
        parts_total = {name: len(parts) for name, parts in messages.items()}
        rows = self.store.prepare_deliveries(date, targets, parts_total=parts_total, force=force)
        queue: asyncio.Queue[tuple[Target, DeliveryRecord]] = asyncio.Queue()
        for target, row in zip(targets, rows, strict=True):
            queue.put_nowait((target, row))

        async def worker() -> None:
            while True:
                try:
                    target, row = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                outcome = await self._deliver_one(target, row, messages[target.platform], report)
                report.outcomes.append(outcome)
                if progress is not None:
                    progress(outcome)

        workers = max(1, min(len(rows), self._concurrency(targets)))
        await asyncio.gather(*(worker() for _ in range(workers)))
        return report

    def _concurrency(self, targets: Sequence[Target]) -> int:
        # Enough chats in flight to fill each platform's global rate while single chats wait
        # out their own spacing between parts; bounded so a huge fan-out stays cheap.
        total = 0
        for name in {t.platform for t in targets}:
            limits = self.platforms[name].limits
            wanted = limits.global_rate * max(1.0, limits.per_chat_interval)
            total += MAX_WORKERS if math.isinf(wanted) else int(wanted) + 1
        return max(1, min(MAX_WORKERS, total))

    async def _deliver_one(
        self,
        target: Target,
        row: DeliveryRecord,
        parts: Sequence[OutgoingMessage],
        report: DeliveryReport,
    ) -> Outcome:
        if row.status in (DeliveryStatus.SENT, DeliveryStatus.GONE, DeliveryStatus.SKIPPED):
            return Outcome(target, DeliveryStatus.SKIPPED, row.parts_sent, "already delivered")
        claimed = self.store.start_attempt(row.id, self.worker_id)
        if claimed is None:  # finished meanwhile by another run
            return Outcome(target, DeliveryStatus.SKIPPED, row.parts_sent, "already delivered")
        platform = self.platforms[target.platform]
        pacer = self.pacers[target.platform]
        index = claimed.parts_sent
        transient = rate_limited = 0
        while index < len(parts):
            if not await pacer.wait_turn(target, self._today()):
                error = f"daily cap of {platform.limits.daily_cap} messages reached"
                self.store.finish_delivery(row.id, DeliveryStatus.PENDING, error=error)
                return Outcome(target, DeliveryStatus.PENDING, index, error)
            try:
                async with self._in_flight[target.platform]:
                    message_id = await platform.send(target, parts[index])
            except RetryLater as exc:
                rate_limited += 1
                report.rate_limited += 1
                if (
                    exc.retry_after > self.settings.max_retry_after
                    or rate_limited > MAX_RATE_LIMITED
                ):
                    return self._fail(row, target, index, str(exc))
                log.warning("rate limited chat=%s retry_after=%s", target.key, exc.retry_after)
                pacer.hold(exc.retry_after)
                continue
            except TransientFailure as exc:
                transient += 1
                report.retries += 1
                if transient >= self.settings.max_attempts:
                    return self._fail(
                        row, target, index, f"gave up after {transient} attempts: {exc}"
                    )
                delay = min(
                    self.settings.backoff_max, self.settings.backoff_base * 2 ** (transient - 1)
                )
                log.warning(
                    "transient failure chat=%s error=%s retry_in=%.1fs", target.key, exc, delay
                )
                await self._sleep(delay)
                continue
            except TargetMigrated as exc:
                log.info("chat migrated old=%s new=%s", target.key, exc.new_chat_id)
                self.store.move_subscriber(target.platform, target.chat_id, exc.new_chat_id)
                self.store.retarget_delivery(row.id, exc.new_chat_id)
                target = Target(target.platform, exc.new_chat_id, target.kind, target.name)
                continue
            except TargetGone as exc:
                self.store.deactivate_subscriber(target.platform, target.chat_id, str(exc))
                self.store.finish_delivery(row.id, DeliveryStatus.GONE, error=str(exc))
                log.info("target gone chat=%s reason=%s", target.key, exc)
                return Outcome(target, DeliveryStatus.GONE, index, str(exc))
            except PermanentFailure as exc:
                return self._fail(row, target, index, str(exc))
            except Exception as exc:  # an adapter bug must not stop the other deliveries
                log.exception("unexpected error sending to %s", target.key)
                return self._fail(row, target, index, f"unexpected error: {exc!r}")
            index += 1
            self.store.record_part_sent(row.id, index - 1, message_id, last=index == len(parts))
            transient = rate_limited = 0
        if not parts:  # nothing to send counts as delivered
            self.store.finish_delivery(row.id, DeliveryStatus.SENT)
        return Outcome(target, DeliveryStatus.SENT, index)

    def _fail(self, row: DeliveryRecord, target: Target, index: int, error: str) -> Outcome:
        self.store.finish_delivery(row.id, DeliveryStatus.FAILED, error=error)
        log.warning("delivery failed chat=%s part=%d error=%s", target.key, index, error)
        return Outcome(target, DeliveryStatus.FAILED, index, error)
