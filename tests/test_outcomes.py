"""One table of delivery outcomes, run against every implementation of ``Platform.send``.

A row is a platform's answer to a send and the neutral outcome (:mod:`bot.errors`) that
``send`` must turn it into; a column is one implementation, able to provoke each answer:

* ``scripted``: the double of tests/test_delivery.py (it raises what the row says);
* ``telegram-mock``: the real ``TelegramPlatform`` whose HTTP transport answers the Bot API's
  JSON (no server; the fast tier);
* ``telegram-sandbox``: the real ``TelegramPlatform`` against the loopback Bot API server;
* ``wechat-sandbox``: the real ``WechatPlatform`` against the loopback puppet service.

So the double cannot drift from the adapters: a row the double handles and an adapter does
not fails in that adapter's column. A platform that has no such answer marks the cell not
applicable (reported as skipped, "n/a: …") instead of faking it. Adding a platform is adding
one :class:`Column`; adding a row makes every column either provoke it or say why it cannot.

The second test drives the scripted and mock-transport columns through the platform's
outbox on a virtual clock and checks what follows from each outcome (a 429 pauses the whole
platform, a rejected token stops every later send …).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import datetime as dt
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from _pytest.mark import ParameterSet
from grpclib.const import Status
from telegram.request import HTTPXRequest

from bot.config import DeliverySettings
from bot.delivery import build_outbox
from bot.domain import OutgoingMessage, Target, TargetKind
from bot.errors import (
    AuthRejected,
    DeliveryError,
    PermanentFailure,
    RetryLater,
    TargetGone,
    TargetMigrated,
    TransientFailure,
)
from bot.platforms.base import Platform
from bot.platforms.telegram import TOKEN_ENV as TELEGRAM_TOKEN_ENV
from bot.platforms.telegram.adapter import TelegramPlatform
from bot.platforms.wechat import TOKEN_ENV as WECHAT_TOKEN_ENV
from bot.platforms.wechat.adapter import WechatPlatform
from bot.sandbox.telegram_api import TelegramTestServer
from bot.sandbox.wechat_puppet import WechatPuppetServer
from bot.store import Store
from tests import sandbox_fixtures as tg
from tests import wechat_fixtures as wx
from tests.doubles import ScriptedPlatform, VirtualClock

RETRY_AFTER = 7  # seconds a 429 asks for
MIGRATED_TO = "-1004001"  # where the group (Telegram's -4001) moved: its supergroup
DAY = dt.date(2026, 11, 27)
BRIEF = OutgoingMessage("<b>今日简报</b>", "html")
BAD_HTML = OutgoingMessage("a < b", "html")  # Telegram: "can't parse entities"
TELEGRAM_TIMEOUT = 2.0  # the sandbox client's timeouts: how long the timeout row waits
WECHAT_TIMEOUT = 0.5  # the WeChat send timeout in the timeout row


# ── the table ────────────────────────────────────────────────────────────────────────────


class Then(Enum):
    """What the outbox does after the outcome (the fault is one-shot: a retry succeeds)."""

    DELIVERED = "returns the message id"
    PAUSED = "pauses every send of the platform for retry_after, then resends"
    RETRIED = "retries after a backoff, then delivers"
    FINAL = "raises the outcome at once, no retry; other chats are unaffected"
    STOPPED = "raises AuthRejected and refuses every later send without a request"


@dataclass(frozen=True)
class Row:
    id: str
    answer: str  # the platform's answer, in Bot API terms
    outcome: type[DeliveryError] | None  # None: delivered, send returns the message id
    then: Then
    retry_after: float | None = None  # RetryLater: the wait the answer asked for
    new_chat_id: str | None = None  # TargetMigrated: where the chat moved
    names_token: bool = False  # AuthRejected: the message names the token's variable

    def example(self, token_env: str) -> DeliveryError | None:
        """The outcome as a double raises it."""
        if self.outcome is None:
            return None
        if self.outcome is RetryLater:
            assert self.retry_after is not None
            return RetryLater(self.retry_after)
        if self.outcome is TargetMigrated:
            assert self.new_chat_id is not None
            return TargetMigrated(self.new_chat_id)
        if self.outcome is AuthRejected:
            return AuthRejected(f"the token was rejected: check {token_env}")
        return self.outcome(self.answer)


ROWS: tuple[Row, ...] = (
    Row("ok", "200, the sent message", None, Then.DELIVERED),
    Row(
        "429",
        f"429 Too Many Requests, parameters.retry_after={RETRY_AFTER}",
        RetryLater,
        Then.PAUSED,
        retry_after=RETRY_AFTER,
    ),
    Row("5xx", "500 Internal Server Error", TransientFailure, Then.RETRIED),
    Row("502-html", "502 Bad Gateway as an nginx HTML page", TransientFailure, Then.RETRIED),
    Row("network-drop", "connection closed without an answer", TransientFailure, Then.RETRIED),
    Row("timeout", "no answer within the client's timeout", TransientFailure, Then.RETRIED),
    Row("403-blocked", "403 Forbidden: bot was blocked by the user", TargetGone, Then.FINAL),
    Row("403-kicked", "403 Forbidden: bot was kicked from the group chat", TargetGone, Then.FINAL),
    Row("400-chat-not-found", "400 Bad Request: chat not found", TargetGone, Then.FINAL),
    Row("400-bad-request", "400 Bad Request: can't parse entities", PermanentFailure, Then.FINAL),
    Row(
        "400-migrated",
        "400 Bad Request, parameters.migrate_to_chat_id",
        TargetMigrated,
        Then.FINAL,
        new_chat_id=MIGRATED_TO,
    ),
    Row("401", "401 Unauthorized (a revoked token)", AuthRejected, Then.STOPPED, names_token=True),
    Row(
        "401-reconnect",
        "the token is revoked and the session ends: reconnecting is refused (UNAUTHENTICATED)",
        AuthRejected,
        Then.STOPPED,
        names_token=True,
    ),
)
ROW_IDS = frozenset(row.id for row in ROWS)


@dataclass(frozen=True)
class Case:
    """How a column provoked a row: where to send, and what the answer carries."""

    target: Target
    message: OutgoingMessage = BRIEF
    # False: the platform's answer names no wait (WeChat); any positive retry_after will do
    states_retry_after: bool = True
    # text of the platform's answer that must survive into the outcome (the ledger shows it)
    reason: str | None = None
    # runs alongside the send, for answers that happen while it is in flight (a cut)
    meanwhile: Callable[[], Awaitable[None]] | None = None


class Column(abc.ABC):
    """One implementation of ``Platform.send`` and how to make it meet each row's answer."""

    name: ClassVar[str]
    token_env: ClassVar[str]
    # row id → why this platform has no such answer (the cell is reported "n/a")
    not_applicable: ClassVar[Mapping[str, str]] = {}
    # row id → the adapter bug that makes the cell fail today (strict xfail)
    known_bugs: ClassVar[Mapping[str, str]] = {}
    # cheap to drive through an outbox on a virtual clock (attempts() is implemented)
    drives_outbox: ClassVar[bool] = False

    platform: Platform
    clock: VirtualClock  # the outbox's clock (outbox columns record attempts on it)
    secret: str = ""  # must never appear in an outcome's message
    other: Target  # a chat that answers normally

    @classmethod
    @abc.abstractmethod
    def open(
        cls, tmp_path: Path, clock: VirtualClock
    ) -> contextlib.AbstractAsyncContextManager[Column]:
        """A started column, stopped on exit."""

    @abc.abstractmethod
    async def provoke(self, row: Row) -> Case:
        """Arrange that the next send of the returned case meets ``row``'s answer, once."""

    @abc.abstractmethod
    def delivered(self) -> list[str]:
        """Ids of the messages the platform accepted, in order."""

    def attempts(self) -> list[float]:
        """Virtual time of every send that reached the platform (outbox columns only)."""
        raise NotImplementedError


def unprovokable(column: Column, row: Row) -> AssertionError:
    return AssertionError(f"{column.name} has no way to provoke row {row.id!r}: add one")


# ── column: the scripted double ──────────────────────────────────────────────────────────


class Scripted(Column):
    name = "scripted"
    token_env = TELEGRAM_TOKEN_ENV  # the double stands in for Telegram (its name)
    drives_outbox = True

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.double = ScriptedPlatform(clock)
        self.platform = self.double
        self.other = Target("telegram", "1002")

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Column]:
        yield cls(clock)

    async def provoke(self, row: Row) -> Case:
        error = row.example(self.token_env)
        if error is not None:
            self.double.script = lambda t, m, n: error if n == 1 else None
        return Case(Target("telegram", "1001"))

    def delivered(self) -> list[str]:
        return [str(n) for n in range(1, len(self.double.delivered) + 1)]

    def attempts(self) -> list[float]:
        return list(self.double.started)


# ── column: TelegramPlatform over a mock transport ───────────────────────────────────────

Answer = Callable[[httpx.Request], httpx.Response]
MOCK_TOKEN = "123456:MOCK-SECRET"
MOCK_BOT = {"id": 123456, "is_bot": True, "first_name": "Briefbot", "username": "briefbot_bot"}
NGINX_502 = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def bot_api_error(status: int, description: str, **parameters: int) -> Answer:
    """The Bot API's JSON error answer (core.telegram.org/bots/api#making-requests)."""
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    return answer


def nginx_502(request: httpx.Request) -> httpx.Response:
    return httpx.Response(502, text=NGINX_502, headers={"content-type": "text/html"})


def connection_dropped(request: httpx.Request) -> httpx.Response:
    raise httpx.RemoteProtocolError("Server disconnected without sending a response.")


def read_timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("timed out", request=request)


# row id → (chat, the answer to its next sendMessage, the text the outcome keeps)
MOCK_CELLS: dict[str, tuple[str, Answer | None, str | None]] = {
    "ok": ("1001", None, None),
    "429": (
        "1001",
        bot_api_error(
            429, f"Too Many Requests: retry after {RETRY_AFTER}", retry_after=RETRY_AFTER
        ),
        None,
    ),
    "5xx": ("1001", bot_api_error(500, "Internal Server Error"), "Internal Server Error"),
    "502-html": ("1001", nginx_502, "Bad Gateway"),
    "network-drop": ("1001", connection_dropped, "Server disconnected"),
    "timeout": ("1001", read_timeout, None),
    "403-blocked": (
        "1001",
        bot_api_error(403, "Forbidden: bot was blocked by the user"),
        "bot was blocked by the user",
    ),
    "403-kicked": (
        "-4001",
        bot_api_error(403, "Forbidden: bot was kicked from the group chat"),
        "bot was kicked",
    ),
    "400-chat-not-found": ("999", bot_api_error(400, "Bad Request: chat not found"), "not found"),
    "400-bad-request": (
        "1001",
        bot_api_error(
            400,
            'Bad Request: can\'t parse entities: Unsupported start tag "" at byte offset 2',
        ),
        "can't parse entities",
    ),
    "400-migrated": (
        "-4001",
        bot_api_error(
            400,
            "Bad Request: group chat was upgraded to a supergroup chat",
            migrate_to_chat_id=int(MIGRATED_TO),
        ),
        None,
    ),
    "401": ("1001", bot_api_error(401, "Unauthorized"), None),
}


NO_SESSION = (
    "Telegram keeps no session to lose: every request presents the token, so a revoked "
    "token is the 401 row"
)


class TelegramMock(Column):
    name = "telegram-mock"
    token_env = TELEGRAM_TOKEN_ENV
    not_applicable: ClassVar[Mapping[str, str]] = {"401-reconnect": NO_SESSION}
    drives_outbox = True
    secret = MOCK_TOKEN

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.answers: list[Answer] = []  # one-shot answers to the next sendMessage requests
        self.sent: list[str] = []
        self.attempt_times: list[float] = []
        transport = httpx.MockTransport(self._handle)
        self.platform = TelegramPlatform(
            MOCK_TOKEN,
            base_url="https://api.telegram.invalid/bot",
            request=HTTPXRequest(httpx_kwargs={"transport": transport}),
            receive=False,
        )
        self.other = Target("telegram", "1002")

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Column]:
        column = cls(clock)
        await column.platform.start()
        try:
            yield column
        finally:
            await column.platform.stop()

    def _handle(self, request: httpx.Request) -> httpx.Response:
        method = request.url.path.rsplit("/", 1)[-1]
        if method == "getMe":
            return httpx.Response(200, json={"ok": True, "result": MOCK_BOT})
        if method != "sendMessage":
            return bot_api_error(404, "Not Found")(request)
        self.attempt_times.append(self.clock())
        if self.answers:
            return self.answers.pop(0)(request)
        params = urllib.parse.parse_qs(request.content.decode())
        chat_id = int(params["chat_id"][0])
        self.sent.append(str(len(self.sent) + 1))
        message = {
            "message_id": len(self.sent),
            "date": 1_800_000_000,
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group", "title": "x"},
            "text": params["text"][0],
        }
        return httpx.Response(200, json={"ok": True, "result": message})

    async def provoke(self, row: Row) -> Case:
        if row.id not in MOCK_CELLS:
            raise unprovokable(self, row)
        chat, answer, reason = MOCK_CELLS[row.id]
        if answer is not None:
            self.answers.append(answer)
        message = BAD_HTML if row.id == "400-bad-request" else BRIEF
        return Case(Target("telegram", chat), message, reason=reason)

    def delivered(self) -> list[str]:
        return list(self.sent)

    def attempts(self) -> list[float]:
        return list(self.attempt_times)


# ── column: TelegramPlatform against the loopback Bot API ────────────────────────────────


class TelegramSandbox(Column):
    name = "telegram-sandbox"
    token_env = TELEGRAM_TOKEN_ENV
    not_applicable: ClassVar[Mapping[str, str]] = {"401-reconnect": NO_SESSION}

    def __init__(self, server: TelegramTestServer, clock: VirtualClock) -> None:
        self.server = server
        self.clock = clock
        self.secret = server.token
        self.platform = TelegramPlatform(
            server.token, base_url=server.base_url, receive=False, timeout=TELEGRAM_TIMEOUT
        )
        self.other = Target("telegram", str(tg.BOB))

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Column]:
        server = TelegramTestServer()
        server.add_user(tg.ALICE, "Alice", username="alice")
        server.add_user(tg.BOB, "Bob", language_code="en")
        server.add_chat(tg.GROUP, "group", title="AI 读书会", admins=[tg.ALICE], members=[tg.BOB])
        async with server:
            column = cls(server, clock)
            await column.platform.start()
            try:
                yield column
            finally:
                await column.platform.stop()

    async def provoke(self, row: Row) -> Case:
        server = self.server
        alice = Target("telegram", str(tg.ALICE))
        group = Target("telegram", str(tg.GROUP), TargetKind.GROUP)
        match row.id:
            case "ok":
                return Case(alice)
            case "429":
                server.faults.add("rate_limit", tg.ALICE, retry_after=RETRY_AFTER)
                return Case(alice)
            case "5xx":
                server.faults.add("server_error", tg.ALICE, status=500)
                return Case(alice, reason="Internal Server Error")
            case "502-html":
                server.faults.add("server_error", tg.ALICE, status=502)
                return Case(alice, reason="Bad Gateway")
            case "network-drop":
                server.faults.add("timeout", tg.ALICE, drop=True)
                return Case(alice)
            case "timeout":  # held far longer than the client waits
                server.faults.add("timeout", tg.ALICE, delay=60.0)
                return Case(alice)
            case "403-blocked":
                server.block_bot(tg.ALICE)
                return Case(alice, reason="bot was blocked by the user")
            case "403-kicked":
                server.kick_bot(tg.GROUP)
                return Case(group, reason="bot was kicked")
            case "400-chat-not-found":
                return Case(Target("telegram", "999"), reason="chat not found")
            case "400-bad-request":
                return Case(alice, BAD_HTML, reason="can't parse entities")
            case "400-migrated":
                server.migrate_chat(tg.GROUP, int(MIGRATED_TO))
                return Case(group)
            case "401":
                server.revoke_token()
                return Case(alice)
        raise unprovokable(self, row)

    def delivered(self) -> list[str]:
        return [str(m.message_id) for m in self.server.sent]


# ── column: WechatPlatform against the loopback puppet service ───────────────────────────


class WechatSandbox(Column):
    name = "wechat-sandbox"
    token_env = WECHAT_TOKEN_ENV
    not_applicable: ClassVar[Mapping[str, str]] = {
        "502-html": "a puppet service answers gRPC statuses, never an HTML error page "
        "(a transient gateway answers UNAVAILABLE: the 5xx row)",
        "400-migrated": "WeChat groups keep their id: there is no migration answer",
    }

    def __init__(
        self, server: WechatPuppetServer, platform: WechatPlatform, clock: VirtualClock
    ) -> None:
        self.server = server
        self.clock = clock
        self.wechat = platform
        self.platform = platform
        self.secret = server.token
        self.other = Target("wechat", wx.OTHER_ROOM, TargetKind.GROUP)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Column]:
        async with wx.running_server() as server:
            platform = WechatPlatform(
                endpoint=server.endpoint,
                token=server.token,
                handler=None,
                cache_dir=tmp_path / "wechaty",
                login_timeout=5.0,
                backoff_base=0.05,
                backoff_max=0.2,
            )
            await platform.start()
            try:
                yield cls(server, platform, clock)
            finally:
                await platform.stop()

    async def provoke(self, row: Row) -> Case:
        server = self.server
        room = Target("wechat", wx.ROOM, TargetKind.GROUP)
        carol = Target("wechat", wx.CAROL)
        match row.id:
            case "ok":
                return Case(room)
            case "429":
                server.fail_next_send(wx.ROOM, status=Status.RESOURCE_EXHAUSTED)
                return Case(room, states_retry_after=False, reason="RESOURCE_EXHAUSTED")
            case "5xx":
                server.fail_next_send(wx.ROOM, status=Status.UNAVAILABLE)
                return Case(room, reason="UNAVAILABLE")
            case "network-drop":  # the connection is cut while the send is in flight
                hold = server.hold_sends(wx.ROOM)

                async def cut() -> None:
                    await hold.wait_held()
                    await server.drop_stream()

                return Case(room, meanwhile=cut)
            case "timeout":  # held until the server stops
                server.hold_sends(wx.ROOM)
                self.wechat.send_timeout = WECHAT_TIMEOUT
                return Case(room)
            case "403-blocked":  # the person does not accept the bot's messages
                server.fail_next_send(wx.CAROL, status=Status.PERMISSION_DENIED)
                return Case(carol, reason="PERMISSION_DENIED")
            case "403-kicked":  # the bot was removed from the group: NOT_FOUND
                server.remove_room(wx.ROOM)
                return Case(room, reason="NOT_FOUND")
            case "400-chat-not-found":
                return Case(Target("wechat", "wxid_nobody_here"), reason="NOT_FOUND")
            case "400-bad-request":
                server.fail_next_send(wx.ROOM, status=Status.INVALID_ARGUMENT)
                return Case(room, reason="INVALID_ARGUMENT")
            case "401":
                server.revoke_token()
                return Case(room)
            case "401-reconnect":
                calls_before = len(server.calls)
                server.revoke_token()
                await server.drop_stream()

                def reconnect_refused() -> bool:
                    # the refused Start, then the Stop the adapter sends after handling it
                    calls = server.calls[calls_before:]
                    return "Start" in calls and "Stop" in calls[calls.index("Start") :]

                await until(reconnect_refused, "a refused reconnect")
                assert not self.wechat.connected
                return Case(room)
        raise unprovokable(self, row)

    def delivered(self) -> list[str]:
        return [s.message_id for s in self.server.sent]


async def until(condition: Callable[[], bool], what: str, within: float = 5.0) -> None:
    """Wait for a state the code under test reaches by itself (a condition, not a delay)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"waited {within:g}s for {what}")
        await asyncio.sleep(0.01)


# ── the grid ─────────────────────────────────────────────────────────────────────────────

COLUMNS: tuple[type[Column], ...] = (Scripted, TelegramMock, TelegramSandbox, WechatSandbox)


def cells(columns: tuple[type[Column], ...]) -> list[ParameterSet]:
    """Every row × every column, known bugs xfailed. A cell a platform has no such answer
    for is left out, not skipped (its reason is in ``not_applicable``, checked below)."""
    grid: list[ParameterSet] = []
    for column in columns:
        for row in ROWS:
            marks: list[pytest.MarkDecorator] = []
            if row.id in column.not_applicable:
                continue
            if row.id in column.known_bugs:
                reason = column.known_bugs[row.id]
                marks.append(pytest.mark.xfail(strict=True, raises=AssertionError, reason=reason))
            grid.append(pytest.param(column, row, id=f"{column.name}-{row.id}", marks=marks))
    return grid


@pytest.fixture
async def harness(column: type[Column], tmp_path: Path) -> AsyncIterator[Column]:
    async with column.open(tmp_path, VirtualClock()) as opened:
        yield opened


async def attempt(harness: Column, case: Case) -> str:
    """``send`` once; with ``case.meanwhile`` running alongside."""
    if case.meanwhile is None:
        return await harness.platform.send(case.target, case.message)
    sending = asyncio.ensure_future(harness.platform.send(case.target, case.message))
    try:
        await case.meanwhile()
    finally:
        await asyncio.wait([sending])
    return sending.result()


@pytest.mark.parametrize(("column", "row"), cells(COLUMNS))
async def test_send_turns_the_answer_into_the_neutral_outcome(harness: Column, row: Row) -> None:
    case = await harness.provoke(row)
    if row.outcome is None:
        message_id = await attempt(harness, case)
        assert isinstance(message_id, str) and message_id
        assert harness.delivered() == [message_id]
        return

    with pytest.raises(DeliveryError) as raised:
        await attempt(harness, case)
    error = raised.value
    assert type(error) is row.outcome, f"{row.answer!r} became {error!r}, not {row.outcome}"
    if row.retry_after is not None:
        assert isinstance(error, RetryLater)
        if case.states_retry_after:
            assert error.retry_after == row.retry_after
        else:
            assert error.retry_after > 0
    if row.new_chat_id is not None:
        assert isinstance(error, TargetMigrated) and error.new_chat_id == row.new_chat_id
    if row.names_token:
        assert harness.token_env in str(error)
    if case.reason is not None:
        assert case.reason.lower() in str(error).lower()
    if harness.secret:
        assert harness.secret not in str(error)
    assert harness.delivered() == []


# ── what the outbox does next ────────────────────────────────────────────────────────────


@pytest.mark.parametrize(("column", "row"), cells(tuple(c for c in COLUMNS if c.drives_outbox)))
async def test_the_outbox_acts_on_the_outcome(harness: Column, row: Row, tmp_path: Path) -> None:
    clock = harness.clock
    settings = DeliverySettings(backoff_base=1.0)
    store = Store.open(f"sqlite:///{tmp_path / 'outbox.db'}")
    try:
        outbox = build_outbox(
            harness.platform,
            store,
            settings,
            today=lambda: DAY,
            clock=clock,
            sleep=clock.sleep,
        )
        case = await harness.provoke(row)
        match row.then:
            case Then.DELIVERED:
                message_id = await outbox.send(case.target, case.message)
                assert harness.delivered() == [message_id]
                assert len(harness.attempts()) == 1
            case Then.PAUSED:
                others: list[asyncio.Task[str]] = []

                def send_elsewhere(exc: DeliveryError) -> None:
                    others.append(asyncio.ensure_future(outbox.send(harness.other, BRIEF)))

                first = await outbox.send(case.target, case.message, on_retry=send_elsewhere)
                [other] = others
                second = await other
                paused_at, *later = harness.attempts()
                assert len(later) == 2  # the resend and the other chat's send
                assert all(t >= paused_at + RETRY_AFTER for t in later)
                assert sorted(harness.delivered()) == sorted([first, second])
                assert outbox.stats.rate_limited == 1
            case Then.RETRIED:
                message_id = await outbox.send(case.target, case.message)
                failed_at, retried_at = harness.attempts()
                assert retried_at - failed_at >= settings.backoff_base
                assert harness.delivered() == [message_id]
                assert outbox.stats.retries == 1
            case Then.FINAL:
                assert row.outcome is not None
                with pytest.raises(row.outcome):
                    await outbox.send(case.target, case.message)
                assert len(harness.attempts()) == 1  # not retried
                elsewhere = await outbox.send(harness.other, BRIEF)
                assert harness.delivered() == [elsewhere]
            case Then.STOPPED:
                with pytest.raises(AuthRejected, match=harness.token_env):
                    await outbox.send(case.target, case.message)
                with pytest.raises(AuthRejected, match=harness.token_env):
                    await outbox.send(harness.other, BRIEF)
                assert len(harness.attempts()) == 1  # the later send made no request
                assert harness.delivered() == []
    finally:
        store.close()


# ── the table itself ─────────────────────────────────────────────────────────────────────


def test_every_column_names_real_rows() -> None:
    for column in COLUMNS:
        assert set(column.not_applicable) <= ROW_IDS, column.name
        assert set(column.known_bugs) <= ROW_IDS, column.name
        assert not set(column.not_applicable) & set(column.known_bugs), column.name
    assert len(ROW_IDS) == len(ROWS)
    # the mock column's data covers the table
    assert set(MOCK_CELLS) == ROW_IDS - set(TelegramMock.not_applicable)
    assert {row.then for row in ROWS} == set(Then)
