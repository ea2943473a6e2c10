"""Benchmark: one day's brief fanned out to many work-chat group robots (WeCom, DingTalk or
Feishu) through briefbot's real send path, against the platform's loopback robot server.

Each run starts a fresh loopback server with ``--robots`` robots (in its own process, so the
CPU time of this process is the client's alone) and a fresh SQLite store, then sends as the
CLI does: ``build_core`` + ``build_service(core, platforms=[p], receive=False)`` +
``service.send``. It reports parts per robot, messages, wall time, the ideal time (the
schedule's lower bound: (parts - 1) x 60/per_minute x 1.05 per robot, robots in parallel),
wall / ideal, the most messages any robot got within one server window (never above the
limit), the server's throttle and error counts, and CPU seconds per 1000 messages.

In the same run a naive sender posts the same rendered parts to every robot of another
fresh server as fast as it can (aiohttp, parts in order per robot, no pacing: what a cron
script does) and counts what the server refused with the platform's rate-limit errcode.

Time is scaled by ``--scale S``: the server counts the platform's real per-robot limit over
60/S seconds instead of a minute (DingTalk's 10-minute block and Feishu's 1-second window
shrink alike) and briefbot is told ``per_minute`` = the real limit x S, so a run has the
shape of the real schedule in 1/S of the time. ``--scale 1`` is real time.

    python -m benchmarks.robot_fanout [--platform wecom] [--robots 50] [--items N]
                                      [--runs 3] [--scale 15] [--json]

It prints each run and the medians; the exit status is 1 if briefbot broke a limit, was
throttled, or lost, doubled or reordered a part.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

from bot.domain import Item, Link, OutgoingMessage, TargetKind
from bot.platforms.robot import RobotEntry, RobotRequest, RobotSpec, env_key

# the robots' sessions honour HTTP(S)_PROXY: loopback must not go through one
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

DAY = dt.date(2026, 11, 27)
PLATFORMS = ("wecom", "dingtalk", "feishu")
# the rate-limit answers of each platform (what a naive sender loses its messages to)
RATE_LIMIT_CODES: Mapping[str, frozenset[int]] = {
    "wecom": frozenset({45009}),
    "dingtalk": frozenset({130101, 410100}),
    "feishu": frozenset({11232}),
}
PARTS_PER_ROBOT = 3  # what the default --items aims at
# wall / ideal above this is worth a look (the brief's threshold)
SLOW_RATIO = 1.3


# --- the brief ------------------------------------------------------------------------------


def brief_items(count: int) -> list[Item]:
    """A day of ``count`` Chinese items of a realistic size (a headline, two paragraphs,
    two links), half in each of two sections."""
    topics = ("芯片", "大模型", "机器人", "自动驾驶", "开源", "算力")
    items = []
    for i in range(count):
        topic = topics[i % len(topics)]
        first = (
            f"据报道，{topic}领域今日出现新进展：相关团队发布了第{i + 1}项成果，"
            "在公开基准上的表现较上一代提升约三成，推理成本下降近一半。"
        )
        second = (
            "业内人士认为，这一进展将影响未来一年的产品路线与采购计划；"
            f"多家公司表示将在下个季度跟进{topic}相关的评测与部署。"
        )
        items.append(
            Item(
                date=DAY,
                title=f"{topic}：第{i + 1}条新闻的标题，说明今天发生了什么",
                summary=f"{first}\n\n{second}",
                links=(
                    Link("原文", f"https://example.com/news/{DAY:%Y%m%d}/{i}"),
                    Link("论文", f"https://arxiv.org/abs/2611.{i:05d}"),
                ),
                tags=(topic,),
                section="行业" if i < count // 2 else "研究",
                position=i,
            )
        )
    return items


def render(platform: str, items: Sequence[Item]) -> list[OutgoingMessage]:
    """The parts briefbot sends for ``items`` (default brief settings and templates)."""
    from bot.brief import brief_title
    from bot.config import BriefSettings
    from bot.domain import Brief
    from bot.platforms import spec
    from bot.render import Renderer

    settings = BriefSettings()
    brief = Brief(date=DAY, title=brief_title(DAY, items, settings), items=tuple(items))
    return Renderer(None).brief(brief, platform, spec(platform).default_limits)


def default_items(platform: str) -> int:
    """The most items whose brief is still ``PARTS_PER_ROBOT`` parts on ``platform``."""
    best = 1
    for count in range(1, 1000):
        parts = len(render(platform, brief_items(count)))
        if parts > PARTS_PER_ROBOT:
            return best
        best = count
    return best


def robot_spec(platform: str) -> RobotSpec:
    from bot.platforms import spec

    found = spec(platform)
    assert isinstance(found, RobotSpec), platform
    return found


def real_per_minute(platform: str) -> int:
    """The platform's documented messages per minute to one robot (its registry default)."""
    limit = robot_spec(platform).default_limits.per_group_per_minute
    assert limit is not None
    return limit


def requests_for(
    platform: str, robot: str, url: str, parts: Sequence[OutgoingMessage]
) -> list[RobotRequest]:
    """The HTTP requests of ``parts`` to one robot, in briefbot's wire format (unsigned)."""
    entry = robot_spec(platform)
    api = entry.api(entry.settings_type())
    return [api.request(RobotEntry(robot), url, "", part, time.time()) for part in parts]


def payload_digest(payload: object) -> str:
    """A digest of a request's JSON, as the server and this process both compute it."""
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


# --- the server process ---------------------------------------------------------------------


@dataclass(frozen=True)
class ServerConfig:
    """The loopback server's limits: the platform's real counts over scaled windows."""

    platform: str
    per_minute: int  # per robot, in any ``window`` seconds
    window: float
    second: float  # Feishu: 5 per robot in any ``second`` seconds
    throttle_seconds: float  # DingTalk: how long a robot over its limit is refused


def _make_server(config: ServerConfig) -> Any:
    from bot.sandbox.dingtalk_robot import DingtalkRobotServer
    from bot.sandbox.feishu_robot import FeishuRobotServer
    from bot.sandbox.wecom_robot import WecomRobotServer

    if config.platform == "wecom":
        return WecomRobotServer(per_minute=config.per_minute, window=config.window)
    if config.platform == "dingtalk":
        return DingtalkRobotServer(
            per_minute=config.per_minute,
            window=config.window,
            throttle_seconds=config.throttle_seconds,
        )
    return FeishuRobotServer(
        per_minute=config.per_minute, window=config.window, second=config.second
    )


def _collect(server: Any, config: ServerConfig) -> dict[str, Any]:
    """What the server saw: its stats, each robot's messages (as digests), the most arrivals
    to one robot within one window, and how many robots were being served at once."""
    from bot.sandbox.robot_base import RobotMessage

    by_robot: dict[str, list[RobotMessage]] = {name: [] for name in server.robots}
    for message in server.messages:
        by_robot[message.robot].append(message)
    max_window = max_second = 0
    for name in server.robots:
        max_window = max(max_window, server.max_in_window(config.window, robot=name))
        if config.platform == "feishu":
            max_second = max(max_second, server.max_in_window(config.second, robot=name))
    # robots "in progress" from their first to their last accepted message
    edges: list[tuple[float, int]] = []
    for messages in by_robot.values():
        if messages:
            edges += [(messages[0].t, 0), (messages[-1].t, 1)]
    at_once = most_at_once = 0
    for _, edge in sorted(edges):
        at_once += 1 if edge == 0 else -1
        most_at_once = max(most_at_once, at_once)
    return {
        "stats": dataclasses.asdict(server.stats),
        "digests": {
            name: [payload_digest(m.payload) for m in messages]
            for name, messages in by_robot.items()
        },
        "max_in_window": max_window,
        "max_in_second": max_second,
        "robots_at_once": most_at_once,
    }


def _serve(config: ServerConfig, requests: Queue[Any], answers: Queue[Any]) -> None:
    """Child process: a fresh server per ``fresh`` command, its findings per ``collect``."""

    async def main() -> None:
        server: Any = None
        try:
            while True:
                command, argument = await asyncio.to_thread(requests.get)
                if command == "stop":
                    break
                if command == "fresh":
                    if server is not None:
                        await server.stop()
                    server = _make_server(config)
                    await server.start()
                    robots = [server.add_robot(f"r{i:04d}") for i in range(argument)]
                    answers.put({robot.name: robot.webhook_url for robot in robots})
                elif command == "collect":
                    answers.put(_collect(server, config))
        finally:
            if server is not None:
                await server.stop()

    asyncio.run(main())


class ServerProcess:
    """The loopback robot server in a child process (its CPU is not the client's)."""

    def __init__(self, config: ServerConfig) -> None:
        ctx = mp.get_context("spawn")
        self.requests: Queue[Any] = ctx.Queue()
        self.answers: Queue[Any] = ctx.Queue()
        self.process = ctx.Process(target=_serve, args=(config, self.requests, self.answers))
        self.process.start()

    def _ask(self, command: str, argument: object = None) -> Any:
        self.requests.put((command, argument))
        return self.answers.get(timeout=300)

    def fresh(self, robots: int) -> dict[str, str]:
        """A new server (new port, empty windows) with ``robots`` robots: name → webhook."""
        urls: dict[str, str] = self._ask("fresh", robots)
        return urls

    def collect(self) -> dict[str, Any]:
        seen: dict[str, Any] = self._ask("collect")
        return seen

    def stop(self) -> None:
        self.requests.put(("stop", None))
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.terminate()


# --- one run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    platform: str
    robots: int
    items: list[Item]
    scale: float
    server: ServerConfig
    client_per_minute: int  # what briefbot is told: the real limit x scale


def _config_text(setup: Setup, names: Sequence[str]) -> str:
    real_global = robot_spec(setup.platform).default_limits.global_rate
    section = (
        f"[{setup.platform}]\nper_minute = {setup.client_per_minute}\n"
        f"global_rate = {real_global * setup.scale:g}\n"
    )
    if setup.platform == "dingtalk":
        section += f"throttle_pause = {setup.server.throttle_seconds}\n"
    robots = "".join(f'[[{setup.platform}.robots]]\nname = "{name}"\n' for name in names)
    return section + robots


async def briefbot_run(setup: Setup, server: ServerProcess) -> dict[str, Any]:
    """One fan-out by briefbot (ledger, outbox, pacer, adapter) to every robot."""
    from bot.brief import assemble_brief
    from bot.config import load_settings
    from bot.core import build_core
    from bot.service import build_service, start_platforms

    platform = setup.platform
    urls = server.fresh(setup.robots)
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "briefbot.toml"
        config.write_text(_config_text(setup, sorted(urls)), encoding="utf-8")
        prefix = robot_spec(platform).webhook_prefix
        env = {f"{prefix}{env_key(name)}": url for name, url in urls.items()}
        settings = load_settings(config, environ=env)
        core = build_core(settings, database_url=f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            core.store.upsert_items(setup.items, source="benchmark")
            brief = assemble_brief(core.store, DAY, settings.brief)
            assert brief is not None
            limits = core.limits(platform)
            parts = core.renderer.brief(brief, platform, limits)
            service = build_service(core, platforms=[platform], receive=False)
            await start_platforms(service)
            try:
                cpu, start = time.process_time(), time.perf_counter()
                result = await service.send(DAY, platform=platform)
                wall = time.perf_counter() - start
                cpu = time.process_time() - cpu
            finally:
                await service.stop(grace=1)
            summary = result.summary()
        finally:
            core.store.close()
    seen = server.collect()
    expected = [payload_digest(json.loads(r.body)) for r in requests_for(platform, "x", "", parts)]
    wrong = sorted(name for name, got in seen["digests"].items() if got != expected)
    return {
        "parts": len(parts),
        "messages": seen["stats"]["accepted"],
        "wall": wall,
        "cpu": cpu,
        "sent": summary.get("sent", 0),
        "not_sent": sum(n for status, n in summary.items() if status not in ("sent", "unresolved")),
        "wrong_robots": len(wrong),
        "max_in_window": seen["max_in_window"],
        "max_in_second": seen["max_in_second"],
        "robots_at_once": seen["robots_at_once"],
        "throttled": seen["stats"]["throttled"],
        "errors": seen["stats"]["errors"],
        "chat_interval": limits.chat_interval(TargetKind.GROUP),
        "global_rate": limits.global_rate,
    }


async def naive_run(
    setup: Setup, server: ServerProcess, parts: Sequence[OutgoingMessage]
) -> dict[str, Any]:
    """The same parts to every robot, as fast as aiohttp goes: no pacing, no retries."""
    import aiohttp

    urls = server.fresh(setup.robots)
    requests = [requests_for(setup.platform, name, url, parts) for name, url in urls.items()]
    refused_codes = RATE_LIMIT_CODES[setup.platform]

    async def to_robot(session: aiohttp.ClientSession, robot: list[RobotRequest]) -> list[int]:
        codes = []
        for request in robot:  # in order, each part once: a loop in a cron script
            async with session.post(
                request.url, data=request.body, headers=dict(request.headers)
            ) as response:
                answer = json.loads(await response.read())
            codes.append(int(answer.get("errcode", answer.get("code", -1))))
        return codes

    async with aiohttp.ClientSession(trust_env=False) as session:
        cpu, start = time.process_time(), time.perf_counter()
        answers = await asyncio.gather(*(to_robot(session, robot) for robot in requests))
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu
    seen = server.collect()
    codes = [code for robot in answers for code in robot]
    return {
        "requests": len(codes),
        "messages": seen["stats"]["accepted"],
        "refused": sum(1 for code in codes if code in refused_codes),
        "errors": sum(1 for code in codes if code != 0),
        "robots_short": sum(1 for got in seen["digests"].values() if len(got) < len(parts)),
        "wall": wall,
        "cpu": cpu,
        "max_in_window": seen["max_in_window"],
        "max_in_second": seen["max_in_second"],
        "throttled": seen["stats"]["throttled"],
    }


def one_run(setup: Setup, server: ServerProcess) -> dict[str, Any]:
    from bot.delivery.pacer import WINDOW_MARGIN

    bot = asyncio.run(briefbot_run(setup, server))
    parts = render(setup.platform, setup.items)
    naive = asyncio.run(naive_run(setup, server, parts))
    messages = max(bot["messages"], 1)
    spacing = 60.0 / setup.client_per_minute * WINDOW_MARGIN
    ideal = (bot["parts"] - 1) * spacing
    # briefbot's own constant caps (not settings, so not scaled): its spacing per robot
    # (Feishu: at least 0.2 s) and its rate across all robots of the platform
    floor = max(
        (bot["parts"] - 1) * bot["chat_interval"] * WINDOW_MARGIN,
        (bot["messages"] - 1) / bot["global_rate"],
    )
    bot.update(
        ideal=ideal,
        ratio=bot["wall"] / ideal if ideal > 0 else math.nan,
        floor=floor,
        cpu_per_1000=bot["cpu"] / messages * 1000,
    )
    naive.update(cpu_per_1000=naive["cpu"] / max(naive["requests"], 1) * 1000)
    return {"briefbot": bot, "naive": naive}


# --- report ----------------------------------------------------------------------------------


def medians(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The median of each figure (the worst for counts that must stay at zero or a limit)."""
    worst = {
        "max_in_window",
        "max_in_second",
        "throttled",
        "errors",
        "wrong_robots",
        "not_sent",
        "refused",
        "robots_short",
    }
    out: dict[str, Any] = {}
    for key in runs[0]:
        values = [run[key] for run in runs]
        out[key] = max(values) if key in worst else statistics.median(values)
    return out


def _fmt_ratio(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}x"


def briefbot_line(b: Mapping[str, Any], setup: Setup) -> str:
    feishu = (
        f", most in {setup.server.second:.3g} s {b['max_in_second']} (limit 5)"
        if setup.platform == "feishu"
        else ""
    )
    return (
        f"{b['parts']} parts/robot, {b['messages']} messages, wall {b['wall']:.2f} s, "
        f"ideal {b['ideal']:.2f} s, wall/ideal {_fmt_ratio(b['ratio'])}; most to one robot in "
        f"one {setup.server.window:.3g} s window {b['max_in_window']} (limit "
        f"{setup.server.per_minute}){feishu}; throttled {b['throttled']}, errors "
        f"{b['errors']}; CPU {b['cpu_per_1000']:.2f} s/1000 msgs; robots served at once "
        f"{b['robots_at_once']}; lost/doubled/reordered at {b['wrong_robots']} robot(s)"
    )


def naive_line(n: Mapping[str, Any], setup: Setup) -> str:
    feishu = (
        f", most in {setup.server.second:.3g} s {n['max_in_second']} (limit 5)"
        if setup.platform == "feishu"
        else ""
    )
    return (
        f"{n['requests']} requests, wall {n['wall']:.2f} s, refused with the rate-limit "
        f"errcode {n['refused']} ({n['robots_short']} robot(s) missing parts); most to one "
        f"robot in one {setup.server.window:.3g} s window {n['max_in_window']} (limit "
        f"{setup.server.per_minute}){feishu}; CPU {n['cpu_per_1000']:.2f} s/1000 msgs"
    )


def verdict(b: Mapping[str, Any], n: Mapping[str, Any], setup: Setup) -> tuple[bool, str]:
    """(briefbot kept every limit and delivered every part exactly once, the line)."""
    safe = (
        b["max_in_window"] <= setup.server.per_minute
        and (setup.platform != "feishu" or b["max_in_second"] <= 5)
        and b["throttled"] == 0
        and b["wrong_robots"] == 0
        and b["not_sent"] == 0
    )
    if not safe:
        return False, (
            f"verdict: FAIL: briefbot broke a limit or a delivery (most in a window "
            f"{b['max_in_window']}/{setup.server.per_minute}, throttled {b['throttled']}, "
            f"wrong at {b['wrong_robots']} robot(s), not sent {b['not_sent']})"
        )
    against = (
        f"the naive sender lost {n['refused']} of {n['requests']} to rate limits"
        if n["refused"]
        else f"the naive sender was refused nothing either ({b['parts']} parts per robot is "
        f"under the {setup.server.per_minute} a window), and took {n['wall']:.2f} s"
    )
    ratio = b["ratio"]
    if math.isnan(ratio) or ratio <= SLOW_RATIO:
        pace = f"pacing {_fmt_ratio(ratio)} the ideal"
    else:
        causes = []
        if b["floor"] > b["ideal"]:
            causes.append(
                f"briefbot's own caps put its floor at {b['floor']:.2f} s "
                f"({b['global_rate']:g} msg/s across all robots; "
                f"{b['chat_interval']:.3g} s between a robot's parts)"
            )
        if b["wall"] > SLOW_RATIO * max(b["floor"], b["ideal"]):
            causes.append(
                f"only {b['robots_at_once']} of {setup.robots} robots were served at once, "
                "each waiting out its spacing"
                if b["robots_at_once"] < setup.robots
                else "time beyond the bounds goes to per-message overhead"
            )
        cause = "; ".join(causes)
        pace = (
            f"but SLOW: {_fmt_ratio(ratio)} the ideal ({b['wall']:.2f} s vs {b['ideal']:.2f} "
            f"s): {cause}"
        )
    return True, (
        f"verdict: briefbot kept every robot within its limit (most {b['max_in_window']} of "
        f"{setup.server.per_minute} a window, 0 throttled, every part once and in order); "
        f"{pace}; {against}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.robot_fanout",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--platform", choices=PLATFORMS, default="wecom")
    parser.add_argument("--robots", type=int, default=50, help="group robots (default 50)")
    parser.add_argument(
        "--items",
        type=int,
        default=None,
        help=f"items in the brief (default: the most that still make {PARTS_PER_ROBOT} parts)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are reported")
    parser.add_argument(
        "--scale", type=float, default=15.0, help="time compression S (default 15; 1: real time)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args(argv)
    if args.robots < 1 or args.runs < 1 or args.scale <= 0 or (args.items or 1) < 1:
        parser.error("--robots, --runs and --items must be at least 1, --scale above 0")

    platform: str = args.platform
    real = real_per_minute(platform)
    count = args.items if args.items is not None else default_items(platform)
    setup = Setup(
        platform=platform,
        robots=args.robots,
        items=brief_items(count),
        scale=args.scale,
        server=ServerConfig(
            platform=platform,
            per_minute=real,
            window=60.0 / args.scale,
            second=1.0 / args.scale,
            throttle_seconds=600.0 / args.scale,
        ),
        client_per_minute=max(1, round(real * args.scale)),
    )

    def say(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    say(
        f"briefbot robot fan-out benchmark: {platform}, {args.robots} robots, {count} items, "
        f"{args.runs} run(s), medians reported"
    )
    extra = {
        "dingtalk": f"; a robot over it is blocked {setup.server.throttle_seconds:.3g} s "
        f"(10 min / {args.scale:g})",
        "feishu": f"; and 5 in any {setup.server.second:.3g} s (1 s / {args.scale:g})",
    }.get(platform, "")
    say(
        f"time scaled by {args.scale:g}: the server allows a robot {real} messages in any "
        f"{setup.server.window:.3g} s (a minute / {args.scale:g}){extra}; briefbot is told "
        f"per_minute = {setup.client_per_minute} ({real} x {args.scale:g}), so a run keeps the "
        + (
            f"real schedule's shape in 1/{args.scale:g} of the time"
            if args.scale != 1
            else "real schedule (real time)"
        )
    )
    if args.scale != 1 and platform == "feishu":
        say(
            "not scaled: Feishu's 0.2 s between a robot's parts (5 a second), so it binds "
            "sooner than in real time; --scale 1 shows the real-time picture"
        )
    server = ServerProcess(setup.server)
    runs: list[dict[str, Any]] = []
    try:
        for i in range(args.runs):
            run = one_run(setup, server)
            runs.append(run)
            say(f"run {i + 1}: briefbot: {briefbot_line(run['briefbot'], setup)}")
            say(f"run {i + 1}: naive:    {naive_line(run['naive'], setup)}")
    finally:
        server.stop()
    b = medians([run["briefbot"] for run in runs])
    n = medians([run["naive"] for run in runs])
    ok, line = verdict(b, n, setup)
    # counts that must stay at zero or under a limit: the worst run, not the median
    say(f"median (counts: worst run): briefbot: {briefbot_line(b, setup)}")
    say(f"median (counts: worst run): naive:    {naive_line(n, setup)}")
    say(
        f"baseline: refused by the server's rate limit: naive {n['refused']} of "
        f"{n['requests']}, briefbot {b['throttled']}; wall naive {n['wall']:.2f} s, briefbot "
        f"{b['wall']:.2f} s; ideal {b['ideal']:.2f} s; briefbot's floor from its own caps "
        f"({b['global_rate']:g} msg/s across all robots, {b['chat_interval']:.3g} s between a "
        f"robot's parts) {b['floor']:.2f} s"
    )
    say(line)
    if args.json:
        document = {
            "platform": platform,
            "robots": args.robots,
            "items": count,
            "scale": args.scale,
            "server": dataclasses.asdict(setup.server),
            "client_per_minute": setup.client_per_minute,
            "runs": runs,
            "median": {"briefbot": b, "naive": n},
            "ok": ok,
            "verdict": line,
        }
        print(json.dumps(_finite(document), indent=2, ensure_ascii=False))
    sys.exit(0 if ok else 1)


def _finite(value: Any) -> Any:
    """``value`` with NaN as null (JSON has no NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


if __name__ == "__main__":
    main()
