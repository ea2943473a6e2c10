"""The platform-neutral delivery engine and outbox: ledger, pacing, outcomes, resumption.

These tests drive the engine through a scripted implementation of briefbot's own Platform
interface on a virtual clock; the real clients are exercised in test_telegram_*.py and
test_wechat_*.py against the loopback servers, and test_outcomes.py holds one table of
outcomes for the scripted platform and both real adapters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from itertools import pairwise

import pytest

from bot.config import DeliverySettings
from bot.delivery import DeliveryEngine, Outbox, Pacer, build_outbox
from bot.domain import (
    ClaimResult,
    DeliveryStatus,
    OutgoingMessage,
    Target,
    TargetKind,
)
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
from bot.platforms.base import Limits
from bot.platforms.telegram import LIMITS as TELEGRAM_LIMITS
from bot.store import Store
from tests.doubles import ScriptedPlatform, VirtualClock

DAY = dt.date(2026, 11, 27)
PARTS = [OutgoingMessage(f"part {i}", "html") for i in range(3)]


def make_outbox(
    store: Store, platform: ScriptedPlatform, *, today: dt.date = DAY, **settings: float
) -> Outbox:
    clock = platform.clock
    outbox = build_outbox(
        platform,
        store,
        DeliverySettings(**settings),  # type: ignore[arg-type]
        today=lambda: today,
        clock=clock,
        sleep=clock.sleep,
    )
    platform.outbox = outbox
    return outbox


def make_engine(
    store: Store, limits: Limits = TELEGRAM_LIMITS, *, today: dt.date = DAY, **settings: float
) -> tuple[DeliveryEngine, ScriptedPlatform, VirtualClock]:
    clock = VirtualClock()
    platform = ScriptedPlatform(clock, limits)
    outbox = make_outbox(store, platform, today=today, **settings)
    engine = DeliveryEngine(
        store,
        {"telegram": outbox},
        DeliverySettings(**settings),  # type: ignore[arg-type]
        clock=clock,
    )
    return engine, platform, clock


def subscribers(store: Store, n: int) -> list[Target]:
    for i in range(n):
        store.add_subscriber("telegram", str(1000 + i))
    return [s.target for s in store.subscribers("telegram")]


async def test_every_part_once_in_order_and_a_second_run_sends_nothing(store: Store) -> None:
    engine, platform, _ = make_engine(store)
    targets = subscribers(store, 5)
    report = await engine.deliver(DAY, {"telegram": PARTS}, targets)
    assert report.count(DeliveryStatus.SENT) == 5
    for target in targets:
        assert [text for chat, text, _ in platform.delivered if chat == target.chat_id] == [
            "part 0",
            "part 1",
            "part 2",
        ]
    again = await engine.deliver(DAY, {"telegram": PARTS}, targets)
    assert again.count(DeliveryStatus.SKIPPED) == 5
    assert len(platform.delivered) == 15
    ledger = store.deliveries(DAY)
    assert all(row.status is DeliveryStatus.SENT and len(row.message_ids) == 3 for row in ledger)


async def test_force_sends_again(store: Store) -> None:
    engine, platform, _ = make_engine(store)
    targets = subscribers(store, 2)
    await engine.deliver(DAY, {"telegram": PARTS[:1]}, targets)
    await engine.deliver(DAY, {"telegram": PARTS[:1]}, targets, force=True)
    assert len(platform.delivered) == 4


async def test_pacing_never_exceeds_global_and_per_chat_limits(store: Store) -> None:
    engine, platform, _ = make_engine(store)
    targets = subscribers(store, 60)
    await engine.deliver(DAY, {"telegram": PARTS}, targets)
    times = sorted(t for _, _, t in platform.delivered)
    assert len(times) == 180
    # no 1-second window holds more than 30 sends, from the very first second (no burst)
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 1.0 - 1e-6) <= 30
    per_chat: dict[str, list[float]] = {}
    for chat, _, t in platform.delivered:
        per_chat.setdefault(chat, []).append(t)
    for stamps in per_chat.values():
        assert all(b - a >= 1.0 - 1e-9 for a, b in pairwise(stamps))
    # and it is not needlessly slow: 180 messages at 30/s take about 6 s
    assert times[-1] - times[0] < 8.0


async def test_groups_and_channels_get_at_most_20_per_minute(store: Store) -> None:
    engine, platform, _ = make_engine(store)
    channel = Target("telegram", "@news", TargetKind.CHANNEL)
    parts = [OutgoingMessage(f"p{i}") for i in range(25)]
    await engine.deliver(DAY, {"telegram": parts}, [channel])
    times = [t for _, _, t in platform.delivered]
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 60.0 - 1e-6) <= 20


def test_pacer_adds_jitter_within_bounds() -> None:
    clock = VirtualClock()
    limits = Limits(
        max_length=10, length_unit=TELEGRAM_LIMITS.length_unit, per_chat_interval=3.0, jitter=2.0
    )
    pacer = Pacer(limits, clock=clock, sleep=clock.sleep)
    target = Target("wechat", "room", TargetKind.GROUP)
    stamps = []

    async def run() -> None:
        for _ in range(20):
            async with pacer.chat_turn(target), pacer.slot():
                stamps.append(clock.now)

    asyncio.run(run())
    gaps = [b - a for a, b in pairwise(stamps)]
    assert all(3.0 <= g <= 3.0 * 1.05 + 2.0 + 1e-9 for g in gaps)
    assert len({round(g, 3) for g in gaps}) > 1  # jitter varies


async def test_429_waits_retry_after_then_delivers(store: Store) -> None:
    engine, platform, clock = make_engine(store)
    platform.script = lambda t, m, n: RetryLater(7) if n == 1 else None
    [target] = subscribers(store, 1)
    start = clock.now
    report = await engine.deliver(DAY, {"telegram": PARTS[:1]}, [target])
    assert report.rate_limited == 1
    assert report.count(DeliveryStatus.SENT) == 1
    assert platform.delivered[0][2] - start >= 7.0


async def test_transient_errors_retry_with_backoff_then_give_up_and_resume(store: Store) -> None:
    engine, platform, _ = make_engine(store, max_attempts=3)
    [target] = subscribers(store, 1)
    platform.script = lambda t, m, n: TransientFailure("502 Bad Gateway")
    report = await engine.deliver(DAY, {"telegram": PARTS[:1]}, [target])
    assert report.count(DeliveryStatus.FAILED) == 1
    [row] = store.deliveries(DAY)
    assert row.status is DeliveryStatus.FAILED and "502" in (row.last_error or "")
    assert platform.calls == 3
    platform.script = lambda t, m, n: None
    report = await engine.deliver(DAY, {"telegram": PARTS[:1]}, [target])
    assert report.count(DeliveryStatus.SENT) == 1
    assert len(platform.delivered) == 1


async def test_forbidden_deactivates_and_is_not_retried(store: Store) -> None:
    engine, platform, _ = make_engine(store)
    targets = subscribers(store, 3)
    blocked = targets[1].chat_id
    platform.script = lambda t, m, n: (
        TargetGone("bot was blocked") if t.chat_id == blocked else None
    )
    report = await engine.deliver(DAY, {"telegram": PARTS[:1]}, targets)
    assert report.count(DeliveryStatus.GONE) == 1 and report.count(DeliveryStatus.SENT) == 2
    assert blocked not in {s.chat_id for s in store.subscribers("telegram")}
    calls = platform.calls
    await engine.deliver(DAY, {"telegram": PARTS[:1]}, targets)
    assert platform.calls == calls


async def test_migration_is_followed(store: Store) -> None:
    engine, platform, _ = make_engine(store)
    store.add_subscriber("telegram", "-100", TargetKind.GROUP)
    [target] = [s.target for s in store.subscribers("telegram")]
    platform.script = lambda t, m, n: TargetMigrated("-100999") if t.chat_id == "-100" else None
    report = await engine.deliver(DAY, {"telegram": PARTS[:2]}, [target])
    assert report.count(DeliveryStatus.SENT) == 1
    assert [chat for chat, _, _ in platform.delivered] == ["-100999", "-100999"]
    assert [s.chat_id for s in store.subscribers("telegram")] == ["-100999"]
    assert [row.chat_id for row in store.deliveries(DAY)] == ["-100999"]


async def test_bad_request_is_recorded_with_its_reason(store: Store) -> None:
    engine, platform, _ = make_engine(store)
    targets = subscribers(store, 2)
    platform.script = lambda t, m, n: (
        PermanentFailure("can't parse entities") if t == targets[0] else None
    )
    report = await engine.deliver(DAY, {"telegram": PARTS[:1]}, targets)
    assert report.count(DeliveryStatus.FAILED) == 1 and report.count(DeliveryStatus.SENT) == 1
    failed = [r for r in store.deliveries(DAY) if r.status is DeliveryStatus.FAILED]
    assert failed[0].last_error == "can't parse entities"


async def test_an_adapter_bug_fails_one_delivery_not_the_fan_out(store: Store) -> None:
    engine, platform, _ = make_engine(store)
    targets = subscribers(store, 3)

    def script(t: Target, m: OutgoingMessage, n: int) -> DeliveryError | None:
        if t == targets[0]:
            raise ZeroDivisionError("adapter bug")
        return None

    platform.script = script
    report = await engine.deliver(DAY, {"telegram": PARTS[:1]}, targets)
    assert report.count(DeliveryStatus.SENT) == 2
    assert report.count(DeliveryStatus.FAILED) == 1


async def test_crash_mid_fan_out_then_resume_delivers_each_part_exactly_once(store: Store) -> None:
    engine, platform, _ = make_engine(store)
    targets = subscribers(store, 20)
    crash_after = 23

    async def crashing_run() -> None:
        task = asyncio.ensure_future(engine.deliver(DAY, {"telegram": PARTS}, targets))
        while len(platform.delivered) < crash_after:  # noqa: ASYNC110 - virtual time, no event
            await asyncio.sleep(0)
        task.cancel()  # the process dies: whatever was in flight is abandoned
        with pytest.raises(asyncio.CancelledError):
            await task

    await crashing_run()
    assert crash_after <= len(platform.delivered) < 60
    fresh, platform2, _ = make_engine(store)  # a new process, same store
    report = await fresh.deliver(DAY, {"telegram": PARTS}, targets)
    both = platform.delivered + platform2.delivered
    counts = Counter((chat, text) for chat, text, _ in both)
    assert set(counts.values()) == {1}
    assert len(counts) == 60
    assert report.count(DeliveryStatus.SENT) + report.count(DeliveryStatus.SKIPPED) == 20
    assert all(r.status is DeliveryStatus.SENT for r in store.deliveries(DAY))


async def test_daily_cap_leaves_the_rest_pending(store: Store) -> None:
    limits = Limits(max_length=1800, length_unit=TELEGRAM_LIMITS.length_unit, daily_cap=2)
    engine, platform, _ = make_engine(store, limits)
    targets = subscribers(store, 3)
    report = await engine.deliver(DAY, {"telegram": PARTS[:1]}, targets)
    assert len(platform.delivered) == 2
    assert report.count(DeliveryStatus.PENDING) == 1
    pending = [r for r in store.deliveries(DAY) if r.status is DeliveryStatus.PENDING]
    assert "daily cap" in (pending[0].last_error or "")
    # a restarted process counts what the ledger says was sent in the last day
    restarted, platform2, _ = make_engine(store, limits)
    await restarted.deliver(DAY, {"telegram": PARTS[:1]}, targets)
    assert platform2.delivered == []


async def test_two_runs_at_once_send_each_part_once(store: Store) -> None:
    engine, platform, _ = make_engine(store)
    targets = subscribers(store, 6)
    other = DeliveryEngine(store, engine.outboxes, DeliverySettings(), clock=platform.clock)
    await asyncio.gather(
        engine.deliver(DAY, {"telegram": PARTS}, targets),
        other.deliver(DAY, {"telegram": PARTS}, [*targets, targets[0]]),  # and a duplicate
    )
    counts = Counter((chat, text) for chat, text, _ in platform.delivered)
    assert len(counts) == 18 and set(counts.values()) == {1}


async def test_migration_into_a_chat_that_has_its_own_delivery(store: Store) -> None:
    engine, platform, _ = make_engine(store)
    store.add_subscriber("telegram", "-1", TargetKind.GROUP)
    store.add_subscriber("telegram", "-100", TargetKind.GROUP)
    targets = [s.target for s in store.subscribers("telegram")]
    platform.script = lambda t, m, n: TargetMigrated("-100") if t.chat_id == "-1" else None
    report = await engine.deliver(DAY, {"telegram": PARTS[:2]}, targets)
    assert [chat for chat, _, _ in platform.delivered] == ["-100", "-100"]
    assert {o.status for o in report.outcomes} <= {DeliveryStatus.SENT, DeliveryStatus.SKIPPED}
    statuses = {r.chat_id: r.status for r in store.deliveries(DAY)}
    assert statuses == {"-1": DeliveryStatus.SKIPPED, "-100": DeliveryStatus.SENT}


async def test_a_rejected_token_stops_the_fan_out_and_leaves_rows_pending(store: Store) -> None:
    engine, platform, _ = make_engine(store)
    targets = subscribers(store, 50)
    platform.script = lambda t, m, n: AuthRejected("the bot token was rejected: check it")
    with pytest.raises(AuthRejected, match="token"):
        await engine.deliver(DAY, {"telegram": PARTS[:1]}, targets)
    assert platform.calls == 1  # paced: nothing else was in flight
    assert {r.status for r in store.deliveries(DAY)} == {DeliveryStatus.PENDING}
    # and no message of any kind leaves this outbox any more
    with pytest.raises(AuthRejected):
        await engine.outboxes["telegram"].send(targets[0], OutgoingMessage("hi"))
    assert platform.calls == 1


async def test_unpaced_a_rejected_token_costs_at_most_one_request_per_in_flight_slot(
    store: Store,
) -> None:
    unpaced = TELEGRAM_LIMITS.with_overrides(global_rate=float("inf"), per_chat_interval=0.0)
    engine, platform, _ = make_engine(store, unpaced, max_in_flight=4)
    platform.latency = lambda n: 0.5  # requests overlap
    platform.script = lambda t, m, n: AuthRejected("token rejected")
    with pytest.raises(AuthRejected):
        await engine.deliver(DAY, {"telegram": PARTS[:1]}, subscribers(store, 100))
    assert 1 <= platform.calls <= 4
    assert {r.status for r in store.deliveries(DAY)} == {DeliveryStatus.PENDING}


async def test_a_shorter_rendering_after_a_partial_send_is_failed_not_hung(store: Store) -> None:
    engine, platform, _ = make_engine(store)
    [target] = subscribers(store, 1)
    platform.script = lambda t, m, n: PermanentFailure("boom") if n == 3 else None
    await engine.deliver(DAY, {"telegram": PARTS}, [target])
    assert len(platform.delivered) == 2
    platform.script = lambda t, m, n: None
    report = await engine.deliver(DAY, {"telegram": PARTS[:1]}, [target])  # content changed
    assert report.outcomes[0].status is DeliveryStatus.FAILED
    assert "--force" in (report.outcomes[0].error or "")
    assert len(platform.delivered) == 2
    forced = await engine.deliver(DAY, {"telegram": PARTS[:1]}, [target], force=True)
    assert forced.count(DeliveryStatus.SENT) == 1


def test_a_claim_by_an_earlier_life_of_this_pid_is_stale() -> None:
    import os
    import socket

    from bot.delivery import PROCESS_NONCE, claim_is_stale

    now = dt.datetime.now(dt.UTC)
    host, pid = socket.gethostname(), os.getpid()
    assert claim_is_stale(f"{host}:{pid}:deadbeef:1", now)  # a restarted container, pid 1 again
    assert not claim_is_stale(f"{host}:{pid}:{PROCESS_NONCE}:1", now)  # ourselves, alive
    assert claim_is_stale(f"{host}:999999999:x:1", now)  # no such process
    assert not claim_is_stale("elsewhere:1:x:1", now)  # another host: only the lease decides
    assert claim_is_stale("elsewhere:1:x:1", now - dt.timedelta(hours=1))


async def test_two_sends_to_one_chat_keep_its_spacing() -> None:
    clock = VirtualClock()
    pacer = Pacer(TELEGRAM_LIMITS, clock=clock, sleep=clock.sleep)
    group = Target("telegram", "-5", TargetKind.GROUP)
    stamps: list[float] = []

    async def send() -> None:
        async with pacer.chat_turn(group), pacer.slot():
            stamps.append(clock.now)

    await asyncio.gather(send(), send(), send())  # a broadcast and two replies at once
    stamps.sort()
    assert all(b - a >= 3.0 - 1e-9 for a, b in pairwise(stamps))  # 20 per minute


async def test_the_daily_cap_counts_today_only(store: Store) -> None:
    limits = Limits(max_length=1800, length_unit=TELEGRAM_LIMITS.length_unit, daily_cap=2)
    yesterday = DAY - dt.timedelta(days=1)
    engine, _platform, _ = make_engine(store, limits, today=yesterday)
    targets = subscribers(store, 2)
    await engine.deliver(yesterday, {"telegram": PARTS[:1]}, targets)  # sent yesterday
    today_engine, platform2, _ = make_engine(store, limits)
    await today_engine.deliver(DAY, {"telegram": PARTS[:1]}, targets)
    assert len(platform2.delivered) == 2


async def test_a_forced_resend_still_counts_the_mornings_messages(store: Store) -> None:
    limits = Limits(max_length=1800, length_unit=TELEGRAM_LIMITS.length_unit, daily_cap=3)
    engine, _platform, _ = make_engine(store, limits)
    targets = subscribers(store, 2)
    await engine.deliver(DAY, {"telegram": PARTS[:1]}, targets)
    restarted, platform2, _ = make_engine(store, limits)  # a new process, same day
    report = await restarted.deliver(DAY, {"telegram": PARTS[:1]}, targets, force=True)
    assert len(platform2.delivered) == 1  # 2 in the morning + 1 = the cap of 3
    assert report.count(DeliveryStatus.PENDING) == 1


def test_force_takes_the_row_from_a_run_still_sending(store: Store) -> None:
    target = Target("telegram", "42")
    [row] = store.prepare_deliveries(
        DAY, [target], parts_total={"telegram": 2}, content_hash={"telegram": "a"}, force=False
    )
    store.claim(row.id, "old", content_hash="a", parts_total=2, may_take_over=lambda *_: False)
    store.prepare_deliveries(
        DAY, [target], parts_total={"telegram": 2}, content_hash={"telegram": "b"}, force=True
    )
    assert not store.record_part_sent(row.id, "old", 0, "m1", last=False)
    result, claimed = store.claim(
        row.id, "new", content_hash="b", parts_total=2, may_take_over=lambda *_: False
    )
    assert result is ClaimResult.CLAIMED
    assert claimed is not None and claimed.parts_sent == 0


def max_in_window(stamps: list[float], window: float) -> int:
    """The most stamps in any closed window of that length."""
    stamps = sorted(stamps)
    return max(
        (sum(1 for t in stamps[i:] if t <= start + window) for i, start in enumerate(stamps)),
        default=0,
    )


async def test_slow_and_uneven_requests_never_bunch_at_the_platform(store: Store) -> None:
    """Requests that take up to 0.9 s arrive anywhere between start and answer: in no
    second may more than the rate arrive, counting either end."""
    engine, platform, _ = make_engine(store)
    platform.latency = lambda n: (n * 7919 % 9) / 10  # 0 … 0.8 s, uneven
    await engine.deliver(DAY, {"telegram": PARTS}, subscribers(store, 40))
    assert len(platform.delivered) == 120
    assert max_in_window(platform.started, 1.0) <= 30
    assert max_in_window([t for _, _, t in platform.delivered], 1.0) <= 30


async def test_a_reply_during_a_broadcast_goes_ahead_within_the_same_budget(
    store: Store,
) -> None:
    engine, platform, clock = make_engine(store)
    targets = subscribers(store, 60)
    reader = targets[0]  # a subscriber who searches while the brief goes out
    asked: list[float] = []

    async def reply_while_sending(to: Target) -> float:
        await clock.sleep(2.0)  # the broadcast is in full swing: the window is saturated
        asked.append(clock.now)
        await engine.outboxes["telegram"].send(to, OutgoingMessage("results"), urgent=True)
        return clock.now - asked[0]

    stranger = Target("telegram", "999")  # someone who is not a subscriber
    report, answered, stranger_answered = await asyncio.gather(
        engine.deliver(DAY, {"telegram": PARTS}, targets),
        reply_while_sending(reader),
        reply_while_sending(stranger),
    )
    assert report.count(DeliveryStatus.SENT) == 60
    assert stranger_answered <= 0.2  # the next free unit of the window
    # ahead of the ~170 queued broadcast messages, yet after the reader's own part in flight
    assert answered <= 1.2
    to_reader = sorted(t for chat, _, t in platform.delivered if chat == reader.chat_id)
    assert len(to_reader) == 4 and all(b - a >= 1.0 for a, b in pairwise(to_reader))
    assert max_in_window([t for _, _, t in platform.delivered], 1.0) <= 30
    assert max_in_window(platform.started, 1.0) <= 30


async def test_a_429_on_a_reply_pauses_the_whole_platform(store: Store) -> None:
    engine, platform, clock = make_engine(store)
    targets = subscribers(store, 20)
    paused: list[float] = []

    def script(t: Target, m: OutgoingMessage, n: int) -> DeliveryError | None:
        if m.text == "reply" and not paused:
            paused.append(clock.now)
            return RetryLater(5)
        return None

    platform.script = script

    async def reply_soon() -> None:
        await clock.sleep(0.2)
        await engine.outboxes["telegram"].send(Target("telegram", "777"), OutgoingMessage("reply"))

    await asyncio.gather(engine.deliver(DAY, {"telegram": PARTS}, targets), reply_soon())
    [at] = paused
    during = [t for _, _, t in platform.delivered if at < t < at + 5.0 - 1e-6]
    assert during == []  # nothing of the broadcast went out while the platform said wait
    assert any(text == "reply" for _, text, _ in platform.delivered)


async def test_replies_count_against_the_daily_cap_and_keep_the_interval(store: Store) -> None:
    limits = Limits(
        max_length=1800, length_unit=TELEGRAM_LIMITS.length_unit, daily_cap=3, per_chat_interval=3.0
    )
    engine, platform, _ = make_engine(store, limits)
    outbox = engine.outboxes["telegram"]
    group = Target("telegram", "room", TargetKind.GROUP)
    await outbox.send(group, OutgoingMessage("answer 1"))
    await outbox.send(group, OutgoingMessage("admin notice"))
    stamps = [t for _, _, t in platform.delivered]
    assert stamps[1] - stamps[0] >= 3.0
    report = await engine.deliver(DAY, {"telegram": PARTS[:1]}, subscribers(store, 3))
    assert report.count(DeliveryStatus.SENT) == 1 and report.count(DeliveryStatus.PENDING) == 2
    with pytest.raises(OverDailyCap):
        await outbox.send(group, OutgoingMessage("answer 2"))
    assert len(platform.delivered) == 3


async def test_transient_errors_on_a_reply_are_retried(store: Store) -> None:
    engine, platform, _ = make_engine(store, backoff_base=0.5)
    platform.script = lambda t, m, n: TransientFailure("502") if n < 3 else None
    await engine.outboxes["telegram"].send(Target("telegram", "1"), OutgoingMessage("hi"))
    assert [text for _, text, _ in platform.delivered] == ["hi"] and platform.calls == 3


async def test_a_large_fan_out_streams_its_targets_and_commits_in_groups(store: Store) -> None:
    unpaced = TELEGRAM_LIMITS.with_overrides(global_rate=float("inf"), per_chat_interval=0.0)
    engine, platform, _ = make_engine(store, unpaced)
    targets = [Target("telegram", str(n)) for n in range(1200)]

    async def pages() -> AsyncIterator[list[Target]]:
        for start in range(0, len(targets), 300):
            yield targets[start : start + 300]

    report = await engine.deliver(DAY, {"telegram": PARTS[:1]}, pages())
    assert report.count(DeliveryStatus.SENT) == 1200
    assert len(platform.delivered) == 1200
    assert engine.commits.commits < 1200  # parts of many chats share a commit
    assert store.delivery_counts(DAY) == {"sent": 1200}


async def test_a_third_sender_arriving_late_still_waits_its_turn() -> None:
    """A released chat lock looks free before its next waiter resumes: a sender arriving
    then must not get a lock of its own and send at the same time."""
    clock = VirtualClock()
    limits = TELEGRAM_LIMITS.with_overrides(per_chat_interval=3.0)
    pacer = Pacer(limits, clock=clock, sleep=clock.sleep)
    chat = Target("telegram", "42")
    spans: list[tuple[float, float]] = []

    async def send(after: float) -> None:
        await clock.sleep(after)
        async with pacer.chat_turn(chat):
            start = clock.now
            await clock.sleep(0.5)  # a slow request
            spans.append((start, clock.now))

    await asyncio.gather(send(0.0), send(0.1), send(3.6))
    spans.sort()
    assert all(b[0] >= a[1] + 3.0 - 1e-9 for a, b in pairwise(spans))


async def test_a_pause_longer_than_we_wait_leaves_every_row_pending_without_requests(
    store: Store,
) -> None:
    engine, platform, _ = make_engine(store, max_retry_after=60.0)
    platform.script = lambda t, m, n: RetryLater(3600) if n == 1 else None
    report = await engine.deliver(DAY, {"telegram": PARTS[:1]}, subscribers(store, 5))
    assert platform.calls == 1  # the others were not sent into the pause
    assert report.count(DeliveryStatus.PENDING) == 5
    assert {r.status for r in store.deliveries(DAY)} == {DeliveryStatus.PENDING}


async def test_a_rejected_credential_is_tried_again_after_a_while(store: Store) -> None:
    from bot.delivery.outbox import REJECTED_FOR

    engine, platform, clock = make_engine(store)
    outbox = engine.outboxes["telegram"]
    platform.script = lambda t, m, n: AuthRejected("token rejected") if n == 1 else None
    with pytest.raises(AuthRejected):
        await outbox.send(Target("telegram", "1"), OutgoingMessage("a"))
    with pytest.raises(AuthRejected):  # refused without a request
        await outbox.send(Target("telegram", "2"), OutgoingMessage("b"))
    assert platform.calls == 1
    await clock.sleep(REJECTED_FOR + 1)
    await outbox.send(Target("telegram", "3"), OutgoingMessage("c"))  # the gateway is back
    assert [text for _, text, _ in platform.delivered] == ["c"]


async def test_a_failing_target_source_raises_its_own_error(store: Store) -> None:
    from bot.errors import ConfigError

    engine, _platform, _ = make_engine(store)

    async def pages() -> AsyncIterator[list[Target]]:
        yield [Target("telegram", "1")]
        raise ConfigError("[[wechat.groups]] topic 'x' matches 2 groups")

    with pytest.raises(ConfigError, match="matches 2 groups"):
        await engine.deliver(DAY, {"telegram": PARTS[:1]}, pages())
