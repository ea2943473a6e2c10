"""A loopback Telegram Bot API server that behaves like api.telegram.org for tests, demo and
benchmarks.

Point python-telegram-bot at it with
``ApplicationBuilder().token(server.token).base_url(server.base_url)``.  It keeps users, chats
and the messages the bot sent, enforces Telegram's text rules and flood limits, and fails on
demand (``server.faults``), holds requests in flight for kill tests (``server.hold_requests``)
and records when each request arrived (``server.arrivals``).  Users can press inline keyboard
buttons (``press_button``) and send inline queries (``send_inline_query``); the bot's edits and
answers are recorded (``edits``, ``callback_answers``, ``inline_answers``), and so are its pins
(``pins``, ``pinned_messages``), silent messages (``SentMessage.disable_notification``) and
messages into forum topics (``add_forum_topic``, ``SentMessage.message_thread_id``).  Run
``python -m bot.sandbox.telegram_api`` to use it by hand.

Where a rule or an error text is quoted from the real server, a comment names the source: the
Bot API server (tdlib/telegram-bot-api, ``Client.cpp``), TDLib underneath it, or
Telegram's MTProto server behind both (its upper-case errors, e.g. ``BUTTON_DATA_INVALID``, as
bots report them).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import copy
import dataclasses
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self, TypedDict, TypeVar

from aiohttp import web

from bot.sandbox.telegram_html import EntityParseError, parse_html, utf16_len
from bot.sandbox.telegram_limits import (
    Arrival,
    Fault,
    FaultInjector,
    FaultKind,
    FloodControl,
    RequestHold,
    max_in_window,
)

__all__ = [
    "ApiError",
    "Arrival",
    "ChatKind",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "FloodControl",
    "MessageEdit",
    "Pin",
    "RequestHold",
    "SentMessage",
    "ServerStats",
    "TelegramTestServer",
    "main",
]

_LOG = logging.getLogger("bot.sandbox.telegram")

ChatKind = Literal["private", "group", "supergroup", "channel"]
JSONDict = dict[str, Any]

MAX_TEXT_UTF16 = 4096
MAX_ENTITIES = 100
# Bot API, InlineKeyboardButton: callback_data is 1-64 *bytes*; longer data is refused by
# Telegram's server with BUTTON_DATA_INVALID (empty data means "no callback button" at all).
MAX_CALLBACK_DATA_BYTES = 64
# Bot API, answerCallbackQuery: text is 0-200 characters.
MAX_CALLBACK_ANSWER_CHARS = 200
# Bot API, InlineQuery: "query: Text of the query (up to 256 characters)".
MAX_INLINE_QUERY_CHARS = 256
# Bot API, answerInlineQuery: "No more than 50 results per query are allowed"; result ids are
# 1-64 bytes; next_offset "can't exceed 64 bytes".
MAX_INLINE_RESULTS = 50
MAX_INLINE_RESULT_ID_BYTES = 64
MAX_INLINE_OFFSET_BYTES = 64
# TDLib (td/telegram/ReplyMarkup.cpp) keeps at most 12 buttons a row and 300 in all, dropping
# the rest without an error.
_MAX_BUTTONS_PER_ROW = 12
_MAX_BUTTONS = 300
# Client.cpp maps Telegram's QUERY_ID_INVALID to this text (callback and inline queries alike).
_QUERY_ID_INVALID = (
    "Bad Request: query is too old and response timeout expired or query ID is invalid"
)
# TDLib (DialogManager::can_pin_messages): a basic group needs an appointed administrator, a
# supergroup the can_pin_messages right, a channel can_edit_messages; the Bot API server
# passes TDLib's text on with "Bad Request: " and a lower-case first letter.
_NO_PIN_RIGHTS = "Bad Request: not enough rights to manage pinned messages in the chat"
# Client.cpp (pinChatMessage): TDLib's "Message not found" for the message to pin.
_PIN_NOT_FOUND = "Bad Request: message to pin not found"
# The answer to a message_thread_id that is not a topic of a forum supergroup (the General
# topic included: it is the chat itself, and is addressed without a thread id).
_THREAD_NOT_FOUND = "Bad Request: message thread not found"
# Forum topics get the id of the service message that created them; the General topic is 1.
_GENERAL_TOPIC = 1
# Client.cpp maps MESSAGE_NOT_MODIFIED to this text.
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
# Client.cpp, get_update_type_name; allowed_updates names outside this set are ignored.
_UPDATE_TYPES = frozenset(
    {
        "message",
        "edited_message",
        "channel_post",
        "edited_channel_post",
        "inline_query",
        "chosen_inline_result",
        "callback_query",
        "shipping_query",
        "pre_checkout_query",
        "poll",
        "poll_answer",
        "my_chat_member",
        "chat_member",
        "chat_join_request",
        "chat_boost",
        "removed_chat_boost",
        "message_reaction",
        "message_reaction_count",
        "business_connection",
        "business_message",
        "edited_business_message",
        "deleted_business_messages",
        "purchased_paid_media",
    }
)
# Client.h, DEFAULT_ALLOWED_UPDATE_TYPES: everything but these three.
_DEFAULT_ALLOWED_UPDATES = _UPDATE_TYPES - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}
_INLINE_CHAT_TYPES = frozenset({"sender", "private", "group", "supergroup", "channel"})
# The actions of an inline keyboard button, in the order Client.cpp
# (get_inline_keyboard_button_type) looks for them: the first present one wins, so a button
# with both "url" and "callback_data" is a URL button.  "url" and "callback_data" count only
# when non-empty; the others when present.
_BUTTON_ACTIONS = (
    "url",
    "callback_data",
    "callback_game",
    "pay",
    "switch_inline_query",
    "switch_inline_query_chosen_chat",
    "switch_inline_query_current_chat",
    "login_url",
    "web_app",
    "copy_text",
)
_COMMAND_RE = re.compile(r"/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?")
_BOT_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")
# a username: 5-32 of letters, digits and underscores, not inside a word or an e-mail address
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z0-9_]{5,32}\b")
_TELEGRAM_ERROR_RE = re.compile(r"[A-Z0-9_]+")
_START_PARAMETER_RE = re.compile(r"[A-Za-z0-9_-]+")
_BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class ApiError(Exception):
    """A Bot API error answer: HTTP ``status`` and body ``{"ok": false, ...}``."""

    def __init__(self, status: int, description: str, parameters: JSONDict | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def body(self) -> JSONDict:
        body: JSONDict = {"ok": False, "error_code": self.status, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


class _DropConnection(Exception):
    """Close the connection without an answer (the "timeout" fault with ``drop=True``)."""


@dataclass(frozen=True)
class SentMessage:
    """A message the bot sent, as the server recorded it."""

    chat_id: int
    text: str  # visible text, after HTML parsing
    html: str  # the text parameter exactly as sent
    parse_mode: str | None
    message_id: int
    at: float  # time.monotonic() when accepted
    entities: tuple[JSONDict, ...] = ()
    reply_to_message_id: int | None = None
    link_preview_disabled: bool = False
    reply_markup: JSONDict | None = None
    # Accepted editMessageText calls; after an edit the fields above show the current content
    # (``edits`` keeps every version).
    edit_count: int = 0
    # sendMessage's disable_notification: the message arrived without a sound
    disable_notification: bool = False
    # the forum topic it was posted in (None: the chat itself)
    message_thread_id: int | None = None


@dataclass(frozen=True)
class Pin:
    """A pinChatMessage the server accepted."""

    chat_id: int
    message_id: int
    disable_notification: bool
    at: float  # time.monotonic() when accepted


@dataclass(frozen=True)
class MessageEdit:
    """An editMessageText the server accepted."""

    chat_id: int | None  # None for a message sent via inline mode (``inline_message_id``)
    message_id: int | None
    inline_message_id: str | None
    text: str  # visible text, after HTML parsing
    html: str  # the text parameter exactly as sent
    parse_mode: str | None
    at: float  # time.monotonic() when accepted
    entities: tuple[JSONDict, ...] = ()
    reply_markup: JSONDict | None = None  # the inline keyboard after the edit (None: removed)


_T = TypeVar("_T")


class ServerStats(TypedDict):
    """Counters since start: ``rate_limited`` counts every 429 (flood control and injected),
    ``errors`` every non-2xx answer (429s included)."""

    requests: dict[str, int]
    rate_limited: int
    errors: int
    errors_by_code: dict[int, int]
    faults_injected: int


@dataclass
class _Chat:
    id: int
    kind: ChatKind
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    admins: list[int] = field(default_factory=list)  # the first one is the creator
    members: set[int] = field(default_factory=set)
    bot_is_admin: bool = True
    # the bot's right to pin: can_pin_messages in a group, can_edit_messages in a channel
    bot_can_pin: bool = True
    bot_kicked: bool = False
    migrated_to: int | None = None
    last_message_id: int = 0
    messages: dict[int, JSONDict] = field(default_factory=dict)
    # a forum supergroup and its topics (message_thread_id of each)
    is_forum: bool = False
    topics: dict[int, str] = field(default_factory=dict)
    # pinned message ids, the most recently pinned last
    pinned: list[int] = field(default_factory=list)

    def as_json(self) -> JSONDict:
        chat: JSONDict = {"id": self.id, "type": self.kind}
        if self.kind == "private":
            chat["first_name"] = self.first_name or ""
        elif self.title is not None:
            chat["title"] = self.title
        if self.username:
            chat["username"] = self.username
        if self.is_forum:
            chat["is_forum"] = True
        return chat


class TelegramTestServer:
    """The loopback Bot API: an aiohttp server plus the state tests read and change.

    Everything runs on the event loop that calls ``start()``; the synchronous test API
    (``add_user``, ``send_user_message`` …) must be called from that loop's thread.
    """

    def __init__(
        self,
        *,
        token: str = "123456:TEST-TOKEN",
        host: str = "127.0.0.1",
        port: int = 0,
        global_rate: float = 30,
        private_per_second: float = 1,
        group_per_minute: float = 20,
        private_burst: float = 2,
        bot_username: str = "briefbot_test_bot",
        bot_first_name: str = "Briefbot Test",
        strict_html: bool = True,
        latency: float = 0.0,
        inline: bool = True,
        edit_time_limit: float | None = None,
    ) -> None:
        """Configure the server; ``start()`` binds it.

        ``inline`` is BotFather's inline mode: ``getMe`` reports it and ``send_inline_query``
        needs it.  ``edit_time_limit`` (seconds) is off by default, as on Telegram, where a bot
        may edit its own messages at any age (TDLib, ``MessagesManager::can_edit_message``:
        no time limit for a bot's outgoing messages); set it to make older messages outside
        private chats answer "message can't be edited", to test that path (see
        ``age_message``).
        """
        bot_id, sep, secret = token.partition(":")
        if not (bot_id.isdigit() and sep and secret):
            raise ValueError("token must look like a Bot API token: '<bot id>:<secret>'")
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the test server binds to the loopback interface only")
        self.token = token
        self.host = host
        self.port = port
        self.bot_user: JSONDict = {
            "id": int(bot_id),
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
        }
        self.strict_html = strict_html
        self.latency = latency  # seconds added to every answer, for benchmarks
        self.inline = inline
        if edit_time_limit is not None and not edit_time_limit > 0:
            raise ValueError("edit_time_limit must be positive (or None: no limit)")
        self.edit_time_limit = edit_time_limit
        self.flood = FloodControl(
            global_rate=global_rate,
            private_per_second=private_per_second,
            group_per_minute=group_per_minute,
            private_burst=private_burst,
        )
        self.faults = FaultInjector()
        self.sent: list[SentMessage] = []
        # Every accepted editMessageText, oldest first.
        self.edits: list[MessageEdit] = []
        # answerCallbackQuery / answerInlineQuery calls that succeeded, by query id.
        self.callback_answers: dict[str, JSONDict] = {}
        self.inline_answers: dict[str, JSONDict] = {}
        # Every accepted pinChatMessage, oldest first.
        self.pins: list[Pin] = []
        # Every authorised request in order, as (method, parameters): tests assert on it.
        self.calls: list[tuple[str, JSONDict]] = []
        # Every authorised request, sorted by arrival time: pacing is measured here.
        self.arrivals: list[Arrival] = []
        self.holds: list[RequestHold] = []
        self._revoked_tokens: set[str] = set()
        self.stats: ServerStats = _empty_stats()
        self.on_message: Callable[[SentMessage], None] | None = None
        self.users: dict[int, JSONDict] = {}
        self.blocked_by: set[int] = set()
        self.commands: dict[tuple[str, str], list[JSONDict]] = {}
        self._chats: dict[int, _Chat] = {}
        self._updates: list[JSONDict] = []
        self._next_update_id = 1
        # getUpdates' allowed_updates; like the real server it persists between calls.
        self._allowed_updates = _DEFAULT_ALLOWED_UPDATES
        # Callback and inline queries that may still be answered: id -> update type.
        self._open_queries: dict[str, str] = {}
        self._last_query = 0
        self._poll_generation = 0
        self._updates_changed = asyncio.Event()
        self._sent_changed = asyncio.Event()
        self._answers_changed = asyncio.Event()  # edits and query answers
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._handlers: dict[str, tuple[str, Callable[[JSONDict], Awaitable[Any]]]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._get_updates,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "answerCallbackQuery": self._answer_callback_query,
                "answerInlineQuery": self._answer_inline_query,
                "pinChatMessage": self._pin_chat_message,
                "getChat": self._get_chat,
                "getChatMember": self._get_chat_member,
                "getChatAdministrators": self._get_chat_administrators,
                "getChatMemberCount": self._get_chat_member_count,
            }.items()
        }

    # ── lifecycle ────────────────────────────────────────────────────────────────────────

    async def start(self) -> None:
        """Bind and serve; ``base_url`` is valid afterwards."""
        if self._runner is not None:
            raise RuntimeError("the test server is already running")
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        # access_log=None: the access log would print the token, which sits in every path.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port, reuse_address=True)
        await site.start()
        self._runner = runner
        server = runner.server
        addresses = runner.addresses
        if server is None or not addresses:
            raise RuntimeError("the test server did not bind")
        self.port = int(addresses[0][1])
        _LOG.info("event=telegram_sandbox_started base_url=%s", self.base_url)

    async def stop(self) -> None:
        """Wake every long poll and held request, then close all connections.

        Requests held by :meth:`hold_requests` are aborted: never processed, their connections
        closed without an answer.
        """
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing.set()
        self._notify_updates()
        holds, self.holds = self.holds, []
        for hold in holds:
            hold.abort()
        await runner.cleanup()
        _LOG.info("event=telegram_sandbox_stopped")

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
    def base_url(self) -> str:
        """What PTB's ``base_url`` wants: ``http://127.0.0.1:PORT/bot`` (the token follows)."""
        if self._runner is None and self.port == 0:
            raise RuntimeError("start() the test server before asking for its URL")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/bot"

    def method_url(self, method: str) -> str:
        """Full URL of a Bot API method, for raw HTTP calls in tests."""
        return f"{self.base_url}{self.token}/{method}"

    # ── test API: state ──────────────────────────────────────────────────────────────────

    def add_user(
        self,
        user_id: int,
        first_name: str,
        *,
        username: str | None = None,
        language_code: str | None = "zh-hans",
    ) -> JSONDict:
        """Register a user and their private chat with the bot (chat id == user id)."""
        user: JSONDict = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        self.users[user_id] = user
        existing = self._chats.get(user_id)
        if existing is None or existing.kind != "private":
            self._chats[user_id] = _Chat(
                user_id, "private", first_name=first_name, username=username, members={user_id}
            )
        return dict(user)

    def add_chat(
        self,
        chat_id: int,
        kind: ChatKind,
        *,
        title: str | None = None,
        username: str | None = None,
        admins: Iterable[int] = (),
        members: Iterable[int] = (),
        bot_is_admin: bool = True,
        bot_can_pin: bool = True,
        is_forum: bool = False,
    ) -> JSONDict:
        """Register a chat the bot is in; the first of ``admins`` is its creator.

        ``bot_can_pin``: the bot's right to pin messages (as an administrator); ``is_forum``:
        a supergroup with topics (see :meth:`add_forum_topic`)."""
        if kind not in ("private", "group", "supergroup", "channel"):
            raise ValueError(f"unknown chat kind {kind!r}")
        if kind != "private" and chat_id > 0:
            raise ValueError("group, supergroup and channel ids are negative in the Bot API")
        if is_forum and kind != "supergroup":
            # Bot API, Chat.is_forum: "True, if the supergroup chat is a forum"
            raise ValueError("only a supergroup can be a forum")
        chat = _Chat(
            chat_id,
            kind,
            title=title if kind != "private" else None,
            username=username.removeprefix("@") if username else None,
            first_name=title if kind == "private" else None,
            admins=list(dict.fromkeys(admins)),
            members=set(members),
            bot_is_admin=bot_is_admin,
            bot_can_pin=bot_can_pin,
            is_forum=is_forum,
        )
        self._chats[chat_id] = chat
        return chat.as_json()

    def add_forum_topic(self, chat_id: int, name: str) -> int:
        """Create a topic in a forum supergroup, as createForumTopic would; return its
        message_thread_id (the id of the service message that created it)."""
        chat = self._chat(chat_id)
        if not chat.is_forum:
            raise ValueError(f"chat {chat_id} is not a forum supergroup")
        chat.last_message_id = max(chat.last_message_id, _GENERAL_TOPIC) + 1
        thread = chat.last_message_id
        chat.messages[thread] = {
            "message_id": thread,
            "date": int(time.time()),
            "chat": chat.as_json(),
            "message_thread_id": thread,
            "is_topic_message": True,
            "forum_topic_created": {"name": name, "icon_color": 7322096},
        }
        chat.topics[thread] = name
        return thread

    def pinned_messages(self, chat_id: int) -> list[int]:
        """The ids of the messages pinned in ``chat_id``, the most recently pinned last."""
        return list(self._chat(chat_id).pinned)

    def block_bot(self, user_id: int) -> None:
        """The user blocks the bot: sends to their private chat answer 403."""
        self.blocked_by.add(user_id)

    def unblock_bot(self, user_id: int) -> None:
        """The user unblocks the bot."""
        self.blocked_by.discard(user_id)

    def kick_bot(self, chat_id: int) -> None:
        """Remove the bot from a group, supergroup or channel: its requests there answer 403."""
        self._chat(chat_id).bot_kicked = True

    def migrate_chat(self, chat_id: int, new_chat_id: int) -> JSONDict:
        """Upgrade a group to a supergroup; the old id answers 400 with ``migrate_to_chat_id``."""
        old = self._chat(chat_id)
        if old.kind != "group":
            raise ValueError(f"only a group can be upgraded; chat {chat_id} is a {old.kind}")
        old.migrated_to = new_chat_id
        new = _Chat(
            new_chat_id,
            "supergroup",
            title=old.title,
            admins=list(old.admins),
            members=set(old.members),
            bot_is_admin=old.bot_is_admin,
        )
        self._chats[new_chat_id] = new
        return new.as_json()

    def set_limits(
        self,
        *,
        global_rate: float | None = None,
        private_per_second: float | None = None,
        group_per_minute: float | None = None,
        private_burst: float | None = None,
    ) -> None:
        """Change flood limits at runtime (``None`` keeps one; ``math.inf`` switches it off)."""
        self.flood.set_limits(
            global_rate=global_rate,
            private_per_second=private_per_second,
            group_per_minute=group_per_minute,
            private_burst=private_burst,
        )

    def reset_stats(self) -> None:
        """Zero the counters in ``stats`` and forget ``arrivals``."""
        self.stats = _empty_stats()
        self.arrivals.clear()

    def max_in_window(
        self,
        window: float = 1.0,
        method: str | None = "sendMessage",
        chat_id: int | None = None,
    ) -> int:
        """The most requests that arrived in any closed window of ``window`` seconds.

        Counts ``arrivals`` of ``method`` (``None``: every method), to one chat if ``chat_id``
        is given, with times in ``[a, a + window]``, maximised over ``a``.  Arrivals are
        stamped before faults, holds and flood control, so requests the server refused count
        too: this measures what the client sent, not what Telegram let through.
        """
        return max_in_window(self.arrivals, window, method=method, chat_id=chat_id)

    def revoke_token(self, replacement: str | None = None) -> None:
        """Revoke the bot's token, as BotFather's /revoke does.

        Every later request with it answers 401 "Unauthorized", exactly like a wrong token
        (PTB raises ``InvalidToken``).  Requests already received, held ones included, finish
        normally.  With ``replacement`` the server accepts that token from now on (``token``
        changes; the bot id, before the colon, must stay the same).
        """
        if replacement is not None:
            bot_id, sep, secret = replacement.partition(":")
            if not (sep and secret) or bot_id != str(self.bot_user["id"]):
                raise ValueError("the replacement must be '<same bot id>:<new secret>'")
            if replacement in self._revoked_tokens or replacement == self.token:
                raise ValueError("the replacement must be a token not used before")
        self._revoked_tokens.add(self.token)
        if replacement is not None:
            self.token = replacement

    def hold_requests(
        self,
        method: str | None = "sendMessage",
        chat_id: int | str | None = None,
        after: int = 0,
        *,
        deliver_first: bool = False,
    ) -> RequestHold:
        """Hold matching requests inside the server until ``release()``, for kill tests.

        The first ``after`` requests to ``method`` (``None``: any method) in ``chat_id`` (an id
        or ``"@username"``; ``None``: any chat) pass; each later one is received, counted in
        ``stats`` and ``arrivals``, and then waits before faults, flood control and the method
        run, so a held ``sendMessage`` is neither delivered nor in ``sent``.  With
        ``deliver_first`` the request is processed and only its answer is held.  See
        :class:`RequestHold` for ``wait_held``, ``held``, ``release`` and ``abandoned``;
        ``stop()`` aborts every hold.  Several holds apply one after the other.
        """
        if self._runner is None:
            raise RuntimeError("start() the test server before holding requests")
        # "@username" of a known chat holds that chat whichever way a request names it.
        resolved = self._chat_of({"chat_id": chat_id})[0] if chat_id is not None else None
        hold = RequestHold(
            method=method,
            chat_id=chat_id if resolved is None else resolved,
            after=after,
            deliver_first=deliver_first,
        )
        self.holds = [h for h in self.holds if h.active]
        self.holds.append(hold)
        return hold

    def chat(self, chat_id: int) -> JSONDict:
        """A registered chat as the Bot API shows it."""
        return self._chat(chat_id).as_json()

    # ── test API: traffic ────────────────────────────────────────────────────────────────

    def send_user_message(self, chat_id: int, user_id: int, text: str) -> JSONDict:
        """Queue an Update in which ``user_id`` writes ``text`` in ``chat_id``; return it.

        Text that starts with a command (``/start``, ``/start@briefbot_test_bot``) carries a
        ``bot_command`` entity, which PTB's CommandHandler needs.  As on Telegram, the update is
        not delivered when getUpdates' ``allowed_updates`` leaves out "message".
        """
        user = self._user(user_id)
        chat = self._chat(chat_id)
        chat.last_message_id += 1
        message: JSONDict = {
            "message_id": chat.last_message_id,
            "from": dict(user),
            "chat": chat.as_json(),
            "date": int(time.time()),
            "text": text,
        }
        entities: list[JSONDict] = []
        command = _COMMAND_RE.match(text)
        if command:
            entities.append(
                {"type": "bot_command", "offset": 0, "length": utf16_len(command.group(0))}
            )
        for mention in _MENTION_RE.finditer(text):  # as Telegram marks "@username"
            if command and mention.start() < command.end():
                continue
            entities.append(
                {
                    "type": "mention",
                    "offset": utf16_len(text[: mention.start()]),
                    "length": utf16_len(mention.group(0)),
                }
            )
        if entities:
            message["entities"] = entities
        chat.messages[chat.last_message_id] = message
        return self._queue_update("message", message)

    def press_button(self, chat_id: int, user_id: int, message_id: int, data: str) -> JSONDict:
        """Queue an Update in which ``user_id`` presses the callback button carrying ``data``
        under message ``message_id`` in ``chat_id``; return it.

        Its ``callback_query`` has a new ``id`` (answer it with answerCallbackQuery), the
        message as it is now (edits included), ``chat_instance`` and ``data``.

        Raises:
            ValueError: an unknown user, chat or message; a user who is not in the chat; or no
                callback button with ``data`` on the message (a real client cannot press a
                button that is not there).
        """
        user = self._user(user_id)
        chat = self._chat(chat_id)
        if not self._can_see(chat, user_id):
            raise ValueError(f"user {user_id} is not in chat {chat_id}")
        message = chat.messages.get(message_id)
        if message is None:
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        if data not in _callback_data(message.get("reply_markup")):
            raise ValueError(
                f"message {message_id} in chat {chat_id} has no callback button with data {data!r}"
            )
        callback: JSONDict = {
            "id": self._open_query("callback_query"),
            "from": dict(user),
            "message": copy.deepcopy(message),
            "chat_instance": _chat_instance(chat.id, int(self.bot_user["id"])),
            "data": data,
        }
        return self._queue_update("callback_query", callback)

    def send_inline_query(
        self, user_id: int, query: str, *, chat_type: str = "sender", offset: str = ""
    ) -> JSONDict:
        """Queue an Update in which ``user_id`` types ``@bot query``; return it.

        ``chat_type`` is where the user typed it ("sender" is their private chat with the bot;
        "private", "group", "supergroup", "channel"); ``offset`` is the ``next_offset`` of an
        earlier answer when the user scrolls on.  The query is cut to 256 characters, as a
        client does.  Its ``inline_query`` has a new ``id`` for answerInlineQuery.

        Raises:
            ValueError: the server runs with ``inline=False``, the user is unknown or
                ``chat_type`` is not one of the above.
        """
        if not self.inline:
            raise ValueError("inline mode is off: construct the server with inline=True")
        user = self._user(user_id)
        if chat_type not in _INLINE_CHAT_TYPES:
            raise ValueError(f"chat_type must be one of {sorted(_INLINE_CHAT_TYPES)}")
        inline_query: JSONDict = {
            "id": self._open_query("inline_query"),
            "from": dict(user),
            "query": query[:MAX_INLINE_QUERY_CHARS],
            "offset": offset,
            "chat_type": chat_type,
        }
        return self._queue_update("inline_query", inline_query)

    def expire_query(self, query_id: str) -> None:
        """Let a callback or inline query time out: answering it later fails as a late answer
        does on Telegram.  (Queries here never expire by themselves, so tests stay
        deterministic.)"""
        if self._open_queries.pop(query_id, None) is None:
            raise ValueError(f"no open query {query_id!r}")

    def age_message(self, chat_id: int, message_id: int, seconds: float) -> None:
        """Move a message's ``date`` ``seconds`` into the past, for ``edit_time_limit``."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        message = self._chat(chat_id).messages.get(message_id)
        if message is None:
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        message["date"] = int(message["date"] - seconds)

    def message(self, chat_id: int, message_id: int) -> JSONDict:
        """A message in ``chat_id`` as the Bot API shows it now (edits included)."""
        message = self._chat(chat_id).messages.get(message_id)
        if message is None:
            raise ValueError(f"no message {message_id} in chat {chat_id}")
        return copy.deepcopy(message)

    def current_text(self, chat_id: int, message_id: int) -> str:
        """The visible text of a message now, after any edits."""
        return str(self.message(chat_id, message_id).get("text", ""))

    def edits_of(self, chat_id: int, message_id: int) -> list[MessageEdit]:
        """Accepted edits of one message, oldest first."""
        return [e for e in self.edits if (e.chat_id, e.message_id) == (chat_id, message_id)]

    async def wait_for_edit(
        self,
        chat_id: int,
        message_id: int,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109  # a test helper: the deadline is its point
    ) -> list[MessageEdit]:
        """Wait until message ``message_id`` in ``chat_id`` has at least ``count`` accepted
        edits; return them all.

        Raises:
            TimeoutError: fewer edits within ``timeout`` seconds.
        """

        def ready() -> list[MessageEdit] | None:
            edits = self.edits_of(chat_id, message_id)
            return edits if len(edits) >= count else None

        return await self._wait_for(
            ready,
            timeout,
            lambda: (
                f"expected {count} edits of message {message_id} in chat {chat_id} within "
                f"{timeout}s, got {len(self.edits_of(chat_id, message_id))}"
            ),
        )

    async def wait_for_callback_answer(
        self,
        query_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109  # a test helper: the deadline is its point
    ) -> JSONDict:
        """Wait until the bot answers callback query ``query_id``; return the answer
        (``text``, ``show_alert``, ``url``, ``cache_time``).

        Raises:
            TimeoutError: no answer within ``timeout`` seconds.
        """
        return await self._wait_for(
            lambda: self.callback_answers.get(query_id),
            timeout,
            lambda: f"callback query {query_id} was not answered within {timeout}s",
        )

    async def wait_for_inline_answer(
        self,
        query_id: str,
        timeout: float = 5.0,  # noqa: ASYNC109  # a test helper: the deadline is its point
    ) -> JSONDict:
        """Wait until the bot answers inline query ``query_id``; return the answer
        (``results`` as sent, ``cache_time``, ``is_personal``, ``next_offset``, ``button``).

        Raises:
            TimeoutError: no answer within ``timeout`` seconds.
        """
        return await self._wait_for(
            lambda: self.inline_answers.get(query_id),
            timeout,
            lambda: f"inline query {query_id} was not answered within {timeout}s",
        )

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        """Messages the bot sent to ``chat_id``, oldest first."""
        return [m for m in self.sent if m.chat_id == chat_id]

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int,
        timeout: float = 5.0,  # noqa: ASYNC109  # a test helper: the deadline is its point
    ) -> list[SentMessage]:
        """Wait until the bot has sent at least ``count`` messages to ``chat_id``; return all
        messages to that chat.

        Raises:
            TimeoutError: fewer arrived within ``timeout`` seconds (the message says how many).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            messages = self.messages_to(chat_id)
            if len(messages) >= count:
                return messages
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(
                    f"expected {count} messages to chat {chat_id} within {timeout}s, "
                    f"got {len(messages)}"
                )
            event = self._sent_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def _wait_for(
        self,
        ready: Callable[[], _T | None],
        timeout: float,  # noqa: ASYNC109  # a test helper: the deadline is its point
        failure: Callable[[], str],
    ) -> _T:
        """Wait until ``ready()`` returns something; each edit or answer wakes the check."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            result = ready()
            if result is not None:
                return result
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(failure())
            event = self._answers_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _notify_answers(self) -> None:
        event, self._answers_changed = self._answers_changed, asyncio.Event()
        event.set()

    def _user(self, user_id: int) -> JSONDict:
        user = self.users.get(user_id)
        if user is None:
            raise ValueError(f"unknown user {user_id}: call add_user() first")
        return user

    @staticmethod
    def _can_see(chat: _Chat, user_id: int) -> bool:
        """Whether a user can see (and press buttons in) a chat; channels are public here."""
        if chat.kind == "private":
            return chat.id == user_id
        if chat.kind == "channel":
            return True
        return user_id in chat.members or user_id in chat.admins

    def _queue_update(self, kind: str, payload: JSONDict) -> JSONDict:
        update: JSONDict = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        # Client.cpp (add_update_impl) never stores an update of a type that getUpdates'
        # allowed_updates left out; the update is returned to the test all the same.
        if kind in self._allowed_updates:
            self._updates.append(update)
            self._notify_updates()
        return update

    def _open_query(self, kind: str) -> str:
        """A new callback or inline query id: a decimal 64-bit number, as Telegram's are."""
        self._last_query += 1
        query_id = str(int(self.bot_user["id"]) * 1_000_000_000 + self._last_query)
        self._open_queries[query_id] = kind
        return query_id

    # ── HTTP ─────────────────────────────────────────────────────────────────────────────

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return self._json(ApiError(404, "Not Found").body(), 404)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic()  # before anything can delay or refuse the request
        token = request.match_info["token"]
        if token != self.token or token in self._revoked_tokens:
            return self._json(ApiError(401, "Unauthorized").body(), 401)
        requested = request.match_info["method"]
        name, handler = self._handlers.get(requested.lower(), (requested, None))
        requests = self.stats["requests"]
        requests[name] = requests.get(name, 0) + 1
        params: JSONDict = {}
        bad_body: ApiError | None = None
        try:
            params = await _read_params(request)
        except ApiError as err:
            bad_body = err
        chat_id, chat_ref = self._chat_of(params)
        bisect.insort(self.arrivals, Arrival(arrived, name, chat_id), key=_arrival_time)
        if not await self._pass_holds(name, chat_id, chat_ref, deliver_first=False):
            return self._drop(request)
        response = await self._answer(request, name, handler, params, bad_body)
        if not await self._pass_holds(name, chat_id, chat_ref, deliver_first=True):
            return self._drop(request)
        return response

    async def _answer(
        self,
        request: web.Request,
        name: str,
        handler: Callable[[JSONDict], Awaitable[Any]] | None,
        params: JSONDict,
        bad_body: ApiError | None,
    ) -> web.StreamResponse:
        try:
            if handler is None:
                raise ApiError(404, "Not Found")
            if bad_body is not None:
                raise bad_body
            self.calls.append((name, params))
            fault = self._take_fault(name, params)
            if fault is not None and fault.kind != "timeout":
                self.stats["faults_injected"] += 1
                return self._fault_response(fault, params)
            if fault is not None:
                self.stats["faults_injected"] += 1
                result = await handler(params) if fault.deliver else None
                if fault.drop:
                    raise _DropConnection
                await self._hold(fault.delay)
                if not fault.deliver:
                    raise ApiError(504, "Gateway Timeout")
            else:
                result = await handler(params)
        except ApiError as err:
            self._count_error(err.status)
            if self.latency:
                await asyncio.sleep(self.latency)
            _LOG.debug("event=bot_api method=%s status=%s", name, err.status)
            return self._json(err.body(), err.status)
        except _DropConnection:
            self._count_error(0)
            return self._drop(request)
        if self.latency:
            await asyncio.sleep(self.latency)
        return self._json({"ok": True, "result": result}, 200)

    async def _pass_holds(
        self, method: str, chat_id: int | None, chat_ref: object, *, deliver_first: bool
    ) -> bool:
        """Wait in every matching hold; False when one was aborted (the server is stopping)."""
        for hold in list(self.holds):
            if (
                hold.deliver_first == deliver_first
                and hold.matches(method, chat_id, chat_ref)
                and not await hold.admit()
            ):
                return False
        return True

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        """Close the connection without an answer."""
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=204)  # never reaches the client

    @staticmethod
    def _json(body: JSONDict, status: int) -> web.Response:
        return web.Response(
            text=json.dumps(body, ensure_ascii=False),
            status=status,
            content_type="application/json",
        )

    def _count_error(self, status: int) -> None:
        self.stats["errors"] += 1
        by_code = self.stats["errors_by_code"]
        by_code[status] = by_code.get(status, 0) + 1
        if status == 429:
            self.stats["rate_limited"] += 1

    async def _hold(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    def _take_fault(self, method: str, params: JSONDict) -> Fault | None:
        if not self.faults.pending:
            return None
        chat_id, ref = self._chat_of(params)
        return self.faults.take(method, chat_id, ref)

    def _chat_of(self, params: JSONDict) -> tuple[int | None, object]:
        """The chat id a request names (resolved from "@username" where known, else the
        number it gives; ``None`` if none) and its ``chat_id`` parameter as given."""
        ref = params.get("chat_id")
        chat_id: int | None = None
        if ref is not None:
            with contextlib.suppress(ApiError):
                chat_id = self._resolve(ref).id
            if chat_id is None and isinstance(ref, int | str) and not isinstance(ref, bool):
                with contextlib.suppress(ValueError):
                    chat_id = int(ref)
        return chat_id, ref

    def _fault_response(self, fault: Fault, params: JSONDict) -> web.Response:
        status: int
        if fault.kind == "server_error":
            status = fault.status or 500
            self._count_error(status)
            if status == 502:
                return web.Response(text=_BAD_GATEWAY_HTML, status=502, content_type="text/html")
            err = ApiError(status, fault.description or "Internal Server Error")
        elif fault.kind == "forbidden":
            chat = self._known_chat(params.get("chat_id"))
            default = (
                _kicked_description(chat)
                if chat is not None and chat.kind != "private"
                else "Forbidden: bot was blocked by the user"
            )
            err = ApiError(403, fault.description or default)
            self._count_error(403)
        elif fault.kind == "rate_limit":
            err = _too_many_requests(fault.retry_after, fault.description)
            self._count_error(429)
        else:  # migrate
            chat = self._known_chat(params.get("chat_id"))
            new_id = fault.migrate_to_chat_id or int(f"-100{abs(chat.id) if chat else 1}")
            err = ApiError(
                400,
                fault.description or "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": new_id},
            )
            self._count_error(400)
        _LOG.debug("event=bot_api_fault kind=%s status=%s", fault.kind, err.status)
        return self._json(err.body(), err.status)

    # ── chats ────────────────────────────────────────────────────────────────────────────

    def _chat(self, chat_id: int) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            raise ValueError(f"unknown chat {chat_id}: call add_chat() or add_user() first")
        return chat

    def _resolve(self, ref: object) -> _Chat:
        """The chat a ``chat_id`` parameter names (an id, or "@username" for public chats)."""
        if ref is None or ref == "":
            raise ApiError(400, "Bad Request: chat_id is empty")
        if isinstance(ref, str) and ref.strip().startswith("@"):
            name = ref.strip()[1:].lower()
            for chat in self._chats.values():
                if chat.username and chat.username.lower() == name and chat.kind != "private":
                    return chat
            raise ApiError(400, "Bad Request: chat not found")
        try:
            chat_id = int(ref) if isinstance(ref, int | str) and not isinstance(ref, bool) else None
        except ValueError:
            chat_id = None
        found = self._chats.get(chat_id) if chat_id is not None else None
        if found is None:
            raise ApiError(400, "Bad Request: chat not found")
        return found

    def _known_chat(self, ref: object) -> _Chat | None:
        try:
            return self._resolve(ref)
        except ApiError:
            return None

    def _chat_in_reach(self, params: JSONDict) -> _Chat:
        """Resolve ``chat_id`` and refuse chats the bot has left or that moved."""
        chat = self._resolve(params.get("chat_id"))
        if chat.migrated_to is not None:
            raise ApiError(
                400,
                "Bad Request: group chat was upgraded to a supergroup chat",
                {"migrate_to_chat_id": chat.migrated_to},
            )
        if chat.bot_kicked:
            raise ApiError(403, _kicked_description(chat))
        return chat

    # ── methods ──────────────────────────────────────────────────────────────────────────

    async def _get_me(self, params: JSONDict) -> JSONDict:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": self.inline,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _delete_webhook(self, params: JSONDict) -> bool:
        if _bool(params, "drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, params: JSONDict) -> JSONDict:
        return {"url": "", "has_custom_certificate": False, "pending_update_count": 0}

    async def _get_updates(self, params: JSONDict) -> list[JSONDict]:
        offset = _int(params, "offset", 0)
        limit = min(max(_int(params, "limit", 100), 1), 100)
        timeout = max(_float(params, "timeout", 0.0), 0.0)
        self._set_allowed_updates(params)
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        # A newer getUpdates ends an older one with 409, as on the real server.
        self._poll_generation += 1
        generation = self._poll_generation
        self._notify_updates()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self._closing.is_set():
                return []
            if generation != self._poll_generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; "
                    "make sure that only one bot instance is running",
                )
            remaining = deadline - loop.time()
            if self._updates or remaining <= 0:
                return self._updates[:limit]
            event = self._updates_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    def _set_allowed_updates(self, params: JSONDict) -> None:
        """Client.cpp (get_allowed_update_types): a JSON array of update type names replaces
        the setting, which persists; absent, unparsable or not an array of strings keeps it;
        an array naming no known type (``[]`` too) restores the default.  Updates queued before
        stay queued: the filter applies when an update is created."""
        try:
            names = _json_field(params, "allowed_updates")
        except ApiError:
            return
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            return
        chosen = frozenset(n.lower() for n in names) & _UPDATE_TYPES
        self._allowed_updates = chosen or _DEFAULT_ALLOWED_UPDATES

    def _notify_updates(self) -> None:
        event, self._updates_changed = self._updates_changed, asyncio.Event()
        event.set()

    async def _set_my_commands(self, params: JSONDict) -> bool:
        commands = _json_field(params, "commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise ApiError(400, "Bad Request: commands must be a list of at most 100 commands")
        for command in commands:
            if not isinstance(command, dict) or not _BOT_COMMAND_RE.fullmatch(
                str(command.get("command", ""))
            ):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", "")).strip()) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands[self._commands_key(params)] = [
            {"command": c["command"], "description": c["description"]} for c in commands
        ]
        return True

    async def _get_my_commands(self, params: JSONDict) -> list[JSONDict]:
        return list(self.commands.get(self._commands_key(params), []))

    async def _delete_my_commands(self, params: JSONDict) -> bool:
        self.commands.pop(self._commands_key(params), None)
        return True

    @staticmethod
    def _commands_key(params: JSONDict) -> tuple[str, str]:
        scope = _json_field(params, "scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def _send_message(self, params: JSONDict) -> JSONDict:
        chat = self._chat_in_reach(params)
        if chat.kind == "private" and chat.id in self.blocked_by:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat.kind == "channel" and not chat.bot_is_admin:
            raise ApiError(400, "Bad Request: need administrator rights in the channel chat")

        raw = params.get("text")
        raw_text = "" if raw is None else str(raw)
        parse_mode = params.get("parse_mode") or None
        text, entities = self._parse_text(raw_text, parse_mode, params)
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise ApiError(400, "Bad Request: message is too long")
        if len(entities) > MAX_ENTITIES:
            raise ApiError(
                400, f"Bad Request: too many message entities ({len(entities)} > {MAX_ENTITIES})"
            )
        reply_to = self._reply_target(chat, params)
        thread = self._message_thread(chat, params)
        reply_markup = _reply_markup(params)
        keyboard = _inline_keyboard(reply_markup, channel=chat.kind == "channel")

        now = time.monotonic()
        private = chat.kind == "private"
        retry_after = self.flood.check(chat.id, private=private, now=now)
        if retry_after:
            raise _too_many_requests(retry_after)
        self.flood.record(chat.id, private=private, now=now)

        chat.last_message_id += 1
        message: JSONDict = {
            "message_id": chat.last_message_id,
            "date": int(time.time()),
            "chat": chat.as_json(),
            "text": text,
        }
        if chat.kind == "channel":
            message["sender_chat"] = chat.as_json()
        else:
            message["from"] = dict(self.bot_user)
        if entities:
            message["entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = {
                k: v for k, v in reply_to.items() if k != "reply_to_message"
            }
        if keyboard is not None:
            message["reply_markup"] = keyboard
        if thread is not None:
            message["message_thread_id"] = thread
            message["is_topic_message"] = True
        chat.messages[chat.last_message_id] = message

        preview = _json_field(params, "link_preview_options")
        sent = SentMessage(
            chat_id=chat.id,
            text=text,
            html=raw_text,
            parse_mode=str(parse_mode) if parse_mode else None,
            message_id=chat.last_message_id,
            at=now,
            entities=tuple(entities),
            reply_to_message_id=reply_to["message_id"] if reply_to else None,
            link_preview_disabled=_bool(params, "disable_web_page_preview")
            or (isinstance(preview, dict) and bool(preview.get("is_disabled"))),
            reply_markup=(
                keyboard
                if reply_markup is not None and "inline_keyboard" in reply_markup
                else reply_markup
            ),
            disable_notification=_bool(params, "disable_notification"),
            message_thread_id=thread,
        )
        self.sent.append(sent)
        event, self._sent_changed = self._sent_changed, asyncio.Event()
        event.set()
        if self.on_message is not None:
            self.on_message(sent)
        return message

    async def _edit_message_text(self, params: JSONDict) -> JSONDict | bool:
        """editMessageText, in the order Client.cpp, TDLib and Telegram check things: the
        text, the message identifier, the chat, the message, whether the bot may edit it, its
        length, whether anything changed, flood control."""
        raw = params.get("text")
        raw_text = "" if raw is None else str(raw)
        parse_mode = params.get("parse_mode") or None
        text, entities = self._parse_text(raw_text, parse_mode, params)
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        reply_markup = _reply_markup(params)
        # TDLib accepts only an inline keyboard when a bot edits a message.
        if reply_markup is not None and _markup_kind(reply_markup) not in (None, "inline"):
            raise ApiError(400, "Bad Request: inline keyboard expected")

        chat_ref = params.get("chat_id")
        message_id = _int(params, "message_id", 0)
        if chat_ref in (None, "") and message_id == 0:
            return self._edit_inline_message(params, raw_text, text, entities, reply_markup)

        chat = self._chat_in_reach(params)
        if chat.kind == "private" and chat.id in self.blocked_by:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        message = chat.messages.get(message_id) if message_id > 0 else None
        if message is None:
            # Client.cpp, check_message(..., "message to edit", ...): "<type> not found".
            raise ApiError(400, "Bad Request: message to edit not found")
        if not self._bot_may_edit(chat, message):
            raise ApiError(400, "Bad Request: message can't be edited")
        keyboard = _inline_keyboard(reply_markup, channel=chat.kind == "channel")
        # Telegram's server checks an edit's length: MESSAGE_TOO_LONG, not sendMessage's
        # "message is too long" (bots report the upper-case one for edits).
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        if len(entities) > MAX_ENTITIES:
            raise ApiError(
                400, f"Bad Request: too many message entities ({len(entities)} > {MAX_ENTITIES})"
            )
        if (message.get("text"), message.get("entities", []), message.get("reply_markup")) == (
            text,
            entities,
            keyboard,
        ):
            raise ApiError(400, _NOT_MODIFIED)

        # Edits share the send limits (TDLib's maintainer: "For bots the limits for message
        # editing are the same as for message sending ... They share the limit.", td#2592).
        now = time.monotonic()
        private = chat.kind == "private"
        retry_after = self.flood.check(chat.id, private=private, now=now)
        if retry_after:
            raise _too_many_requests(retry_after)
        self.flood.record(chat.id, private=private, now=now)

        message["text"] = text
        if entities:
            message["entities"] = entities
        else:
            message.pop("entities", None)
        # An edit without reply_markup removes the inline keyboard, as on Telegram.
        if keyboard is not None:
            message["reply_markup"] = keyboard
        else:
            message.pop("reply_markup", None)
        message["edit_date"] = int(time.time())
        self._record_edit(
            MessageEdit(
                chat_id=chat.id,
                message_id=message_id,
                inline_message_id=None,
                text=text,
                html=raw_text,
                parse_mode=str(parse_mode) if parse_mode else None,
                at=now,
                entities=tuple(entities),
                reply_markup=keyboard,
            ),
            params,
        )
        return copy.deepcopy(message)

    def _edit_inline_message(
        self,
        params: JSONDict,
        raw_text: str,
        text: str,
        entities: list[JSONDict],
        reply_markup: JSONDict | None,
    ) -> bool:
        """An edit of a message sent via inline mode: Telegram answers True.  The sandbox
        does not keep such messages, so any identifier is taken as valid."""
        inline_message_id = str(params.get("inline_message_id") or "")
        if not inline_message_id:
            # Client.cpp, get_inline_message_id.
            raise ApiError(400, "Bad Request: message identifier is not specified")
        keyboard = _inline_keyboard(reply_markup, channel=False)
        if utf16_len(text) > MAX_TEXT_UTF16:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        if len(entities) > MAX_ENTITIES:
            raise ApiError(
                400, f"Bad Request: too many message entities ({len(entities)} > {MAX_ENTITIES})"
            )
        parse_mode = params.get("parse_mode") or None
        self._record_edit(
            MessageEdit(
                chat_id=None,
                message_id=None,
                inline_message_id=inline_message_id,
                text=text,
                html=raw_text,
                parse_mode=str(parse_mode) if parse_mode else None,
                at=time.monotonic(),
                entities=tuple(entities),
                reply_markup=keyboard,
            ),
            params,
        )
        return True

    def _bot_may_edit(self, chat: _Chat, message: JSONDict) -> bool:
        """TDLib (MessagesManager::can_edit_message): a bot edits only its own messages, and
        those at any age; ``edit_time_limit`` adds an age limit outside private chats."""
        sender = message.get("from")
        own = (
            sender.get("id") == self.bot_user["id"]
            if isinstance(sender, dict)
            else "sender_chat" in message  # a channel post the bot made
        )
        if not own:
            return False
        if self.edit_time_limit is None or chat.kind == "private":
            return True
        return time.time() - float(message["date"]) < self.edit_time_limit

    def _record_edit(self, edit: MessageEdit, params: JSONDict) -> None:
        self.edits.append(edit)
        if edit.chat_id is not None:
            preview = _json_field(params, "link_preview_options")
            for index in range(len(self.sent) - 1, -1, -1):
                sent = self.sent[index]
                if (sent.chat_id, sent.message_id) == (edit.chat_id, edit.message_id):
                    self.sent[index] = dataclasses.replace(
                        sent,
                        text=edit.text,
                        html=edit.html,
                        parse_mode=edit.parse_mode,
                        entities=edit.entities,
                        reply_markup=edit.reply_markup,
                        link_preview_disabled=_bool(params, "disable_web_page_preview")
                        or (isinstance(preview, dict) and bool(preview.get("is_disabled"))),
                        edit_count=sent.edit_count + 1,
                    )
                    break
        self._notify_answers()

    def _message_thread(self, chat: _Chat, params: JSONDict) -> int | None:
        """sendMessage's message_thread_id: "Unique identifier for the target message thread
        (topic) of the forum; for forum supergroups only" (Bot API). Anything but a topic of
        a forum supergroup answers "message thread not found"."""
        thread = _int(params, "message_thread_id", 0)
        if not thread:
            return None
        if not chat.is_forum or thread not in chat.topics:
            raise ApiError(400, _THREAD_NOT_FOUND)
        return thread

    async def _pin_chat_message(self, params: JSONDict) -> bool:
        """pinChatMessage (Bot API): "If the chat is not a private chat, the bot must be an
        administrator in the chat for this to work and must have the 'can_pin_messages'
        administrator right in a supergroup or 'can_edit_messages' administrator right in a
        channel." The rights are checked before the message, as TDLib does
        (MessagesManager::pin_dialog_message asks DialogManager::can_pin_messages first)."""
        chat = self._chat_in_reach(params)
        if chat.kind != "private" and not (chat.bot_is_admin and chat.bot_can_pin):
            raise ApiError(400, _NO_PIN_RIGHTS)
        message_id = _int(params, "message_id", 0)
        if message_id not in chat.messages:
            raise ApiError(400, _PIN_NOT_FOUND)
        if message_id in chat.pinned:
            chat.pinned.remove(message_id)
        chat.pinned.append(message_id)
        self.pins.append(
            Pin(chat.id, message_id, _bool(params, "disable_notification"), time.monotonic())
        )
        self._notify_answers()
        return True

    async def _answer_callback_query(self, params: JSONDict) -> bool:
        query_id = str(params.get("callback_query_id") or "")
        if self._open_queries.get(query_id) != "callback_query":
            raise ApiError(400, _QUERY_ID_INVALID)
        text = str(params.get("text") or "")
        if len(text) > MAX_CALLBACK_ANSWER_CHARS:
            # Telegram's server: MESSAGE_TOO_LONG (reported by bots for long alert texts).
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        del self._open_queries[query_id]
        self.callback_answers[query_id] = {
            "text": text,
            "show_alert": _bool(params, "show_alert"),
            "url": str(params.get("url") or ""),
            # Client.cpp clamps cache_time to 0 .. 30 days.
            "cache_time": min(max(_int(params, "cache_time", 0), 0), 30 * 24 * 3600),
        }
        self._notify_answers()
        return True

    async def _answer_inline_query(self, params: JSONDict) -> bool:
        """answerInlineQuery: Client.cpp parses the button and the results (at most 50, each
        with its required fields and message text), then Telegram's server checks the query
        id, the result ids, titles, lengths and the offset."""
        button = _inline_results_button(params)
        results = _json_results(params)
        parsed = [self._inline_result(result) for result in results]

        query_id = str(params.get("inline_query_id") or "")
        if self._open_queries.get(query_id) != "inline_query":
            raise ApiError(400, _QUERY_ID_INVALID)
        # Telegram's errors of messages.setInlineBotResults.  RESULT_ID_DUPLICATE is confirmed
        # by bots' reports; which limit yields RESULT_ID_EMPTY / RESULT_ID_INVALID /
        # ARTICLE_TITLE_EMPTY / MESSAGE_TOO_LONG / NEXT_OFFSET_INVALID is read from the error
        # names and the documented limits, not observed.
        seen: set[str] = set()
        for result_id, title, text in parsed:
            if not result_id:
                raise ApiError(400, "Bad Request: RESULT_ID_EMPTY")
            if len(result_id.encode()) > MAX_INLINE_RESULT_ID_BYTES:
                raise ApiError(400, "Bad Request: RESULT_ID_INVALID")
            if result_id in seen:
                raise ApiError(400, "Bad Request: RESULT_ID_DUPLICATE")
            seen.add(result_id)
            if title is not None and not title.strip():
                raise ApiError(400, "Bad Request: ARTICLE_TITLE_EMPTY")
            if text is not None and utf16_len(text) > MAX_TEXT_UTF16:
                raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        next_offset = str(params.get("next_offset") or "")
        if len(next_offset.encode()) > MAX_INLINE_OFFSET_BYTES:
            raise ApiError(400, "Bad Request: NEXT_OFFSET_INVALID")

        del self._open_queries[query_id]
        self.inline_answers[query_id] = {
            "results": results,
            # Client.cpp: cache_time defaults to 300 and is clamped to 0 .. 1 day.
            "cache_time": min(max(_int(params, "cache_time", 300), 0), 24 * 3600),
            "is_personal": _bool(params, "is_personal"),
            "next_offset": next_offset,
            "button": button,
        }
        self._notify_answers()
        return True

    def _inline_result(self, result: object) -> tuple[str, str | None, str | None]:
        """Check one inline query result as Client.cpp (get_inline_query_result) parses it;
        return its id, an article's title and its message text (visible, after HTML) for the
        checks Telegram's server makes afterwards."""
        try:
            if not isinstance(result, dict):
                raise ApiError(400, "Bad Request: Inline query result must be an object")
            _required_string(result, "type")
            result_id = _required_string(result, "id")
            article = str(result["type"]).lower() == "article"
            content = result.get("input_message_content")
            raw_text: str | None
            if content is None:
                content = result  # the legacy form: message_text on the result itself
                if article:
                    raw_text = _required_string(result, "message_text")
                else:
                    raw_text = str(result.get("message_text") or "") or None
            elif not isinstance(content, dict):
                raise ApiError(
                    400, 'Bad Request: Field "input_message_content" must be of type Object'
                )
            else:
                raw_text = str(content.get("message_text") or "") or None
                if raw_text is None and article:
                    raise ApiError(400, "Bad Request: Input message content is not specified")
            text: str | None = None
            if raw_text is not None:
                text, _ = self._parse_text(raw_text, content.get("parse_mode") or None, content)
                if not text.strip():
                    raise ApiError(400, "Bad Request: Message text is empty")
            title = _required_string(result, "title") if article else None
            markup = result.get("reply_markup")
            if markup is not None:
                if not isinstance(markup, dict):
                    raise ApiError(400, 'Bad Request: Field "reply_markup" must be of type Object')
                _inline_keyboard(markup, channel=False)
        except ApiError as err:
            detail = err.description.removeprefix("Bad Request: ")
            if _TELEGRAM_ERROR_RE.fullmatch(detail):
                raise  # Telegram's own errors (BUTTON_DATA_INVALID) come unwrapped
            # Client.cpp: "Can't parse inline query result: <what get_inline_query_result
            # said>".
            raise ApiError(
                400,
                "Bad Request: can't parse inline query result: " + detail[:1].upper() + detail[1:],
            ) from None
        return result_id, title, text

    def _parse_text(
        self, raw_text: str, parse_mode: object, params: JSONDict
    ) -> tuple[str, list[JSONDict]]:
        if parse_mode is None:
            given = _json_field(params, "entities")
            if given is None:
                return raw_text, []
            if not isinstance(given, list) or not all(
                isinstance(e, dict) and {"type", "offset", "length"} <= e.keys() for e in given
            ):
                raise ApiError(400, "Bad Request: can't parse entities JSON object")
            return raw_text, [dict(e) for e in given]
        if str(parse_mode).lower() != "html":
            raise ApiError(400, f"Bad Request: unsupported parse_mode {parse_mode!s}")
        try:
            return parse_html(raw_text, strict=self.strict_html)
        except EntityParseError as err:
            raise ApiError(400, f"Bad Request: can't parse entities: {err}") from err

    def _reply_target(self, chat: _Chat, params: JSONDict) -> JSONDict | None:
        reply = _json_field(params, "reply_parameters")
        if isinstance(reply, dict):
            message_id = reply.get("message_id")
            allow_missing = bool(reply.get("allow_sending_without_reply"))
            if reply.get("chat_id") not in (None, chat.id, str(chat.id)):
                chat = self._resolve(reply["chat_id"])
        else:
            message_id = params.get("reply_to_message_id")
            allow_missing = _bool(params, "allow_sending_without_reply")
        if message_id in (None, ""):
            return None
        try:
            target = chat.messages.get(int(message_id))
        except (TypeError, ValueError):
            target = None
        if target is None and not allow_missing:
            raise ApiError(400, "Bad Request: message to be replied not found")
        return target

    async def _get_chat(self, params: JSONDict) -> JSONDict:
        chat = self._chat_in_reach(params)
        pinned: JSONDict = {}
        if chat.pinned and chat.pinned[-1] in chat.messages:
            # ChatFullInfo.pinned_message: "The most recent pinned message (by sending date)"
            pinned["pinned_message"] = copy.deepcopy(chat.messages[chat.pinned[-1]])
        return {
            **chat.as_json(),
            **pinned,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }

    async def _get_chat_member(self, params: JSONDict) -> JSONDict:
        chat = self._chat_in_reach(params)
        user_id = _int(params, "user_id", 0)
        if user_id == self.bot_user["id"]:
            return self._bot_member(chat)
        user = self.users.get(user_id)
        if user is None:
            raise ApiError(400, "Bad Request: user not found")
        if chat.kind == "private":
            status = "member" if user_id == chat.id else "left"
            return {"status": status, "user": dict(user)}
        return self._member(chat, user)

    async def _get_chat_administrators(self, params: JSONDict) -> list[JSONDict]:
        chat = self._chat_in_reach(params)
        if chat.kind == "private":
            raise ApiError(400, "Bad Request: there are no administrators in the private chat")
        admins = [self._member(chat, self.users[a]) for a in chat.admins if a in self.users]
        if chat.bot_is_admin:
            admins.append(self._bot_member(chat))
        return admins

    async def _get_chat_member_count(self, params: JSONDict) -> int:
        chat = self._chat_in_reach(params)
        if chat.kind == "private":
            return 2
        return len({*chat.admins, *chat.members}) + 1  # and the bot

    def _member(self, chat: _Chat, user: JSONDict) -> JSONDict:
        user_id = user["id"]
        if chat.admins and chat.admins[0] == user_id:
            return {"status": "creator", "user": dict(user), "is_anonymous": False}
        if user_id in chat.admins:
            return _administrator(dict(user), chat)
        if user_id in chat.members:
            return {"status": "member", "user": dict(user)}
        return {"status": "left", "user": dict(user)}

    def _bot_member(self, chat: _Chat) -> JSONDict:
        if chat.kind != "private" and chat.bot_is_admin:
            member = _administrator(dict(self.bot_user), chat)
            member["can_edit_messages" if chat.kind == "channel" else "can_pin_messages"] = (
                chat.bot_can_pin
            )
            return member
        return {"status": "member", "user": dict(self.bot_user)}


# ── helpers ──────────────────────────────────────────────────────────────────────────────


def _empty_stats() -> ServerStats:
    return {
        "requests": {},
        "rate_limited": 0,
        "errors": 0,
        "errors_by_code": {},
        "faults_injected": 0,
    }


def _arrival_time(arrival: Arrival) -> float:
    return arrival.t


def _too_many_requests(retry_after: int, description: str | None = None) -> ApiError:
    return ApiError(
        429,
        description or f"Too Many Requests: retry after {retry_after}",
        {"retry_after": retry_after},
    )


def _kicked_description(chat: _Chat) -> str:
    if chat.kind == "channel":
        return "Forbidden: bot is not a member of the channel chat"
    if chat.kind == "supergroup":
        return "Forbidden: bot was kicked from the supergroup chat"
    return "Forbidden: bot was kicked from the group chat"


def _reply_markup(params: JSONDict) -> JSONDict | None:
    """The decoded ``reply_markup`` parameter (``None`` if absent), with Client.cpp's errors."""
    value = params.get("reply_markup")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ApiError(
                400, "Bad Request: can't parse reply keyboard markup JSON object"
            ) from None
    if not isinstance(value, dict):
        raise ApiError(400, "Bad Request: object expected as reply markup")
    return value


def _markup_kind(markup: JSONDict) -> str | None:
    """Which markup Client.cpp (get_reply_markup) makes of an object: a reply keyboard wins
    over an inline one; an object with neither, nor a remove or force-reply flag, is none."""
    if isinstance(markup.get("keyboard"), list) and any(markup["keyboard"]):
        return "keyboard"
    if isinstance(markup.get("inline_keyboard"), list) and any(markup["inline_keyboard"]):
        return "inline"
    if markup.get("remove_keyboard") or markup.get("hide_keyboard"):
        return "remove"
    if markup.get("force_reply") or markup.get("force_reply_keyboard"):
        return "force_reply"
    return None


def _inline_keyboard(markup: JSONDict | None, *, channel: bool) -> JSONDict | None:
    """Check an ``inline_keyboard`` as the real server does and return it as Telegram keeps it
    (``None``: no inline keyboard).

    Three layers check it.  Client.cpp parses every button: "text" is required and the first
    action in ``_BUTTON_ACTIONS`` order is the button's only one; a button with none is a
    "text button", which inline keyboards do not allow.  TDLib (ReplyMarkup.cpp) then drops
    buttons with an empty text, rows left empty, and buttons past 12 a row or 300 in all,
    and refuses switch-inline buttons in channels.  Telegram's server finally refuses
    callback_data over 64 bytes (BUTTON_DATA_INVALID).
    """
    if markup is None or "inline_keyboard" not in markup:
        return None
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list):
        raise ApiError(400, 'Bad Request: field "inline_keyboard" must be of type Array')
    parsed: list[list[tuple[str, JSONDict]]] = []
    for row in rows:
        if not isinstance(row, list):
            raise ApiError(
                400,
                'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an '
                "Array of Arrays",
            )
        parsed.append([_inline_button(button) for button in row])

    kept_rows: list[list[JSONDict]] = []
    total = 0
    for parsed_row in parsed:
        kept: list[JSONDict] = []
        for action, button in parsed_row:
            if not button["text"]:
                continue
            if channel and action in ("switch_inline_query", "switch_inline_query_current_chat"):
                raise ApiError(
                    400,
                    f"Bad Request: can't use {action} button in a channel chat, because users "
                    "will not be able to use the button without knowing bot's username",
                )
            kept.append(button)
            total += 1
            if len(kept) >= _MAX_BUTTONS_PER_ROW or total >= _MAX_BUTTONS:
                break
        if kept:
            kept_rows.append(kept)
        if total >= _MAX_BUTTONS:
            break
    for button in (b for kept in kept_rows for b in kept):
        data = button.get("callback_data")
        if isinstance(data, str) and len(data.encode()) > MAX_CALLBACK_DATA_BYTES:
            raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return {"inline_keyboard": kept_rows} if kept_rows else None


def _inline_button(button: object) -> tuple[str, JSONDict]:
    """One button as Client.cpp (get_inline_keyboard_button) parses it: its action and the
    button with only that action (and any non-action fields such as ``style``) left."""
    prefix = "Bad Request: can't parse inline keyboard button: "
    if not isinstance(button, dict):
        raise ApiError(400, prefix + "InlineKeyboardButton must be an Object")
    text = button.get("text")
    if text is None:
        raise ApiError(400, prefix + 'Can\'t find field "text"')
    if not isinstance(text, str):
        raise ApiError(400, prefix + 'Field "text" must be of type String')
    for action in _BUTTON_ACTIONS:
        value = button.get(action)
        if action in ("url", "callback_data"):
            if isinstance(value, int | float) and not isinstance(value, bool):
                value = str(value)  # td's JSON reader takes a number for a string field
            if value is None or value == "":
                continue
            if not isinstance(value, str):
                raise ApiError(400, prefix + f'Field "{action}" must be of type String')
        elif action not in button:
            continue
        kept = {k: v for k, v in button.items() if k not in _BUTTON_ACTIONS}
        kept[action] = value
        return action, kept
    raise ApiError(400, prefix + "Text buttons are unallowed in the inline keyboard")


def _callback_data(markup: object) -> set[str]:
    """The callback_data of every button of a stored inline keyboard."""
    if not isinstance(markup, dict):
        return set()
    return {
        str(button["callback_data"])
        for row in markup.get("inline_keyboard", [])
        for button in row
        if "callback_data" in button
    }


def _chat_instance(chat_id: int, bot_id: int) -> str:
    """CallbackQuery.chat_instance: an opaque number, the same for every press in one chat."""
    return str((chat_id * 0x9E3779B97F4A7C15 + bot_id) % (1 << 63))


def _required_string(obj: JSONDict, name: str) -> str:
    """A required string field, with td's JSON reader's wording (a number is taken as text)."""
    value = obj.get(name)
    if value is None:
        raise ApiError(400, f'Bad Request: Can\'t find field "{name}"')
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ApiError(400, f'Bad Request: Field "{name}" must be of type String')
    return value


def _json_results(params: JSONDict) -> list[Any]:
    """answerInlineQuery's ``results``, as Client.cpp (get_inline_query_results) reads them."""
    value = params.get("results")
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as err:
            raise ApiError(
                400, f"Bad Request: can't parse JSON encoded inline query results: {err.msg}"
            ) from None
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(400, "Bad Request: expected an Array of inline query results")
    if len(value) > MAX_INLINE_RESULTS:
        # Client.cpp checks the count first (since 2023; Telegram's own error is
        # RESULTS_TOO_MUCH).
        raise ApiError(400, "Bad Request: too many inline query results specified")
    return value


def _inline_results_button(params: JSONDict) -> JSONDict | None:
    """answerInlineQuery's ``button``, checked as Client.cpp and TDLib (answer_inline_query)
    do; a legacy ``switch_pm_text`` / ``switch_pm_parameter`` pair becomes one."""
    value = params.get("button")
    if isinstance(value, str):
        if not value.strip():
            value = None
        else:
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ApiError(
                    400, "Bad Request: can't parse inline query results button JSON object"
                ) from None
    if value is None:
        pm_text = str(params.get("switch_pm_text") or "")
        if not pm_text:
            return None
        value = {"text": pm_text, "start_parameter": str(params.get("switch_pm_parameter") or "")}
    prefix = "Bad Request: can't parse inline query results button: "
    if not isinstance(value, dict):
        raise ApiError(400, prefix + "InlineQueryResultsButton must be an Object")
    if not isinstance(value.get("text"), str):
        raise ApiError(400, prefix + 'Can\'t find field "text"')
    if "start_parameter" in value:
        parameter = str(value["start_parameter"])
        if not parameter:
            raise ApiError(400, "Bad Request: can't use empty start_parameter")
        if len(parameter) > 64:
            raise ApiError(400, "Bad Request: too long start_parameter specified")
        if not _START_PARAMETER_RE.fullmatch(parameter):
            raise ApiError(400, "Bad Request: unallowed characters in start_parameter are used")
    elif not isinstance(value.get("web_app"), dict):
        raise ApiError(
            400, prefix + "InlineQueryResultsButton must have exactly one optional field"
        )
    return value


def _administrator(user: JSONDict, chat: _Chat) -> JSONDict:
    member: JSONDict = {
        "status": "administrator",
        "user": user,
        "can_be_edited": False,
        "is_anonymous": False,
        "can_manage_chat": True,
        "can_delete_messages": True,
        "can_manage_video_chats": True,
        "can_restrict_members": True,
        "can_promote_members": False,
        "can_change_info": True,
        "can_invite_users": True,
        "can_post_stories": True,
        "can_edit_stories": True,
        "can_delete_stories": True,
    }
    if chat.kind == "channel":
        member.update(can_post_messages=True, can_edit_messages=True)
    else:
        member["can_pin_messages"] = True
    return member


async def _read_params(request: web.Request) -> JSONDict:
    """Parameters from the query string and a JSON, urlencoded or multipart body.

    In form bodies every value is a string (PTB JSON-encodes non-string values, e.g.
    ``reply_markup``); the ``_int``/``_bool``/``_json_field`` readers accept both forms.
    """
    params: JSONDict = dict(request.query)
    if not request.can_read_body:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except json.JSONDecodeError as err:
            raise ApiError(400, "Bad Request: can't parse JSON request body") from err
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: the JSON request body must be an object")
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, str):
                params[key] = value  # uploaded files are not needed by any method here
    return params


def _int(params: JSONDict, name: str, default: int) -> int:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool):
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f'Bad Request: field "{name}" must be an integer') from None


def _float(params: JSONDict, name: str, default: float) -> float:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ApiError(400, f'Bad Request: field "{name}" must be a number') from None
    if not math.isfinite(result):
        raise ApiError(400, f'Bad Request: field "{name}" must be a number')
    return result


def _bool(params: JSONDict, name: str) -> bool:
    value = params.get(name)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1")
    return bool(value)


def _json_field(params: JSONDict, name: str) -> Any:
    """A field holding a JSON object or array: decoded already (JSON body) or a string."""
    value = params.get(name)
    if not isinstance(value, str):
        return value
    if not value.strip():
        return None
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise ApiError(400, f"Bad Request: can't parse {name} JSON object") from None


# ── command line ─────────────────────────────────────────────────────────────────────────


def _user_arg(text: str) -> tuple[int, str]:
    user_id, _, name = text.partition(":")
    return int(user_id), name or f"user{user_id}"


def _chat_arg(text: str) -> tuple[int, ChatKind, str]:
    chat_id, _, rest = text.partition(":")
    kind, _, title = rest.partition(":")
    if kind not in ("group", "supergroup", "channel"):
        raise argparse.ArgumentTypeError("chat kind must be group, supergroup or channel")
    return int(chat_id), kind, title  # type: ignore[return-value]  # checked just above


def main(argv: list[str] | None = None) -> None:
    """Run the loopback Bot API until interrupted, printing its base URL and what the bot
    sends."""
    parser = argparse.ArgumentParser(
        prog="python -m bot.sandbox.telegram_api",
        description="Loopback Telegram Bot API server for trying briefbot without Telegram.",
    )
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument("--bot-username", default="briefbot_test_bot")
    parser.add_argument("--rate", "--global-rate", dest="global_rate", type=float, default=30)
    parser.add_argument("--private-per-second", type=float, default=1)
    parser.add_argument("--group-per-minute", type=float, default=20)
    parser.add_argument("--user", type=_user_arg, action="append", default=[], metavar="ID[:NAME]")
    parser.add_argument(
        "--chat",
        type=_chat_arg,
        action="append",
        default=[],
        metavar="ID:KIND[:TITLE]",
        help="a group, supergroup or channel; write --chat=-100123:channel:name for a negative "
        "id (a channel's title doubles as its @username)",
    )
    args = parser.parse_args(argv)

    async def serve() -> None:
        server = TelegramTestServer(
            token=args.token,
            port=args.port,
            global_rate=args.global_rate,
            private_per_second=args.private_per_second,
            group_per_minute=args.group_per_minute,
            bot_username=args.bot_username,
        )
        for user_id, name in args.user:
            server.add_user(user_id, name)
        for chat_id, kind, title in args.chat:
            username = title if kind == "channel" and title else None
            server.add_chat(chat_id, kind, title=title or None, username=username)
        server.on_message = lambda m: print(f"→ {m.chat_id} #{m.message_id}: {m.text}", flush=True)
        async with server:
            shown = "the default test token" if args.token == "123456:TEST-TOKEN" else "--token"
            print(f"Telegram Bot API sandbox at {server.base_url} (token: {shown})", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
