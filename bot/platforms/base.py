"""What a platform is to the core: an adapter (:class:`Platform`), its limits as data
(:class:`Limits`), its chat rules (:class:`ChatRules`) and its registry entry
(:class:`PlatformSpec`).

This module imports no platform library: the registry entries are loaded for every command,
so each platform's heavy client library is imported only by its ``build``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from bot.domain import (
    ChatKind,
    IncomingMessage,
    InlineCard,
    InlineQuery,
    OutgoingMessage,
    Target,
    TargetKind,
)


class LengthUnit(StrEnum):
    """How a platform counts the length of a message."""

    UTF16 = "utf16"  # Telegram counts UTF-16 code units: an emoji outside the BMP counts 2
    CHARS = "chars"  # code points
    BYTES = "bytes"  # UTF-8 bytes (the work-chat robots count these)


class Markup(StrEnum):
    """What a platform's messages are written in; the renderer escapes and splits by it."""

    TEXT = "text"
    HTML = "html"  # a subset of HTML: Limits.allowed_tags says which elements
    # a platform's Markdown dialect (the work-chat robots): links are never cut
    MARKDOWN = "markdown"
    # one JSON document per message (the outbound webhook): never split; too long is an error
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Limits:
    """What a platform accepts and how fast; renderers split by it, the outbox paces by it.

    Rates are settings too (a Telegram bot with paid broadcasts may raise them), so a
    platform's registry entry builds these from its settings with :meth:`with_overrides`.
    """

    max_length: int
    length_unit: LengthUnit
    markup: Markup = Markup.TEXT
    allowed_tags: frozenset[str] = frozenset()
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

    def chat_interval(self, kind: TargetKind) -> float:
        """Seconds between two messages to one chat of this kind."""
        if kind is TargetKind.SUBSCRIBER or not self.per_group_per_minute:
            return self.per_chat_interval
        return max(self.per_chat_interval, 60.0 / self.per_group_per_minute)

    @property
    def unpaced(self) -> bool:
        return math.isinf(self.global_rate)


@dataclass(frozen=True, slots=True)
class ChatRules:
    """How people address the bot on one platform, and how it answers them."""

    command_prefix: str  # "/" on Telegram, "#" on WeChat
    admins: frozenset[str]  # platform user ids, never display names
    query_prefixes: tuple[str, ...] = ()
    hot_keywords: tuple[str, ...] = ()
    user_cooldown: float = 0.0
    group_cooldown: float = 0.0
    search_in_private: bool = True
    # the first reply in a group @-mentions the asker (WeChat groups are busy and flat)
    mention_asker_in_groups: bool = False
    # the first reply in a group is threaded under the asker's message (Telegram)
    thread_replies: bool = False
    # messages can carry buttons and be edited: result pages turn in place (Telegram)
    buttons: bool = False
    # the language of replies when the platform does not say the asker's (zh or en)
    language: str = "zh"
    # seconds before a group gets the latest brief again on request (admins excepted)
    latest_cooldown: float = 600.0


@dataclass(frozen=True, slots=True)
class ConfiguredTarget:
    """A channel or group named in the settings; ``chat_id`` is None until it is resolved
    by ``name`` (a WeChat group given by its topic)."""

    name: str
    chat_id: str | None
    kind: TargetKind
    schedule: str = ""


class Sender(Protocol):
    """Sends one message, paced and retried: what an adapter's replies go through.
    ``urgent`` (a reply someone is waiting for) goes ahead of a broadcast's queue, within
    the same limits."""

    async def send(
        self, target: Target, message: OutgoingMessage, *, urgent: bool = False
    ) -> str: ...


ChatHandler = Callable[[IncomingMessage], Awaitable[Sequence[OutgoingMessage]]]
# "@bot words" typed in any chat (Telegram's inline mode) → cards to pick from
InlineHandler = Callable[[InlineQuery], Awaitable[Sequence[InlineCard]]]


class Platform(Protocol):
    """A connected platform adapter: one signature for every platform.

    ``send`` is pure: one request, returning the platform's message id or raising one of the
    neutral outcomes in :mod:`bot.errors` (``RetryLater``, ``TransientFailure``,
    ``TargetGone``, ``TargetMigrated``, ``PermanentFailure``, ``AuthRejected``). Pacing,
    retries and caps belong to the platform's outbox, which ``reply`` sends through.
    """

    name: str
    limits: Limits
    outbox: Sender | None  # set by the composition root; ``reply`` sends through it

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, target: Target, message: OutgoingMessage) -> str: ...

    async def reply(self, to: IncomingMessage, messages: Sequence[OutgoingMessage]) -> None: ...

    async def is_chat_admin(self, chat_id: str, user_id: str) -> bool: ...

    async def resolve(self, target: ConfiguredTarget) -> str | None:
        """The chat id of a configured channel or group, or None if it cannot be found."""
        ...


@dataclass
class PlatformContext:
    """What the composition root hands a platform's ``build``."""

    # the spec's secret_env names → values from the environment (never in a repr)
    secrets: Mapping[str, str] = field(repr=False)
    limits: Limits
    handler: ChatHandler | None  # None: send only (the CLI's send)
    inline_handler: InlineHandler | None = None  # platforms with an inline mode use it
    outbox: Sender | None = None  # set right after build: replies go through it
    receive: bool = True  # poll for updates (the service) or only send (the CLI)
    # requests the outbox lets into flight at once (size connection pools by it)
    max_in_flight: int = 24
    # the chat's command table as (name, Chinese, English, admin-only), for command menus
    menu: Sequence[tuple[str, str, str, bool]] = ()
    # adapter keyword arguments from the caller (tests: timeouts, a transport)
    options: Mapping[str, Any] = field(default_factory=dict)


S = TypeVar("S")


class PlatformSpec(Generic[S]):
    """A platform's registry entry: everything the core needs to know about it, as data and
    small functions over its own settings section ``[name]`` (type ``S``).

    Subclasses live in ``bot/platforms/<name>/__init__.py`` and must stay light to import;
    :meth:`build` imports the client library.
    """

    name: ClassVar[str]
    title: ClassVar[str]  # for people: "Telegram"
    # where it is listed (menus, defaults, status): chat platforms first, then push-only ones
    order: ClassVar[int] = 100
    # people can subscribe in a chat (push-only platforms have configured targets only)
    has_subscribers: ClassVar[bool] = True
    # a sent message can be edited in place (a correction edits it; otherwise a note follows)
    edits_messages: ClassVar[bool] = False
    settings_type: ClassVar[type]
    # [[name.KEY]] arrays of tables in the settings: KEY → the dataclass of one entry
    table_lists: ClassVar[Mapping[str, type]] = {}
    # environment variables holding this platform's secrets (never read from a file)
    secret_env: ClassVar[tuple[str, ...]] = ()
    # prefixes of secrets named per target (BRIEFBOT_WECOM_WEBHOOK_<NAME>): every variable
    # starting with one is this platform's secret
    secret_prefixes: ClassVar[tuple[str, ...]] = ()
    default_limits: ClassVar[Limits]
    # ids in logs are personal data on some platforms: mask them
    masks_ids: ClassVar[bool] = False
    # regular expressions of personal ids to mask wherever they appear in text
    personal_ids: ClassVar[tuple[str, ...]] = ()
    # loggers of its libraries that say too much at INFO (tokens in URLs, message text)
    noisy_loggers: ClassVar[tuple[str, ...]] = ()
    # settings moved here from elsewhere: (old section, old key) → new key in [name]
    moved_settings: ClassVar[Mapping[tuple[str, str], str]] = {}
    # (setting, smallest allowed value, whether that value itself is allowed)
    ranges: ClassVar[Sequence[tuple[str, float, bool]]] = ()

    def limits(self, settings: S) -> Limits:
        return self.default_limits

    def rules(self, settings: S) -> ChatRules:
        raise NotImplementedError

    def admins(self, settings: S) -> frozenset[str]:
        return self.rules(settings).admins

    def is_configured(self, settings: S, secrets: Mapping[str, str]) -> bool:
        """Whether this deployment uses the platform (a token, an endpoint …)."""
        raise NotImplementedError

    def has_schedule(self, settings: S, secrets: Mapping[str, str]) -> bool:
        """Whether ``status`` should list its schedule (configured, or targets set up)."""
        return self.is_configured(settings, secrets) or bool(self.configured_targets(settings))

    def missing(self, settings: S, secrets: Mapping[str, str]) -> str:
        """What to set to configure it (for the error when it is asked for and is not)."""
        raise NotImplementedError

    def configured_targets(self, settings: S) -> list[ConfiguredTarget]:
        """Channels and groups from the settings that get every brief."""
        return []

    def unresolved(self, settings: S, target: ConfiguredTarget) -> str:
        """Why a configured target cannot be sent to (``resolve`` found no chat for it)."""
        return f"{self.name} group {target.name!r} not found"

    def subscriber_schedule(self, settings: S) -> str:
        """The subscribers' own schedule ("" for the default)."""
        return ""

    def validate(self, settings: S, source: str) -> None:
        """Checks across settings, with messages naming the setting and ``source``."""

    def build(self, settings: S, context: PlatformContext) -> Platform:
        raise NotImplementedError


async def send_replies(
    platform: Platform, to: IncomingMessage, messages: Sequence[OutgoingMessage]
) -> None:
    """What an adapter's ``reply`` does: answer in order through the platform's outbox, as
    urgent sends; a reply that fails is logged (with the platform's id masking), not raised."""
    from bot.errors import DeliveryError
    from bot.logs import log_target

    kind = TargetKind.SUBSCRIBER if to.chat_kind is ChatKind.PRIVATE else TargetKind.GROUP
    target = Target(platform.name, to.chat_id, kind)
    for message in messages:
        try:
            if platform.outbox is None:
                await platform.send(target, message)
            else:
                await platform.outbox.send(target, message, urgent=True)
        except DeliveryError as exc:
            # on the platform's own logger, where its other events are
            logging.getLogger(f"briefbot.{platform.name}").warning(
                "reply failed chat=%s: %s", log_target(platform.name, to.chat_id), exc
            )
            return
