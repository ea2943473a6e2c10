"""The running service: platforms, chat commands and the delivery engine wired together."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.app import Core
from bot.commands import Commands, PlatformRules
from bot.delivery import DeliveryEngine, ProgressCallback
from bot.dispatch import Audience, SendResult, send_brief
from bot.domain import OutgoingMessage, Target
from bot.errors import ConfigError
from bot.platforms.base import Platform

log = logging.getLogger("briefbot.service")


@dataclass
class Service:
    """Everything ``briefbot run`` starts. Platforms are imported only when configured."""

    core: Core
    platforms: dict[str, Platform] = field(default_factory=dict)
    commands: dict[str, Commands] = field(default_factory=dict)
    engine: DeliveryEngine | None = None

    async def send(
        self,
        date: dt.date,
        *,
        platform: str | None = None,
        audience: Audience = Audience.ALL,
        chat_ids: Sequence[str] = (),
        force: bool = False,
        dry_run: bool = False,
        progress: ProgressCallback | None = None,
    ) -> SendResult:
        """The one path every send takes: CLI, admin chat command and schedule."""
        assert self.engine is not None
        return await send_brief(
            self.core,
            self.engine,
            date,
            platform=platform,
            audience=audience,
            chat_ids=chat_ids,
            force=force,
            dry_run=dry_run,
            progress=progress,
        )

    async def _send_from_chat(self, platform: str, date: dt.date, audience: Audience) -> SendResult:
        return await self.send(date, platform=platform, audience=audience)

    async def stop(self) -> None:
        for commands in self.commands.values():
            await commands.wait_background()
        for name, platform in self.platforms.items():
            stop = getattr(platform, "stop", None)
            if stop is not None:
                try:
                    await stop()
                except Exception:
                    log.exception("error stopping %s", name)


def build_service(
    core: Core, *, platforms: Sequence[str] = ("telegram", "wechat"), chat: bool = True
) -> Service:
    """Create the adapters that are configured (a token, an endpoint) among ``platforms``."""
    settings = core.settings
    service = Service(core)
    if "telegram" in platforms and settings.telegram_token:
        from bot.platforms.telegram import TelegramPlatform

        commands = Commands(
            core,
            "telegram",
            PlatformRules(
                command_prefix="/", admins=frozenset(str(a) for a in settings.telegram.admins)
            ),
            send_brief=service._send_from_chat,
        )
        telegram = TelegramPlatform(
            settings.telegram_token.reveal(),
            base_url=settings.telegram.api_base_url,
            limits=core.limits("telegram"),
            handler=commands if chat else None,
        )
        commands.chat_admin = telegram.is_chat_admin
        commands.notify = lambda chat_id, msg: telegram.reply(chat_id, [msg])
        service.platforms["telegram"] = telegram
        service.commands["telegram"] = commands
    if "wechat" in platforms and settings.wechat.endpoint:
        from bot.platforms.wechat import WechatPlatform

        wx = settings.wechat
        commands = Commands(
            core,
            "wechat",
            PlatformRules(
                command_prefix="#",
                admins=frozenset(wx.admins),
                query_prefixes=wx.prefixes,
                hot_keywords=wx.hot_keywords,
                user_cooldown=wx.user_cooldown,
                group_cooldown=wx.group_cooldown,
            ),
            send_brief=service._send_from_chat,
        )
        wechat = WechatPlatform(
            endpoint=wx.endpoint,
            token=settings.wechat_token.reveal(),
            handler=commands if chat else None,
            # the adapter forwards group messages that could be for us; the core decides
            prefixes=(*wx.prefixes, *wx.hot_keywords),
            limits=core.limits("wechat"),
        )

        async def notify_wechat(chat_id: str, message: OutgoingMessage) -> object:
            return await wechat.send(Target("wechat", chat_id), message)

        commands.notify = notify_wechat
        service.platforms["wechat"] = wechat
        service.commands["wechat"] = commands
    service.engine = DeliveryEngine(core.store, service.platforms, settings.delivery)
    for name, platform in service.platforms.items():
        # replies and broadcasts share one pacing budget per chat
        platform.pacer = service.engine.pacers[name]  # type: ignore[attr-defined]
    return service


def require_platforms(service: Service, wanted: Sequence[str]) -> None:
    missing = [name for name in wanted if name not in service.platforms]
    hints = {
        "telegram": "set BRIEFBOT_TELEGRAM_TOKEN",
        "wechat": "set [wechat] endpoint (or BRIEFBOT_WECHAT_ENDPOINT) and BRIEFBOT_WECHAT_TOKEN",
    }
    if missing:
        raise ConfigError("; ".join(f"{name} is not configured: {hints[name]}" for name in missing))


async def start_platforms(service: Service, *, polling: bool = True) -> None:
    for name, platform in service.platforms.items():
        start = getattr(platform, "start", None)
        if start is None:
            continue
        if name == "telegram":
            await start(polling=polling)
        else:
            await start()


async def run_until_signalled(service: Service) -> None:
    """Run until SIGINT/SIGTERM, then stop cleanly (admin sends finish first)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await start_platforms(service)
    log.info("briefbot running platforms=%s", ",".join(service.platforms) or "none")
    try:
        await stop.wait()
    finally:
        log.info("shutting down")
        await service.stop()
