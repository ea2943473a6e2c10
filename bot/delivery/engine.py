"""Fan a rendered brief out to many chats through the ledger and the platforms' outboxes.

Targets arrive in pages (a 100k-subscriber send never holds them all), each page gets its
ledger rows and claims in two statements run off the event loop, and the parts the
platforms accepted are committed together (group commit): a part is committed before the
next part to the same chat is sent, and never before the platform accepted it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import hashlib
import logging
import math
import time
from collections import Counter
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from bot.config import DeliverySettings
from bot.delivery.claims import CLAIM_LEASE, claim_is_stale, default_worker_id, run_id
from bot.delivery.outbox import Outbox
from bot.delivery.pacer import Clock
from bot.domain import ClaimResult, DeliveryStatus, OutgoingMessage, Target, TargetKind
from bot.errors import (
    AuthRejected,
    DeliveryError,
    OverDailyCap,
    PermanentFailure,
    RetryLater,
    TargetGone,
    TargetMigrated,
    TransientFailure,
)
from bot.logs import log_target, scrub
from bot.store import DeliveryRecord, PartSent, Store

log = logging.getLogger("briefbot.delivery")

# Upper bound on chats served at once; most of them wait out a chat's spacing between parts.
MAX_WORKERS = 256
# Targets prepared, claimed and queued at a time.
PAGE = 500
# A group commit waits this long (seconds) for more parts unless this many are waiting. A
# chat's next part waits for its previous part's commit (well within any chat's spacing);
# a chat's last part does not hold up its worker.
GROUP_COMMIT_LINGER = 0.02
GROUP_COMMIT_MAX = 500


@dataclass(slots=True)
class Outcome:
    target: Target
    status: DeliveryStatus
    parts_sent: int = 0
    error: str | None = None


@dataclass
class DeliveryReport:
    """What a fan-out did: counts by status, and the outcome of each target (all of them
    when ``detailed``; otherwise only those not sent or skipped, which keeps a 100k send's
    report small)."""

    date: dt.date
    outcomes: list[Outcome] = field(default_factory=list)
    retries: int = 0
    rate_limited: int = 0
    detailed: bool = True
    counts: Counter[DeliveryStatus] = field(default_factory=Counter)

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.status] += 1
        if self.detailed or outcome.status not in _ROUTINE:
            self.outcomes.append(outcome)

    def count(self, status: DeliveryStatus) -> int:
        return self.counts[status]

    def summary(self) -> dict[str, int]:
        return {status.value: self.count(status) for status in DeliveryStatus}


_ROUTINE = (DeliveryStatus.SENT, DeliveryStatus.SKIPPED)


def unclaimed_outcome(
    target: Target, row: DeliveryRecord, result: ClaimResult, record: DeliveryRecord | None
) -> Outcome:
    """What a target's row says when this run did not get its claim: sent with another
    rendering (needs --force), being sent by another run, or already delivered."""
    if result is ClaimResult.CONTENT_CHANGED:
        error = record.last_error if record else "the brief changed"
        return Outcome(target, DeliveryStatus.FAILED, row.parts_sent, error)
    if result is ClaimResult.BUSY:
        return Outcome(target, DeliveryStatus.SKIPPED, row.parts_sent, "being sent by another run")
    return Outcome(target, DeliveryStatus.SKIPPED, row.parts_sent, "already delivered")


ProgressCallback = Callable[[Outcome], None]
Targets = Iterable[Target] | AsyncIterable[Sequence[Target]]


class GroupCommit:
    """Parts the platforms accepted wait here and are committed together, in a thread.

    While one commit runs, the next parts gather: under load a commit carries many chats,
    when idle each part is committed at once.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.commits = 0
        self._last_batch = 0
        self._waiting: list[tuple[PartSent, asyncio.Future[bool]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def record(self, part: PartSent) -> bool:
        """Wait until ``part`` is committed; False if its run lost the claim."""
        # shielded: a cancelled sender must not leave its accepted part uncommitted
        return await asyncio.shield(self.submit(part))

    def submit(self, part: PartSent) -> asyncio.Future[bool]:
        """Queue ``part`` for the next commit; the future says whether it was still ours."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((part, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return future

    async def settle(self) -> None:
        """Wait until every part handed in so far is committed (at shutdown: a part the
        platform accepted is recorded before its row is given back)."""
        while self._flusher is not None and not self._flusher.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flusher)

    async def _flush(self) -> None:
        while self._waiting:
            if self._last_batch > 1 and len(self._waiting) < GROUP_COMMIT_MAX:
                # under load, linger a moment so that a commit carries many chats: each
                # hand-over to the database thread costs the event loop a GIL switch (when
                # parts come one at a time, each is committed at once)
                await asyncio.sleep(GROUP_COMMIT_LINGER)
            batch, self._waiting = self._waiting, []
            self._last_batch = len(batch)
            try:
                results = await asyncio.to_thread(
                    self.store.record_parts_sent, [part for part, _ in batch]
                )
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.commits += 1
            for (_, future), ok in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(ok)


@dataclass
class _Job:
    target: Target
    row: DeliveryRecord
    parts: Sequence[OutgoingMessage]
    digest: str
    claimed_at: float


class _ClaimLost(Exception):
    """Another run took this delivery over while we waited."""


class DeliveryEngine:
    """Sends each target the parts it has not yet received, recording every step."""

    def __init__(
        self,
        store: Store,
        outboxes: Mapping[str, Outbox],
        settings: DeliverySettings,
        *,
        worker_id: str | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.store = store
        self.outboxes = outboxes
        self.settings = settings
        self.worker_id = worker_id or default_worker_id()
        self._clock = clock
        self.commits = GroupCommit(store)

    async def deliver(
        self,
        date: dt.date,
        messages: Mapping[str, Sequence[OutgoingMessage]],
        targets: Targets,
        *,
        force: bool = False,
        progress: ProgressCallback | None = None,
        detailed: bool = True,
    ) -> DeliveryReport:
        """Deliver ``messages[platform]`` to every target; already-sent targets are skipped
        unless ``force``. Parts go out in order per chat; chats are served concurrently.

        A rejected credential stops the fan-out: :class:`AuthRejected` is raised after the
        rows it did not reach are left pending.
        """
        report = DeliveryReport(date, detailed=detailed)
        claim = run_id(self.worker_id)
        digests = {name: parts_digest(parts) for name, parts in messages.items()}
        queue: asyncio.Queue[_Job | None] = asyncio.Queue(maxsize=PAGE)
        fatal: list[AuthRejected] = []
        workers = self._concurrency(messages)

        def finish(outcome: Outcome) -> None:
            report.add(outcome)
            if progress is not None:
                progress(outcome)

        async def produce() -> None:
            seen: set[int] = set()  # hashes of the keys: a 100k send stays small
            async for page in _pages(targets):
                fresh = []
                for target in page:  # each chat once, even when listed twice in one page
                    key = hash(target.key)
                    if key not in seen and target.platform in messages:
                        seen.add(key)
                        fresh.append(target)
                if fatal or not fresh:
                    continue
                claimed = await self._claim_page(date, fresh, messages, digests, claim, force)
                unqueued.extend(j for j in claimed if not isinstance(j, Outcome))
                for job_or_outcome in claimed:
                    if isinstance(job_or_outcome, Outcome):
                        finish(job_or_outcome)
                    else:
                        await queue.put(job_or_outcome)
                        unqueued.popleft()  # jobs are queued in the order claimed
                if fatal:
                    break
            for _ in range(workers):  # not on cancellation: the workers are gone then
                await queue.put(None)

        settling: set[asyncio.Task[None]] = set()

        async def settle(last_commit: Awaitable[Outcome]) -> None:
            finish(await last_commit)

        left: list[_Job] = []  # claimed, not sent: given back in one statement at the end
        unqueued: collections.deque[_Job] = collections.deque()  # claimed, not yet queued

        async def work() -> None:
            while (job := await queue.get()) is not None:
                if fatal:
                    left.append(job)
                    continue
                try:
                    outcome = await self._deliver_one(job, claim, report)
                except AuthRejected as exc:
                    fatal.append(exc)
                    left.append(job)
                    continue
                if isinstance(outcome, Outcome):
                    finish(outcome)
                else:  # the last part is being committed: take the next chat meanwhile
                    task = asyncio.create_task(settle(outcome))
                    settling.add(task)
                    task.add_done_callback(settling.discard)

        try:
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(produce())
                    for _ in range(workers):
                        group.create_task(work())
            except BaseExceptionGroup as errors:
                # the producer failed (a store error, a group that cannot be resolved): say
                # that error, not a group of one
                first = errors.exceptions[0]
                raise first if isinstance(first, Exception) else errors from None
            # the workers are done: no last part is handed in any more
            await asyncio.gather(*settling)
        finally:
            await self.commits.settle()
            # stopped (a rejected credential) or cancelled (shutdown): the claimed rows not
            # sent go back to pending for the next run
            while not queue.empty():
                if (job := queue.get_nowait()) is not None:
                    left.append(job)
            left.extend(unqueued)
            self.store.release_claims([job.row.id for job in left], claim)
        if fatal:
            for job in left:
                finish(
                    Outcome(job.target, DeliveryStatus.PENDING, job.row.parts_sent, str(fatal[0]))
                )
            raise fatal[0]
        return report

    async def _claim_page(
        self,
        date: dt.date,
        page: Sequence[Target],
        messages: Mapping[str, Sequence[OutgoingMessage]],
        digests: Mapping[str, str],
        claim: str,
        force: bool,
    ) -> list[_Job | Outcome]:
        rows = await asyncio.to_thread(
            self.store.prepare_deliveries,
            date,
            page,
            parts_total={name: len(parts) for name, parts in messages.items()},
            content_hash=digests,
            force=force,
        )
        claiming = asyncio.ensure_future(
            asyncio.to_thread(
                self.store.claim_many,
                [row.id for row in rows],
                claim,
                content_hash={row.id: digests[row.platform] for row in rows},
                parts_total={row.id: len(messages[row.platform]) for row in rows},
                may_take_over=claim_is_stale,
            )
        )
        try:
            claims = await asyncio.shield(claiming)
        except asyncio.CancelledError:
            # the thread commits its claims anyway: give them back before stopping
            done = await claiming
            ids = [
                r.id
                for r, (result, _) in zip(rows, done, strict=True)
                if result is ClaimResult.CLAIMED
            ]
            self.store.release_claims(ids, claim)
            raise
        now = self._clock()
        out: list[_Job | Outcome] = []
        for target, row, (result, record) in zip(page, rows, claims, strict=True):
            if result is ClaimResult.CLAIMED and record is not None:
                parts = messages[target.platform]
                out.append(_Job(target, record, parts, digests[target.platform], now))
            else:
                out.append(unclaimed_outcome(target, row, result, record))
        return out

    def _concurrency(self, messages: Mapping[str, Sequence[OutgoingMessage]]) -> int:
        # Enough chats in flight to fill each platform's global rate while single chats wait
        # out their own spacing between parts; bounded so a huge fan-out stays cheap.
        # Unpaced, the in-flight cap is the limit: more workers than that only queue on it,
        # and a long queue on a semaphore costs the event loop (measured: 256 waiting
        # workers made an unpaced fan-out 20% slower).
        total = 0
        for name in messages:
            outbox = self.outboxes[name]
            limits = outbox.limits
            # a platform whose chats are all groups (the robots) is spaced per group only
            spacing = limits.per_chat_interval or limits.chat_interval(TargetKind.GROUP)
            wanted = limits.global_rate * max(1.0, spacing)
            cap = 2 * outbox.settings.max_in_flight if spacing <= 0 else MAX_WORKERS
            total += cap if math.isinf(wanted) else min(cap, int(wanted) + 1)
        return max(1, min(MAX_WORKERS, total))

    async def _deliver_one(
        self, job: _Job, claim: str, report: DeliveryReport
    ) -> Outcome | Awaitable[Outcome]:
        try:
            return await self._send_parts(job, claim, report)
        except asyncio.CancelledError:
            # shutdown: record what the platform accepted, then give the row back so the
            # next run resumes it at once
            await self.commits.settle()
            self.store.release_claim(job.row.id, claim)
            raise
        except AuthRejected:
            raise
        except Exception as exc:  # a store or adapter bug fails this target, not the fan-out
            log.exception("unexpected error delivering to %s", _who(job.target))
            return await self._fail(job, claim, f"unexpected error: {exc!r}")

    async def _send_parts(
        self, job: _Job, claim: str, report: DeliveryReport
    ) -> Outcome | Awaitable[Outcome]:
        outbox = self.outboxes[job.target.platform]
        migrated = False
        message_ids = list(job.row.message_ids)
        index = job.row.parts_sent

        async def still_ours() -> None:
            # after a long wait (a big retry_after, a slow platform): is the row still ours?
            if self._clock() - job.claimed_at > CLAIM_LEASE / 4:
                if not await asyncio.to_thread(self.store.touch_claim, job.row.id, claim):
                    raise _ClaimLost
                job.claimed_at = self._clock()

        def count_retry(exc: DeliveryError) -> None:
            if isinstance(exc, RetryLater):
                report.rate_limited += 1
            else:
                report.retries += 1

        while index < len(job.parts):
            try:
                message_id = await outbox.send(
                    job.target, job.parts[index], before_send=still_ours, on_retry=count_retry
                )
            except _ClaimLost:
                return Outcome(job.target, DeliveryStatus.SKIPPED, index, "another run took over")
            except (OverDailyCap, RetryLater) as exc:
                # over today's cap, or the platform asks for a longer pause than we wait:
                # the row stays pending for a later run
                await asyncio.to_thread(
                    self.store.finish_delivery,
                    job.row.id,
                    DeliveryStatus.PENDING,
                    error=scrub(str(exc)),
                    worker=claim,
                )
                return Outcome(job.target, DeliveryStatus.PENDING, index, scrub(str(exc)))
            except TargetMigrated as exc:
                if migrated:  # one hop per delivery: a loop of migrations is a platform bug
                    return await self._fail(job, claim, f"migrated twice: {exc}", index)
                migrated = True
                follow = await self._follow_migration(job, claim, exc.new_chat_id)
                if isinstance(follow, Outcome):
                    return follow
                index, message_ids = job.row.parts_sent, list(job.row.message_ids)
                continue
            except TargetGone as exc:
                reason = scrub(str(exc))
                await asyncio.to_thread(self._gone, job, claim, reason)
                log.info("target gone chat=%s reason=%s", _who(job.target), reason)
                return Outcome(job.target, DeliveryStatus.GONE, index, reason)
            except (PermanentFailure, TransientFailure) as exc:
                return await self._fail(job, claim, str(exc), index)
            message_ids.append(message_id)
            index += 1
            day = outbox.cap_day()
            part = PartSent(
                job.row.id,
                claim,
                index,
                tuple(message_ids),
                index == len(job.parts),
                counts_for=(outbox.name, day) if day is not None else None,
            )
            if part.last:
                return self._after_commit(job, claim, self.commits.submit(part), index)
            if not await self.commits.record(part):
                return self._lost(job, index)
        if job.row.parts_sent >= len(job.parts):  # nothing was left to send: close the row
            await asyncio.to_thread(
                self.store.finish_delivery, job.row.id, DeliveryStatus.SENT, worker=claim
            )
        return Outcome(job.target, DeliveryStatus.SENT, index)

    async def _after_commit(
        self, job: _Job, claim: str, committed: Awaitable[bool], index: int
    ) -> Outcome:
        try:
            ours = await committed
        except Exception as exc:
            log.error("could not record delivery %d as sent: %s", job.row.id, exc)
            # do not keep the row claimed: the next run resends the unrecorded part (a
            # duplicate), which beats never sending the rest
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.store.release_claim, job.row.id, claim)
            error = scrub(f"ledger error: {exc!r}")
            return Outcome(job.target, DeliveryStatus.FAILED, index - 1, error)
        return Outcome(job.target, DeliveryStatus.SENT, index) if ours else self._lost(job, index)

    @staticmethod
    def _lost(job: _Job, index: int) -> Outcome:
        error = "another run took over this delivery"
        log.warning("%s chat=%s", error, _who(job.target))
        return Outcome(job.target, DeliveryStatus.SKIPPED, index, error)

    def _gone(self, job: _Job, claim: str, reason: str) -> None:
        self.store.deactivate_subscriber(job.target.platform, job.target.chat_id, reason)
        self.store.finish_delivery(job.row.id, DeliveryStatus.GONE, error=reason, worker=claim)

    async def _follow_migration(self, job: _Job, claim: str, new_chat_id: str) -> Outcome | None:
        """Move the delivery (and the subscriber) to the chat's new id; None to go on."""
        target = job.target
        log.info("chat migrated old=%s new=%s", _who(target), new_chat_id)
        if target.kind is TargetKind.CHANNEL:
            log.warning(
                "configured chat %s is now %s: update the config", target.chat_id, new_chat_id
            )
        await asyncio.to_thread(
            self.store.move_subscriber, target.platform, target.chat_id, new_chat_id
        )
        job.target = Target(target.platform, new_chat_id, target.kind, target.name)
        moved = await asyncio.to_thread(self.store.retarget_delivery, job.row.id, new_chat_id)
        if moved is None:
            return Outcome(
                job.target, DeliveryStatus.SKIPPED, job.row.parts_sent, "already delivered"
            )
        if moved.id != job.row.id:  # the new chat has its own row: continue with that one
            result, claimed = await asyncio.to_thread(
                self.store.claim,
                moved.id,
                claim,
                content_hash=job.digest,
                parts_total=len(job.parts),
                may_take_over=claim_is_stale,
            )
            if result is not ClaimResult.CLAIMED or claimed is None:
                return Outcome(job.target, DeliveryStatus.SKIPPED, moved.parts_sent, str(result))
            job.row = claimed
        else:
            job.row = moved
        return None

    async def _fail(self, job: _Job, claim: str, error: str, index: int | None = None) -> Outcome:
        error = scrub(error)
        try:
            await asyncio.to_thread(
                self.store.finish_delivery,
                job.row.id,
                DeliveryStatus.FAILED,
                error=error,
                worker=claim,
            )
        except Exception:
            log.exception("could not record the outcome of delivery %d", job.row.id)
        parts = job.row.parts_sent if index is None else index
        log.warning("delivery failed chat=%s part=%d error=%s", _who(job.target), parts, error)
        return Outcome(job.target, DeliveryStatus.FAILED, parts, error)


async def _pages(targets: Targets) -> AsyncIterable[Sequence[Target]]:
    if isinstance(targets, AsyncIterable):
        async for page in targets:
            yield page
        return
    batch: list[Target] = []
    for target in targets:
        batch.append(target)
        if len(batch) >= PAGE:
            yield batch
            batch = []
    if batch:
        yield batch


def _who(target: Target) -> str:
    return log_target(target.platform, target.chat_id)


def parts_digest(parts: Sequence[OutgoingMessage]) -> str:
    """Identifies a rendering, so a resumed delivery knows its sent parts still match."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.text.encode())
        digest.update(b"\x1e")
    return digest.hexdigest()
