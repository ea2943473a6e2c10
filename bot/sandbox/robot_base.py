"""The machinery the loopback group-robot servers (WeCom, DingTalk, Feishu) and the outbound
webhook receiver share: lifecycle, arrivals, request holds, injected faults, sliding windows.

A subclass parses a request into a *target* (the robot or endpoint it names), a *method* (its
message type) and an *evaluation*: a function that applies the platform's rules, records the
message when it is accepted and returns the HTTP answer.  :class:`LoopbackServer` runs every
request the same way::

    arrival recorded → holds (before) → injected fault, or the evaluation → holds (after) → answer

so pacing, kill and "delivered but unheard" tests read alike on every platform.  Robots (name,
token, secret, keywords) live in :class:`RobotServer`; the receiver keeps its own endpoints.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import logging
import socket
import struct
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Literal, Self

from aiohttp import web

from bot.sandbox.telegram_limits import Arrival, RequestHold, max_in_window

__all__ = [
    "Arrival",
    "Clock",
    "Fault",
    "FaultKind",
    "LoopbackServer",
    "RequestHold",
    "Robot",
    "RobotMessage",
    "RobotServer",
    "ServerStats",
    "SlidingWindow",
    "Verdict",
    "max_in_window",
    "parse_json_object",
    "robot_cli",
    "string_leaves",
    "utf8_len",
]

_LOG = logging.getLogger("bot.sandbox.robots")

Clock = Callable[[], float]
JSONDict = dict[str, Any]
FaultKind = Literal["errcode", "server_error", "timeout", "drop", "reset", "gone"]
_GENERIC_FAULTS = frozenset({"server_error", "timeout", "drop", "reset"})

# Timers on a loaded machine jitter; a client pacing at exactly the limit must not be punished
# for a millisecond (the Telegram server's flood control allows the same).
_GRACE_SECONDS = 0.001

# The pages an nginx front answers with; the real robot APIs all sit behind one.
_NGINX_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Temporarily Unavailable",
    504: "Gateway Time-out",
}


def utf8_len(text: str) -> int:
    """Length of ``text`` in UTF-8 bytes, the unit WeCom and DingTalk count limits in."""
    return len(text.encode("utf-8"))


class SlidingWindow:
    """At most ``limit`` events in any ``seconds``-long window (limits are read at each check,
    so a server's limits can change at runtime)."""

    def __init__(self) -> None:
        self.times: deque[float] = deque()

    def admits(self, now: float, limit: int, seconds: float) -> bool:
        """Whether one more event at ``now`` keeps to the limit (old events are forgotten)."""
        while self.times and self.times[0] <= now - seconds + _GRACE_SECONDS:
            self.times.popleft()
        return len(self.times) < limit

    def record(self, now: float) -> None:
        self.times.append(now)


@dataclass
class Fault:
    """One injected failure for requests to ``target`` (a robot or endpoint name; ``None``:
    any), ``remaining`` more times (``None``: until :meth:`LoopbackServer.clear_faults`)."""

    kind: FaultKind
    target: str | None = None
    remaining: int | None = 1
    errcode: int | None = None
    errmsg: str | None = None
    status: int = 500
    delay: float = 30.0
    deliver: bool = False
    hits: int = 0

    def matches(self, target: str | None) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        return self.target is None or self.target == target


@dataclass
class ServerStats:
    """What a loopback server answered, for assertions and the benchmark."""

    requests: int = 0
    accepted: int = 0  # messages recorded (robots) or deliveries accepted (receiver)
    errors: int = 0  # answers that were not a success, drops included
    errors_by_code: dict[int, int] = field(default_factory=dict)  # platform errcode / code
    errors_by_status: dict[int, int] = field(default_factory=dict)  # non-2xx HTTP status
    throttled: int = 0  # answers with the platform's rate-limit error
    faults_injected: int = 0
    dropped: int = 0  # connections closed without an answer (faults and aborted holds)


class _Dropped(Exception):
    """The connection was closed without an answer."""


class LoopbackServer:
    """An aiohttp server on 127.0.0.1 with arrivals, holds and injected faults.

    Args:
        host: address to bind; loopback only by design.
        port: 0 picks a free port (read ``port`` or ``base_url`` after :meth:`start`).
        clock: monotonic seconds for arrivals and rate windows (tests pass a fake one).
        wall_clock: Unix seconds for signature timestamps (tests pass a fake one).
    """

    platform: ClassVar[str] = "loopback"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        self.host = host
        self.port = port
        self.clock = clock
        self.wall_clock = wall_clock
        self.arrivals: list[Arrival] = []
        self.holds: list[RequestHold] = []
        self.faults: list[Fault] = []
        self.stats = ServerStats()
        self._runner: web.AppRunner | None = None
        self._closing = asyncio.Event()

    # ── lifecycle ────────────────────────────────────────────────────────────────────────

    async def start(self) -> None:
        """Bind and serve; ``base_url`` is valid afterwards."""
        if self._runner is not None:
            raise RuntimeError(f"the {self.platform} sandbox is already running")
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=4 * 1024 * 1024)
        self._add_routes(app)
        # handler_cancellation: a client that goes away cancels its handler, so a held request
        # is seen as abandoned.  access_log=None: paths and queries carry the secrets.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        if not runner.addresses:
            raise RuntimeError(f"the {self.platform} sandbox did not bind")
        self.port = int(runner.addresses[0][1])
        _LOG.info("event=sandbox_started platform=%s base_url=%s", self.platform, self.base_url)

    async def stop(self) -> None:
        """Abort every hold (held requests are never processed; their connections close
        without an answer), end injected timeouts, close all connections."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing.set()
        holds, self.holds = self.holds, []
        for hold in holds:
            hold.abort()
        await runner.cleanup()
        _LOG.info("event=sandbox_stopped platform=%s", self.platform)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        if self._runner is None and self.port == 0:
            raise RuntimeError(f"start() the {self.platform} sandbox before asking for its URL")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # ── test API ─────────────────────────────────────────────────────────────────────────

    def clear_faults(self) -> None:
        """Forget every pending fault."""
        self.faults.clear()

    def _add_fault(self, fault: Fault, count: int | None) -> Fault:
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or None for every request)")
        if fault.delay < 0:
            raise ValueError("delay must not be negative")
        self.faults.append(fault)
        return fault

    def _add_hold(
        self, target: str | None, method: str | None, after: int, deliver_first: bool
    ) -> RequestHold:
        if self._runner is None:
            raise RuntimeError(f"start() the {self.platform} sandbox before holding requests")
        hold = RequestHold(method=method, chat_id=target, after=after, deliver_first=deliver_first)
        self.holds = [h for h in self.holds if h.active]
        self.holds.append(hold)
        return hold

    # ── for subclasses ───────────────────────────────────────────────────────────────────

    def _add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def _fault_answer(self, fault: Fault, target: str | None) -> web.Response:
        """The answer of a platform-specific fault kind (``errcode``, ``gone``)."""
        raise ValueError(f"the {self.platform} sandbox has no {fault.kind!r} fault")

    async def _serve(
        self,
        request: web.Request,
        *,
        arrived: float,
        target: str | None,
        method: str,
        evaluate: Callable[[], web.Response],
    ) -> web.StreamResponse:
        """Run one request through arrivals, holds, faults and ``evaluate``.

        ``arrived`` is the clock reading taken when the handler started, before the body was
        read: the arrival is recorded before any hold, fault or limit can delay or refuse it.
        """
        bisect.insort(self.arrivals, Arrival(arrived, method, target), key=lambda a: a.t)
        self.stats.requests += 1
        try:
            if not await self._pass_holds(method, target, deliver_first=False):
                raise _Dropped
            fault = self._take_fault(target)
            answer = evaluate() if fault is None else await self._run_fault(fault, target, evaluate)
            if not await self._pass_holds(method, target, deliver_first=True):
                raise _Dropped
        except _Dropped:
            return self._drop(request, reset=False)
        except _Reset:
            return self._drop(request, reset=True)
        return answer

    async def _run_fault(
        self, fault: Fault, target: str | None, evaluate: Callable[[], web.Response]
    ) -> web.Response:
        self.stats.faults_injected += 1
        if fault.kind not in _GENERIC_FAULTS:
            return self._fault_answer(fault, target)
        if fault.kind == "server_error":
            return self._error_page(fault.status)
        answer = evaluate() if fault.deliver else None
        if fault.kind == "drop":
            raise _Dropped
        if fault.kind == "reset":
            raise _Reset
        await self._sleep(fault.delay)  # "timeout": server shutdown ends it early
        return answer if answer is not None else self._error_page(504)

    def _take_fault(self, target: str | None) -> Fault | None:
        for fault in self.faults:
            if fault.matches(target):
                fault.hits += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                self.faults = [f for f in self.faults if f.remaining is None or f.remaining > 0]
                return fault
        return None

    async def _pass_holds(self, method: str, target: str | None, *, deliver_first: bool) -> bool:
        """Wait in every matching hold; False when one was aborted (the server is stopping)."""
        for hold in list(self.holds):
            if (
                hold.deliver_first == deliver_first
                and hold.matches(method, target)
                and not await hold.admit()
            ):
                return False
        return True

    def _drop(self, request: web.Request, *, reset: bool) -> web.StreamResponse:
        """Close the connection without an answer; ``reset`` sends a TCP RST (SO_LINGER 0)."""
        self.stats.dropped += 1
        self.stats.errors += 1
        transport = request.transport
        if transport is not None:
            if reset:
                sock = transport.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                transport.abort()
            else:
                transport.close()
        return web.Response(status=204)  # never reaches the client

    def _error_page(self, status: int) -> web.Response:
        """An nginx-style HTML error page, as the platforms' gateways answer."""
        self._count_status(status)
        reason = _NGINX_REASONS.get(status, "Error")
        page = (
            f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        return web.Response(text=page, status=status, content_type="text/html")

    def _count_status(self, status: int) -> None:
        self.stats.errors += 1
        self.stats.errors_by_status[status] = self.stats.errors_by_status.get(status, 0) + 1

    def _count_code(self, code: int, *, throttled: bool = False) -> None:
        self.stats.errors += 1
        self.stats.errors_by_code[code] = self.stats.errors_by_code.get(code, 0) + 1
        if throttled:
            self.stats.throttled += 1

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    @staticmethod
    def _json(body: JSONDict, status: int = 200) -> web.Response:
        return web.Response(
            text=json.dumps(body, ensure_ascii=False),
            status=status,
            content_type="application/json",
        )


class _Reset(Exception):
    """The connection was reset without an answer."""


@dataclass
class Robot:
    """One group robot: its webhook credential (``token``, the WeCom ``key`` / DingTalk
    ``access_token`` / Feishu hook id), its security settings and whether it was removed."""

    name: str
    token: str
    secret: str | None = None
    keywords: tuple[str, ...] = ()
    revoked: bool = False
    server: RobotServer | None = field(default=None, repr=False, compare=False)

    @property
    def webhook_url(self) -> str:
        """The full URL a client posts to (DingTalk clients append ``timestamp`` and
        ``sign``)."""
        if self.server is None:
            raise RuntimeError(f"robot {self.name!r} belongs to no server")
        return self.server.webhook_url_for(self)


@dataclass(frozen=True)
class RobotMessage:
    """A message a robot accepted and posted to its group."""

    robot: str
    msgtype: str
    payload: JSONDict  # the whole request JSON
    text: str  # main content: text/markdown content, a post or card flattened to text
    body_bytes: int  # size of the HTTP request body
    t: float  # clock reading when the request arrived
    title: str = ""  # DingTalk markdown title, Feishu post/card title, else ""


@dataclass
class Verdict:
    """What a platform's rules decided about one request (before it is answered)."""

    message: RobotMessage | None = None
    code: int = 0
    errmsg: str = ""
    throttled: bool = False


class RobotServer(LoopbackServer):
    """A loopback group-robot webhook API: robots, the messages they accepted, revocation,
    rate windows and the platform's error bodies.  Subclasses supply the rules."""

    # The platform's invalid-token / success answers and known errmsg texts.
    invalid_token_code: ClassVar[int] = 0
    known_errmsgs: ClassVar[dict[int, str]] = {}

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        super().__init__(host=host, port=port, clock=clock, wall_clock=wall_clock)
        self.robots: dict[str, Robot] = {}
        self.messages: list[RobotMessage] = []
        # Seconds added to the wall clock when checking signature timestamps: a server whose
        # clock runs ahead (positive) or behind (negative) the client's.
        self.skew = 0.0
        self.on_message: Callable[[RobotMessage], None] | None = None
        self._by_token: dict[str, Robot] = {}
        self._messages_changed = asyncio.Event()
        self._serial = 0

    # ── test API: robots ─────────────────────────────────────────────────────────────────

    def add_robot(
        self,
        name: str,
        *,
        secret: str | None = None,
        keywords: tuple[str, ...] | list[str] = (),
        token: str | None = None,
    ) -> Robot:
        """Register a robot; ``token`` defaults to a fresh platform-shaped one."""
        if name in self.robots:
            raise ValueError(f"robot {name!r} already exists")
        kws = tuple(keywords)
        self._check_security(secret, kws)
        token = token if token is not None else self._new_token()
        if token in self._by_token:
            raise ValueError("that token belongs to another robot")
        robot = Robot(name=name, token=token, secret=secret, keywords=kws, server=self)
        self.robots[name] = robot
        self._by_token[token] = robot
        return robot

    def robot(self, name: str) -> Robot:
        try:
            return self.robots[name]
        except KeyError:
            raise KeyError(f"no robot {name!r}; known: {sorted(self.robots)}") from None

    def revoke(self, name: str) -> None:
        """Remove the robot from its group: later requests get the invalid-token error."""
        self.robot(name).revoked = True

    def messages_to(self, name: str) -> list[RobotMessage]:
        """Messages robot ``name`` accepted, in order."""
        return [m for m in self.messages if m.robot == name]

    async def wait_for_messages(
        self,
        count: int,
        robot: str | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109  # a test helper: the deadline is its point
    ) -> list[RobotMessage]:
        """Return the messages (of ``robot``) once there are at least ``count``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            found = self.messages if robot is None else self.messages_to(robot)
            if len(found) >= count:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"waited {timeout:g}s for {count} message(s); have {len(found)}")
            event = self._messages_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def hold_requests(
        self,
        robot: str | None = None,
        after: int = 0,
        *,
        msgtype: str | None = None,
        deliver_first: bool = False,
    ) -> RequestHold:
        """Hold requests to ``robot`` (``None``: any robot; requests with an unknown token
        have no robot) inside the server until ``release()``.

        The first ``after`` matching requests pass; each later one is received, counted in
        ``stats`` and ``arrivals`` and then waits before faults, validation, rate limits and
        delivery, so a held message is not in ``messages``.  With ``deliver_first`` the message
        is accepted and recorded and only the answer is held.  A held request whose client goes
        away is counted in ``abandoned`` and never applied; ``stop()`` aborts every hold.
        """
        return self._add_hold(robot, msgtype, after, deliver_first)

    def fail(
        self,
        kind: FaultKind,
        *,
        robot: str | None = None,
        count: int | None = 1,
        errcode: int | None = None,
        errmsg: str | None = None,
        status: int = 500,
        delay: float = 30.0,
        deliver: bool = False,
    ) -> Fault:
        """Make the next ``count`` requests to ``robot`` (``None``: any) fail.

        Kinds: ``"errcode"`` (HTTP 200 and the platform's error body with ``errcode``; its
        real message text unless ``errmsg`` is given), ``"server_error"`` (HTTP ``status``
        with an nginx page), ``"timeout"`` (hold the request ``delay`` seconds, then 504; with
        ``deliver`` the message is accepted first and its real answer comes after the delay),
        ``"drop"`` (close the connection, no answer) and ``"reset"`` (TCP reset); both accept
        the message first with ``deliver``.  ``count=None``: every request until
        :meth:`clear_faults`.  Faults apply after holds, before the platform's rules.
        """
        if kind not in {"errcode", *_GENERIC_FAULTS}:
            raise ValueError(f"unknown fault kind {kind!r}")
        if kind == "errcode" and errcode is None:
            raise ValueError('an "errcode" fault needs errcode=')
        if robot is not None and robot not in self.robots:
            raise KeyError(f"no robot {robot!r}")
        fault = Fault(
            kind=kind,
            target=robot,
            remaining=count,
            errcode=errcode,
            errmsg=errmsg,
            status=status,
            delay=delay,
            deliver=deliver,
        )
        return self._add_fault(fault, count)

    def max_in_window(
        self, window: float = 60.0, robot: str | None = None, *, msgtype: str | None = None
    ) -> int:
        """The most requests that arrived in any ``window`` seconds (to ``robot``, of
        ``msgtype``, if given; refused and held ones included): pacing as the server saw it."""
        return max_in_window(self.arrivals, window, method=msgtype, chat_id=robot)

    def webhook_url_for(self, robot: Robot) -> str:
        raise NotImplementedError

    # ── for subclasses ───────────────────────────────────────────────────────────────────

    def _new_token(self) -> str:
        raise NotImplementedError

    def _check_security(self, secret: str | None, keywords: tuple[str, ...]) -> None:
        """Refuse security settings the platform does not have."""

    def _error_body(self, code: int, errmsg: str, request: web.Request | None) -> JSONDict:
        raise NotImplementedError

    def _success_body(self) -> JSONDict:
        raise NotImplementedError

    def _error_status(self, code: int) -> int:
        """HTTP status of an error answer (all three platforms: 200)."""
        return 200

    def _known_errmsg(self, code: int) -> str:
        return self.known_errmsgs.get(code, "error")

    def _fault_answer(self, fault: Fault, target: str | None) -> web.Response:
        if fault.kind != "errcode" or fault.errcode is None:
            return super()._fault_answer(fault, target)
        code = fault.errcode
        errmsg = fault.errmsg if fault.errmsg is not None else self._known_errmsg(code)
        self._count_code(code, throttled=self._is_throttle_code(code))
        return self._json(self._error_body(code, errmsg, None), self._error_status(code))

    def _is_throttle_code(self, code: int) -> bool:
        return False

    def _robot_of_token(self, token: str | None) -> Robot | None:
        return self._by_token.get(token) if token else None

    def _answer(self, verdict: Verdict, request: web.Request) -> web.Response:
        """Record an accepted message or count an error, and build the HTTP answer."""
        if verdict.message is not None:
            self.messages.append(verdict.message)
            self.stats.accepted += 1
            self._bump_messages()
            if self.on_message is not None:
                self.on_message(verdict.message)
            return self._json(self._success_body())
        self._count_code(verdict.code, throttled=verdict.throttled)
        _LOG.debug("event=robot_error platform=%s code=%s", self.platform, verdict.code)
        body = self._error_body(verdict.code, verdict.errmsg, request)
        return self._json(body, self._error_status(verdict.code))

    def _reject(self, code: int, errmsg: str | None = None, *, throttled: bool = False) -> Verdict:
        return Verdict(
            code=code,
            errmsg=errmsg if errmsg is not None else self._known_errmsg(code),
            throttled=throttled,
        )

    def _signing_now(self) -> float:
        """The server's wall clock as signature checks see it (``skew`` applied)."""
        return self.wall_clock() + self.skew

    def _bump_messages(self) -> None:
        event, self._messages_changed = self._messages_changed, asyncio.Event()
        event.set()

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial


def parse_json_object(body: bytes) -> JSONDict | None:
    """The request body as a JSON object; ``None`` if it is not UTF-8 JSON or not an object."""
    try:
        parsed = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return parsed if isinstance(parsed, dict) else None


def string_leaves(value: object) -> Iterator[str]:
    """Every string inside a JSON value (dict values and list items, depth first)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from string_leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from string_leaves(item)


def robot_cli(
    prog: str, description: str, make: Callable[[argparse.Namespace], RobotServer]
) -> Callable[[list[str] | None], None]:
    """A ``main()`` that runs one robot server by hand: ``--robot NAME[:SECRET]`` (repeatable),
    ``--keyword`` (every robot), ``--port``; prints each webhook URL and every message."""

    def main(argv: list[str] | None = None) -> None:
        parser = argparse.ArgumentParser(prog=prog, description=description)
        parser.add_argument("--port", type=int, default=0)
        parser.add_argument(
            "--robot", action="append", default=[], metavar="NAME[:SECRET]", help="add a robot"
        )
        parser.add_argument("--keyword", action="append", default=[], help="keyword security")
        args = parser.parse_args(argv)

        async def serve() -> None:
            server = make(args)
            async with server:
                for spec in args.robot or ["demo"]:
                    name, _, secret = spec.partition(":")
                    robot = server.add_robot(
                        name, secret=secret or None, keywords=tuple(args.keyword)
                    )
                    print(f"{name}: {robot.webhook_url}", flush=True)
                server.on_message = lambda m: print(
                    f"→ {m.robot} [{m.msgtype}] {m.text}", flush=True
                )
                await asyncio.Event().wait()

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve())

    return main
