"""Test doubles shared by the delivery tests and the outcome table: a virtual clock and a
scripted platform that raises briefbot's neutral outcomes directly."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable, Sequence

from bot.domain import IncomingMessage, OutgoingMessage, Target
from bot.errors import DeliveryError
from bot.platforms.base import ConfiguredTarget, Limits, Sender
from bot.platforms.telegram import LIMITS as TELEGRAM_LIMITS

__all__ = ["ScriptedPlatform", "VirtualClock"]


class VirtualClock:
    """Time that only moves when every task is asleep: pacing is checked without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0
        self._driver: asyncio.Task[None] | None = None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (self.now + seconds, self._seq, future))
        if self._driver is None or self._driver.done():
            self._driver = asyncio.create_task(self._drive())
        await future

    async def _drive(self) -> None:
        while self._sleepers:
            for _ in range(50):  # let every runnable task reach its next sleep
                await asyncio.sleep(0)
            wake, _, future = heapq.heappop(self._sleepers)
            self.now = max(self.now, wake)
            if not future.done():
                future.set_result(None)


class ScriptedPlatform:
    """Records what it delivers; ``script`` may raise an outcome for a given send, and
    ``latency`` says how long (virtual seconds) a send takes before it arrives."""

    name = "telegram"

    def __init__(self, clock: VirtualClock, limits: Limits = TELEGRAM_LIMITS) -> None:
        self.limits = limits
        self.clock = clock
        self.outbox: Sender | None = None
        self.delivered: list[tuple[str, str, float]] = []
        self.started: list[float] = []
        self.script: Callable[[Target, OutgoingMessage, int], DeliveryError | None] = (
            lambda t, m, n: None
        )
        self.latency: Callable[[int], float] = lambda n: 0.0
        self.calls = 0

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, target: Target, message: OutgoingMessage) -> str:
        self.calls += 1
        call = self.calls
        self.started.append(self.clock())
        error = self.script(target, message, call)
        if error is not None:
            raise error
        delay = self.latency(call)
        if delay:
            await self.clock.sleep(delay)
        else:
            await asyncio.sleep(0)
        self.delivered.append((target.chat_id, message.text, self.clock()))
        return str(len(self.delivered))

    async def reply(self, to: IncomingMessage, messages: Sequence[OutgoingMessage]) -> None:
        assert self.outbox is not None
        for message in messages:
            await self.outbox.send(Target(self.name, to.chat_id), message, urgent=True)

    async def is_chat_admin(self, chat_id: str, user_id: str) -> bool:
        return False

    async def resolve(self, target: ConfiguredTarget) -> str | None:
        return target.chat_id
