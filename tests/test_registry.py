"""Adding a platform touches only its own module, sandbox and templates.

This test adds "echo", a platform the core has never heard of, the way a new module under
bot/platforms/ would (its registry entry, its adapter, its in-memory sandbox and its
templates), and then uses every part of briefbot that loops over platforms: settings and
environment overrides, the CLI's choices, the schedule, the service's wiring with an
outbox, broadcasts through the ledger, replies to chat messages, admins and status.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest

from bot import platforms
from bot.cli import build_parser
from bot.config import RenderSettings, Secret, Settings, StoreSettings, load_settings
from bot.core import build_core
from bot.domain import (
    ChatKind,
    DeliveryStatus,
    IncomingMessage,
    OutgoingMessage,
    Target,
    TargetKind,
)
from bot.errors import ConfigError
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.logs import log_id
from bot.platforms.base import (
    ChatHandler,
    ChatRules,
    ConfiguredTarget,
    LengthUnit,
    Limits,
    Platform,
    PlatformContext,
    PlatformSpec,
    Sender,
)
from bot.reports import status
from bot.scheduler import schedule_entries
from bot.service import build_service, start_platforms

DAY = dt.date(2026, 11, 27)
TOKEN_ENV = "BRIEFBOT_ECHO_TOKEN"


# --- what bot/platforms/echo/__init__.py would hold -------------------------------------------


@dataclass(frozen=True)
class EchoRoom:
    id: str
    schedule: str = ""


@dataclass(frozen=True)
class EchoSettings:
    admins: tuple[str, ...] = ()
    rooms: tuple[EchoRoom, ...] = ()
    max_length: int = 300
    subscriber_schedule: str = ""


class EchoSpec(PlatformSpec[EchoSettings]):
    name = "echo"
    title = "Echo"
    settings_type = EchoSettings
    table_lists: ClassVar[Mapping[str, type]] = {"rooms": EchoRoom}
    secret_env = (TOKEN_ENV,)
    default_limits = Limits(max_length=300, length_unit=LengthUnit.BYTES, global_rate=50.0)
    masks_ids = True

    def limits(self, settings: EchoSettings) -> Limits:
        return self.default_limits.with_overrides(max_length=settings.max_length)

    def rules(self, settings: EchoSettings) -> ChatRules:
        return ChatRules(command_prefix="!", admins=frozenset(settings.admins))

    def is_configured(self, settings: EchoSettings, secrets: Mapping[str, str]) -> bool:
        return bool(secrets.get(TOKEN_ENV))

    def missing(self, settings: EchoSettings, secrets: Mapping[str, str]) -> str:
        return f"set {TOKEN_ENV}"

    def configured_targets(self, settings: EchoSettings) -> list[ConfiguredTarget]:
        return [ConfiguredTarget(r.id, r.id, TargetKind.GROUP, r.schedule) for r in settings.rooms]

    def build(self, settings: EchoSettings, context: PlatformContext) -> Platform:
        return EchoPlatform(context.limits, context.handler, SANDBOX)


# --- what bot/platforms/echo/adapter.py and bot/sandbox/echo.py would hold ---------------------


class EchoSandbox:
    """The loopback "server": what it received, per chat, and a way to say something."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []
        self.platform: EchoPlatform | None = None

    async def say(self, chat_id: str, user_id: str, text: str) -> None:
        assert self.platform is not None
        await self.platform.on_message(chat_id, user_id, text)


SANDBOX = EchoSandbox()


class EchoPlatform:
    name = "echo"

    def __init__(self, limits: Limits, handler: ChatHandler | None, sandbox: EchoSandbox) -> None:
        self.limits = limits
        self.handler = handler
        self.sandbox = sandbox
        self.outbox: Sender | None = None
        sandbox.platform = self

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def send(self, target: Target, message: OutgoingMessage) -> str:
        assert len(message.text.encode()) <= self.limits.max_length  # its limit, in bytes
        self.sandbox.received.append((target.chat_id, message.text))
        return str(len(self.sandbox.received))

    async def reply(self, to: IncomingMessage, messages: Sequence[OutgoingMessage]) -> None:
        assert self.outbox is not None
        for message in messages:
            await self.outbox.send(Target(self.name, to.chat_id), message, urgent=True)

    async def is_chat_admin(self, chat_id: str, user_id: str) -> bool:
        return False

    async def resolve(self, target: ConfiguredTarget) -> str | None:
        return target.chat_id

    async def on_message(self, chat_id: str, user_id: str, text: str) -> None:
        assert self.handler is not None
        incoming = IncomingMessage("echo", chat_id, ChatKind.PRIVATE, user_id, user_id, text)
        await self.reply(incoming, await self.handler(incoming))


# --- the test --------------------------------------------------------------------------------


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[Path]:
    """Register the platform and write its templates; returns the template folder."""
    templates = tmp_path / "templates" / "echo"
    templates.mkdir(parents=True)
    (templates / "brief.j2").write_text(
        "{{ brief.title }}\n{% for e in entries %}{{ block_break }}{{ e.number }}. "
        "{{ e.item.title }}\n{% endfor %}",
        encoding="utf-8",
    )
    (templates / "search.j2").write_text(
        "{% for e in entries %}{{ e.item.title }}\n{% else %}none{% endfor %}", encoding="utf-8"
    )
    (templates / "help.j2").write_text("{% for c, d in commands %}{{ c }}\n{% endfor %}")
    (templates / "stats.j2").write_text("{{ stats }}", encoding="utf-8")
    platforms.register(EchoSpec())
    try:
        yield templates.parent
    finally:
        platforms.unregister("echo")
        SANDBOX.received.clear()


def test_settings_environment_and_cli_know_the_new_platform(echo: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "echo.toml"
    cfg.write_text(
        '[echo]\nadmins = ["u1"]\n[[echo.rooms]]\nid = "room-1"\nschedule = "07:15"\n',
        encoding="utf-8",
    )
    settings = load_settings(cfg, environ={"BRIEFBOT_ECHO_MAX_LENGTH": "250", TOKEN_ENV: "tok123"})
    section = settings.platform("echo")
    assert section.rooms == (EchoRoom("room-1", "07:15"),) and section.max_length == 250
    assert settings.secret_values("echo") == {TOKEN_ENV: "tok123"}
    with pytest.raises(ConfigError, match=r"\[echo\] token"):
        cfg.write_text('[echo]\ntoken = "x"\n', encoding="utf-8")
        load_settings(cfg, environ={})
    args = build_parser().parse_args(["send", "--platform", "echo"])
    assert args.platform == "echo"
    jobs = {e.job_id for e in schedule_entries(settings, ["echo"])}
    assert jobs == {"brief:echo:subscribers:08:00", "brief:echo:channels:07:15"}
    assert log_id("echo", "someone-personal") != "someone-personal"


async def test_the_service_sends_replies_and_reports_through_the_registry(
    echo: Path, tmp_path: Path
) -> None:
    settings = Settings(
        store=StoreSettings(url=f"sqlite:///{tmp_path / 'echo.db'}"),
        render=RenderSettings(template_dir=str(echo)),
        platforms={"echo": EchoSettings(admins=("boss",), rooms=(EchoRoom("room-1"),))},
        secrets={TOKEN_ENV: Secret("tok123")},
    )
    core = build_core(settings)
    import_paths(core.store, [SAMPLES_DIR])
    core.store.add_subscriber("echo", "reader-1")
    service = build_service(core)
    assert list(service.platforms) == ["echo"] and service.outboxes["echo"].name == "echo"
    await start_platforms(service)
    try:
        result = await service.send(DAY)
        assert result.report is not None
        assert result.report.count(DeliveryStatus.SENT) == 2  # the room and the subscriber
        chats = {chat for chat, _ in SANDBOX.received}
        assert chats == {"room-1", "reader-1"}
        assert all(len(text.encode()) <= 300 for _, text in SANDBOX.received)
        again = await service.send(DAY)
        assert again.report is not None and again.report.count(DeliveryStatus.SKIPPED) == 2
        before = len(SANDBOX.received)
        await SANDBOX.say("reader-2", "reader-2", "芯片")  # a search, answered by the core
        assert SANDBOX.received[before][0] == "reader-2"
        await SANDBOX.say("reader-2", "reader-2", "!send")  # not an admin
        assert "admin" in SANDBOX.received[-1][1].lower() or "管理员" in SANDBOX.received[-1][1]
    finally:
        await service.stop()
    report = status(core.store, DAY, settings)
    assert report["platforms"]["echo"]["subscribers"] == 1
    assert report["platforms"]["echo"]["last_delivery"]["sent"] == 2
    core.store.close()
