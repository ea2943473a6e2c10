"""Flood control and on-demand fault injection for the loopback Telegram Bot API server, and
the request holds and arrival accounting both loopback servers (Telegram, WeChat) share."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

__all__ = [
    "Arrival",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "FloodControl",
    "RequestHold",
    "max_in_window",
]

FaultKind = Literal["server_error", "timeout", "forbidden", "rate_limit", "migrate"]
_FAULT_KINDS: frozenset[str] = frozenset(
    {"server_error", "timeout", "forbidden", "rate_limit", "migrate"}
)

# Timers on a loaded machine jitter; a client pacing at exactly the limit must not be
# punished for a millisecond.
_GRACE_SECONDS = 0.001


class _SlidingWindow:
    """At most ``limit`` events in any ``window`` seconds."""

    def __init__(self) -> None:
        self.times: deque[float] = deque()

    def wait(self, now: float, limit: int, window: float) -> float:
        while self.times and self.times[0] <= now - window + _GRACE_SECONDS:
            self.times.popleft()
        if len(self.times) < limit:
            return 0.0
        return self.times[len(self.times) - limit] + window - now

    def record(self, now: float) -> None:
        self.times.append(now)


class _TokenBucket:
    """``rate`` events per second on average, bursts of up to ``capacity``."""

    def __init__(self, capacity: float, now: float) -> None:
        self.tokens = capacity
        self.stamp = now

    def wait(self, now: float, rate: float, capacity: float) -> float:
        self.tokens = min(capacity, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        missing = 1.0 - self.tokens
        return 0.0 if missing <= _GRACE_SECONDS * rate else missing / rate

    def record(self) -> None:
        self.tokens -= 1.0


class FloodControl:
    """Telegram's three send limits; ``check`` answers how long to wait, ``record`` counts a send.

    * global: at most ``ceil(global_rate)`` messages in any ``ceil(global_rate)/global_rate``
      seconds (30 in any second by default), across all chats;
    * private chats: a token bucket per chat refilled at ``private_per_second`` and holding
      ``private_burst`` tokens (default 2), so two quick messages pass and the third waits;
    * groups, supergroups and channels: at most ``group_per_minute`` messages in any 60 s.

    A limit of ``math.inf`` switches that limit off.  Only messages actually delivered count.
    """

    def __init__(
        self,
        *,
        global_rate: float = 30,
        private_per_second: float = 1,
        group_per_minute: float = 20,
        private_burst: float = 2,
    ) -> None:
        self.global_rate = global_rate
        self.private_per_second = private_per_second
        self.group_per_minute = group_per_minute
        self.private_burst = private_burst
        self._validate()
        self._global = _SlidingWindow()
        self._groups: dict[int, _SlidingWindow] = {}
        self._privates: dict[int, _TokenBucket] = {}

    def set_limits(
        self,
        *,
        global_rate: float | None = None,
        private_per_second: float | None = None,
        group_per_minute: float | None = None,
        private_burst: float | None = None,
    ) -> None:
        """Change some limits at runtime; ``None`` keeps a limit, history is kept."""
        if global_rate is not None:
            self.global_rate = global_rate
        if private_per_second is not None:
            self.private_per_second = private_per_second
        if group_per_minute is not None:
            self.group_per_minute = group_per_minute
        if private_burst is not None:
            self.private_burst = private_burst
        self._validate()

    def _validate(self) -> None:
        for name in ("global_rate", "private_per_second", "group_per_minute", "private_burst"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive (math.inf switches it off)")

    def check(self, chat_id: int, *, private: bool, now: float) -> int:
        """Seconds to wait before a message to ``chat_id`` may be sent: 0, or Telegram's
        ``retry_after`` (an integer, rounded up, at least 1)."""
        waits = [0.0]
        if not math.isinf(self.global_rate):
            limit = math.ceil(self.global_rate)
            waits.append(self._global.wait(now, limit, limit / self.global_rate))
        if private and not math.isinf(self.private_per_second):
            bucket = self._privates.setdefault(chat_id, _TokenBucket(self.private_burst, now))
            waits.append(bucket.wait(now, self.private_per_second, self.private_burst))
        if not private and not math.isinf(self.group_per_minute):
            window = self._groups.setdefault(chat_id, _SlidingWindow())
            waits.append(window.wait(now, math.ceil(self.group_per_minute), 60.0))
        longest = max(waits)
        return 0 if longest <= 0 else max(1, math.ceil(longest))

    def record(self, chat_id: int, *, private: bool, now: float) -> None:
        """Count one delivered message (call right after a ``check`` that returned 0)."""
        self._global.record(now)
        if private:
            bucket = self._privates.get(chat_id)
            if bucket is not None:
                bucket.record()
        else:
            self._groups.setdefault(chat_id, _SlidingWindow()).record(now)


@dataclass
class Fault:
    """One injected failure; matches requests to ``method`` (``None``: any) and ``chat_id``
    (``None``: any chat), ``remaining`` more times (``None``: until removed)."""

    kind: FaultKind
    method: str | None = "sendMessage"
    chat_id: int | str | None = None
    remaining: int | None = 1
    status: int | None = None
    retry_after: int = 5
    migrate_to_chat_id: int | None = None
    description: str | None = None
    delay: float = 30.0
    drop: bool = False
    deliver: bool = False
    hits: int = field(default=0)

    def matches(self, method: str, chat_id: int | None, chat_ref: object) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method is not None and self.method.lower() != method.lower():
            return False
        if self.chat_id is None:
            return True
        return self.chat_id == chat_id or str(self.chat_id) == str(chat_ref)


class FaultInjector:
    """Failures a test asks for; the server consults it before doing the real work."""

    def __init__(self) -> None:
        self.pending: list[Fault] = []

    def add(
        self,
        kind: FaultKind,
        chat_id: int | str | None = None,
        count: int | None = 1,
        *,
        method: str | None = "sendMessage",
        status: int | None = None,
        retry_after: int = 5,
        migrate_to_chat_id: int | None = None,
        description: str | None = None,
        delay: float = 30.0,
        drop: bool = False,
        deliver: bool = False,
    ) -> Fault:
        """Make the next ``count`` matching requests fail (``count=None``: all of them).

        Args:
            kind: ``"server_error"`` (HTTP ``status``, 500 by default; 502 answers with an
                nginx-style HTML page like the real gateway), ``"timeout"`` (hold the request
                ``delay`` seconds, or with ``drop=True`` close the connection without an
                answer; with ``deliver=True`` the message is recorded as sent first: the
                "delivered but the client never heard" case), ``"forbidden"`` (403),
                ``"rate_limit"`` (429 with ``retry_after``), ``"migrate"`` (400 with
                ``migrate_to_chat_id``, by default ``-100`` followed by the chat's digits).
            chat_id: only requests for this chat (an id or ``"@username"``); ``None``: any.
            count: how many requests fail; ``None`` until ``clear()``.
            method: Bot API method the fault applies to; ``None``: every method.
            status: HTTP status for ``server_error``.
            retry_after: seconds for ``rate_limit``.
            migrate_to_chat_id: new chat id for ``migrate``.
            description: overrides the Telegram-style description.
            delay: how long ``timeout`` holds a request (server shutdown ends it early).
            drop: ``timeout`` closes the connection instead of holding it.
            deliver: ``timeout`` records the message as sent before failing.

        Returns:
            The fault; its ``hits`` counts the requests it failed.
        """
        if kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(_FAULT_KINDS)}")
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or None for every request)")
        fault = Fault(
            kind=kind,
            method=method,
            chat_id=chat_id,
            remaining=count,
            status=status,
            retry_after=retry_after,
            migrate_to_chat_id=migrate_to_chat_id,
            description=description,
            delay=delay,
            drop=drop,
            deliver=deliver,
        )
        self.pending.append(fault)
        return fault

    def take(self, method: str, chat_id: int | None, chat_ref: object = None) -> Fault | None:
        """The first pending fault matching this request, consumed once; ``None`` if none."""
        for fault in self.pending:
            if fault.matches(method, chat_id, chat_ref):
                fault.hits += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                self.pending = [f for f in self.pending if f.remaining is None or f.remaining > 0]
                return fault
        return None

    def clear(self) -> None:
        """Forget every pending fault."""
        self.pending.clear()


class Arrival(NamedTuple):
    """One request as it reached a loopback server, before any fault, hold or limit."""

    t: float  # time.monotonic() when the server's handler started
    method: str
    chat_id: int | str | None  # the resolved chat (Telegram) or conversation (WeChat) id


def max_in_window(
    arrivals: Iterable[Arrival],
    window: float = 1.0,
    *,
    method: str | None = None,
    chat_id: int | str | None = None,
) -> int:
    """The most ``arrivals`` in any closed window ``[a, a + window]`` (``a`` ranging over all
    times), optionally only those of one method and one chat.

    Pacing is a property of the traffic the server sees, not of the client's intentions, so
    tests measure it here: a client that keeps to N per second never gets more than N
    arrivals into one window of 1 s.
    """
    if not window >= 0:
        raise ValueError("window must be a non-negative number of seconds")
    wanted = method.lower() if method is not None else None
    times = sorted(
        a.t
        for a in arrivals
        if (wanted is None or a.method.lower() == wanted)
        and (chat_id is None or a.chat_id == chat_id)
    )
    best = 0
    end = 0
    for start, t in enumerate(times):
        while end < len(times) and times[end] <= t + window:
            end += 1
        best = max(best, end - start)
    return best


class RequestHold:
    """Holds matching requests inside a loopback server until the test lets them go.

    A kill or cancel test needs a request that is provably in flight: received by the server
    but not answered.  Timing the kill with sleeps is flaky; a hold makes it exact.  The first
    ``after`` matching requests pass, every later one waits (counted in ``held``) until
    :meth:`release`, after which held and later requests are processed normally.  Server
    shutdown aborts the held requests (they are never processed; the connection or stream is
    cut), so nothing hangs.

    With ``deliver_first`` the request is processed first (a message is delivered and
    recorded) and only its answer is held: the "delivered, but the client died before it
    heard" case.  Without it a held message is not delivered, nor recorded as sent, before
    :meth:`release`.

    A held request whose client goes away (process killed, task cancelled) stops being held
    and is counted in ``abandoned``; it is never processed.
    """

    def __init__(
        self,
        *,
        method: str | None,
        chat_id: int | str | None = None,
        after: int = 0,
        deliver_first: bool = False,
    ) -> None:
        if after < 0:
            raise ValueError("after must be 0 or more")
        self.method = method
        self.chat_id = chat_id
        self.after = after
        self.deliver_first = deliver_first
        self.matched = 0  # matching requests seen, let through or held
        self.held_total = 0  # requests ever held
        self.abandoned = 0  # held requests whose client went away
        self.aborted = False  # server shutdown ended the hold
        self._waiting = 0
        self._gate = asyncio.Event()
        self._changed = asyncio.Event()

    @property
    def held(self) -> int:
        """Requests waiting in the server now (0 once released or aborted)."""
        return 0 if self._gate.is_set() else self._waiting

    @property
    def released(self) -> bool:
        """Whether :meth:`release` was called (an aborted hold is not released)."""
        return self._gate.is_set() and not self.aborted

    @property
    def active(self) -> bool:
        """Still holding requests: neither released nor aborted."""
        return not self._gate.is_set()

    def release(self) -> None:
        """Let the held requests, and every later one, proceed normally."""
        self._gate.set()
        self._bump()

    def abort(self) -> None:
        """End the hold without processing the held requests (what server shutdown does)."""
        if not self._gate.is_set():
            self.aborted = True
        self._gate.set()
        self._bump()

    async def wait_held(
        self,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109  # a test helper: the deadline is its point
    ) -> None:
        """Return once ``count`` requests are held at the same time.

        Raises:
            TimeoutError: fewer were held within ``timeout`` seconds (the message says how
                many), or the hold was released or aborted meanwhile.
        """
        await self._wait(lambda: self.held >= count, timeout, f"{count} held request(s)")

    async def wait_abandoned(
        self,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        """Return once the server noticed ``count`` held requests' clients going away.

        After a kill, wait for this before :meth:`release`: until the server sees the closed
        connection the request is still held and a release would process it.
        """
        await self._wait(lambda: self.abandoned >= count, timeout, f"{count} abandoned request(s)")

    def matches(self, method: str, chat_id: int | str | None, chat_ref: object = None) -> bool:
        """Whether a request for ``method`` to ``chat_id`` (given as ``chat_ref``) is subject
        to this hold."""
        if not self.active:
            return False
        if self.method is not None and self.method.lower() != method.lower():
            return False
        if self.chat_id is None:
            return True
        return self.chat_id == chat_id or str(self.chat_id) == str(chat_ref)

    async def admit(self) -> bool:
        """Count one matching request and hold it if it is past ``after``.

        Returns True when it may proceed, False when the hold was aborted (the server is
        stopping: the caller drops the request).  A cancelled wait (the client went away)
        counts as abandoned and propagates.
        """
        self.matched += 1
        if self._gate.is_set() or self.matched <= self.after:
            return not self.aborted
        self._waiting += 1
        self.held_total += 1
        self._bump()
        try:
            await self._gate.wait()
        except asyncio.CancelledError:
            if not self._gate.is_set():
                self.abandoned += 1
            raise
        finally:
            self._waiting -= 1
            self._bump()
        return not self.aborted

    def __repr__(self) -> str:
        state = "aborted" if self.aborted else "released" if self.released else "holding"
        return (
            f"RequestHold(method={self.method!r}, chat_id={self.chat_id!r}, after={self.after}, "
            f"{state}, held={self.held}, matched={self.matched}, abandoned={self.abandoned})"
        )

    def _bump(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def _wait(self, predicate: Callable[[], bool], seconds: float, what: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not predicate():
            remaining = deadline - loop.time()
            if not self.active or remaining <= 0:
                state = "released" if self.released else "aborted" if self.aborted else "open"
                raise TimeoutError(
                    f"waited {seconds:g}s for {what}; hold {state}, held={self.held}, "
                    f"abandoned={self.abandoned}"
                )
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
