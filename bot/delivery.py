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
# The pacer also counts sends in a sliding window, stretched by this factor to leave room
# for the time a request takes to reach the platform.
WINDOW_MARGIN = 1.1
PROCESS_NONCE = uuid.uuid4().hex[:8]
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
        today: Callable[[], dt.date] = dt.date.today,
        already_sent: Callable[[dt.date], int] | None = None,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._today = today  # one notion of "today" for replies and broadcasts alike
        self._global_next = 0.0
        self._hold_until = 0.0
        self._chat_next: dict[str, float] = {}
        self._started: collections.deque[float] = collections.deque()
        self._day: dt.date | None = None
        self._sent_today = 0
        # How many messages went out today before this process started: a restart must not
        # reset the daily cap.
        self._already_sent = already_sent or (lambda _day: 0)

    def chat_interval(self, target: Target) -> float:
        if target.kind is TargetKind.SUBSCRIBER or self.limits.per_group_per_minute is None:
            return self.limits.per_chat_interval
        return max(self.limits.per_chat_interval, 60.0 / self.limits.per_group_per_minute)

    async def wait_turn(self, target: Target) -> bool:
        """Wait for this chat's next slot; False (at once) if today's cap is used up."""
        if not self.reserve():
            return False
        await self.wait_for_chat(target)
        await self.wait_for_slot(target)
        return True

    def reserve(self) -> bool:
        """Count one message against today's cap; False if it is used up."""
        cap = self.limits.daily_cap
        today = self._today()
        if self._day is None or today > self._day:
            self._day = today
            self._sent_today = self._already_sent(today) if cap is not None else 0
        if cap is not None and self._sent_today >= cap:
            return False
        self._sent_today += 1  # reserved before any await, so concurrent chats cannot overrun
        return True

    def refund(self) -> None:
        """Give back a reserved unit: the message was not sent (an error, a retry)."""
        self._sent_today = max(0, self._sent_today - 1)

    async def wait_for_chat(self, target: Target) -> None:
        """Wait until this chat may get its next message. The time is reserved before
        sleeping, so two sends to one chat (a reply and a broadcast) cannot both pass."""
        now = self._clock()
        ready = max(now, self._chat_next.get(target.key, 0.0))
        self._chat_next[target.key] = ready + self.chat_interval(target)
        if ready > now:
            await self._sleep(ready - now)

    async def wait_for_slot(self, target: Target) -> None:
        """Take the next global slot and wait for it. Call this right before the send (after
        any other wait), so the spacing the platform sees is the spacing reserved here."""
        while True:
            now = self._clock()
            if now < self._hold_until:  # the platform asked for a pause (429)
                await self._sleep(self._hold_until - now)
                continue
            slot = max(now, self._global_next)
            self._global_next = slot + 1.0 / self.limits.global_rate
            if slot > now:
                await self._sleep(slot - now)
            if self._clock() >= self._hold_until:
                break
            # a 429 arrived while this send waited: take a new slot after the pause, or all
            # the waiting sends would go out together when it ends
        started = await self._wait_for_window()
        jitter = self._rng.uniform(0, self.limits.jitter) if self.limits.jitter else 0.0
        # the chat's spacing counts from when its message really went out
        self._chat_next[target.key] = max(
            self._chat_next.get(target.key, 0.0), started + self.chat_interval(target) + jitter
        )

    async def _wait_for_window(self) -> float:
        """Spacing alone is not enough when the event loop stalls: sends delayed past their
        slot then go out together. This keeps the sends actually started in any window
        within the rate, whatever the delays."""
        rate = self.limits.global_rate
        # ceil(rate) sends per ceil(rate)/rate seconds, as Telegram counts, plus the margin
        allowed = 0 if math.isinf(rate) else math.ceil(rate)
        window = allowed / rate * WINDOW_MARGIN if allowed else 0.0
        recent = self._started
        while True:
            now = self._clock()
            if not allowed:
                return now
            while recent and recent[0] <= now - window:
                recent.popleft()
            if len(recent) < allowed:
                recent.append(now)
                return now
            await self._sleep(recent[0] + window - now)

    def hold(self, seconds: float) -> None:
        """Pause every chat (the platform answered 429: its limit is global in bulk)."""
        until = self._clock() + seconds
        self._hold_until = max(self._hold_until, until)
        self._global_next = max(self._global_next, until)


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
    """host:pid:nonce — the nonce tells this process from an earlier one with the same pid
    (a restarted container is PID 1 again on the same host)."""
    return f"{socket.gethostname()}:{os.getpid()}:{PROCESS_NONCE}"


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
        timezone: dt.tzinfo = dt.UTC,
    ) -> None:
        self.store = store
        self.platforms = platforms
        self.settings = settings
        self.worker_id = worker_id or default_worker_id()
        self._clock = clock
        self._sleep = sleep
        self._timezone = timezone
        self.pacers = {
            name: Pacer(
                platform.limits,
                clock=clock,
                sleep=sleep,
                today=today,
                already_sent=self._sent_earlier_today(name),
            )
            for name, platform in platforms.items()
        }
        self._in_flight = {name: asyncio.Semaphore(settings.max_in_flight) for name in platforms}

    def _sent_earlier_today(self, platform: str) -> Callable[[dt.date], int]:
        def count(day: dt.date) -> int:
            midnight = dt.datetime.combine(day, dt.time(0), tzinfo=self._timezone)
            return self.store.parts_sent_since(platform, midnight.astimezone(dt.UTC))

        return count

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
        current = [claimed]  # the row being sent: a migration may switch to another one
        try:
            return await self._send_parts(job, current, worker_id, report)
        except asyncio.CancelledError:
            # shutdown: give the row back so the next run resumes it at once
            self.store.release_claim(current[0].id, worker_id)
            raise
        except ConfigError:
            self.store.release_claim(current[0].id, worker_id)
            raise
        except Exception as exc:  # a store or adapter bug fails this target, not the fan-out
            log.exception("unexpected error delivering to %s", log_target(job.target))
            return self._fail(
                current[0],
                job.target,
                current[0].parts_sent,
                f"unexpected error: {exc!r}",
                worker_id,
            )

    async def _send_parts(
        self, job: _Job, current: list[DeliveryRecord], worker_id: str, report: DeliveryReport
    ) -> Outcome:
        target, parts, row = job.target, job.parts, current[0]
        platform = self.platforms[target.platform]
        pacer = self.pacers[target.platform]
        index = row.parts_sent
        transient = rate_limited = 0
        migrated = False
        touched = self._clock()
        while index < len(parts):
            if not pacer.reserve():
                error = f"daily cap of {platform.limits.daily_cap} messages reached"
                self.store.finish_delivery(
                    row.id, DeliveryStatus.PENDING, error=error, worker=worker_id
                )
                return Outcome(target, DeliveryStatus.PENDING, index, error)
            await pacer.wait_for_chat(target)
            try:
                try:
                    # the slot is taken once a request may go out, or queued sends would burst
                    async with self._in_flight[target.platform]:
                        await pacer.wait_for_slot(target)
                        if self._clock() - touched > CLAIM_LEASE / 4:
                            # after a long wait (a big retry_after): is the row still ours?
                            if not self.store.touch_claim(row.id, worker_id):
                                raise _ClaimLost
                            touched = self._clock()
                        message_id = await platform.send(target, parts[index])
                except BaseException:
                    pacer.refund()  # not sent: it does not count against the daily cap
                    raise
            except _ClaimLost:
                return Outcome(target, DeliveryStatus.SKIPPED, index, "another run took over")
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
                    current[0] = row
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
                raise  # fatal for the whole fan-out; the caller releases the row
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


class _ClaimLost(Exception):
    """Another run took this delivery over while we waited."""


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
    """May another run take over a row claimed by ``claimed_by`` (``host:pid:nonce:…``)?

    Yes if that process is gone: on this host, its pid is not running, or it is our pid
    with another nonce (an earlier life of this pid). Otherwise only once the claim has not
    moved for ``lease`` seconds (another host, or a pid reused by an unrelated process).
    """
    host, pid_text, nonce, *_ = [*claimed_by.split(":"), "", "", ""]
    if host == socket.gethostname() and pid_text.isdigit():
        pid = int(pid_text)
        if pid == os.getpid():
            if nonce != PROCESS_NONCE:
                return True
        else:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
    return (dt.datetime.now(dt.UTC) - updated_at).total_seconds() > lease
