"""The small interface every platform adapter implements, and its limits declared as data."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Protocol

from bot.domain import IncomingMessage, OutgoingMessage, Target


class LengthUnit(StrEnum):
    """How a platform counts the length of a message."""

    UTF16 = "utf16"  # Telegram counts UTF-16 code units: an emoji outside the BMP counts 2
    CHARS = "chars"  # code points


@dataclass(frozen=True, slots=True)
class Limits:
    """What a platform accepts and how fast; renderers split by it, delivery paces by it.

    Rates are settings too (a Telegram bot with paid broadcasts may raise them), so the
    composition root builds these from config with :func:`dataclasses.replace`.
    """

    max_length: int
    length_unit: LengthUnit
    max_entities: int | None = None
    # messages per second across all chats
    global_rate: float = 30.0
    # minimum seconds between two messages to one private chat
    per_chat_interval: float = 1.0
    # messages per minute to one group or channel (None: same as a private chat)
    per_group_per_minute: int | None = None
    # random extra delay (seconds, 0..jitter) added to each interval, so sends look human
    jitter: float = 0.0
    # at most this many messages per day from this account (None: no cap)
    daily_cap: int | None = None

    def with_overrides(self, **changes: object) -> Limits:
        """Return a copy with the non-None settings in ``changes`` applied."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


# Telegram's documented limits: text ≤ 4096 UTF-16 units and ≤ 100 entities; about 30 msg/s
# in bulk, about 1 msg/s per chat, 20 msg/min per group or channel.
TELEGRAM_LIMITS = Limits(
    max_length=4096,
    length_unit=LengthUnit.UTF16,
    max_entities=100,
    global_rate=30.0,
    per_chat_interval=1.0,
    per_group_per_minute=20,
)

# WeChat publishes no limits for personal accounts; these are deliberately conservative so an
# automated account is not flagged: a message every few seconds with jitter, and a daily cap.
WECHAT_LIMITS = Limits(
    max_length=1800,
    length_unit=LengthUnit.CHARS,
    max_entities=None,
    global_rate=0.5,
    per_chat_interval=3.0,
    per_group_per_minute=None,
    jitter=2.0,
    daily_cap=500,
)


class Platform(Protocol):
    """What the delivery engine needs from a platform adapter.

    ``send`` returns the platform's message id, or raises one of the neutral outcomes in
    :mod:`bot.errors` (``RetryLater``, ``TransientFailure``, ``TargetGone``,
    ``TargetMigrated``, ``PermanentFailure``); adapters translate their library's errors.
    """

    name: str
    limits: Limits

    async def send(self, target: Target, message: OutgoingMessage) -> str: ...


class Pacer(Protocol):
    """Waits for a chat's next send slot (see bot.delivery.Pacer); False if over the cap."""

    async def wait_turn(self, target: Target) -> bool: ...


class ChatHandler(Protocol):
    """The core's answer to an incoming message: zero or more replies to the same chat."""

    async def __call__(self, message: IncomingMessage) -> list[OutgoingMessage]: ...
