"""A loopback WeChat puppet service: the gRPC server a real wechaty client logs in to.

It speaks the ``wechaty.Puppet`` service of wechaty-grpc 0.20 (grpclib + the betterproto
messages of ``wechaty_grpc``) on 127.0.0.1, holds contacts, rooms and messages in memory,
injects incoming messages as events and records what the bot sends. Tests, the demo and the
benchmarks use it in place of a WeChat gateway.

What the wechaty 0.10.7 client needs, found by running it: ``Stop`` then ``Start`` then the
``Event`` server stream (events carry JSON payloads with camelCase keys); the login event makes
it fetch ``ContactPayload`` of the bot; a message event makes it fetch ``MessagePayload`` and
the payloads of its talker, room and receiver; ``Room.find`` uses ``RoomList`` and
``RoomPayload``; ``say`` uses ``MessageSendText`` (request field ``mentonal_ids``, sic) and then
``MessagePayload`` of the message it sent. Message types follow TypeScript wechaty-puppet
(text is 7), which the client re-maps to its own enum. ``message.mention_self()`` is true when
the payload's ``mention_ids`` holds the bot's id. Any other Puppet method answers
``UNIMPLEMENTED`` naming the method.

For delivery tests it fails sends on demand (:meth:`WechatPuppetServer.fail_next_send`), holds
sends in flight for kill tests (:meth:`WechatPuppetServer.hold_sends`), records when each send
arrived (``arrivals``, :meth:`WechatPuppetServer.max_in_window`) and can revoke its token.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime as dt
import inspect
import itertools
import json
import re
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, cast

import grpclib.const
import grpclib.server
import wechaty_grpc.wechaty as puppet_service
from grpclib import GRPCError
from grpclib.const import Status
from wechaty_grpc.wechaty import puppet as pb

# Shared with the Telegram sandbox (the module is named for it): holds and arrival accounting
# work the same on both loopback servers.
from bot.sandbox.telegram_limits import Arrival, RequestHold, max_in_window

__all__ = [
    "DEFAULT_TOKEN",
    "MENTION_SEPARATOR",
    "Arrival",
    "RequestHold",
    "SendFailure",
    "SentText",
    "WechatPuppetServer",
]

DEFAULT_TOKEN = "insecure_briefbot_test"
TEXT_TYPE = 7  # TypeScript wechaty-puppet's MessageType.Text; the client maps it to its TEXT
MENTION_SEPARATOR = "\u2005"  # WeChat puts a four-per-em space after each @name

_EVENT_HEARTBEAT = 1
_EVENT_MESSAGE = 2
_EVENT_DONG = 3
_EVENT_READY = 23
_EVENT_LOGIN = 25
_EVENT_LOGOUT = 26
_CONTACT_PERSONAL = 1


@dataclass(frozen=True, slots=True)
class SentText:
    """A text the bot sent through ``MessageSendText``."""

    conversation_id: str
    text: str
    mention_ids: tuple[str, ...]
    message_id: str
    at: dt.datetime


@dataclass(slots=True)
class _Contact:
    id: str
    name: str
    alias: str = ""


@dataclass(slots=True)
class _Room:
    id: str
    topic: str
    member_ids: list[str]
    aliases: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Message:
    id: str
    from_id: str
    text: str
    room_id: str = ""
    to_id: str = ""
    mention_ids: tuple[str, ...] = ()
    timestamp: int = 0


@dataclass(slots=True)
class SendFailure:
    """An injected ``MessageSendText`` failure; ``hits`` counts the sends it failed."""

    conversation_id: str | None  # None: any conversation
    remaining: int | None  # None: until clear_send_failures()
    status: Status
    message: str
    hits: int = 0

    def matches(self, conversation_id: str) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        return self.conversation_id in (None, conversation_id)


# What a gateway says with each status; only the status matters to the client.
_FAILURE_MESSAGES: dict[Status, str] = {
    Status.RESOURCE_EXHAUSTED: "rate limited: too many messages, slow down",
    Status.UNAVAILABLE: "the WeChat gateway is temporarily unavailable",
    Status.NOT_FOUND: "conversation not found",
    Status.PERMISSION_DENIED: "the bot may not post in this conversation",
    Status.INVALID_ARGUMENT: "the message was refused",
    Status.UNAUTHENTICATED: "invalid puppet service token",
}


_Handler = Callable[["grpclib.server.Stream[Any, Any]"], Awaitable[None]]


def _puppet_methods() -> list[str]:
    """Every method of the ``wechaty.Puppet`` service, read from the generated client stub."""
    return sorted(set(re.findall(r'"/wechaty\.Puppet/(\w+)"', inspect.getsource(puppet_service))))


class _TrackingServer(grpclib.server.Server):
    """grpclib's server, remembering each connection's transport (so :meth:`cut_connections`
    can drop them) and each request's ``:authority`` header (where wechaty puts its token).

    grpclib exposes neither, so this wraps two methods of the per-connection objects its
    (private) ``_protocol_factory`` builds.
    """

    def __init__(self, handlers: Iterable[Any]) -> None:
        super().__init__(list(handlers))
        self.transports: set[asyncio.BaseTransport] = set()
        self.authorities: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()

    def _protocol_factory(self) -> Any:
        protocol: Any = super()._protocol_factory()
        connection_made = protocol.connection_made
        accept = protocol.handler.accept

        def track(transport: asyncio.BaseTransport) -> None:
            self.transports = {t for t in self.transports if not t.is_closing()}
            self.transports.add(transport)
            connection_made(transport)

        def accept_request(stream: Any, headers: Any, release_stream: Any) -> None:
            self.authorities[stream] = dict(headers).get(":authority", "")
            accept(stream, headers, release_stream)

        protocol.connection_made = track
        protocol.handler.accept = accept_request
        return protocol

    def cut_connections(self) -> None:
        for transport in self.transports:
            if not transport.is_closing():
                transport.abort()  # type: ignore[attr-defined]
        self.transports.clear()


class WechatPuppetServer:
    """An in-memory WeChat account behind the ``wechaty.Puppet`` gRPC service.

    ``token`` must match what the client sends (wechaty sends it as HTTP/2 ``:authority``);
    any string works, ``insecure_…`` follows wechaty's convention for plaintext services.
    The bot is logged in from the first ``Start``: each Event stream opened after that gets a
    login and a ready event first, then the injected messages, and a heartbeat when idle.
    """

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        self_id: str = "wxid_briefbot",
        self_name: str = "简报机器人",
        heartbeat_interval: float = 15.0,
    ) -> None:
        self.token = token
        self.host = host
        self.self_id = self_id
        self.self_name = self_name
        self.heartbeat_interval = heartbeat_interval
        self.sent: list[SentText] = []
        self.started = False
        self.logged_in = False
        self.streams_opened = 0
        self.calls: list[str] = []  # every RPC by method name, in order
        # Every authenticated MessageSendText, sorted by arrival time: pacing is measured here.
        self.arrivals: list[Arrival] = []
        self.holds: list[RequestHold] = []
        self.send_failures: list[SendFailure] = []
        self._revoked_tokens: set[str] = set()
        self._port = port
        self._server: _TrackingServer | None = None
        self._contacts: dict[str, _Contact] = {self_id: _Contact(self_id, self_name)}
        self._rooms: dict[str, _Room] = {}
        self._messages: dict[str, _Message] = {}
        self._streams: set[asyncio.Queue[pb.EventResponse]] = set()
        self._changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._run_id = uuid.uuid4().hex[:8]

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the puppet server is not started")
        return self._port

    @property
    def endpoint(self) -> str:
        """``host:port`` to give the client (``WechatyOptions.endpoint``)."""
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen; after a :meth:`stop`, on the same port again (a gateway restart)."""
        if self._server is not None:
            raise RuntimeError("the puppet server is already started")
        self._server = _TrackingServer([self])
        await self._server.start(self.host, self._port)
        listening = cast(asyncio.Server, self._server._server)
        self._port = int(listening.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Close every connection; sends held by :meth:`hold_sends` are aborted (never
        processed)."""
        server, self._server = self._server, None
        if server is None:
            return
        holds, self.holds = self.holds, []
        for hold in holds:
            hold.abort()
        server.close()
        server.cut_connections()
        await asyncio.wait_for(server.wait_closed(), timeout=5.0)

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

    # --- the account -----------------------------------------------------------------------

    def add_contact(self, contact_id: str, name: str, *, alias: str = "") -> None:
        self._contacts[contact_id] = _Contact(contact_id, name, alias)

    def add_room(self, room_id: str, topic: str, member_ids: Iterable[str]) -> None:
        """Add a group; the bot is always a member. Unknown members are added as contacts."""
        members = list(dict.fromkeys([self.self_id, *member_ids]))
        for member in members:
            self._contacts.setdefault(member, _Contact(member, member))
        self._rooms[room_id] = _Room(room_id, topic, members)

    def remove_room(self, room_id: str) -> None:
        """Forget a group, as if the bot had been removed from it."""
        self._rooms.pop(room_id, None)

    def set_room_alias(self, room_id: str, contact_id: str, alias: str) -> None:
        """Set a member's nickname in one group (``room_alias``)."""
        self._rooms[room_id].aliases[contact_id] = alias

    async def inject_room_message(
        self, room_id: str, from_id: str, text: str, *, mention_ids: Iterable[str] = ()
    ) -> str:
        """A member says ``text`` in a group; returns the message id.

        To @-mention the bot as WeChat does, put ``"@<name>\\u2005"`` in the text and its id in
        ``mention_ids``; see :meth:`mention`.
        """
        room = self._rooms.get(room_id)
        if room is None:
            raise ValueError(f"unknown room {room_id!r}: add_room() first")
        if from_id not in room.member_ids:
            raise ValueError(f"{from_id!r} is not a member of {room_id!r}")
        message = _Message(
            self._new_id(),
            from_id,
            text,
            room_id=room_id,
            mention_ids=tuple(mention_ids),
            timestamp=_now_seconds(),
        )
        return await self._receive(message)

    async def inject_private_message(self, from_id: str, text: str) -> str:
        """A contact sends ``text`` to the bot directly; returns the message id."""
        if from_id not in self._contacts:
            raise ValueError(f"unknown contact {from_id!r}: add_contact() first")
        message = _Message(
            self._new_id(), from_id, text, to_id=self.self_id, timestamp=_now_seconds()
        )
        return await self._receive(message)

    def mention(self, contact_id: str | None = None, room_id: str | None = None) -> str:
        """The ``@name\\u2005`` text WeChat shows for a mention (default: of the bot)."""
        contact = self._contacts[contact_id or self.self_id]
        name = contact.name
        if room_id is not None:
            name = self._rooms[room_id].aliases.get(contact.id) or name
        return f"@{name}{MENTION_SEPARATOR}"

    # --- what the bot did ------------------------------------------------------------------

    def texts_to(self, conversation_id: str) -> list[SentText]:
        return [s for s in self.sent if s.conversation_id == conversation_id]

    # A timeout argument reads best in tests (ASYNC109 prefers asyncio.timeout at call sites).
    async def wait_for_texts(
        self,
        conversation_id: str,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[SentText]:
        """Wait until ``count`` texts were sent to the conversation; return them all."""

        def enough() -> bool:
            return len(self.texts_to(conversation_id)) >= count

        await self._wait(enough, timeout, f"{count} text(s) to {conversation_id}")
        return self.texts_to(conversation_id)

    async def wait_connected(
        self,
        *,
        streams_opened: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> None:
        """Wait until ``streams_opened`` Event streams were opened and one is open now."""

        def connected() -> bool:
            return self.streams_opened >= streams_opened and bool(self._streams)

        await self._wait(connected, timeout, f"event stream #{streams_opened}")

    # --- faults ----------------------------------------------------------------------------

    async def drop_stream(self) -> None:
        """End every Event stream and cut every connection, as a gateway restart would.

        The account stays logged in: the client gets its login again when it reconnects.
        """
        if self._server is not None:
            self._server.cut_connections()
        await asyncio.sleep(0)

    def fail_next_send(
        self,
        conversation_id: str | None = None,
        count: int | None = 1,
        *,
        status: Status = Status.UNAVAILABLE,
        message: str | None = None,
    ) -> SendFailure:
        """Make the next ``count`` sends (to one conversation, or any) fail with ``status``.

        What a gateway answers and briefbot must tell apart: ``RESOURCE_EXHAUSTED`` (rate
        limited), ``UNAVAILABLE`` (transient), ``NOT_FOUND`` / ``PERMISSION_DENIED`` (the
        conversation is gone), ``INVALID_ARGUMENT`` (permanent), ``UNAUTHENTICATED`` (the
        token).  ``count=None`` fails every send until :meth:`clear_send_failures`.  The first
        matching failure, in the order added, applies; a failed send is not recorded in
        ``sent``.  ``message`` overrides the gRPC status message.
        """
        if count is not None and count < 1:
            raise ValueError("count must be at least 1 (or None for every send)")
        failure = SendFailure(
            conversation_id,
            count,
            status,
            message or f"injected: {_FAILURE_MESSAGES.get(status, 'send failed')}",
        )
        self.send_failures.append(failure)
        return failure

    def clear_send_failures(self) -> None:
        """Forget every pending injected send failure."""
        self.send_failures.clear()

    def revoke_token(self, replacement: str | None = None) -> None:
        """Revoke the service token: every later gRPC call fails with ``UNAUTHENTICATED``,
        like a wrong token.

        Calls already running (a held send, an open Event stream) are not interrupted; call
        :meth:`drop_stream` as well to make the client reconnect and meet the refusal.  With
        ``replacement`` the service accepts that token from now on (``token`` changes).
        """
        if replacement is not None and (
            replacement in self._revoked_tokens or replacement == self.token
        ):
            raise ValueError("the replacement must be a token not used before")
        self._revoked_tokens.add(self.token)
        if replacement is not None:
            self.token = replacement

    def hold_sends(
        self,
        conversation_id: str | None = None,
        after: int = 0,
        *,
        deliver_first: bool = False,
    ) -> RequestHold:
        """Hold ``MessageSendText`` calls inside the service until ``release()``, for kill
        tests.

        The first ``after`` sends to ``conversation_id`` (``None``: any) pass; each later one
        is received and counted in ``arrivals``, then waits before injected failures and
        delivery, so a held text is not in ``sent``.  With ``deliver_first`` the text is
        delivered and recorded and only the answer is held.  See :class:`RequestHold` for
        ``wait_held``, ``held``, ``release`` and ``abandoned``; :meth:`stop` aborts every hold.
        """
        if self._server is None:
            raise RuntimeError("start() the puppet server before holding sends")
        hold = RequestHold(
            method="MessageSendText",
            chat_id=conversation_id,
            after=after,
            deliver_first=deliver_first,
        )
        self.holds = [h for h in self.holds if h.active]
        self.holds.append(hold)
        return hold

    # --- pacing ------------------------------------------------------------------------------

    def max_in_window(self, window: float = 1.0, conversation_id: str | None = None) -> int:
        """The most ``MessageSendText`` calls that arrived in any closed window of ``window``
        seconds (``[a, a + window]``, maximised over ``a``), to one conversation if given.

        Arrivals are stamped before holds and injected failures: this measures what the client
        sent, not what was delivered.
        """
        return max_in_window(
            self.arrivals, window, method="MessageSendText", chat_id=conversation_id
        )

    def reset_stats(self) -> None:
        """Forget ``arrivals`` (as the Telegram sandbox's ``reset_stats`` does)."""
        self.arrivals.clear()

    # --- gRPC ------------------------------------------------------------------------------

    def __mapping__(self) -> dict[str, grpclib.const.Handler]:
        implemented: dict[str, tuple[_Handler, Any, Any, grpclib.const.Cardinality]] = {
            "Start": (self._start, pb.StartRequest, pb.StartResponse, _UNARY),
            "Stop": (self._stop, pb.StopRequest, pb.StopResponse, _UNARY),
            "Logout": (self._logout, pb.LogoutRequest, pb.LogoutResponse, _UNARY),
            "Ding": (self._ding, pb.DingRequest, pb.DingResponse, _UNARY),
            "Version": (self._version, pb.VersionRequest, pb.VersionResponse, _UNARY),
            "Event": (self._event, pb.EventRequest, pb.EventResponse, _STREAM),
            "DirtyPayload": (
                self._dirty_payload,
                pb.DirtyPayloadRequest,
                pb.DirtyPayloadResponse,
                _UNARY,
            ),
            "ContactList": (
                self._contact_list,
                pb.ContactListRequest,
                pb.ContactListResponse,
                _UNARY,
            ),
            "ContactPayload": (
                self._contact_payload,
                pb.ContactPayloadRequest,
                pb.ContactPayloadResponse,
                _UNARY,
            ),
            "MessagePayload": (
                self._message_payload,
                pb.MessagePayloadRequest,
                pb.MessagePayloadResponse,
                _UNARY,
            ),
            "MessageSendText": (
                self._message_send_text,
                pb.MessageSendTextRequest,
                pb.MessageSendTextResponse,
                _UNARY,
            ),
            "RoomList": (self._room_list, pb.RoomListRequest, pb.RoomListResponse, _UNARY),
            "RoomPayload": (
                self._room_payload,
                pb.RoomPayloadRequest,
                pb.RoomPayloadResponse,
                _UNARY,
            ),
            "RoomMemberList": (
                self._room_member_list,
                pb.RoomMemberListRequest,
                pb.RoomMemberListResponse,
                _UNARY,
            ),
            "RoomMemberPayload": (
                self._room_member_payload,
                pb.RoomMemberPayloadRequest,
                pb.RoomMemberPayloadResponse,
                _UNARY,
            ),
        }
        mapping: dict[str, grpclib.const.Handler] = {}
        for name in _puppet_methods():
            func, request, reply, cardinality = implemented.get(
                name, (self._unimplemented(name), pb.StartRequest, pb.StartResponse, _UNARY)
            )
            mapping[f"/wechaty.Puppet/{name}"] = grpclib.const.Handler(
                self._guarded(name, func), cardinality, request, reply
            )
        return mapping

    def _guarded(self, name: str, func: _Handler) -> _Handler:
        async def handle(stream: grpclib.server.Stream[Any, Any]) -> None:
            self.calls.append(name)
            server = self._server
            authority = server.authorities.get(stream._stream) if server is not None else None
            if authority != self.token or authority in self._revoked_tokens:
                raise GRPCError(Status.UNAUTHENTICATED, "invalid puppet service token")
            await func(stream)

        return handle

    def _unimplemented(self, name: str) -> _Handler:
        async def handle(stream: grpclib.server.Stream[Any, Any]) -> None:
            raise GRPCError(
                Status.UNIMPLEMENTED, f"the briefbot loopback puppet does not implement {name}"
            )

        return handle

    async def _start(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        await stream.recv_message()
        self.started = self.logged_in = True
        await stream.send_message(pb.StartResponse())
        for queue in self._streams:
            self._greet(queue)

    async def _stop(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        await stream.recv_message()
        self.started = False
        await stream.send_message(pb.StopResponse())

    async def _logout(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        await stream.recv_message()
        self.logged_in = False
        self._emit(_EVENT_LOGOUT, {"contactId": self.self_id, "data": "logout"})
        await stream.send_message(pb.LogoutResponse())

    async def _ding(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        self._emit(_EVENT_DONG, {"data": request.data if request else ""})
        await stream.send_message(pb.DingResponse())

    async def _version(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        await stream.recv_message()
        await stream.send_message(pb.VersionResponse(version="briefbot-loopback"))

    async def _dirty_payload(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        await stream.recv_message()
        await stream.send_message(pb.DirtyPayloadResponse())

    async def _event(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        await stream.recv_message()
        queue: asyncio.Queue[pb.EventResponse] = asyncio.Queue()
        if self.started and self.logged_in:
            self._greet(queue)
        self._streams.add(queue)
        self.streams_opened += 1
        await self._notify()
        try:
            while True:
                try:
                    async with asyncio.timeout(self.heartbeat_interval):
                        item = await queue.get()
                except TimeoutError:
                    item = _event_response(_EVENT_HEARTBEAT, {"data": "heartbeat"})
                await stream.send_message(item)
        finally:
            self._streams.discard(queue)

    async def _contact_list(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        await stream.recv_message()
        await stream.send_message(pb.ContactListResponse(ids=list(self._contacts)))

    async def _contact_payload(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        contact = self._contacts.get(request.id if request else "")
        if contact is None:
            raise GRPCError(Status.NOT_FOUND, "unknown contact")
        await stream.send_message(
            pb.ContactPayloadResponse(
                id=contact.id,
                name=contact.name,
                alias=contact.alias,
                type=_CONTACT_PERSONAL,
                friend=contact.id != self.self_id,
            )
        )

    async def _message_payload(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        message = self._messages.get(request.id if request else "")
        if message is None:
            raise GRPCError(Status.NOT_FOUND, "unknown message")
        await stream.send_message(
            pb.MessagePayloadResponse(
                id=message.id,
                text=message.text,
                timestamp=message.timestamp,
                type=TEXT_TYPE,
                from_id=message.from_id,
                room_id=message.room_id,
                to_id=message.to_id,
                mention_ids=list(message.mention_ids),
            )
        )

    async def _message_send_text(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        arrived = time.monotonic()  # the token is checked; nothing else has happened yet
        request = await stream.recv_message()
        assert request is not None
        conversation_id: str = request.conversation_id
        bisect.insort(
            self.arrivals,
            Arrival(arrived, "MessageSendText", conversation_id),
            key=_arrival_time,
        )
        await self._pass_holds(conversation_id, deliver_first=False)
        if conversation_id not in self._rooms and conversation_id not in self._contacts:
            raise GRPCError(Status.NOT_FOUND, "unknown conversation")
        failure = self._take_failure(conversation_id)
        if failure is not None:
            raise GRPCError(failure.status, failure.message)
        in_room = conversation_id in self._rooms
        message = _Message(
            self._new_id(),
            self.self_id,
            request.text,
            room_id=conversation_id if in_room else "",
            to_id="" if in_room else conversation_id,
            mention_ids=tuple(request.mentonal_ids),
            timestamp=_now_seconds(),
        )
        self._messages[message.id] = message
        self.sent.append(
            SentText(
                conversation_id,
                message.text,
                message.mention_ids,
                message.id,
                dt.datetime.now(dt.UTC),
            )
        )
        await self._notify()
        await self._pass_holds(conversation_id, deliver_first=True)
        await stream.send_message(pb.MessageSendTextResponse(id=message.id))

    async def _pass_holds(self, conversation_id: str, *, deliver_first: bool) -> None:
        """Wait in every matching hold; an aborted one (shutdown) ends the call."""
        for hold in list(self.holds):
            if (
                hold.deliver_first == deliver_first
                and hold.matches("MessageSendText", conversation_id)
                and not await hold.admit()
            ):
                raise GRPCError(Status.UNAVAILABLE, "the puppet service is shutting down")

    def _take_failure(self, conversation_id: str) -> SendFailure | None:
        for failure in self.send_failures:
            if failure.matches(conversation_id):
                failure.hits += 1
                if failure.remaining is not None:
                    failure.remaining -= 1
                self.send_failures = [
                    f for f in self.send_failures if f.remaining is None or f.remaining > 0
                ]
                return failure
        return None

    async def _room_list(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        await stream.recv_message()
        await stream.send_message(pb.RoomListResponse(ids=list(self._rooms)))

    async def _room_payload(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        room = self._rooms.get(request.id if request else "")
        if room is None:
            raise GRPCError(Status.NOT_FOUND, "unknown room")
        await stream.send_message(
            pb.RoomPayloadResponse(
                id=room.id,
                topic=room.topic,
                owner_id=room.member_ids[-1],
                member_ids=list(room.member_ids),
            )
        )

    async def _room_member_list(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        room = self._rooms.get(request.id if request else "")
        if room is None:
            raise GRPCError(Status.NOT_FOUND, "unknown room")
        await stream.send_message(pb.RoomMemberListResponse(member_ids=list(room.member_ids)))

    async def _room_member_payload(self, stream: grpclib.server.Stream[Any, Any]) -> None:
        request = await stream.recv_message()
        assert request is not None
        room = self._rooms.get(request.id)
        if room is None or request.member_id not in room.member_ids:
            raise GRPCError(Status.NOT_FOUND, "unknown room member")
        contact = self._contacts[request.member_id]
        await stream.send_message(
            pb.RoomMemberPayloadResponse(
                id=contact.id, name=contact.name, room_alias=room.aliases.get(contact.id, "")
            )
        )

    # --- internals -------------------------------------------------------------------------

    def _new_id(self) -> str:
        # Unique across servers in one process: wechaty drops message ids it has seen before.
        return f"msg-{self._run_id}-{next(self._ids)}"

    async def _receive(self, message: _Message) -> str:
        self._messages[message.id] = message
        self._emit(_EVENT_MESSAGE, {"messageId": message.id})
        await asyncio.sleep(0)
        return message.id

    def _greet(self, queue: asyncio.Queue[pb.EventResponse]) -> None:
        queue.put_nowait(_event_response(_EVENT_LOGIN, {"contactId": self.self_id}))
        queue.put_nowait(_event_response(_EVENT_READY, {"data": "ready"}))

    def _emit(self, event_type: int, payload: dict[str, Any]) -> None:
        for queue in self._streams:
            queue.put_nowait(_event_response(event_type, payload))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait(self, predicate: Callable[[], bool], seconds: float, what: str) -> None:
        try:
            async with asyncio.timeout(seconds):
                async with self._changed:
                    await self._changed.wait_for(predicate)
        except TimeoutError:
            raise TimeoutError(f"waited {seconds:g}s for {what}") from None


_UNARY = grpclib.const.Cardinality.UNARY_UNARY
_STREAM = grpclib.const.Cardinality.UNARY_STREAM


def _arrival_time(arrival: Arrival) -> float:
    return arrival.t


def _event_response(event_type: int, payload: dict[str, Any]) -> pb.EventResponse:
    return pb.EventResponse(type=event_type, payload=json.dumps(payload, ensure_ascii=False))


def _now_seconds() -> int:
    return int(dt.datetime.now(dt.UTC).timestamp())
