"""The Telegram adapter: python-telegram-bot in, neutral messages and outcomes out."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

from telegram import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    LinkPreviewOptions,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    filters,
)
from telegram.request import BaseRequest

from bot.domain import ChatKind, IncomingMessage, InlineQuery, OutgoingMessage, Target
from bot.errors import (
    AuthRejected,
    ConfigError,
    DeliveryError,
    PermanentFailure,
    RetryLater,
    TargetGone,
    TargetMigrated,
    TransientFailure,
)
from bot.platforms.base import (
    ChatHandler,
    ConfiguredTarget,
    InlineHandler,
    Limits,
    Sender,
    send_replies,
)
from bot.platforms.telegram import LIMITS, TOKEN_ENV, TelegramChannel
from bot.platforms.telegram.transport import AiohttpRequest

log = logging.getLogger("briefbot.telegram")

ADMIN_STATUSES = {ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER}
CHAT_KINDS: dict[str, ChatKind] = {
    ChatType.PRIVATE: ChatKind.PRIVATE,
    ChatType.GROUP: ChatKind.GROUP,
    ChatType.SUPERGROUP: ChatKind.GROUP,
    ChatType.CHANNEL: ChatKind.CHANNEL,
}
TOKEN_REJECTED = f"the Telegram bot token was rejected: check {TOKEN_ENV}"
# (name, Chinese, English, admin-only): the chat's command table, as the core hands it over
MenuEntry = tuple[str, str, str, bool]
# Inline answers may be cached by Telegram's servers for this long (seconds): the same query
# from anyone gets the same cards, and the store changes once a day.
INLINE_CACHE_SECONDS = 60
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
ALLOWED_UPDATES = ["message", "callback_query", "inline_query"]
# More buttons than this under one message are laid out two to a row (a phone's width).
BUTTONS_IN_ONE_ROW = 2


def chat_ref(chat_id: str) -> int | str:
    """Numeric ids go to the API as numbers, "@channel" names as text."""
    try:
        return int(chat_id)
    except ValueError:
        return chat_id


def _seconds(value: int | float | dt.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def delivery_error(exc: TelegramError) -> DeliveryError:
    """Translate a PTB error into briefbot's neutral outcome (by type, never by text, except
    Telegram's one 400 that means the chat is gone)."""
    if isinstance(exc, RetryAfter):
        return RetryLater(_seconds(exc.retry_after))
    if isinstance(exc, ChatMigrated):
        return TargetMigrated(str(exc.new_chat_id))
    if isinstance(exc, InvalidToken):
        return AuthRejected(TOKEN_REJECTED)
    if isinstance(exc, Forbidden):
        return TargetGone(exc.message)
    if isinstance(exc, BadRequest):
        if "chat not found" in exc.message.lower():
            return TargetGone(exc.message)
        return PermanentFailure(exc.message)
    if isinstance(exc, TimedOut | NetworkError):  # includes 5xx answers
        # a proxy's 502 comes back as a whole HTML page: keep the ledger's error readable
        return TransientFailure(_short(str(exc)) or type(exc).__name__)
    return PermanentFailure(str(exc))


def _keyboard(message: OutgoingMessage) -> InlineKeyboardMarkup | None:
    """The message's buttons as an inline keyboard: one row, or rows of two when more."""
    if not message.buttons:
        return None
    buttons = [InlineKeyboardButton(b.label, callback_data=b.action) for b in message.buttons]
    if len(buttons) <= BUTTONS_IN_ONE_ROW:
        return InlineKeyboardMarkup([buttons])
    rows = [buttons[i : i + BUTTONS_IN_ONE_ROW] for i in range(0, len(buttons), BUTTONS_IN_ONE_ROW)]
    return InlineKeyboardMarkup(rows)


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


class TelegramPlatform:
    """Sends through the Bot API and turns updates into :class:`IncomingMessage`."""

    name = "telegram"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.telegram.org/bot",
        limits: Limits = LIMITS,
        handler: ChatHandler | None = None,
        inline_handler: InlineHandler | None = None,
        receive: bool = True,
        admins: frozenset[str] = frozenset(),
        menu: Sequence[MenuEntry] = (),
        channels: Sequence[TelegramChannel] = (),
        request: BaseRequest | None = None,
        timeout: float = 10.0,
        pool_size: int = 32,
    ) -> None:
        if not token:
            raise ConfigError(f"Telegram needs a bot token: set {TOKEN_ENV}")
        self.limits = limits
        self.handler = handler
        self.inline_handler = inline_handler
        self.receive = receive
        self.admins = admins
        self.menu = list(menu)
        # configured channels and groups by the chat as written (a target's chat id): where
        # to pin a brief's first part, which forum topic to post in
        self.channels = {channel.chat: channel for channel in channels}
        # replies go through the platform's outbox (set by the composition root)
        self.outbox: Sender | None = None
        # for messages: the host only (the path would hold the token)
        self._api_host = urlsplit(base_url).netloc or base_url
        builder = ApplicationBuilder().token(token).base_url(base_url.rstrip("/"))
        # an injected transport (tests: httpx.MockTransport), else PTB over aiohttp (see
        # bot/platforms/telegram/transport.py for why)
        sending = request or AiohttpRequest(pool_size=pool_size, timeout=timeout)
        polling = request or AiohttpRequest(pool_size=1, timeout=timeout + 30)
        builder = builder.request(sending).get_updates_request(polling)
        self._sending, self._polling_request = sending, polling
        self.application: Application[Any, Any, Any, Any, Any, Any] = builder.concurrent_updates(
            True
        ).build()  # one slow chat must not hold up others
        self.application.add_handler(MessageHandler(filters.TEXT, self._on_message))
        self.application.add_handler(CallbackQueryHandler(self._on_button))
        self.application.add_handler(InlineQueryHandler(self._on_inline_query))
        self.application.add_error_handler(self._on_error)
        self._polling = False

    @property
    def username(self) -> str:
        return str(self.application.bot.username)

    async def start(self) -> None:
        """Connect (getMe); when receiving, register the commands and start long polling."""
        try:
            await self.application.initialize()
        except (InvalidToken, NetworkError) as exc:
            # the HTTP sessions were opened before getMe failed: close them (PTB's shutdown
            # does nothing for an application that never initialized)
            await self._sending.shutdown()
            await self._polling_request.shutdown()
            if isinstance(exc, NetworkError):
                raise TransientFailure(f"cannot reach the Telegram Bot API: {exc}") from exc
            # PTB re-raises with the token in the text: the answer itself is the cause
            if "not found" in str(exc.__cause__ or "").lower():
                # 404: a malformed token, or an address that is not a Bot API at all
                raise AuthRejected(
                    f"the Bot API at {self._api_host} answered 404 Not Found: check "
                    f"{TOKEN_ENV} (is it the whole token?) and [telegram] api_base_url"
                ) from None
            raise AuthRejected(TOKEN_REJECTED) from None
        if self.receive:
            await self._register_commands()
            await self.application.start()
            assert self.application.updater is not None
            await self.application.updater.start_polling(allowed_updates=ALLOWED_UPDATES)
            self._polling = True
        log.info("telegram connected bot=@%s polling=%s", self.username, self.receive)

    async def _register_commands(self) -> None:
        """Everyone's menu in both languages; admins also see the admin commands, in their
        own private chat's scope (a scope per admin is how Telegram shows a menu to a few)."""
        bot = self.application.bot
        public = [m for m in self.menu if not m[3]]
        for language in ("", "en"):
            await bot.set_my_commands(
                [BotCommand(name, en if language else zh) for name, zh, en, _ in public],
                scope=BotCommandScopeDefault(),
                language_code=language or None,
            )
        for admin in sorted(self.admins):
            try:
                scope = BotCommandScopeChat(int(admin))
                for language in ("", "en"):
                    await bot.set_my_commands(
                        [BotCommand(name, en if language else zh) for name, zh, en, _ in self.menu],
                        scope=scope,
                        language_code=language or None,
                    )
            except (TelegramError, ValueError) as exc:
                # an admin who never opened a chat with the bot has no scope yet
                log.warning("admin command menu not set for %s: %s", admin, exc)

    async def stop(self) -> None:
        if self._polling:
            assert self.application.updater is not None
            await self.application.updater.stop()
            await self.application.stop()
            self._polling = False
        await self.application.shutdown()

    # -- sending ---------------------------------------------------------------------------

    async def send(self, target: Target, message: OutgoingMessage) -> str:
        """Send one message (threaded under ``reply_to``, with buttons; ``silent`` without a
        notification; in a configured forum topic; a brief's first part pinned where the
        chat is set to pin), or edit the bot's message ``edit`` in place."""
        parse_mode = ParseMode.HTML if message.parse_mode == "html" else None
        markup = _keyboard(message)
        configured = self.channels.get(target.chat_id)
        # a configured forum topic takes the briefs; a reply goes where its question was
        thread = (
            configured.thread
            if configured is not None and configured.thread and message.reply_to is None
            else None
        )
        bot = self.application.bot
        try:
            if message.edit is not None:
                await bot.edit_message_text(
                    message.text,
                    chat_id=chat_ref(target.chat_id),
                    message_id=int(message.edit),
                    parse_mode=parse_mode,
                    reply_markup=markup,
                    link_preview_options=NO_PREVIEW,
                )
                return message.edit
            reply = (
                ReplyParameters(int(message.reply_to), allow_sending_without_reply=True)
                if message.reply_to is not None
                else None
            )
            sent = await bot.send_message(
                chat_id=chat_ref(target.chat_id),
                text=message.text,
                parse_mode=parse_mode,
                link_preview_options=NO_PREVIEW,
                reply_parameters=reply,
                reply_markup=markup,
                # Bot API sendMessage: "Sends the message silently. Users will receive a
                # notification with no sound." A brief of N parts rings once.
                disable_notification=True if message.silent else None,
                # sendMessage: "Unique identifier for the target message thread (topic) of
                # the forum; for forum supergroups only"
                message_thread_id=thread,
            )
        except BadRequest as exc:
            # pressing a button twice asks for the page already shown: nothing to change
            if message.edit is not None and "message is not modified" in exc.message.lower():
                return message.edit
            raise delivery_error(exc) from exc
        except TelegramError as exc:
            raise delivery_error(exc) from exc
        if message.pin and configured is not None and configured.pin:
            await self._pin(target, sent.message_id)
        return str(sent.message_id)

    async def _pin(self, target: Target, message_id: int) -> None:
        """Pin a brief's first part, without a notification. The brief is delivered whatever
        happens here: a refusal (no right to pin) is logged, never raised, so the part is
        not sent again."""
        try:
            await self.application.bot.pin_chat_message(
                chat_ref(target.chat_id), message_id, disable_notification=True
            )
        except TelegramError as exc:
            log.warning(
                "could not pin the brief in %s: %s (the bot needs the right to pin messages)",
                target.chat_id,
                delivery_error(exc),
            )

    async def reply(self, to: IncomingMessage, messages: Sequence[OutgoingMessage]) -> None:
        """Answer in order through the outbox; a reply that fails is logged, not raised.
        Messages marked ``private`` go to the asker's private chat with the bot (a reader's
        own copy, asked for by a button in a group or channel); Telegram refuses that for
        someone who never started the bot, which is logged."""
        here = [m for m in messages if not m.private]
        own = [m for m in messages if m.private]
        if here:
            await send_replies(self, to, here)
        if own:
            private = replace(to, chat_id=to.user_id, chat_kind=ChatKind.PRIVATE)
            await send_replies(self, private, own)

    async def is_chat_admin(self, chat_id: str, user_id: str) -> bool:
        try:
            member = await self.application.bot.get_chat_member(chat_ref(chat_id), int(user_id))
        except (TelegramError, ValueError) as exc:
            log.warning("getChatMember failed chat=%s: %s", chat_id, exc)
            return False
        return member.status in ADMIN_STATUSES

    async def resolve(self, target: ConfiguredTarget) -> str | None:
        return target.chat_id or target.name

    # -- receiving -------------------------------------------------------------------------

    def _incoming(self, update: Update) -> IncomingMessage | None:
        message = update.effective_message
        user = update.effective_user
        chat = update.effective_chat
        if message is None or message.text is None or user is None or chat is None or user.is_bot:
            return None
        username = (self.username or "").lower()
        command, _, _ = message.text.partition(" ")
        # "/start@otherbot" in a group is for another bot
        if (
            command.startswith("/")
            and "@" in command
            and command.split("@", 1)[1].lower() != username
        ):
            return None
        ours = [
            entity
            for entity in message.entities
            if entity.type == MessageEntity.MENTION
            and message.parse_entity(entity).lower() == f"@{username}"
        ]
        text = message.text
        for entity in ours:  # "@briefbot 芯片" asks for 芯片
            text = text.replace(message.parse_entity(entity), " ")
        return IncomingMessage(
            platform=self.name,
            chat_id=str(chat.id),
            chat_kind=CHAT_KINDS.get(chat.type, ChatKind.GROUP),
            user_id=str(user.id),
            user_name=user.full_name,
            text=" ".join(text.split()) if ours else text,
            mentions_bot=bool(ours),
            language=user.language_code,
            message_id=str(message.message_id),
        )

    async def _on_message(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        incoming = self._incoming(update)
        if incoming is None or self.handler is None:
            return
        replies = await self.handler(incoming)
        await self.reply(incoming, replies)

    async def _on_button(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """A button under one of our messages: answer the press (it stops the client's
        spinner), then let the handler turn it into replies or an edit."""
        query = update.callback_query
        if query is None:
            return
        try:
            await query.answer()
        except TelegramError as exc:  # too old: the press still counts
            log.info("callback answer failed: %s", exc)
        message = query.message
        if self.handler is None or message is None or not query.data or query.from_user.is_bot:
            return
        chat = message.chat
        incoming = IncomingMessage(
            platform=self.name,
            chat_id=str(chat.id),
            chat_kind=CHAT_KINDS.get(chat.type, ChatKind.GROUP),
            user_id=str(query.from_user.id),
            user_name=query.from_user.full_name,
            text="",
            language=query.from_user.language_code,
            message_id=str(message.message_id),
            action=query.data,
        )
        await self.reply(incoming, await self.handler(incoming))

    async def _on_inline_query(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        """ "@bot words" in any chat: item cards to pick and share. Answers are not messages:
        they do not go through the outbox."""
        query = update.inline_query
        if query is None or self.inline_handler is None:
            return
        cards = await self.inline_handler(
            InlineQuery(
                platform=self.name,
                user_id=str(query.from_user.id),
                query=query.query,
                language=query.from_user.language_code,
            )
        )
        results = [
            InlineQueryResultArticle(
                id=card.id,
                title=card.title,
                description=card.description,
                url=card.url,
                input_message_content=InputTextMessageContent(
                    card.message.text,
                    parse_mode=ParseMode.HTML if card.message.parse_mode == "html" else None,
                    link_preview_options=NO_PREVIEW,
                ),
            )
            for card in cards
        ]
        try:
            await query.answer(results, cache_time=INLINE_CACHE_SECONDS)
        except TelegramError as exc:
            log.warning("inline answer failed: %s", delivery_error(exc))

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("error handling a Telegram update: %r", context.error)
