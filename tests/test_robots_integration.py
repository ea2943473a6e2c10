"""Group robots under load and under a kill: pacing as the robot server counts it, and a
`briefbot send` killed mid-send then rerun delivering each part once."""

from __future__ import annotations

import datetime as dt
import json
import signal
from pathlib import Path

import pytest

from bot.brief import assemble_brief
from bot.config import load_settings
from bot.core import build_core
from bot.domain import DeliveryStatus
from bot.sandbox.dingtalk_robot import DingtalkRobotServer
from bot.sandbox.robot_base import RobotServer
from bot.sandbox.wecom_robot import WecomRobotServer
from bot.store import Store
from tests.test_cli import _briefbot, _cli, _until
from tests.test_robots import DAY, long_items, make_core, send_all

pytestmark = pytest.mark.integration

# The servers count a robot's limit over a window scaled down from a minute, and the client
# is told the same rate per minute: 20 per 4 s is 300 a minute.
WINDOW = 4.0
PER_WINDOW = 20
PER_MINUTE = int(PER_WINDOW * 60 / WINDOW)


@pytest.mark.parametrize("platform", ["wecom", "dingtalk"])
async def test_a_robot_never_gets_more_than_its_rate_as_the_server_counts(
    platform: str, tmp_path: Path
) -> None:
    server: RobotServer = (
        WecomRobotServer(per_minute=PER_WINDOW, window=WINDOW)
        if platform == "wecom"
        else DingtalkRobotServer(per_minute=PER_WINDOW, window=WINDOW, throttle_seconds=600)
    )
    async with server:
        robots = [server.add_robot(name) for name in ("a", "b")]
        env = {
            f"BRIEFBOT_{platform.upper()}_WEBHOOK_{r.name.upper()}": r.webhook_url for r in robots
        }
        entries = "".join(f'[[{platform}.robots]]\nname = "{r.name}"\n' for r in robots)
        # many parts per robot, well past one window's worth
        config = f"[{platform}]\nper_minute = {PER_MINUTE}\n{entries}"
        items = long_items(count=64 if platform == "wecom" else 300, paragraphs=3)
        core = make_core(tmp_path, config, env, items)
        brief = assemble_brief(core.store, DAY, core.settings.brief)
        assert brief is not None
        parts = core.renderer.brief(brief, platform, core.limits(platform))
        assert len(parts) > PER_WINDOW + 5, len(parts)
        await send_all(core, platform)
        for robot in robots:
            received = server.messages_to(robot.name)
            assert len(received) == len(parts)
            most = server.max_in_window(WINDOW, robot=robot.name)
            assert most <= PER_WINDOW, f"{most} messages within {WINDOW}s to robot {robot.name}"
            # and the pacing is not needlessly slow: a window holds nearly the limit
            assert most >= PER_WINDOW - 3, most
        assert server.stats.throttled == 0
        rows = core.store.deliveries(DAY, platform)
        assert {r.status for r in rows} == {DeliveryStatus.SENT}


async def test_send_killed_mid_send_to_robots_then_rerun_delivers_each_part_once(
    tmp_path: Path,
) -> None:
    """SIGKILL a real `briefbot send` while a request to each robot is held in the WeCom
    sandbox; after the rerun each robot has every part exactly once, in order."""
    async with WecomRobotServer() as server:
        robots = [server.add_robot(name) for name in ("r1", "r2", "r3")]
        data = tmp_path / "data"
        config = tmp_path / "b.toml"
        config.write_text(
            f'[store]\ndata_dir = "{data}"\n[wecom]\nper_minute = 6000\n'
            + "".join(f'[[wecom.robots]]\nname = "{r.name}"\n' for r in robots),
            encoding="utf-8",
        )
        env = {"BRIEFBOT_CONFIG": str(config)}
        env.update({f"BRIEFBOT_WECOM_WEBHOOK_{r.name.upper()}": r.webhook_url for r in robots})
        store = Store.open(f"sqlite:///{data / 'briefbot.db'}")
        try:
            store.upsert_items(long_items(count=8), source="test")
        finally:
            store.close()
        settings = load_settings(config, environ=env)
        core = build_core(settings)
        try:
            brief = assemble_brief(core.store, DAY, settings.brief)
            assert brief is not None
            expected = [m.text for m in core.renderer.brief(brief, "wecom", core.limits("wecom"))]
        finally:
            core.store.close()
        assert len(expected) >= 4
        passed = 4  # requests let through before the hold: some robots are part-way
        hold = server.hold_requests(after=passed)

        def delivered() -> int:
            return len(server.messages)

        def recorded() -> int:
            opened = Store.open(f"sqlite:///{data / 'briefbot.db'}")
            try:
                return sum(r.parts_sent for r in opened.deliveries(DAY, "wecom"))
            finally:
                opened.close()

        async with _briefbot(
            "send", "--date", DAY.isoformat(), "--platform", "wecom", env=env
        ) as send:
            await hold.wait_held(len(robots), timeout=60)
            assert delivered() == passed
            # a part is committed just after the robot accepted it: wait for the ledger
            await _until(lambda: recorded() == delivered(), "the ledger has what was delivered")
            code, _, _ = await send.kill()
        assert code == -signal.SIGKILL
        await hold.wait_abandoned(len(robots), timeout=30)
        hold.release()
        assert delivered() == passed, "a held request was applied after its client died"

        code, out, err = await _cli(
            "send", "--date", DAY.isoformat(), "--platform", "wecom", "--json", env=env
        )
        assert code == 0, err
        assert json.loads(out)["summary"]["sent"] == len(robots)
        for robot in robots:
            texts = [m.text for m in server.messages_to(robot.name)]
            assert texts == expected, f"robot {robot.name}: parts lost, doubled or reordered"
        assert server.stats.throttled == 0
    assert dt.date.fromisoformat(DAY.isoformat()) == DAY
