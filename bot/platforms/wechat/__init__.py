"""WeChat's registry entry: its settings, limits, chat rules, targets and how to build it.

Light to import: wechaty (the ``briefbot[wechat]`` extra) is loaded by
:meth:`WechatSpec.build` only.
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
    Platform,
    PlatformContext,
    PlatformSpec,
)

TOKEN_ENV = "BRIEFBOT_WECHAT_TOKEN"

# WeChat publishes no limits for personal accounts; these are deliberately conservative so an
# automated account is not flagged: a message every few seconds with jitter, and a daily cap.
LIMITS = Limits(
    max_length=1800,
    length_unit=LengthUnit.CHARS,
    global_rate=0.5,
    per_chat_interval=3.0,
    per_group_per_minute=None,
    jitter=2.0,
    daily_cap=500,
)


@dataclass(frozen=True)
class WechatGroup:
    id: str = ""
    topic: str = ""
    schedule: str = ""
    # the language of replies in this group (zh or en); empty: [wechat] language
    language: str = ""


@dataclass(frozen=True)
class WechatSettings:
    endpoint: str = ""
    admins: tuple[str, ...] = ()
    groups: tuple[WechatGroup, ...] = ()
    prefixes: tuple[str, ...] = ("#", "查")
    hot_keywords: tuple[str, ...] = ("今日简报",)
    global_rate: float = 0.5  # messages per second from the account, all groups together
    min_interval: float = 3.0
    jitter: float = 2.0
    daily_cap: int = 500
    user_cooldown: float = 10.0
    group_cooldown: float = 3.0
    max_length: int = 1800  # characters per message
    subscriber_schedule: str = ""
    # the language of replies (WeChat does not say the reader's): zh or en
    language: str = "zh"
    # seconds before a group gets 今日简报 again (admins excepted)
    latest_cooldown: float = 600.0


class WechatSpec(PlatformSpec[WechatSettings]):
    name = "wechat"
    title = "WeChat"
    order = 20
    settings_type = WechatSettings
    table_lists: ClassVar[Mapping[str, type]] = {"groups": WechatGroup}
    secret_env = (TOKEN_ENV,)
    default_limits = LIMITS
    masks_ids = True  # wxids are personal data
    personal_ids = (r"wxid_[A-Za-z0-9_-]{3,}", r"[A-Za-z0-9_-]{5,}@chatroom")
    noisy_loggers = ("grpclib", "wechaty")
    moved_settings: ClassVar[Mapping[tuple[str, str], str]] = {
        ("render", "wechat_max_length"): "max_length"
    }
    ranges = (
        ("global_rate", 0, False),
        ("min_interval", 0, True),
        ("jitter", 0, True),
        ("daily_cap", 0, True),
        ("user_cooldown", 0, True),
        ("group_cooldown", 0, True),
        ("max_length", 200, True),
        ("latest_cooldown", 0, True),
    )

    def limits(self, settings: WechatSettings) -> Limits:
        return LIMITS.with_overrides(
            max_length=settings.max_length,
            global_rate=settings.global_rate,
            per_chat_interval=settings.min_interval,
            jitter=settings.jitter,
            daily_cap=settings.daily_cap,
        )

    def rules(self, settings: WechatSettings) -> ChatRules:
        return ChatRules(
            command_prefix="#",
            admins=frozenset(settings.admins),
            query_prefixes=settings.prefixes,
            hot_keywords=settings.hot_keywords,
            user_cooldown=settings.user_cooldown,
            group_cooldown=settings.group_cooldown,
            mention_asker_in_groups=True,
            language=settings.language,
            latest_cooldown=settings.latest_cooldown,
        )

    def is_configured(self, settings: WechatSettings, secrets: Mapping[str, str]) -> bool:
        return bool(settings.endpoint)

    def has_schedule(self, settings: WechatSettings, secrets: Mapping[str, str]) -> bool:
        return bool(settings.endpoint)

    def missing(self, settings: WechatSettings, secrets: Mapping[str, str]) -> str:
        return f"set [wechat] endpoint (or BRIEFBOT_WECHAT_ENDPOINT) and {TOKEN_ENV}"

    def configured_targets(self, settings: WechatSettings) -> list[ConfiguredTarget]:
        return [
            ConfiguredTarget(g.topic or g.id, g.id or None, TargetKind.GROUP, g.schedule)
            for g in settings.groups
        ]

    def subscriber_schedule(self, settings: WechatSettings) -> str:
        return settings.subscriber_schedule

    def validate(self, settings: WechatSettings, source: str) -> None:
        if settings.language not in ("zh", "en"):
            raise ConfigError(
                f"{source}: [wechat] language must be zh or en, not {settings.language!r}"
            )
        for i, group in enumerate(settings.groups):
            if group.language not in ("", "zh", "en"):
                raise ConfigError(
                    f"{source}: [[wechat.groups]] entry {i + 1}: language must be zh or en, "
                    f"not {group.language!r}"
                )
            if not (group.id or group.topic):
                raise ConfigError(
                    f"{source}: [[wechat.groups]] entry {i + 1} needs an id or a topic"
                )

    def build(self, settings: WechatSettings, context: PlatformContext) -> Platform:
        try:
            from bot.platforms.wechat.adapter import WechatPlatform
        except ImportError as exc:
            raise ConfigError(
                f"WeChat needs the wechat extra: pip install 'briefbot[wechat]' ({exc})"
            ) from exc

        return WechatPlatform(
            endpoint=settings.endpoint,
            token=context.secrets.get(TOKEN_ENV, ""),
            handler=context.handler,
            # the adapter forwards group messages that could be for us; the core decides
            prefixes=(*settings.prefixes, *settings.hot_keywords),
            # a group's own language, by room id or by topic
            languages={
                key: g.language
                for g in settings.groups
                if g.language
                for key in (g.id, f"topic:{g.topic}" if g.topic else "")
                if key
            },
            limits=context.limits,
            admins=self.admins(settings),
            **context.options,
        )


SPEC = WechatSpec()
