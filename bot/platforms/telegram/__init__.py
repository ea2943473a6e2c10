"""Telegram's registry entry: its settings, limits, chat rules, targets and how to build it.

Light to import: python-telegram-bot is loaded by :meth:`TelegramSpec.build` only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from bot.domain import TargetKind
from bot.errors import ConfigError
from bot.platforms.base import (
    ChatRules,
    ConfiguredTarget,
    LengthUnit,
    Limits,
    Markup,
    Platform,
    PlatformContext,
    PlatformSpec,
)

TOKEN_ENV = "BRIEFBOT_TELEGRAM_TOKEN"

# Elements Telegram's HTML parse mode accepts.
ALLOWED_TAGS = frozenset(
    {
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "a",
        "code",
        "pre",
        "blockquote",
        "tg-spoiler",
        "span",
        "tg-emoji",
    }
)

# Telegram's documented limits (core.telegram.org/bots/api#sendmessage, bots/faq): text ≤ 4096
# UTF-16 units and ≤ 100 entities; about 30 msg/s in bulk, 1 msg/s per chat, 20 msg/min per
# group or channel.
LIMITS = Limits(
    max_length=4096,
    length_unit=LengthUnit.UTF16,
    markup=Markup.HTML,
    allowed_tags=ALLOWED_TAGS,
    max_entities=100,
    global_rate=30.0,
    per_chat_interval=1.0,
    per_group_per_minute=20,
)


# The presentations of a brief (``style``): the whole text, or one message of headlines
# (each a link) with a 全文 / Full button that sends the whole text to whoever presses it.
STYLES = ("full", "digest")


@dataclass(frozen=True)
class TelegramChannel:
    chat: str  # "@username" or a numeric chat id
    schedule: str = ""  # "HH:MM" or a cron expression; empty: the default schedule
    # pin each brief's first part (pinChatMessage, without a notification): the bot needs
    # the right to pin (can_pin_messages in a group, can_edit_messages in a channel)
    pin: bool = False
    # a forum supergroup's topic to post in (message_thread_id); 0: the chat itself
    thread: int = 0


@dataclass(frozen=True)
class TelegramSettings:
    api_base_url: str = "https://api.telegram.org/bot"
    admins: tuple[int, ...] = ()
    channels: tuple[TelegramChannel, ...] = ()
    global_rate: float = 30.0
    per_chat_interval: float = 1.0
    per_group_per_minute: int = 20
    subscriber_schedule: str = ""
    # seconds before a group gets /latest again (admins excepted)
    latest_cooldown: float = 600.0
    # "full": the whole brief (in as many messages as it takes); "digest": one message of the
    # day's headlines, each a link, with a 全文 / Full button for the whole text
    style: str = "full"


class TelegramSpec(PlatformSpec[TelegramSettings]):
    name = "telegram"
    title = "Telegram"
    order = 10
    edits_messages = True  # editMessageText: a correction replaces the text in place
    settings_type = TelegramSettings
    table_lists: ClassVar[Mapping[str, type]] = {"channels": TelegramChannel}
    secret_env = (TOKEN_ENV,)
    default_limits = LIMITS
    noisy_loggers = ("telegram",)
    ranges = (
        ("global_rate", 0, False),
        ("per_chat_interval", 0, True),
        ("per_group_per_minute", 0, False),
        ("latest_cooldown", 0, True),
    )

    def validate(self, settings: TelegramSettings, source: str) -> None:
        if settings.style not in STYLES:
            raise ConfigError(
                f"{source}: [telegram] style must be full or digest, not {settings.style!r}"
            )
        for i, channel in enumerate(settings.channels):
            if channel.thread < 0:
                raise ConfigError(
                    f"{source}: [[telegram.channels]] entry {i + 1} ({channel.chat}): thread "
                    f"must be a forum topic's message_thread_id (a positive number), "
                    f"not {channel.thread}"
                )

    def limits(self, settings: TelegramSettings) -> Limits:
        return LIMITS.with_overrides(
            global_rate=settings.global_rate,
            per_chat_interval=settings.per_chat_interval,
            per_group_per_minute=settings.per_group_per_minute,
        )

    def rules(self, settings: TelegramSettings) -> ChatRules:
        return ChatRules(
            command_prefix="/",
            admins=frozenset(str(a) for a in settings.admins),
            thread_replies=True,
            buttons=True,
            latest_cooldown=settings.latest_cooldown,
        )

    def is_configured(self, settings: TelegramSettings, secrets: Mapping[str, str]) -> bool:
        return bool(secrets.get(TOKEN_ENV))

    def missing(self, settings: TelegramSettings, secrets: Mapping[str, str]) -> str:
        return f"set {TOKEN_ENV}"

    def configured_targets(self, settings: TelegramSettings) -> list[ConfiguredTarget]:
        return [
            ConfiguredTarget(ch.chat, ch.chat, TargetKind.CHANNEL, ch.schedule)
            for ch in settings.channels
        ]

    def subscriber_schedule(self, settings: TelegramSettings) -> str:
        return settings.subscriber_schedule

    def build(self, settings: TelegramSettings, context: PlatformContext) -> Platform:
        from bot.platforms.telegram.adapter import TelegramPlatform

        return TelegramPlatform(
            context.secrets.get(TOKEN_ENV, ""),
            base_url=settings.api_base_url,
            limits=context.limits,
            handler=context.handler,
            inline_handler=context.inline_handler,
            receive=context.receive,
            admins=self.admins(settings),
            menu=context.menu,
            channels=settings.channels,
            # a pool larger than the requests in flight only costs: httpcore scans every
            # pooled connection on each request (measured: a third of the CPU with 512)
            pool_size=context.max_in_flight + 2,
            **context.options,
        )


SPEC = TelegramSpec()
