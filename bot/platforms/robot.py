"""What every push-only webhook platform shares: work-chat group robots (WeCom, DingTalk,
Feishu) and the outbound webhook.

Each target is a named webhook, ``[[<platform>.robots]] name = "ops"``; its URL (which holds
the key) comes only from the environment, ``BRIEFBOT_<PLATFORM>_WEBHOOK_<NAME>``, and its
optional signing secret from ``BRIEFBOT_<PLATFORM>_SECRET_<NAME>``. A platform module gives
:class:`RobotSpec` its limits and a :class:`RobotApi`: how a message becomes a request (payload,
signature) and how the answer becomes a neutral outcome. The HTTP client (aiohttp) is
imported only when the platform is built.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from bot.domain import IncomingMessage, OutgoingMessage, Target, TargetKind
from bot.errors import ConfigError, PermanentFailure, TargetAuthRejected, TransientFailure
from bot.platforms.base import (
    ChatRules,
    ConfiguredTarget,
    Limits,
    Platform,
    PlatformContext,
    PlatformSpec,
    Sender,
)

log = logging.getLogger("briefbot.robot")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# Markdown backslash escapes written by the templates' ``md`` filter
_ESCAPED = re.compile(r"\\([\\`*_\[\]<>~|#>+.-])")
_MARKDOWN_LINK = re.compile(r"\[((?:\\.|[^\]\\\n])*)\]\(([^()\s]*)\)")


@dataclass(frozen=True)
class RobotEntry:
    """One group robot (or webhook endpoint) that receives every brief."""

    # letters, digits, - and _: names its environment variables (upper-cased, - as _)
    name: str
    schedule: str = ""  # "HH:MM" or a cron expression; empty: the default schedule
    # DingTalk and Feishu robots with the "keyword" security setting only accept messages
    # containing one of their keywords: a part without it gets this line added
    keyword: str = ""


@dataclass(frozen=True)
class RobotSettings:
    """What every robot platform's section has; each adds its list of targets."""

    # messages per minute to one robot (the platform's documented limit is the default)
    per_minute: int = 20
    # messages per second across all robots: no platform documents such a limit; this only
    # keeps a fan-out to many groups polite
    global_rate: float = 50.0
    # seconds to wait for an answer
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class RobotRequest:
    url: str
    body: bytes
    headers: Mapping[str, str]


class RobotApi(Protocol):
    """One platform's wire format: the request for a message, the outcome of an answer."""

    def request(
        self, robot: RobotEntry, url: str, secret: str, message: OutgoingMessage, now: float
    ) -> RobotRequest:
        """The HTTP POST that sends ``message`` (``now``: wall-clock seconds, for signing)."""
        ...

    def outcome(
        self, robot: RobotEntry, status: int, body: bytes, headers: Mapping[str, str]
    ) -> None:
        """Return if the platform accepted the message; else raise the neutral outcome
        (``RetryLater(chat_only=True)``, ``TargetGone``, ``TargetAuthRejected``,
        ``PermanentFailure``, ``TransientFailure``)."""
        ...


def env_key(name: str) -> str:
    """A robot's name as it appears in its environment variables: ``ops-cn`` → ``OPS_CN``."""
    return name.upper().replace("-", "_")


def plain_text(markdown: str) -> str:
    """What a reader sees of the templates' Markdown: links as their labels, escapes undone
    (DingTalk's notification title, Feishu's post elements)."""
    text = _MARKDOWN_LINK.sub(lambda m: m.group(1), markdown)
    return _ESCAPED.sub(r"\1", text.replace("**", ""))


def unescape(text: str) -> str:
    """Undo the ``md`` filter's backslash escapes."""
    return _ESCAPED.sub(r"\1", text)


def first_line(markdown: str, limit: int = 64) -> str:
    """The first non-empty line as plain text, cut to ``limit`` characters (a title)."""
    for line in markdown.splitlines():
        text = plain_text(line).lstrip("#> ").strip()
        if text:
            return text[:limit]
    return ""


def markdown_segments(line: str) -> list[tuple[str, str | None]]:
    """A line of the templates' Markdown as (text, link URL or None) segments, escapes undone."""
    segments: list[tuple[str, str | None]] = []
    position = 0
    for match in _MARKDOWN_LINK.finditer(line):
        if match.start() > position:
            segments.append((plain_text(line[position : match.start()]), None))
        segments.append((unescape(match.group(1)), match.group(2)))
        position = match.end()
    if position < len(line):
        segments.append((plain_text(line[position:]), None))
    return [(text, url) for text, url in segments if text]


def message_id(robot: str, body: bytes) -> str:
    """Robots return no message id: a digest of what was sent names it in the ledger."""
    return f"{robot}:{hashlib.sha256(body).hexdigest()[:16]}"


class RobotSpec(PlatformSpec[RobotSettings]):
    """The registry entry of a push-only webhook platform; subclasses set the class data
    and :meth:`api`."""

    settings_type: ClassVar[type] = RobotSettings
    table_lists: ClassVar[Mapping[str, type]] = {"robots": RobotEntry}
    # what [[<platform>.<key>]] is called (the outbound webhook says "endpoints")
    targets_key: ClassVar[str] = "robots"
    # the service's address for a bare key: a value without "://" is appended to it
    default_url: ClassVar[str] = ""
    # what one target is called in messages
    target_noun: ClassVar[str] = "robot"
    has_subscribers = False  # push-only: nobody subscribes, the configured robots get it
    ranges: ClassVar[Sequence[tuple[str, float, bool]]] = (
        ("per_minute", 0, False),
        ("global_rate", 0, False),
        ("timeout", 0, False),
    )

    @property
    def webhook_prefix(self) -> str:
        return f"BRIEFBOT_{self.name.upper()}_WEBHOOK_"

    @property
    def secret_prefix(self) -> str:
        return f"BRIEFBOT_{self.name.upper()}_SECRET_"

    def webhook_env(self, robot: RobotEntry) -> str:
        return f"{self.webhook_prefix}{env_key(robot.name)}"

    def secret_env_of(self, robot: RobotEntry) -> str:
        return f"{self.secret_prefix}{env_key(robot.name)}"

    def api(self, settings: RobotSettings) -> RobotApi:
        raise NotImplementedError

    def entries(self, settings: RobotSettings) -> tuple[RobotEntry, ...]:
        """The configured robots (``[[<platform>.<targets_key>]]``)."""
        found: tuple[RobotEntry, ...] = getattr(settings, self.targets_key)
        return found

    def limits(self, settings: RobotSettings) -> Limits:
        return self.default_limits.with_overrides(
            per_group_per_minute=settings.per_minute, global_rate=settings.global_rate
        )

    def rules(self, settings: RobotSettings) -> ChatRules:
        # push-only: nobody writes to the bot here, and nobody administers it from a chat
        return ChatRules(command_prefix="", admins=frozenset())

    def is_configured(self, settings: RobotSettings, secrets: Mapping[str, str]) -> bool:
        return any(secrets.get(self.webhook_env(robot)) for robot in self.entries(settings))

    def has_schedule(self, settings: RobotSettings, secrets: Mapping[str, str]) -> bool:
        return bool(self.entries(settings))

    def missing(self, settings: RobotSettings, secrets: Mapping[str, str]) -> str:
        if not self.entries(settings):
            return f"add a [[{self.name}.{self.targets_key}]] entry with a name"
        wanted = ", ".join(self.webhook_env(robot) for robot in self.entries(settings))
        return f"set {wanted}"

    def configured_targets(self, settings: RobotSettings) -> list[ConfiguredTarget]:
        return [
            ConfiguredTarget(robot.name, robot.name, TargetKind.GROUP, robot.schedule)
            for robot in self.entries(settings)
        ]

    def unresolved(self, settings: RobotSettings, target: ConfiguredTarget) -> str:
        robot = next((r for r in self.entries(settings) if r.name == target.name), None)
        env = self.webhook_env(robot) if robot is not None else f"{self.webhook_prefix}<NAME>"
        return f"{self.name} {self.target_noun} {target.name!r} has no webhook: set {env}"

    def validate(self, settings: RobotSettings, source: str) -> None:
        seen: set[str] = set()
        for i, robot in enumerate(self.entries(settings)):
            where = f"{source}: [[{self.name}.{self.targets_key}]] entry {i + 1}"
            if not _NAME.match(robot.name):
                raise ConfigError(
                    f"{where}: name must be 1-64 letters, digits, - or _ (it names "
                    f"{self.webhook_prefix}<NAME>), not {robot.name!r}"
                )
            if env_key(robot.name) in seen:
                raise ConfigError(f"{where}: the name {robot.name!r} is used twice")
            seen.add(env_key(robot.name))

    def webhook_url(self, value: str) -> str:
        """The URL to post to, from the variable's value: a URL, or a bare key."""
        value = value.strip()
        if "://" in value or not self.default_url:
            return value
        return f"{self.default_url}{value}"

    def build(self, settings: RobotSettings, context: PlatformContext) -> Platform:
        webhooks: dict[str, str] = {}
        secrets: dict[str, str] = {}
        for robot in self.entries(settings):
            value = context.secrets.get(self.webhook_env(robot), "")
            if value:
                url = self.webhook_url(value)
                if not url.startswith(("https://", "http://")):
                    raise ConfigError(
                        f"{self.webhook_env(robot)} must be an http(s) URL or the robot's key"
                    )
                webhooks[robot.name] = url
            secret = context.secrets.get(self.secret_env_of(robot), "")
            if secret:
                secrets[robot.name] = secret
        return RobotPlatform(
            self.name,
            self.api(settings),
            robots={robot.name: robot for robot in self.entries(settings)},
            webhooks=webhooks,
            secrets=secrets,
            limits=context.limits,
            timeout=settings.timeout,
            pool_size=context.max_in_flight + 2,
            missing_env={robot.name: self.webhook_env(robot) for robot in self.entries(settings)},
            noun=self.target_noun,
            **context.options,
        )


class RobotPlatform:
    """A push-only adapter: one POST per message to the robot's webhook."""

    def __init__(
        self,
        name: str,
        api: RobotApi,
        *,
        robots: Mapping[str, RobotEntry],
        webhooks: Mapping[str, str],
        secrets: Mapping[str, str],
        limits: Limits,
        timeout: float = 10.0,
        pool_size: int = 26,
        missing_env: Mapping[str, str] | None = None,
        noun: str = "robot",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self._noun = noun
        self.limits = limits
        self.outbox: Sender | None = None
        self._api = api
        self._robots = dict(robots)
        self._webhooks = dict(webhooks)
        self._secrets = dict(secrets)
        self._timeout = timeout
        self._pool_size = pool_size
        self._missing_env = dict(missing_env or {})
        self._clock = clock
        self._session: Any = None  # aiohttp.ClientSession once started

    def __repr__(self) -> str:  # never the webhooks: they hold the keys
        return f"RobotPlatform({self.name!r}, robots={sorted(self._robots)})"

    async def start(self) -> None:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                timeout=aiohttp.ClientTimeout(total=self._timeout),
                trust_env=True,  # HTTPS_PROXY and NO_PROXY
            )

    async def stop(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def send(self, target: Target, message: OutgoingMessage) -> str:
        import aiohttp

        robot = self._robots.get(target.chat_id)
        url = self._webhooks.get(target.chat_id)
        if robot is None or url is None:
            env = self._missing_env.get(target.chat_id, "its webhook variable")
            raise PermanentFailure(
                f"{self.name} robot {target.chat_id!r} has no webhook: set {env}"
            )
        if self._session is None:
            await self.start()
        request = self._api.request(
            robot, url, self._secrets.get(robot.name, ""), message, self._clock()
        )
        try:
            async with self._session.post(
                request.url, data=request.body, headers=dict(request.headers)
            ) as response:
                status = response.status
                body = await response.read()
                headers = dict(response.headers)
        except TimeoutError:
            # not chained: aiohttp's timeout names the URL, and the URL holds the key
            raise TransientFailure(f"{self._where(robot)}: no answer in time") from None
        except aiohttp.ClientError as exc:
            # the exception's text may hold the URL, and the URL holds the key
            raise TransientFailure(f"{self._where(robot)}: {type(exc).__name__}") from None
        if status >= 500:
            raise TransientFailure(f"{self._where(robot)}: HTTP {status}")
        self._api.outcome(robot, status, body, headers)
        return message_id(robot.name, request.body)

    def _where(self, robot: RobotEntry) -> str:
        return f"{self.name} {self._noun} {robot.name!r}"

    async def reply(self, to: IncomingMessage, messages: Sequence[OutgoingMessage]) -> None:
        raise PermanentFailure(f"{self.name} robots receive nothing, so they cannot reply")

    async def is_chat_admin(self, chat_id: str, user_id: str) -> bool:
        return False

    async def resolve(self, target: ConfiguredTarget) -> str | None:
        """A robot is reachable when its webhook is set; otherwise it is reported unresolved."""
        return target.name if target.name in self._webhooks else None


def answer_code(where: str, status: int, body: bytes, *keys: str) -> tuple[int, dict[str, Any]]:
    """The code of a robot API's JSON answer (the first of ``keys`` present) and the answer.
    An unreadable answer is a retry, unless the HTTP status already says the request was bad."""
    try:
        data = json.loads(body)
        code = int(next(data[key] for key in keys if key in data))
    except (ValueError, TypeError, StopIteration) as exc:
        if status >= 400:
            raise PermanentFailure(f"{where}: HTTP {status}") from exc
        raise TransientFailure(f"{where}: unreadable answer (HTTP {status})") from exc
    return code, data


def sized_body(where: str, payload: Mapping[str, Any], limit: int, service: str) -> bytes:
    """The request body, or PermanentFailure when it is over what the service takes (the
    renderer keeps the text well below: only an item far over the usual size gets here)."""
    body = json_body(payload)
    if len(body) > limit:
        raise PermanentFailure(
            f"{where}: the message is {len(body):,} bytes as sent, over the {limit:,} "
            f"{service} takes: shorten the longest item"
        )
    return body


def security_refused(where: str, platform: str, reason: str) -> TargetAuthRejected:
    """A robot's security setting refused the message: say which settings to check."""
    return TargetAuthRejected(
        f"{where}: a security setting refused the message (signature and clock: "
        f"BRIEFBOT_{platform.upper()}_SECRET_<NAME>; keyword: keyword = in its entry; or the "
        f"IP allow-list): {reason}"
    )


def json_body(payload: Mapping[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def timestamp_ms(now: float) -> str:
    return str(int(now * 1000))
