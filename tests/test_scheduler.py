"""The schedule: triggers from config, persistent jobs, restarts around the scheduled time.

The clock is moved with time-machine (ticking), so APScheduler sees the wall-clock times we
choose while the event loop runs normally; sends go through PTB to the loopback server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine

from bot.config import ScheduleSettings, Settings, StoreSettings
from bot.core import build_core
from bot.domain import DeliveryStatus
from bot.errors import ConfigError
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.platforms.telegram import TelegramChannel, TelegramSettings
from bot.platforms.wechat import WechatGroup, WechatSettings
from bot.sandbox.telegram_api import TelegramTestServer
from bot.scheduler import next_runs_from_config, parse_trigger, schedule_entries
from bot.service import Service, build_service, start_service
from tests.sandbox_fixtures import ALICE, BOB, telegram_server

__all__ = ["telegram_server"]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int, minute: int, second: int = 0, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=SHANGHAI)


# -- triggers and entries ------------------------------------------------------------------


def test_triggers_from_hh_mm_and_cron() -> None:
    now = at(27, 7, 0)
    assert parse_trigger("08:00", "Asia/Shanghai", "x").get_next_fire_time(None, now) == at(
        27, 8, 0
    )
    assert parse_trigger("7:30", "Asia/Shanghai", "x").get_next_fire_time(None, now) == at(
        27, 7, 30
    )
    weekdays = parse_trigger("30 7 * * 1-5", "Asia/Shanghai", "x")
    saturday = at(28, 6, 0)  # 2026-11-28 is a Saturday
    assert weekdays.get_next_fire_time(None, saturday) == at(30, 7, 30)


@pytest.mark.parametrize(
    ("day_of_week", "expected"),
    [("0", "Sunday"), ("7", "Sunday"), ("1", "Monday"), ("6", "Saturday"), ("sun", "Sunday")],
)
def test_cron_day_numbers_follow_crontab_not_apscheduler(day_of_week: str, expected: str) -> None:
    trigger = parse_trigger(f"0 9 * * {day_of_week}", "Asia/Shanghai", "x")
    fire = trigger.get_next_fire_time(None, at(27, 10, 0))  # a Friday
    assert fire is not None and fire.strftime("%A") == expected


def test_cron_range_starting_on_sunday() -> None:
    trigger = parse_trigger("0 9 * * 0-2", "Asia/Shanghai", "x")
    days = set()
    now = at(27, 10, 0)
    for _ in range(6):
        fire = trigger.get_next_fire_time(None, now)
        assert fire is not None
        days.add(fire.strftime("%a"))
        now = fire + dt.timedelta(minutes=1)
    assert days == {"Sun", "Mon", "Tue"}


def test_time_zone_is_honoured() -> None:
    trigger = parse_trigger("08:00", "Europe/Berlin", "x")
    fire = trigger.get_next_fire_time(None, at(27, 7, 0))
    assert fire is not None
    assert fire.astimezone(ZoneInfo("Europe/Berlin")).hour == 8


@pytest.mark.parametrize("spec", ["25:00", "8h", "every day", "61 * * * *", "0 9 * * 8"])
def test_bad_schedules_name_the_setting(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"\[\[telegram\.channels\]\] schedule"):
        parse_trigger(spec, "Asia/Shanghai", "[[telegram.channels]] schedule")


def test_entries_group_targets_by_schedule() -> None:
    settings = Settings(
        platforms={
            "telegram": TelegramSettings(
                channels=(
                    TelegramChannel("@a", "07:30"),
                    TelegramChannel("@b"),
                    TelegramChannel("@c", "07:30"),
                )
            ),
            "wechat": WechatSettings(
                groups=(
                    WechatGroup(topic="AI简报交流群", schedule="09:00"),
                    WechatGroup(id="r@chatroom"),
                ),
                subscriber_schedule="30 8 * * 1-5",
            ),
        }
    )
    entries = {e.job_id: e for e in schedule_entries(settings, ["telegram", "wechat"])}
    assert entries["brief:telegram:channels:07:30"].only == ("@a", "@c")
    assert entries["brief:telegram:channels:08:00"].only == ("@b",)
    assert entries["brief:telegram:subscribers:08:00"].only == ()
    assert entries["brief:wechat:channels:09:00"].only == ("AI简报交流群",)
    assert entries["brief:wechat:channels:08:00"].only == ("r@chatroom",)
    assert "brief:wechat:subscribers:30 8 * * 1-5" in entries
    runs = next_runs_from_config(settings, ["telegram"], at(27, 7, 45))
    assert runs["brief:telegram:channels:07:30"] == at(28, 7, 30)
    assert runs["brief:telegram:subscribers:08:00"] == at(27, 8, 0)


def test_a_bad_schedule_fails_at_start() -> None:
    settings = Settings(schedule=ScheduleSettings(default="8 o'clock"))
    with pytest.raises(ConfigError, match="8 o'clock"):
        schedule_entries(settings, ["telegram"])


# -- the running service across restarts --------------------------------------------------


class Rig:
    """A store with the sample content, and a way to (re)start the service at a given time."""

    def __init__(self, server: TelegramTestServer, tmp_path: Path) -> None:
        self.server = server
        self.settings = Settings(
            store=StoreSettings(url=f"sqlite:///{tmp_path / 'sched.db'}"),
            platforms={"telegram": TelegramSettings(api_base_url=server.base_url, admins=(BOB,))},
            schedule=ScheduleSettings(default="08:00", misfire_grace=3600),
        )
        core = build_core(self.settings)
        import_paths(core.store, [SAMPLES_DIR])
        core.store.add_subscriber("telegram", str(ALICE))
        core.store.close()

    def briefs_to_alice(self) -> list[str]:
        return [m.text for m in self.server.messages_to(ALICE) if "AI简报" in m.text]

    @asynccontextmanager
    async def running(
        self, when: dt.datetime, change: Callable[[Settings], Settings] = lambda s: s
    ) -> AsyncIterator[Service]:
        with time_machine.travel(when, tick=True):
            core = build_core(change(self.settings))
            service = build_service(core, platforms=("telegram",), receive=False)
            await start_service(service)
            try:
                yield service
            finally:
                await service.stop()
                core.store.close()


@pytest.fixture
def rig(
    telegram_server: TelegramTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Rig:
    monkeypatch.setenv("BRIEFBOT_TELEGRAM_TOKEN", telegram_server.token)
    return Rig(telegram_server, tmp_path)


async def test_sends_at_the_scheduled_time(rig: Rig) -> None:
    async with rig.running(at(27, 7, 59, 58)) as service:
        assert rig.briefs_to_alice() == []
        await rig.server.wait_for_messages(ALICE, 1, timeout=8)
        await asyncio.sleep(0.3)
        assert service.scheduler is not None
        nxt = service.scheduler.next_runs()["brief:telegram:subscribers:08:00"]
        assert nxt == at(28, 8, 0)
    briefs = rig.briefs_to_alice()
    assert len(briefs) == 1 and "AI简报20261127" in briefs[0]
    # restarting right after the send sends nothing again
    async with rig.running(at(27, 8, 0, 30)):
        await asyncio.sleep(0.5)
    assert len(rig.briefs_to_alice()) == 1


async def test_down_at_eight_back_at_eight_forty_sends_once_at_start(rig: Rig) -> None:
    async with rig.running(at(27, 7, 50)):
        pass  # the job is stored with its next run at 08:00, then the process stops
    async with rig.running(at(27, 8, 40)):
        await rig.server.wait_for_messages(ALICE, 1, timeout=8)
        await asyncio.sleep(0.3)
    async with rig.running(at(27, 8, 41)):
        await asyncio.sleep(0.5)
    briefs = rig.briefs_to_alice()
    assert len(briefs) == 1 and "AI简报20261127" in briefs[0]


async def test_down_for_a_day_does_not_send_yesterdays_brief_late(rig: Rig) -> None:
    async with rig.running(at(26, 7, 50)):
        pass
    async with rig.running(at(27, 9, 30)):  # both 08:00 runs are more than an hour late
        await asyncio.sleep(1.0)
    assert rig.briefs_to_alice() == []


async def test_catch_up_days_sends_a_missed_day_when_configured(rig: Rig) -> None:
    async with rig.running(
        at(27, 9, 30), lambda s: replace(s, schedule=replace(s.schedule, catch_up_days=1))
    ):
        await rig.server.wait_for_messages(ALICE, 1, timeout=8)
    briefs = rig.briefs_to_alice()
    assert len(briefs) == 1 and "AI简报20261126" in briefs[0]


async def test_config_changes_are_applied_to_stored_jobs(rig: Rig) -> None:
    async with rig.running(at(27, 6, 0)) as service:
        assert service.scheduler is not None
        assert service.scheduler.next_runs()["brief:telegram:subscribers:08:00"] == at(27, 8, 0)

    def later(s: Settings) -> Settings:
        telegram = replace(s.platform("telegram"), subscriber_schedule="09:15")
        return replace(s, platforms={**s.platforms, "telegram": telegram})

    async with rig.running(at(27, 6, 1), later) as service:
        assert service.scheduler is not None
        runs = service.scheduler.next_runs()
        assert "brief:telegram:subscribers:08:00" not in runs
        assert runs["brief:telegram:subscribers:09:15"] == at(27, 9, 15)


async def test_a_day_without_items_sends_nothing_and_tells_the_admins(rig: Rig) -> None:
    async with rig.running(at(5, 7, 59, 58, month=12)):
        notices = await rig.server.wait_for_messages(BOB, 1, timeout=8)
    assert "2026-12-05" in notices[0].text
    assert rig.briefs_to_alice() == []


async def test_a_restart_finishes_todays_unfinished_deliveries(rig: Rig) -> None:
    core = build_core(rig.settings)
    target = core.store.subscribers("telegram")[0].target
    # a process that died mid-send left Alice's delivery pending
    core.store.prepare_deliveries(
        dt.date(2026, 11, 27),
        [target],
        parts_total={"telegram": 1},
        content_hash={"telegram": "-"},
        force=False,
    )
    core.store.close()
    async with rig.running(at(27, 9, 30)):  # past the grace: the schedule itself sends nothing
        await rig.server.wait_for_messages(ALICE, 1, timeout=8)
        await asyncio.sleep(0.3)
    briefs = rig.briefs_to_alice()
    assert len(briefs) == 1 and "AI简报20261127" in briefs[0]


async def test_stopping_lets_a_scheduled_fan_out_finish(rig: Rig) -> None:
    """Stop the service while the scheduled fan-out has a request held in the sandbox (so
    it provably is not done); the held request is let go only once the stop has begun, and
    the stop waits for the fan-out to finish instead of cancelling it."""
    users = list(range(8101, 8131))
    core = build_core(rig.settings)
    for uid in users:
        rig.server.add_user(uid, f"U{uid}")
        core.store.add_subscriber("telegram", str(uid))
    core.store.close()
    subscribers = [ALICE, *users]
    # the held requests are processed together on release: not a flood to punish
    rig.server.set_limits(global_rate=1000)
    passed = 10
    hold = rig.server.hold_requests("sendMessage", after=passed)
    seen_at_stop: list[int] = []

    def delivered() -> int:
        return sum(len(rig.server.messages_to(chat)) for chat in subscribers)

    async with rig.running(at(27, 7, 59, 59)) as service:
        await hold.wait_held(1, timeout=30)  # the 08:00 fan-out is under way, and blocked
        scheduler = service.scheduler
        assert scheduler is not None
        pause = scheduler.pause

        def pause_then_release() -> None:
            # service.stop() pauses the schedule first, then waits for the sends in flight
            seen_at_stop.append(delivered())
            pause()
            hold.release()

        scheduler.pause = pause_then_release
        # leaving the block stops the service while the fan-out is held
    assert seen_at_stop and seen_at_stop[0] <= passed < len(subscribers), seen_at_stop
    assert hold.released and hold.held_total >= 1 and hold.abandoned == 0
    got = {chat: len(rig.server.messages_to(chat)) for chat in subscribers}
    assert got == dict.fromkeys(subscribers, 1)
    check = build_core(rig.settings)
    try:
        rows = check.store.deliveries(dt.date(2026, 11, 27))
    finally:
        check.store.close()
    assert sorted(int(r.chat_id) for r in rows) == sorted(subscribers)
    assert all(r.status is DeliveryStatus.SENT for r in rows)
