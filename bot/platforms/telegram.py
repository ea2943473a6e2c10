"""The Telegram adapter: python-telegram-bot in, neutral messages and outcomes out."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Sequence

from telegram import BotCommand, LinkPreviewOptions, MessageEntity, Update
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
from telegram.ext import Application, ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.domain import ChatKind, IncomingMessage, OutgoingMessage, Target, TargetKind
from bot.errors import (
    ConfigError,
    PermanentFailure,
    RetryLater,
    TargetGone,
    TargetMigrated,
    TransientFailure,
)
from bot.platforms.base import TELEGRAM_LIMITS, ChatHandler, Limits, Pacer

log = logging.getLogger("briefbot.telegram")

# (command, Chinese description, English description) registered with setMyCommands.
BOT_COMMANDS = (
    ("start", "开始使用", "Start"),
    ("help", "帮助", "Help"),
    ("subscribe", "订阅每日AI简报", "Subscribe to the daily AI brief"),
    ("unsubscribe", "退订", "Unsubscribe"),
    ("latest", "最新一期简报", "The latest brief"),
    ("search", "搜索：/search 关键词", "Search: /search keyword"),
)
ADMIN_STATUSES = {ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER}
CHAT_KINDS: dict[str, ChatKind] = {
    ChatType.PRIVATE: ChatKind.PRIVATE,
    ChatType.GROUP: ChatKind.GROUP,
    ChatType.SUPERGROUP: ChatKind.GROUP,
    ChatType.CHANNEL: ChatKind.CHANNEL,
}


def chat_ref(chat_id: str) -> int | str:
    """Numeric ids go to the API as numbers, "@channel" names as text."""
    try:
        return int(chat_id)
    except ValueError:
        return chat_id


def _seconds(value: int | float | dt.timedelta) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


class TelegramPlatform:
    """Sends through the Bot API and turns updates into :class:`IncomingMessage`."""

    name = "telegram"

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.telegram.org/bot",
        limits: Limits = TELEGRAM_LIMITS,
        handler: ChatHandler | None = None,
        timeout: float = 10.0,
    ) -> None:
        if not token:
            raise ConfigError("Telegram needs a bot token: set BRIEFBOT_TELEGRAM_TOKEN")
        self.limits = limits
        self.handler = handler
        self.application: Application = (  # type: ignore[type-arg]
            ApplicationBuilder()
            .token(token)
            .base_url(base_url.rstrip("/"))
            .concurrent_updates(True)  # one slow chat must not hold up the others
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .write_timeout(timeout)
            .pool_timeout(timeout)
            .connection_pool_size(512)
            .build()
        )
        self.application.add_handler(MessageHandler(filters.TEXT, self._on_message))
        self.application.add_error_handler(self._on_error)
        self._polling = False
        # Set by the composition root to the delivery engine's pacer, so replies and
        # broadcasts share one budget per chat and never trip Telegram's limits together.
        self.pacer: Pacer | None = None

    @property
    def username(self) -> str:
        return str(self.application.bot.username)

    async def start(self, *, polling: bool = True) -> None:
        """Connect (getMe), register the commands and, if asked, start long polling."""
        try:
            await self.application.initialize()
        except InvalidToken as exc:
            raise ConfigError(
                "the Telegram bot token was rejected (BRIEFBOT_TELEGRAM_TOKEN)"
            ) from exc
        except NetworkError as exc:
            raise TransientFailure(f"cannot reach the Telegram Bot API: {exc}") from exc
        if polling:
            bot = self.application.bot
            await bot.set_my_commands([BotCommand(c, zh) for c, zh, _ in BOT_COMMANDS])
            await bot.set_my_commands(
                [BotCommand(c, en) for c, _, en in BOT_COMMANDS], language_code="en"
            )
            await self.application.start()
            assert self.application.updater is not None
            await self.application.updater.start_polling(allowed_updates=["message"])
            self._polling = True
        log.info("telegram connected bot=@%s polling=%s", self.username, polling)

    async def stop(self) -> None:
        if self._polling:
            assert self.application.updater is not None
            await self.application.updater.stop()
            await self.application.stop()
            self._polling = False
        await self.application.shutdown()

    # -- sending ---------------------------------------------------------------------------

    async def send(self, target: Target, message: OutgoingMessage) -> str:
        try:
            sent = await self.application.bot.send_message(
                chat_id=chat_ref(target.chat_id),
                text=message.text,
                parse_mode=ParseMode.HTML if message.parse_mode == "html" else None,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        except RetryAfter as exc:
            raise RetryLater(_seconds(exc.retry_after)) from exc
        except ChatMigrated as exc:
            raise TargetMigrated(str(exc.new_chat_id)) from exc
        except Forbidden as exc:
            raise TargetGone(exc.message) from exc
        except BadRequest as exc:
            if "chat not found" in exc.message.lower():
                raise TargetGone(exc.message) from exc
            raise PermanentFailure(exc.message) from exc
        except InvalidToken as exc:
            raise PermanentFailure("the bot token was rejected") from exc
        except (TimedOut, NetworkError) as exc:  # includes 5xx answers
            raise TransientFailure(str(exc) or type(exc).__name__) from exc
        except TelegramError as exc:
            raise PermanentFailure(str(exc)) from exc
        return str(sent.message_id)

    async def is_chat_admin(self, chat_id: str, user_id: str) -> bool:
        try:
            member = await self.application.bot.get_chat_member(chat_ref(chat_id), int(user_id))
        except (TelegramError, ValueError) as exc:
            log.warning("getChatMember failed chat=%s: %s", chat_id, exc)
            return False
        return member.status in ADMIN_STATUSES

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
        mentioned = any(
            entity.type == MessageEntity.MENTION
            and message.parse_entity(entity).lower() == f"@{username}"
            for entity in message.entities
        )
        return IncomingMessage(
            platform=self.name,
            chat_id=str(chat.id),
            chat_kind=CHAT_KINDS.get(chat.type, ChatKind.GROUP),
            user_id=str(user.id),
            user_name=user.full_name,
            text=message.text,
            mentions_bot=mentioned,
            language=user.language_code,
        )

    async def _on_message(self, update: Update, _context: ContextTypes.DEFAULT_TYPE) -> None:
        incoming = self._incoming(update)
        if incoming is None or self.handler is None:
            return
        replies = await self.handler(incoming)
        await self.reply(incoming.chat_id, replies)

    async def reply(self, chat_id: str, replies: Sequence[OutgoingMessage]) -> None:
        """Answer in order; a reply that fails is logged, not raised into PTB."""
        # negative ids are groups and channels: their pacing is per minute, not per second
        kind = TargetKind.GROUP if chat_id.startswith("-") else TargetKind.SUBSCRIBER
        target = Target(self.name, chat_id, kind)
        for reply in replies:
            for attempt in range(3):
                if self.pacer is not None:
                    await self.pacer.wait_turn(target)
                try:
                    await self.send(target, reply)
                    break
                except RetryLater as exc:
                    await asyncio.sleep(min(exc.retry_after, 30.0))
                except (TransientFailure, PermanentFailure, TargetGone) as exc:
                    log.warning("reply failed chat=%s attempt=%d: %s", chat_id, attempt + 1, exc)
                    if not isinstance(exc, TransientFailure):
                        return

    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.error("error handling a Telegram update: %r", context.error)
