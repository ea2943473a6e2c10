"""The running service: platforms, chat commands and the delivery engine wired together."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.app import Core
from bot.commands import Commands, PlatformRules
from bot.delivery import DeliveryEngine, ProgressCallback
from bot.dispatch import Audience, NothingToSend, SendResult, send_brief
from bot.domain import DeliveryStatus, OutgoingMessage, Target
from bot.errors import ConfigError
from bot.logs import scrub
from bot.platforms.base import Platform
from bot.scheduler import BriefScheduler, schedule_entries

log = logging.getLogger("briefbot.service")


@dataclass
class Service:
    """Everything ``briefbot run`` starts. Platforms are imported only when configured."""

    core: Core
    platforms: dict[str, Platform] = field(default_factory=dict)
    commands: dict[str, Commands] = field(default_factory=dict)
    engine: DeliveryEngine | None = None
    scheduler: BriefScheduler | None = None
    # sends started by the schedule, waited for (then cancelled) at shutdown
    _sends: set[asyncio.Task[Any]] = field(default_factory=set)

    async def send(
        self,
        date: dt.date,
        *,
        platform: str | None = None,
        audience: Audience = Audience.ALL,
        chat_ids: Sequence[str] = (),
        only: Sequence[str] = (),
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
            only=only,
            force=force,
            dry_run=dry_run,
            progress=progress,
        )

    async def _send_from_chat(self, platform: str, date: dt.date, audience: Audience) -> SendResult:
        return await self.send(date, platform=platform, audience=audience)

    async def scheduled_send(self, platform: str, audience: str, only: Sequence[str]) -> None:
        """What a schedule runs: today's brief (in the brief's time zone) to its targets."""
        task = asyncio.current_task()
        if task is not None:
            self._sends.add(task)
        date = self.core.today()
        try:
            result = await self.send(
                date, platform=platform, audience=Audience(audience), only=only
            )
            log.info(
                "scheduled send done platform=%s audience=%s date=%s summary=%s",
                platform,
                audience,
                date,
                result.summary(),
            )
        except NothingToSend as exc:
            log.warning("scheduled send: %s", exc)
            await self.notify_admins(
                platform, f"⚠️ briefbot: {exc}（定时发送已跳过 / scheduled send skipped）"
            )
        except Exception as exc:
            log.exception("scheduled send failed platform=%s", platform)
            await self.notify_admins(platform, scrub(f"⚠️ briefbot: scheduled send failed: {exc}"))
        finally:
            if task is not None:
                self._sends.discard(task)

    async def notify_admins(self, platform: str, text: str) -> None:
        """Tell the platform's admins (by user id, in a private chat); failures are logged."""
        settings = self.core.settings
        admins = {
            "telegram": [str(a) for a in settings.telegram.admins],
            "wechat": list(settings.wechat.admins),
        }.get(platform, [])
        adapter = self.platforms.get(platform)
        if adapter is None:
            return
        for admin in admins:
            try:
                await adapter.send(Target(platform, admin), OutgoingMessage(text))
            except Exception as exc:
                log.warning("could not notify admin on %s: %s", platform, exc)

    async def catch_up(self) -> None:
        """With [schedule] catch_up_days, send recent days whose brief did not go out.

        Runs as a tracked background task: a failure is logged and told to the admins, and
        shutdown treats it like any other send in flight.
        """
        try:
            days = self.core.settings.schedule.catch_up_days
            today = self.core.today()
            for back in range(days, 0, -1):
                date = today - dt.timedelta(days=back)
                if not self.core.store.items_on(date):
                    continue
                log.info("catching up the brief of %s", date)
                await self.send(date)
        except Exception as exc:
            log.exception("catch-up failed")
            for platform in self.platforms:
                await self.notify_admins(platform, scrub(f"⚠️ briefbot: catch-up failed: {exc}"))

    async def resume_unfinished(self) -> None:
        """Finish today's deliveries that a stopped or crashed process left pending."""
        date = self.core.today()
        unfinished: dict[str, list[str]] = {}
        for row in self.core.store.deliveries(date):
            if row.platform in self.platforms and row.status in (
                DeliveryStatus.PENDING,
                DeliveryStatus.SENDING,
            ):
                unfinished.setdefault(row.platform, []).append(row.chat_id)
        for platform, chat_ids in unfinished.items():
            log.info(
                "resuming %d unfinished deliveries on %s for %s", len(chat_ids), platform, date
            )
            try:
                await self.send(date, platform=platform, chat_ids=chat_ids)
            except Exception as exc:
                log.exception("resuming deliveries failed on %s", platform)
                await self.notify_admins(platform, scrub(f"⚠️ briefbot: resuming failed: {exc}"))

    def track(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a send in the background; shutdown waits for it (then cancels it)."""
        task = asyncio.create_task(coroutine)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)
        return task

    async def stop(self, *, grace: float = 10.0) -> None:
        """Stop scheduling; let sends in flight finish for ``grace`` seconds, then cancel
        them (the ledger keeps what they had not sent for the next start)."""
        if self.scheduler is not None:
            self.scheduler.pause()  # no new runs; shutting it down would cancel running ones
        if self._sends:
            _done, pending = await asyncio.wait(set(self._sends), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if self.scheduler is not None:
            self.scheduler.shutdown()
        for commands in self.commands.values():
            await commands.wait_background(grace=grace)
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

        async def is_bot_admin(_chat_id: str, user_id: str) -> bool:
            # WeChat has no group-admin API here: only the bot's admins (by id) may
            # (un)subscribe a group
            return user_id in wx.admins

        commands.notify = notify_wechat
        commands.chat_admin = is_bot_admin
        service.platforms["wechat"] = wechat
        service.commands["wechat"] = commands
    service.engine = DeliveryEngine(
        core.store, service.platforms, settings.delivery, today=core.today, timezone=settings.tz
    )
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


async def start_service(service: Service, *, schedule: bool = True) -> None:
    """Connect the platforms, then start the schedule (which may run a missed send now)."""
    await start_platforms(service)
    if schedule:
        entries = schedule_entries(service.core.settings, list(service.platforms))
        service.scheduler = BriefScheduler(
            service.core.store, service.core.settings, service.scheduled_send
        )
        service.scheduler.start(entries)
        service.track(service.resume_unfinished())
        if service.core.settings.schedule.catch_up_days:
            service.track(service.catch_up())
    log.info("briefbot running platforms=%s", ",".join(service.platforms) or "none")


async def run_until_signalled(service: Service, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set), then stop cleanly."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await start_service(service)
        await stop.wait()
    finally:
        log.info("shutting down")
        await service.stop()
