"""The composition root of the running service: platforms from the registry, one outbox per
platform, the chat commands, the delivery engine and the schedule, wired together."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.broadcast import Audience, SendResult, send_brief
from bot.chat.router import Commands, SendOutcome, menu
from bot.config import parse_listen
from bot.core import Core
from bot.delivery import DeliveryEngine, Outbox, ProgressCallback, build_outbox
from bot.domain import DeliveryStatus, IncomingMessage, OutgoingMessage, Target, TargetKind
from bot.errors import BriefChanged, ConfigError, DeliveryError, NothingToSend
from bot.logs import scrub
from bot.platforms import spec, specs
from bot.platforms.base import Platform, PlatformContext

log = logging.getLogger("briefbot.service")

# a failure that needs a person is told again after this many seconds, not before
ALERT_EVERY = 3600.0


@dataclass
class Service:
    """Everything ``briefbot run`` starts. Platform libraries are imported only when used."""

    core: Core
    platforms: dict[str, Platform] = field(default_factory=dict)
    outboxes: dict[str, Outbox] = field(default_factory=dict)
    commands: dict[str, Commands] = field(default_factory=dict)
    engine: DeliveryEngine | None = None
    scheduler: Any = None  # bot.scheduler.BriefScheduler once started (imported lazily)
    # sends started by the schedule, waited for (then cancelled) at shutdown
    _sends: set[asyncio.Task[Any]] = field(default_factory=set)
    # the public archive ([site] listen): bot.site.server.SiteServer once started
    site: Any = None
    # the editors' console ([console] listen): bot.console.server.ConsoleServer once started
    console: Any = None
    _site_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # notices told once by this process (notify_editors(once=True))
    _told: set[str] = field(default_factory=set)
    # when each cause that needs a person was last told (report_send)
    _alerted: dict[str, float] = field(default_factory=dict)

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
        detailed: bool = True,
        expected: str | None = None,
    ) -> SendResult:
        """The one path every send takes: CLI, admin chat command and schedule. ``expected``
        is the approved content's hash (automatic sends: nothing else goes out)."""
        if platform is not None and platform not in self.platforms:
            require_platforms(self, [platform])
        chosen = {
            name: None if dry_run else adapter
            for name, adapter in self.platforms.items()
            if platform is None or name == platform
        }
        result = await send_brief(
            self.core,
            self.engine,
            chosen,
            date,
            audience=audience,
            chat_ids=chat_ids,
            only=only,
            force=force,
            dry_run=dry_run,
            progress=progress,
            detailed=detailed,
            expected=expected,
        )
        if result.report is not None and result.summary().get("sent"):
            from bot.editorial import mark_published

            before = await asyncio.to_thread(self.core.store.brief_status, date)
            # what this send rendered is what its readers got (not an edit made meanwhile)
            published = await asyncio.to_thread(mark_published, self.core, date, result.brief)
            if before is None or before.state is not published.state:
                # the day is published now: the archive shows it (once, not after each of
                # the day's many sends to readers at their own times)
                await self.rebuild_site()
        return result

    async def test_send(self, date: dt.date, actor: str = "cli") -> int:
        """Send the brief of ``date``, as readers would get it, to the editors' chat only,
        under a line saying it is a test and in which state it is; outside the ledger (a test
        send can be repeated and publishes nothing). Returns the messages sent."""
        from bot.brief import assemble_brief
        from bot.editorial import status

        editors = self.core.settings.editors
        if not (editors.platform and editors.chat):
            raise ConfigError(
                "a test send goes to the editors' chat: set [editors] platform and chat"
            )
        require_platforms(self, [editors.platform])
        brief = assemble_brief(self.core.store, date, self.core.settings.brief)
        if brief is None:
            raise NothingToSend(f"no items on {date.isoformat()}: nothing to test")
        state = (await asyncio.to_thread(status, self.core, date)).state.value
        from bot.broadcast import render_brief

        # as readers get it: the platform's presentation (a digest where one is set)
        parts = render_brief(self.core, brief, editors.platform)
        heading = OutgoingMessage(
            f"🧪 测试发送 / Test send · {date.isoformat()} · {state} · {len(parts)} message(s)"
        )
        target = Target(editors.platform, editors.chat, TargetKind.GROUP)
        outbox = self.outboxes[editors.platform]
        for message in (heading, *parts):
            await outbox.send(target, message, urgent=True)
        await asyncio.to_thread(
            self.core.store.audit,
            actor,
            "test_send",
            date.isoformat(),
            platform=editors.platform,
            messages=len(parts),
        )
        return len(parts) + 1

    async def rebuild_site(self) -> None:
        """Write the public archive again (when it is served); a failure is logged."""
        if self.site is None:
            return
        from bot.site import build_site

        async with self._site_lock:  # one build at a time: two would swap the folder twice
            try:
                report = await asyncio.to_thread(
                    build_site,
                    self.core.store,
                    self.core.settings,
                    self.site.directory,
                    today=self.core.today(),
                )
                log.info("site rebuilt briefs=%d items=%d", report.briefs, report.items)
            except Exception:
                log.exception("site rebuild failed")

    async def send_from_chat(self, platform: str, date: dt.date, audience: str) -> SendOutcome:
        started = time.monotonic()
        result = await self.send(
            date, platform=platform, audience=Audience(audience), detailed=False
        )
        await self.report_send(result, time.monotonic() - started)
        return SendOutcome(result.summary(), result.unresolved)

    async def report_send(self, result: SendResult, seconds: float) -> None:
        """Tell the editors how a scheduled or admin send went; a failure that needs a person
        (a rejected credential, a removed bot or robot) is told at once, and each cause at
        most once an hour."""
        from bot.reports import send_summary

        text, urgent = send_summary(result, seconds)
        if urgent:
            await self.alert_editors("🚨 briefbot needs a person:", urgent)
        if self.core.settings.editors.chat:  # without one, an admin's /send has its own reply
            await self.notify_editors(text)

    async def alert_editors(self, heading: str, causes: Sequence[str] = ()) -> None:
        """Tell the editors about failures that need a person at once; each cause (or the
        heading alone) at most once every ALERT_EVERY seconds."""
        now = time.monotonic()
        fresh = [
            cause
            for cause in (causes or [heading])
            if now - self._alerted.get(cause, -ALERT_EVERY) >= ALERT_EVERY
        ]
        for cause in fresh:
            self._alerted[cause] = now
        if fresh:
            lines = [heading] if causes else []
            await self.notify_editors("\n".join([*lines, *fresh[:10]]))

    async def scheduled_send(self, platform: str, audience: str, only: Sequence[str]) -> None:
        """What a schedule runs: today's brief (in the brief's time zone) to its targets."""
        task = asyncio.current_task()
        if task is not None:
            self._sends.add(task)
        date = self.core.today()
        try:
            allowed, expected = await self.approved_content(date)
            if not allowed:
                return
            started = time.monotonic()
            result = await self.send(
                date,
                platform=platform,
                audience=Audience(audience),
                only=only,
                detailed=False,
                expected=expected,
            )
            # the readers' minute job sends a few readers at a time: no summary for each
            if not (audience == Audience.SUBSCRIBERS.value and only):
                await self.report_send(result, time.monotonic() - started)
            log.info(
                "scheduled send done platform=%s audience=%s date=%s summary=%s",
                platform,
                audience,
                date,
                result.summary(),
            )
        except BriefChanged as exc:  # edited between the check and the send
            log.warning("scheduled send held platform=%s: %s", platform, exc)
            await self.notify_editors(f"⏸ briefbot: {exc}", once=True)
        except NothingToSend as exc:
            log.warning("scheduled send: %s", exc)
            await self.notify_admins(
                platform, f"⚠️ briefbot: {exc}（定时发送已跳过 / scheduled send skipped）"
            )
        except Exception as exc:
            log.exception("scheduled send failed platform=%s", platform)
            # told to the editors (maybe on another platform: this one's token may be what
            # failed), each cause at most once an hour
            await self.alert_editors(
                scrub(f"⚠️ briefbot: scheduled send on {platform} failed: {exc}")
            )
        finally:
            if task is not None:
                self._sends.discard(task)

    async def approved_content(self, date: dt.date) -> tuple[bool, str | None]:
        """For an automatic send (schedule, catch-up, resume): whether it may go out, and the
        content hash it must have (None: any, approval is not required). A held brief is
        told to the editors once."""
        from bot.editorial import expected_hash, held_reason

        held = await asyncio.to_thread(held_reason, self.core, date)
        if held is not None:
            log.warning("automatic send held date=%s: %s", date, held)
            await self.notify_editors(
                f"⏸ briefbot: {held}（定时发送已暂停 / scheduled send held）", once=True
            )
            return False, None
        return True, await asyncio.to_thread(expected_hash, self.core, date)

    async def notify_editors(self, text: str, *, once: bool = False) -> None:
        """Tell the editors: in ``[editors]`` chat when set, else every chat platform's admins.
        ``once``: a text already told by this process is not told again (several scheduled
        jobs hold the same brief at 08:00)."""
        if once:
            if text in self._told:
                return
            self._told.add(text)
        editors = self.core.settings.editors
        outbox = self.outboxes.get(editors.platform)
        if editors.chat and outbox is not None:
            # paced as a group: the safe spacing, whether the chat is a group or a person
            try:
                await outbox.send(
                    Target(editors.platform, editors.chat, TargetKind.GROUP),
                    OutgoingMessage(text),
                    urgent=True,
                )
            except DeliveryError as exc:
                log.warning("could not tell the editors on %s: %s", editors.platform, exc)
            return
        for platform in self.platforms:
            await self.notify_admins(platform, text)

    async def notify_admins(self, platform: str, text: str) -> None:
        """Tell the platform's admins (by user id, in a private chat), through its outbox
        like every other message; failures are logged."""
        outbox = self.outboxes.get(platform)
        if outbox is None:
            return
        for admin in sorted(spec(platform).admins(self.core.settings.platform(platform))):
            try:
                await outbox.send(Target(platform, admin), OutgoingMessage(text), urgent=True)
            except DeliveryError as exc:
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
                allowed, expected = await self.approved_content(date)
                if not allowed:
                    continue
                log.info("catching up the brief of %s", date)
                await self.send(date, expected=expected)
        except Exception as exc:
            log.exception("catch-up failed")
            for platform in self.platforms:
                await self.notify_admins(platform, scrub(f"⚠️ briefbot: catch-up failed: {exc}"))

    async def resume_unfinished(self) -> None:
        """Finish today's deliveries that a stopped or crashed process left pending."""
        date = self.core.today()
        unfinished: dict[str, list[str]] = {}
        rows = await asyncio.to_thread(self.core.store.deliveries, date)
        for row in rows:
            if row.platform in self.platforms and row.status in (
                DeliveryStatus.PENDING,
                DeliveryStatus.SENDING,
            ):
                unfinished.setdefault(row.platform, []).append(row.chat_id)
        expected: str | None = None
        if unfinished:
            allowed, expected = await self.approved_content(date)
            if not allowed:
                return
        for platform, chat_ids in unfinished.items():
            log.info(
                "resuming %d unfinished deliveries on %s for %s", len(chat_ids), platform, date
            )
            try:
                await self.send(
                    date,
                    platform=platform,
                    chat_ids=chat_ids,
                    expected=expected,
                )
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
        if self.console is not None:  # no new edits, approvals or test sends while stopping
            await self.console.stop()
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
            try:
                await platform.stop()
            except Exception:
                log.exception("error stopping %s", name)
        if self.site is not None:
            await self.site.stop()


def build_service(
    core: Core,
    *,
    platforms: Sequence[str] | None = None,
    receive: bool = True,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Service:
    """Build the adapters that are configured among ``platforms`` (default: every platform
    in the registry), each with its outbox and chat commands. ``receive=False`` builds them
    to send only (the CLI). ``options`` passes adapter keyword arguments per platform."""
    settings = core.settings
    service = Service(core)
    for name, entry in specs().items():
        if platforms is not None and name not in platforms:
            continue
        section = settings.platform(name)
        secrets = settings.secret_values(name)
        if not entry.is_configured(section, secrets):
            continue
        commands = Commands(core, name, entry.rules(section), send_brief=service.send_from_chat)
        adapter = entry.build(
            section,
            PlatformContext(
                secrets=secrets,
                limits=core.limits(name),
                handler=commands if receive else None,
                inline_handler=commands.inline if receive else None,
                receive=receive,
                menu=menu(),
                max_in_flight=settings.delivery.max_in_flight,
                options=dict((options or {}).get(name, {})),
            ),
        )
        outbox = build_outbox(adapter, core.store, settings.delivery, today=core.today)
        adapter.outbox = outbox  # replies, notices and briefs share one outbound path

        async def notify(
            to: IncomingMessage, message: OutgoingMessage, a: Platform = adapter
        ) -> None:
            await a.reply(to, [message])

        commands.chat_admin = adapter.is_chat_admin
        commands.notify = notify
        service.platforms[name] = adapter
        service.outboxes[name] = outbox
        service.commands[name] = commands
    service.engine = DeliveryEngine(core.store, service.outboxes, settings.delivery)
    return service


def require_platforms(service: Service, wanted: Sequence[str]) -> None:
    settings = service.core.settings
    problems = []
    for name in wanted:
        if name in service.platforms:
            continue
        entry = spec(name)
        section = settings.platform(name)
        problems.append(
            f"{name} is not configured: {entry.missing(section, settings.secret_values(name))}"
        )
    if problems:
        raise ConfigError("; ".join(problems))


async def start_platforms(service: Service) -> None:
    for platform in service.platforms.values():
        await platform.start()


async def start_site(service: Service, directory: Path) -> None:
    """Build the public archive and serve it at [site] listen."""
    from bot.site.server import SiteServer

    host, port = parse_listen(service.core.settings.site.listen)
    service.site = SiteServer(directory, host, port)
    await service.rebuild_site()
    await service.site.start()
    log.info("site served at %s", service.site.url)


async def start_service(
    service: Service, *, schedule: bool = True, site_dir: Path | None = None
) -> None:
    """Connect the platforms, serve the site, then start the schedule (which may run a
    missed send now)."""
    await start_platforms(service)
    if site_dir is not None and service.core.settings.site.listen:
        await start_site(service, site_dir)
    if service.core.settings.console.listen:
        from bot.console.server import start_console

        service.console = await start_console(service)
    if schedule:
        from bot.scheduler import BriefScheduler, schedule_entries

        entries = schedule_entries(service.core.settings, list(service.platforms))
        service.scheduler = BriefScheduler(
            service.core.store, service.core.settings, service.scheduled_send
        )
        service.scheduler.start(entries)
        service.track(service.resume_unfinished())
        if service.core.settings.schedule.catch_up_days:
            service.track(service.catch_up())
    log.info("briefbot running platforms=%s", ",".join(service.platforms) or "none")


async def run_until_signalled(
    service: Service, stop: asyncio.Event | None = None, *, site_dir: Path | None = None
) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set), then stop cleanly."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await start_service(service, site_dir=site_dir)
        await stop.wait()
    finally:
        log.info("shutting down")
        await service.stop()
