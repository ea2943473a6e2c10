"""Spacing of one platform's sends, so that the platform never counts more than its limits.

The guarantee is stated at the platform's end. A request arrives there somewhere between the
moment it was started and the moment its answer came back, and a loaded machine can delay
that arrival by any amount. So a send may start only while the requests still in flight
plus those answered within the last window number fewer than the limit: then any window of
that length at the platform holds at most the limit, however requests were delayed (the
last request to arrive in a window started after every other one in it had arrived, so
each of those was in flight or answered less than a window before). Per chat, the next
message starts an interval after the previous one was answered. On top of that, sends are
spaced 1/rate apart (no initial burst), with jitter where the platform wants it.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from bot.domain import Target
from bot.platforms.base import Limits

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
# Windows and intervals are stretched by this factor: the platform's clock and its idea of a
# window's edges are not ours.
WINDOW_MARGIN = 1.05
# Forget chats whose spacing has passed once this many are remembered (a 100k fan-out).
_PRUNE_AT = 10_000


class Pacer:
    """Waits for a message's turn on one platform; counts the daily cap."""

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
        self._chat_ready: dict[str, float] = {}
        self._chat_locks: dict[str, asyncio.Lock] = {}
        self._chat_users: dict[str, int] = {}
        self._answered: collections.deque[float] = collections.deque()
        self._in_flight = 0
        self._urgent_waiting = 0
        self._freed: asyncio.Event | None = None
        self._day: dt.date | None = None
        self._sent_today = 0
        # How many messages went out today before this process started: a restart must not
        # reset the daily cap.
        self._already_sent = already_sent or (lambda _day: 0)

    # -- the daily cap -----------------------------------------------------------------------

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

    # -- per chat ----------------------------------------------------------------------------

    @asynccontextmanager
    async def chat_turn(self, target: Target) -> AsyncIterator[None]:
        """One message at a time per chat, an interval after the previous one was answered
        (two senders to one chat, a reply and a broadcast, take turns)."""
        key = target.key
        lock = self._chat_locks.get(key)
        if lock is None:
            lock = self._chat_locks[key] = asyncio.Lock()
        # counted, not lock.locked(): a released lock looks free while its next waiter has
        # not resumed yet, and a new lock for the key would let two sends run at once
        self._chat_users[key] = self._chat_users.get(key, 0) + 1
        try:
            async with lock:
                while (wait := self._chat_ready.get(key, 0.0) - self._clock()) > 0:
                    await self._sleep(wait)
                try:
                    yield
                finally:
                    jitter = self._rng.uniform(0, self.limits.jitter) if self.limits.jitter else 0
                    interval = self.limits.chat_interval(target.kind) * WINDOW_MARGIN
                    ready = self._clock() + interval + jitter
                    self._remember_chat(key, max(ready, self._chat_ready.get(key, 0.0)))
        finally:
            self._chat_users[key] -= 1
            if not self._chat_users[key]:
                del self._chat_users[key]
                del self._chat_locks[key]

    def _remember_chat(self, key: str, ready: float) -> None:
        self._chat_ready[key] = ready
        if len(self._chat_ready) > _PRUNE_AT:
            now = self._clock()
            self._chat_ready = {k: t for k, t in self._chat_ready.items() if t > now}

    # -- across chats ------------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self, *, urgent: bool = False) -> AsyncIterator[None]:
        """A global send slot: held while the request is in flight (see the module doc).
        An ``urgent`` send takes the next free unit of the window ahead of the others."""
        if urgent:
            await self._wait_urgently()
        else:
            await self._wait_for_slot()
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            self._answered.append(self._clock())
            if self._freed is not None:
                self._freed.set()

    async def _wait_urgently(self) -> None:
        rate = self.limits.global_rate
        if math.isinf(rate):
            return
        self._urgent_waiting += 1
        try:
            while True:
                now = self._clock()
                if now < self._hold_until:
                    await self._sleep(self._hold_until - now)
                    continue
                if await self._window_allows(rate, urgent=True):
                    return
        finally:
            self._urgent_waiting -= 1
            if self._freed is not None:  # the unit kept for this send is free again
                self._freed.set()

    async def _wait_for_slot(self) -> None:
        rate = self.limits.global_rate
        if math.isinf(rate):
            return
        while True:
            now = self._clock()
            if now < self._hold_until:  # the platform asked for a pause (429)
                await self._sleep(self._hold_until - now)
                continue
            slot = max(now, self._global_next)
            self._global_next = slot + 1.0 / rate
            if slot > now:
                await self._sleep(slot - now)
            if self._clock() < self._hold_until:
                # a 429 arrived while this send waited: take a new slot after the pause, or
                # all the waiting sends would go out together when it ends
                continue
            if await self._window_allows(rate):
                return

    async def _window_allows(self, rate: float, *, urgent: bool = False) -> bool:
        """Wait until fewer than the limit are in flight or answered within the window
        (a unit is kept free for each urgent send waiting). Returns False if a pause (429)
        began meanwhile: the caller takes a new slot."""
        window = math.ceil(rate) / rate * WINDOW_MARGIN
        answered = self._answered
        while True:
            now = self._clock()
            if now < self._hold_until:
                return False
            while answered and answered[0] <= now - window:
                answered.popleft()
            allowed = math.ceil(rate) - (0 if urgent else self._urgent_waiting)
            if self._in_flight + len(answered) < allowed:
                return True
            if answered and self._in_flight < allowed:  # the oldest answer leaves the window
                await self._sleep(answered[0] + window - now)
                continue
            # every unit is in flight: wait for an answer
            if self._freed is None:
                self._freed = asyncio.Event()
            self._freed.clear()
            await self._freed.wait()

    def now(self) -> float:
        return self._clock()

    def today(self) -> dt.date:
        return self._today()

    def held_for(self) -> float:
        """Seconds left of the platform's pause (0 when none)."""
        return max(0.0, self._hold_until - self._clock())

    def hold_chat(self, target: Target, seconds: float) -> None:
        """Pause one chat only (a work-chat robot throttled on its own)."""
        key = target.key
        self._chat_ready[key] = max(self._chat_ready.get(key, 0.0), self._clock() + seconds)

    def hold(self, seconds: float) -> None:
        """Pause every chat (the platform answered 429: its limit is global in bulk)."""
        until = self._clock() + seconds
        self._hold_until = max(self._hold_until, until)
        self._global_next = max(self._global_next, until)
