"""Composition root: settings → store → renderer → platforms → delivery → scheduler."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from bot.config import Settings
from bot.platforms.base import TELEGRAM_LIMITS, WECHAT_LIMITS, Limits
from bot.render import Renderer
from bot.store import Store


@dataclass
class Core:
    """The platform-neutral pieces every entry point needs."""

    settings: Settings
    store: Store
    renderer: Renderer

    def today(self) -> dt.date:
        return dt.datetime.now(self.settings.tz).date()

    def limits(self, platform: str) -> Limits:
        return platform_limits(self.settings, platform)


def platform_limits(settings: Settings, platform: str) -> Limits:
    """A platform's declared limits with the rates and lengths the settings override."""
    if platform == "telegram":
        tg = settings.telegram
        return TELEGRAM_LIMITS.with_overrides(
            global_rate=tg.global_rate,
            per_chat_interval=tg.per_chat_interval,
            per_group_per_minute=tg.per_group_per_minute,
        )
    if platform == "wechat":
        wx = settings.wechat
        return WECHAT_LIMITS.with_overrides(
            max_length=settings.render.wechat_max_length,
            global_rate=wx.global_rate,
            per_chat_interval=wx.min_interval,
            jitter=wx.jitter,
            daily_cap=wx.daily_cap,
        )
    raise ValueError(f"unknown platform {platform!r}")


def build_core(settings: Settings, *, database_url: str | None = None) -> Core:
    store = Store.open(database_url or settings.store.resolved_url())
    template_dir = Path(settings.render.template_dir) if settings.render.template_dir else None
    return Core(settings=settings, store=store, renderer=Renderer(template_dir))
