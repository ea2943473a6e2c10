"""Benchmark: a brief to many Telegram subscribers through the loopback Bot API server.

Scenarios (each client run in a fresh process, so its peak memory is its own; the server
runs in yet another process and counts arrivals):

- paced at Telegram's 30 msg/s and at 1000 msg/s: the achieved rate as a ratio of the
  configured limit, the most arrivals the server saw in any one-second window, 429s,
  duplicates and losses;
- pacing off: the engine's rate as a ratio of a bare httpx loop posting sendMessage to the
  same server with the same number of requests in flight, in the same run;
- a large send (100k subscribers, pacing off): peak memory of the client, and how long a
  search waits while that send starts.

    python benchmarks/telegram_fanout.py [--runs 3] [--quick]

It prints medians over the runs; ``--quick`` shrinks every scenario for a smoke test.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import math
import multiprocessing as mp
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("PTB_TIMEDELTA", "1")

import httpx

TOKEN = "123456:BENCH-TOKEN"
FIRST_USER = 10_000_000
SEARCHER = 999
DAY = dt.date(2026, 11, 27)


# --- the server process ----------------------------------------------------------------------


def serve(subscribers: int, ready: Any, requests: Any, done: Any) -> None:
    """Child process: the loopback server with ``subscribers`` private chats."""
    from bot.sandbox.telegram_api import TelegramTestServer
    from bot.sandbox.telegram_limits import FloodControl

    async def main() -> None:
        server = TelegramTestServer(token=TOKEN, private_per_second=math.inf)
        server.add_user(SEARCHER, "reader")
        for i in range(subscribers):
            server.add_user(FIRST_USER + i, f"u{i}")
        async with server:
            ready.put(server.port)
            while True:
                command, argument = await asyncio.to_thread(requests.get)
                if command == "stop":
                    break
                if command == "limit":  # a fresh window for each run
                    server.flood = FloodControl(
                        global_rate=argument, private_per_second=math.inf, group_per_minute=20
                    )
                    done.put("ok")
                elif command == "collect":
                    per_chat = Counter(m.chat_id for m in server.sent)
                    done.put(
                        {
                            "messages": len(server.sent),
                            "rate_limited": server.stats["rate_limited"],
                            "max_in_second": server.max_in_window(1.0),
                            "per_chat": dict(per_chat),
                        }
                    )
                    server.sent.clear()
                    server.calls.clear()
                    server.reset_stats()

    asyncio.run(main())


class ServerProcess:
    def __init__(self, subscribers: int) -> None:
        ctx = mp.get_context("spawn")
        self.ready, self.requests, self.done = ctx.Queue(), ctx.Queue(), ctx.Queue()
        self.process = ctx.Process(
            target=serve, args=(subscribers, self.ready, self.requests, self.done)
        )
        self.process.start()
        self.port = int(self.ready.get(timeout=300))
        self.base_url = f"http://127.0.0.1:{self.port}/bot"

    def limit(self, rate: float) -> None:
        self.requests.put(("limit", rate))
        self.done.get(timeout=30)

    def collect(self) -> dict[str, Any]:
        self.requests.put(("collect", None))
        result: dict[str, Any] = self.done.get(timeout=300)
        return result

    def stop(self) -> None:
        self.requests.put(("stop", None))
        self.process.join(timeout=30)


# --- client runs, each in its own process ----------------------------------------------------


def in_process(function: Any, *args: Any) -> dict[str, Any]:
    """Run ``function(*args)`` in a fresh process and return its result (peak RSS its own)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_child, args=(queue, function, args))
    process.start()
    result: dict[str, Any] = queue.get(timeout=3600)
    process.join(timeout=60)
    if "error" in result:
        raise RuntimeError(result["error"])
    return result


def _child(queue: Any, function: Any, args: tuple[Any, ...]) -> None:
    try:
        result = asyncio.run(function(*args))
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        queue.put(result)
    except BaseException as exc:  # report, do not hang the parent
        queue.put({"error": repr(exc)})


async def engine_run(base_url: str, subscribers: int, rate: float) -> dict[str, Any]:
    """One fan-out by the real service (engine, outbox, PTB) to ``subscribers``."""
    from sqlalchemy import insert

    from bot.broadcast import Audience
    from bot.config import Secret, Settings, StoreSettings
    from bot.core import build_core
    from bot.ingest import SAMPLES_DIR
    from bot.ingest.importer import import_paths
    from bot.platforms.telegram import TelegramSettings
    from bot.service import build_service, start_platforms
    from bot.store.models import SubscriberRow

    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            store=StoreSettings(url=f"sqlite:///{Path(folder) / 'bench.db'}"),
            platforms={
                "telegram": TelegramSettings(
                    api_base_url=base_url,
                    global_rate=rate,
                    per_chat_interval=0.0 if math.isinf(rate) else 1.0,
                )
            },
            secrets={"BRIEFBOT_TELEGRAM_TOKEN": Secret(TOKEN)},
        )
        core = build_core(settings)
        import_paths(core.store, [SAMPLES_DIR])
        for chunk in range(0, subscribers, 5000):  # in chunks: the set-up is not measured
            with core.store.engine.begin() as connection:
                connection.execute(
                    insert(SubscriberRow),
                    [
                        {
                            "platform": "telegram",
                            "chat_id": str(FIRST_USER + i),
                            "kind": "subscriber",
                        }
                        for i in range(chunk, min(chunk + 5000, subscribers))
                    ],
                )
        service = build_service(core, platforms=("telegram",), receive=False)
        await start_platforms(service)
        try:
            start = time.perf_counter()
            # as an admin's /send or the schedule does it: counts, no per-chat list
            send = asyncio.create_task(
                service.send(DAY, audience=Audience.SUBSCRIBERS, detailed=False)
            )
            # a search while the send starts: the store and the event loop must answer
            await asyncio.sleep(0.2)
            asked = time.perf_counter()
            await service.commands["telegram"](_search_message())
            search_wait = time.perf_counter() - asked
            result = await send
            elapsed = time.perf_counter() - start
        finally:
            await service.stop()
        assert result.report is not None
        parts = len(core.renderer.brief(_brief(core), "telegram", core.limits("telegram")))
        core.store.close()
    return {
        "elapsed": elapsed,
        "parts": parts,
        "search_wait": search_wait,
    }


def _brief(core: Any) -> Any:
    from bot.brief import assemble_brief

    return assemble_brief(core.store, DAY, core.settings.brief)


def _search_message() -> Any:
    from bot.domain import ChatKind, IncomingMessage

    return IncomingMessage("telegram", str(SEARCHER), ChatKind.PRIVATE, str(SEARCHER), "r", "芯片")


async def bare_httpx_run(base_url: str, subscribers: int, concurrency: int) -> dict[str, Any]:
    """The same number of messages through a bare httpx loop with the same concurrency."""
    url = f"{base_url}{TOKEN}/sendMessage"
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(subscribers):
        queue.put_nowait(FIRST_USER + i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, trust_env=False) as client:

        async def worker() -> None:
            while not queue.empty():
                chat = queue.get_nowait()
                response = await client.post(url, data={"chat_id": str(chat), "text": "x" * 200})
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return {"elapsed": time.perf_counter() - start}


# --- scenarios -------------------------------------------------------------------------------


def paced(server: ServerProcess, subscribers: int, rate: float, runs: int) -> dict[str, Any]:
    rates, worst_second, rate_limited, duplicates, losses, rss = [], 0, 0, 0, 0, []
    for _ in range(runs):
        server.limit(rate)
        run = in_process(engine_run, server.base_url, subscribers, rate)
        seen = server.collect()
        parts = run["parts"]
        counts = seen["per_chat"]
        duplicates += sum(max(0, c - parts) for chat, c in counts.items() if chat != SEARCHER)
        losses += sum(max(0, parts - counts.get(FIRST_USER + i, 0)) for i in range(subscribers))
        rate_limited += seen["rate_limited"]
        worst_second = max(worst_second, seen["max_in_second"])
        rates.append(subscribers * parts / run["elapsed"])
        rss.append(run["peak_rss_mib"])
    median = statistics.median(rates)
    return {
        "rate": median,
        "ratio": median / rate,
        "max_in_second": worst_second,
        "rate_limited": rate_limited,
        "duplicates": duplicates,
        "losses": losses,
        "peak_rss_mib": max(rss),
    }


def unpaced(server: ServerProcess, subscribers: int, runs: int) -> dict[str, Any]:
    from bot.config import DeliverySettings

    engine_rates, bare_rates, rss, waits = [], [], [], []
    for _ in range(runs):
        server.limit(math.inf)
        run = in_process(engine_run, server.base_url, subscribers, math.inf)
        server.collect()
        engine_rates.append(subscribers * run["parts"] / run["elapsed"])
        rss.append(run["peak_rss_mib"])
        waits.append(run["search_wait"])
        bare = in_process(
            bare_httpx_run, server.base_url, subscribers, DeliverySettings().max_in_flight
        )
        server.collect()
        bare_rates.append(subscribers / bare["elapsed"])
    engine, bare_rate = statistics.median(engine_rates), statistics.median(bare_rates)
    return {
        "engine": engine,
        "bare": bare_rate,
        "ratio": engine / bare_rate,
        "peak_rss_mib": max(rss),
        "search_wait": statistics.median(waits),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes, one run")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    at_30, at_1000, unpaced_n, large = (
        (120, 2000, 2000, 20_000) if args.quick else (600, 10_000, 10_000, 100_000)
    )
    print(f"briefbot Telegram fan-out benchmark, medians of {runs} run(s)", flush=True)
    server = ServerProcess(large)
    failed = False
    try:
        for subscribers, rate in ((at_30, 30.0), (at_1000, 1000.0)):
            r = paced(server, subscribers, rate, runs)
            print(
                f"paced, limit {rate:g} msg/s, {subscribers} subscribers: "
                f"{r['rate']:.0f} msg/s = {r['ratio']:.2f} x the limit; most arrivals in one "
                f"second {r['max_in_second']} (limit {rate:g}); 429s {r['rate_limited']}; "
                f"duplicates {r['duplicates']} / losses {r['losses']}; "
                f"peak RSS {r['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
            failed |= bool(r["duplicates"] or r["losses"] or r["max_in_second"] > rate)
        r = unpaced(server, unpaced_n, runs)
        print(
            f"pacing off, {unpaced_n} subscribers: engine {r['engine']:.0f} msg/s, bare httpx "
            f"loop {r['bare']:.0f} msg/s: engine / bare = {r['ratio']:.2f}",
            flush=True,
        )
        r = unpaced(server, large, 1)
        print(
            f"pacing off, {large} subscribers: engine {r['engine']:.0f} msg/s; peak RSS of "
            f"the client {r['peak_rss_mib']:.0f} MiB; a search during the start waited "
            f"{r['search_wait'] * 1000:.0f} ms",
            flush=True,
        )
    finally:
        server.stop()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
