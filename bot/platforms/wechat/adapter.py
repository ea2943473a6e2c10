"""The WeChat adapter: wechaty (over a puppet service) in, neutral messages and outcomes out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from grpclib import GRPCError
from grpclib.const import Status
from grpclib.exceptions import ProtocolError, StreamTerminatedError

from bot.domain import ChatKind, IncomingMessage, OutgoingMessage, Target, TargetKind
from bot.errors import (
    AuthRejected,
    BriefbotError,
    ConfigError,
    PermanentFailure,
    RetryLater,
    TargetGone,
    TransientFailure,
)
from bot.platforms.base import ChatHandler, ConfiguredTarget, Limits, Sender, send_replies
from bot.platforms.wechat import LIMITS, TOKEN_ENV
from bot.platforms.wechat.compat import (
    WechatyClient,
    check_endpoint,
    check_token,
    load_wechaty,
    make_wechaty,
    mask_id,
    mask_text,
)

# group messages this short are forwarded even without a prefix ("更多", "2")
CONTINUATION_LENGTH = 4
log = logging.getLogger("briefbot.wechat")

MENTION_SEPARATOR = "\u2005"  # WeChat follows each @name with a four-per-em space
ROOM_SUFFIX = "@chatroom"  # ids of WeChat groups (personal-account puppets)
# gRPC answers of a gateway that say "try again later" rather than "this will never work".
_TRANSIENT = {
    Status.CANCELLED,
    Status.UNKNOWN,
    Status.DEADLINE_EXCEEDED,
    Status.ABORTED,
    Status.INTERNAL,
    Status.UNAVAILABLE,
}
_GONE = {Status.NOT_FOUND, Status.PERMISSION_DENIED}
# Network trouble between us and the gateway (grpclib raises OSError subclasses on connect).
_NETWORK_ERRORS = (StreamTerminatedError, ProtocolError, OSError, TimeoutError)
_RATE_LIMIT_RETRY = 60.0


class WechatPlatform:
    """Keeps a wechaty client logged in to a puppet service; sends texts and answers messages.

    A background task runs the client and, whenever the event stream ends (gateway restart,
    network loss), reconnects with exponential backoff. In a group, the handler sees only
    messages that @-mention the bot or start with one of ``prefixes`` (pass ``()`` for all);
    private messages always reach it.
    """

    name = "wechat"

    def __init__(
        self,
        *,
        endpoint: str,
        token: str,
        handler: ChatHandler | None,
        prefixes: Sequence[str] = ("#", "查"),
        languages: Mapping[str, str] | None = None,
        limits: Limits = LIMITS,
        admins: frozenset[str] = frozenset(),
        cache_dir: Path | None = None,
        login_timeout: float = 30.0,
        send_timeout: float = 30.0,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
    ) -> None:
        self.endpoint = check_endpoint(endpoint)
        self._token = check_token(token)
        self.handler = handler
        self.prefixes = tuple(p for p in prefixes if p)
        # room id, or "topic:<topic>" → the language of replies there
        self.languages = dict(languages or {})
        self.limits = limits
        self.cache_dir = cache_dir
        self.login_timeout = login_timeout
        self.send_timeout = send_timeout
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.admins = admins
        # replies go through the platform's outbox (set by the composition root): its
        # interval, jitter and daily cap hold for every message the account sends
        self.outbox: Sender | None = None
        self.self_id: str | None = None
        self.self_name = ""
        self.connections = 0  # logins so far, the first one included
        self._client: WechatyClient | None = None
        self._runner: asyncio.Task[None] | None = None
        self._logged_in = asyncio.Event()
        self._stopping = False
        self._last_error = ""
        self._token_rejected = False
        self._rooms: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._logged_in.is_set()

    async def start(self) -> None:
        """Connect and wait for the login; afterwards a background task stays connected.

        Raises :class:`TransientFailure` if the service does not log in within
        ``login_timeout`` seconds, :class:`ConfigError` if WeChat cannot run here at all.
        """
        if self._runner is not None:
            return
        self._stopping = False
        client = make_wechaty(self.endpoint, self._token, cache_dir=self.cache_dir)
        client.on("login", self._on_login)
        client.on("logout", self._on_logout)
        client.on("scan", self._on_scan)
        client.on("message", self._on_message)
        client.on("error", self._on_error)
        self._client = client
        self._runner = asyncio.create_task(self._stay_connected(), name="wechat-connection")
        self._runner.add_done_callback(self._connection_ended)
        login = asyncio.create_task(self._logged_in.wait())
        try:
            done, _ = await asyncio.wait(
                {login, self._runner},
                timeout=self.login_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            login.cancel()
        if self._runner in done:  # it only ends early on a configuration error
            runner, self._runner = self._runner, None
            await self.stop()
            runner.result()
        if not self.connected:
            await self.stop()
            detail = f": {self._last_error}" if self._last_error else ""
            raise TransientFailure(
                f"the WeChat puppet service at {self.endpoint} did not log in within "
                f"{self.login_timeout:g}s{detail}"
            )

    async def stop(self) -> None:
        self._stopping = True
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, BriefbotError):
                await runner
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await client.stop()
        self._logged_in.clear()
        log.info("wechat.stopped")

    async def _stay_connected(self) -> None:
        client = self._client
        assert client is not None
        failures = 0
        while not self._stopping:
            logins_before = self.connections
            log.info("wechat.connecting endpoint=%s", self.endpoint)
            try:
                await client.start()
                self._last_error = "the event stream ended"
            except ConfigError:
                raise
            except GRPCError as exc:
                self._last_error = _describe(exc)
                # a token revoked while connected: sends must say so, not "reconnecting"
                self._token_rejected = exc.status is Status.UNAUTHENTICATED
                if exc.status is Status.UNAUTHENTICATED and not self.connections:
                    await client.stop()
                    raise ConfigError(
                        f"the WeChat puppet service at {self.endpoint} rejected the token "
                        f"({TOKEN_ENV})"
                    ) from exc
            except Exception as exc:
                self._last_error = _describe(exc)
            self._logged_in.clear()
            await client.stop()
            if self._stopping:
                return
            # A session that got as far as logging in resets the backoff.
            failures = 0 if self.connections > logins_before else failures + 1
            delay = min(self.backoff_max, self.backoff_base * 2 ** max(failures - 1, 0))
            delay *= random.uniform(0.8, 1.2)  # spread reconnects of several bots
            log.warning(
                "wechat.disconnected error=%r failures=%d retry_in=%.1fs",
                self._last_error,
                failures,
                delay,
            )
            await asyncio.sleep(delay)

    def _connection_ended(self, runner: asyncio.Task[None]) -> None:
        # Before the first login, start() raises the error itself.
        if runner.cancelled() or self._stopping or not self.connections:
            return
        if runner.exception() is not None:
            log.error(
                "wechat.connection_task_failed error=%s: WeChat stays offline until restarted",
                _describe(runner.exception()),
            )

    def _on_login(self, contact: Any) -> None:
        self._token_rejected = False
        self.self_id = str(contact.contact_id)
        self.self_name = str(contact.name or "")
        self.connections += 1
        self._logged_in.set()
        log.info("wechat.login self=%s connections=%d", mask_id(self.self_id), self.connections)

    def _on_logout(self, contact: Any) -> None:
        self._logged_in.clear()
        log.warning("wechat.logout self=%s", mask_id(str(contact.contact_id)))

    def _on_scan(self, _qrcode: str, status: Any, _data: Any = None) -> None:
        # The QR code is a login credential: wechaty prints it to the terminal; we do not log it.
        log.warning("wechat.scan_required status=%s", getattr(status, "name", status))

    def _on_error(self, error: Any) -> None:
        log.warning("wechat.client_error error=%s", _describe(error))

    # --- sending ---------------------------------------------------------------------------

    async def send(self, target: Target, message: OutgoingMessage) -> str:
        """Send a text to a group (room id) or a person (contact id); returns its message id.

        ``message.mentions`` (contact ids) become @-mentions in a group.
        """
        in_room = target.kind is TargetKind.GROUP or self._is_room_id(target.chat_id)
        try:
            async with asyncio.timeout(self.send_timeout):
                return await self._send_text(target.chat_id, in_room, message)
        except GRPCError as exc:
            raise _delivery_error(exc, target.chat_id) from exc
        except _NETWORK_ERRORS as exc:
            raise TransientFailure(f"WeChat gateway unreachable: {_describe(exc)}") from exc

    async def reply(self, to: IncomingMessage, messages: Sequence[OutgoingMessage]) -> None:
        """Answer in order through the outbox; a reply that fails is logged, not raised."""
        await send_replies(self, to, messages)

    async def is_chat_admin(self, chat_id: str, user_id: str) -> bool:
        # wechaty offers no way to ask who administers a group: only the bot's admins (by
        # contact id) count as a group's administrators
        return user_id in self.admins

    async def resolve(self, target: ConfiguredTarget) -> str | None:
        try:
            async with asyncio.timeout(self.send_timeout):  # a hung gateway must not hang a send
                return await self.resolve_room(room_id=target.chat_id, topic=target.name)
        except TimeoutError as exc:
            raise TransientFailure(
                f"the WeChat gateway did not answer within {self.send_timeout:g}s"
            ) from exc

    async def resolve_room(
        self, *, room_id: str | None = None, topic: str | None = None
    ) -> str | None:
        """The id of a group the bot is in, by id or by exact topic; None if there is none.

        Raises :class:`ConfigError` when several groups share the topic (give the id then).
        """
        puppet = self._puppet()
        try:
            if room_id:
                try:
                    payload = await puppet.room_payload(room_id)
                except GRPCError as exc:
                    if exc.status is Status.NOT_FOUND:
                        return None
                    raise
                return self._remember_room(payload)
            if not topic:
                return None
            room_ids = await puppet.room_list()
            payloads = await asyncio.gather(
                *(puppet.room_payload(rid) for rid in room_ids), return_exceptions=True
            )
        except GRPCError as exc:
            raise _delivery_error(exc, room_id or topic or "") from exc
        except _NETWORK_ERRORS as exc:
            raise TransientFailure(f"WeChat gateway unreachable: {_describe(exc)}") from exc
        matches = [
            p for p in payloads if not isinstance(p, BaseException) and p.topic == topic.strip()
        ]
        if len(matches) > 1:
            raise ConfigError(
                f"[[wechat.groups]] topic {topic!r} matches {len(matches)} groups: "
                "give the group's id instead"
            )
        return self._remember_room(matches[0]) if matches else None

    async def _send_text(
        self, conversation_id: str, in_room: bool, message: OutgoingMessage
    ) -> str:
        puppet = self._puppet()
        text = message.text
        mention_ids: list[str] = []
        # Check the conversation first: a gateway may accept a send to a group the bot has left.
        if in_room:
            payload = await puppet.room_payload(conversation_id)
            members = list(payload.member_ids or ())
            if members and self.self_id not in members:
                raise TargetGone(f"the bot is no longer in group {mask_id(conversation_id)}")
            self._remember_room(payload)
            names = []
            for contact_id in message.mentions:
                name = await self._member_name(puppet, conversation_id, contact_id)
                if name is not None:
                    mention_ids.append(contact_id)
                    names.append(f"@{name}{MENTION_SEPARATOR}")
            text = "".join(names) + text
        else:
            await puppet.contact_payload(conversation_id)
        message_id = await puppet.message_send_text(
            conversation_id=conversation_id, message=text, mention_ids=mention_ids or None
        )
        log.debug(
            "wechat.sent chat=%s mentions=%d chars=%d",
            mask_id(conversation_id),
            len(mention_ids),
            len(text),
        )
        return str(message_id or "")

    async def _member_name(self, puppet: Any, room_id: str, contact_id: str) -> str | None:
        """How the group shows a member: their group nickname, else their name."""
        try:
            member = await puppet.room_member_payload(room_id, contact_id)
        except GRPCError as exc:
            if exc.status is Status.NOT_FOUND:
                return None  # left the group: no mention
            raise
        return str(member.room_alias or member.name or contact_id)

    def _puppet(self) -> Any:
        client = self._client
        if client is None or not self.connected or client._puppet is None:
            if self._token_rejected:
                raise AuthRejected(
                    f"the WeChat puppet service at {self.endpoint} rejected the token, "
                    f"check {TOKEN_ENV}"
                )
            raise TransientFailure("WeChat is not connected (logging in or reconnecting)")
        return client.puppet

    def _is_room_id(self, chat_id: str) -> bool:
        return chat_id in self._rooms or chat_id.endswith(ROOM_SUFFIX)

    def _remember_room(self, payload: Any) -> str:
        room_id = str(payload.id)
        self._rooms.add(room_id)
        return room_id

    # --- receiving -------------------------------------------------------------------------

    def _on_message(self, message: Any) -> None:
        # pyee would run a coroutine listener as an untracked task; track it to stop cleanly.
        task = asyncio.create_task(self._handle(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, message: Any) -> None:
        chat = "-"
        try:
            if self.handler is None:
                return
            incoming = await self._incoming(message)
            if incoming is None:
                return
            chat = mask_id(incoming.chat_id)
            log.debug(
                "wechat.message chat=%s kind=%s user=%s mention=%s",
                chat,
                incoming.chat_kind,
                mask_id(incoming.user_id),
                incoming.mentions_bot,
            )
            replies = await self.handler(incoming)
            await self.reply(incoming, replies)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("wechat.handler_failed chat=%s", chat)

    async def _incoming(self, message: Any) -> IncomingMessage | None:
        wechaty = load_wechaty()
        talker = message.talker()
        if talker is None or talker.contact_id == self.self_id:
            return None
        if message.type() != wechaty.MessageType.MESSAGE_TYPE_TEXT:
            return None
        text = str(message.text() or "")
        room = message.room()
        if room is None:
            return IncomingMessage(
                platform=self.name,
                chat_id=str(talker.contact_id),
                chat_kind=ChatKind.PRIVATE,
                user_id=str(talker.contact_id),
                user_name=str(talker.name or ""),
                text=text.strip(),
            )
        self._rooms.add(str(room.room_id))
        # Some puppets leave mentionIdList empty: "@<bot name>" at the start counts too.
        mentioned = bool(await message.mention_self()) or (
            bool(self.self_name) and text.lstrip().startswith(f"@{self.self_name}")
        )
        if mentioned:
            text = await self._strip_self_mention(room, text)
        elif (
            self.prefixes
            and not text.lstrip().startswith(self.prefixes)
            # "更多" or "2" may continue someone's result list: the core decides
            and len(text.strip()) > CONTINUATION_LENGTH
        ):
            return None  # group chatter, not for the bot
        return IncomingMessage(
            platform=self.name,
            chat_id=str(room.room_id),
            chat_kind=ChatKind.GROUP,
            user_id=str(talker.contact_id),
            user_name=await self._display_name(room, talker),
            text=text.strip(),
            mentions_bot=mentioned,
            language=await self._room_language(room),
        )

    async def _room_language(self, room: Any) -> str | None:
        """The group's configured language (by id, else by topic), or None: the default."""
        if not self.languages:
            return None
        language = self.languages.get(str(room.room_id))
        if language is None:
            with contextlib.suppress(GRPCError, *_NETWORK_ERRORS):
                language = self.languages.get(f"topic:{await room.topic()}")
        return language

    async def _strip_self_mention(self, room: Any, text: str) -> str:
        names = {self.self_name}
        if text.lstrip().startswith("@") and self.self_id:
            with contextlib.suppress(GRPCError, *_NETWORK_ERRORS):
                member = await room.puppet.room_member_payload(room.room_id, self.self_id)
                names.add(str(member.room_alias or ""))
        for name in sorted((n for n in names if n), key=len, reverse=True):
            pattern = rf"^\s*@{re.escape(name)}(?:{MENTION_SEPARATOR}|\s|$)"
            stripped, count = re.subn(pattern, "", text, count=1)
            if count:
                return stripped
        return text

    async def _display_name(self, room: Any, talker: Any) -> str:
        with contextlib.suppress(GRPCError, *_NETWORK_ERRORS):
            alias = await room.alias(talker)
            if alias:
                return str(alias)
        return str(talker.name or "")


def _delivery_error(exc: GRPCError, chat_id: str) -> BriefbotError:
    """Translate a gateway's gRPC status into briefbot's neutral delivery outcome."""
    detail = f"WeChat gateway: {_describe(exc)}"
    if exc.status in _GONE:
        return TargetGone(f"{detail} ({mask_id(chat_id)})")
    if exc.status is Status.RESOURCE_EXHAUSTED:
        return RetryLater(_RATE_LIMIT_RETRY, detail)
    if exc.status in _TRANSIENT:
        return TransientFailure(detail)
    if exc.status is Status.UNAUTHENTICATED:
        return AuthRejected(f"{detail}: the puppet service rejected the token, check {TOKEN_ENV}")
    return PermanentFailure(detail)


def _describe(exc: object) -> str:
    """A one-line description for logs and error messages, ids and tokens masked."""
    if isinstance(exc, GRPCError):
        return mask_text(f"{exc.status.name} {exc.message or ''}".strip())
    text = mask_text(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
