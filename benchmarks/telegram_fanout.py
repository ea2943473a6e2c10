"""Benchmark: one brief to N Telegram subscribers through the loopback Bot API server.

Prints, for the paced engine: achieved rate as a ratio of the configured limit, 429s,
duplicates, losses and peak memory; and, with pacing off, the engine's rate as a ratio of a
bare httpx loop against the same server. The server runs in its own process, so the
figures are not a single event loop competing with itself.

    python benchmarks/telegram_fanout.py [--subscribers 10000] [--rate 1000] [--runs 3]
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

from bot.broadcast import Audience
from bot.config import DeliverySettings, Secret, Settings, StoreSettings
from bot.core import build_core
from bot.domain import DeliveryStatus
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.platforms.telegram import TelegramSettings
from bot.service import build_service, start_platforms

TOKEN = "123456:BENCH-TOKEN"
FIRST_USER = 10_000_000
DAY = dt.date(2026, 11, 27)


def serve(subscribers: int, rate: float, ready: Any, requests: Any, done: Any) -> None:
    """Child process: the loopback server with ``subscribers`` private chats."""
    from bot.sandbox.telegram_api import TelegramTestServer
    from bot.sandbox.telegram_limits import FloodControl

    async def main() -> None:
        server = TelegramTestServer(token=TOKEN, global_rate=rate, private_per_second=math.inf)
        for i in range(subscribers):
            server.add_user(FIRST_USER + i, f"u{i}")
        async with server:
            ready.put(server.port)
            while True:
                command = await asyncio.to_thread(requests.get)
                if command == "stop":
                    break
                if command == "limits":
                    limit = await asyncio.to_thread(requests.get)
                    # a fresh window: the previous, unlimited run's sends must not count
                    server.flood = FloodControl(
                        global_rate=limit, private_per_second=math.inf, group_per_minute=20
                    )
                    done.put("ok")
                elif command == "collect":
                    per_chat = Counter(m.chat_id for m in server.sent)
                    done.put(
                        {
                            "messages": len(server.sent),
                            "rate_limited": server.stats["rate_limited"],
                            "per_chat": dict(per_chat),
                        }
                    )
                    server.sent.clear()
                    server.calls.clear()
                    server.reset_stats()

    asyncio.run(main())


class ServerProcess:
    def __init__(self, subscribers: int, rate: float) -> None:
        ctx = mp.get_context("spawn")
        self.ready, self.requests, self.done = ctx.Queue(), ctx.Queue(), ctx.Queue()
        self.process = ctx.Process(
            target=serve, args=(subscribers, rate, self.ready, self.requests, self.done)
        )
        self.process.start()
        self.port = int(self.ready.get(timeout=120))
        self.base_url = f"http://127.0.0.1:{self.port}/bot"

    def set_rate(self, rate: float) -> None:
        self.requests.put("limits")
        self.requests.put(rate)
        self.done.get(timeout=30)

    def collect(self) -> dict[str, Any]:
        self.requests.put("collect")
        result: dict[str, Any] = self.done.get(timeout=120)
        return result

    def stop(self) -> None:
        self.requests.put("stop")
        self.process.join(timeout=30)


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def engine_run(base_url: str, subscribers: int, rate: float, folder: Path) -> dict[str, Any]:
    """One fan-out by the real engine and PTB client; returns timing and ledger figures."""
    settings = Settings(
        store=StoreSettings(url=f"sqlite:///{folder / 'bench.db'}"),
        platforms={"telegram": TelegramSettings(api_base_url=base_url, global_rate=rate)},
        secrets={"BRIEFBOT_TELEGRAM_TOKEN": Secret(TOKEN)},
    )
    core = build_core(settings)
    import_paths(core.store, [SAMPLES_DIR])
    for i in range(subscribers):
        core.store.add_subscriber("telegram", str(FIRST_USER + i))
    service = build_service(core, platforms=("telegram",), receive=False)
    await start_platforms(service)
    try:
        start = time.perf_counter()
        result = await service.send(DAY, audience=Audience.SUBSCRIBERS)
        elapsed = time.perf_counter() - start
    finally:
        await service.stop()
    assert result.report is not None
    parts = len(core.renderer.brief(_brief(core), "telegram", core.limits("telegram")))
    core.store.close()
    return {
        "elapsed": elapsed,
        "parts": parts,
        "sent": result.report.count(DeliveryStatus.SENT),
        "rate_limited_seen": result.report.rate_limited,
    }


def _brief(core: Any) -> Any:
    from bot.brief import assemble_brief

    return assemble_brief(core.store, DAY, core.settings.brief)


async def bare_httpx_run(base_url: str, subscribers: int, text: str, concurrency: int) -> float:
    """The same messages through a bare httpx loop with the same concurrency: the ceiling."""
    url = f"{base_url}{TOKEN}/sendMessage"
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(subscribers):
        queue.put_nowait(FIRST_USER + i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30, trust_env=False) as client:

        async def worker() -> None:
            while not queue.empty():
                chat = queue.get_nowait()
                response = await client.post(url, data={"chat_id": str(chat), "text": text})
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="configured limit, messages/s")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    n, rate = args.subscribers, args.rate
    print(
        f"briefbot Telegram fan-out benchmark: {n} subscribers, limit {rate:g} msg/s, {args.runs} runs"
    )
    server = ServerProcess(n, rate)
    rss_before = max_rss_mib()
    paced_rates, unpaced_rates, bare_rates = [], [], []
    duplicates = losses = rate_limited = 0
    parts = 1
    try:
        for run in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                server.set_rate(rate)
                paced = asyncio.run(engine_run(server.base_url, n, rate, Path(tmp)))
            seen = server.collect()
            parts = paced["parts"]
            expected = n * parts
            counts = seen["per_chat"]
            duplicates += sum(max(0, c - parts) for c in counts.values())
            losses += sum(max(0, parts - counts.get(FIRST_USER + i, 0)) for i in range(n))
            rate_limited += seen["rate_limited"]
            paced_rates.append(expected / paced["elapsed"])

            with tempfile.TemporaryDirectory() as tmp:
                server.set_rate(math.inf)
                unpaced = asyncio.run(engine_run(server.base_url, n, math.inf, Path(tmp)))
            server.collect()
            unpaced_rates.append(n * unpaced["parts"] / unpaced["elapsed"])
            # The bare loop sends one short message per chat with the engine's concurrency.
            bare = asyncio.run(
                bare_httpx_run(server.base_url, n, "x" * 200, DeliverySettings().max_in_flight)
            )
            server.collect()
            bare_rates.append(n / bare)
            print(
                f"  run {run + 1}: paced {paced_rates[-1]:.0f} msg/s, unpaced {unpaced_rates[-1]:.0f} msg/s, "
                f"bare httpx {bare_rates[-1]:.0f} msg/s",
                flush=True,
            )
    finally:
        server.stop()
    paced_median = statistics.median(paced_rates)
    unpaced_median = statistics.median(unpaced_rates)
    bare_median = statistics.median(bare_rates)
    print()
    print(f"messages per run:              {n * parts} ({parts} part(s) x {n} chats)")
    print(
        f"paced rate (median):           {paced_median:.0f} msg/s = {paced_median / rate:.2f} x the configured {rate:g} msg/s"
    )
    print(f"429s received:                 {rate_limited}")
    print(f"duplicates / losses:           {duplicates} / {losses}")
    print(f"pacing off, engine (median):   {unpaced_median:.0f} msg/s")
    print(f"pacing off, bare httpx:        {bare_median:.0f} msg/s")
    print(f"engine / bare httpx:           {unpaced_median / bare_median:.2f}")
    print(
        f"peak RSS of the client:        {max_rss_mib():.0f} MiB (before the runs {rss_before:.0f} MiB)"
    )
    sys.exit(1 if duplicates or losses else 0)


if __name__ == "__main__":
    main()
