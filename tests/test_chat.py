"""The chat router on a fake clock: commands from the table, admins by id, cooldowns, replies.

No platform is involved: the router turns an IncomingMessage into replies (the fast tier).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.chat.router import COMMANDS, Commands, SendOutcome, menu
from bot.config import Settings, StoreSettings
from bot.core import Core, build_core
from bot.domain import ChatKind, IncomingMessage, OutgoingMessage
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.platforms.base import ChatRules

ADMIN, READER = "100", "200"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    built = build_core(Settings(store=StoreSettings(url=f"sqlite:///{tmp_path / 'chat.db'}")))
    import_paths(built.store, [SAMPLES_DIR])
    try:
        yield built
    finally:
        built.store.close()


def rules(**changes: object) -> ChatRules:
    values: dict[str, object] = {
        "command_prefix": "#",
        "admins": frozenset({ADMIN}),
        "query_prefixes": ("#", "查"),
        "hot_keywords": ("今日简报",),
        "user_cooldown": 10.0,
        "group_cooldown": 3.0,
        "mention_asker_in_groups": True,
    }
    values.update(changes)
    return ChatRules(**values)  # type: ignore[arg-type]


def said(
    text: str, *, user: str = READER, group: bool = True, name: str = "Reader"
) -> IncomingMessage:
    kind = ChatKind.GROUP if group else ChatKind.PRIVATE
    chat = "room@chatroom" if group else user
    # the telegram adapter is not involved: any registered platform name works
    return IncomingMessage("wechat", chat, kind, user, name, text)


async def test_a_keyword_query_is_answered_and_mentions_the_asker_in_a_group(core: Core) -> None:
    commands = Commands(core, "wechat", rules(), clock=FakeClock())
    [reply, *_] = await commands(said("查芯片"))
    assert "芯片" in reply.text and reply.mentions == (READER,)
    assert await commands(said("今天天气不错")) == []  # chatter is not for the bot


async def test_cooldowns_follow_the_clock_and_hints_have_their_own(core: Core) -> None:
    clock = FakeClock()
    commands = Commands(core, "wechat", rules(), clock=clock)
    assert await commands(said("#芯片"))
    assert await commands(said("#芯片")) == []  # within the person's 10 s
    clock.now += 10.5
    assert await commands(said("#芯片"))
    clock.now += 3.5  # the group's own cooldown (3 s) has passed
    newcomer = "300"
    [hint] = await commands(said("#", user=newcomer))  # an empty query gets a hint
    assert "芯片" in hint.text
    assert await commands(said("#", user=newcomer)) == []  # hints are limited too
    assert await commands(said("#量化", user=newcomer))  # following the hint is answered


async def test_admins_are_recognised_by_id_never_by_name(core: Core) -> None:
    sent: list[tuple[str, dt.date, str]] = []
    notices: list[OutgoingMessage] = []
    done = asyncio.Event()

    async def send_brief(platform: str, date: dt.date, audience: str) -> SendOutcome:
        sent.append((platform, date, audience))
        return SendOutcome({"sent": 3, "failed": 0}, ["group 'x' not found"])

    async def notify(_to: IncomingMessage, message: OutgoingMessage) -> None:
        notices.append(message)
        done.set()

    commands = Commands(
        core, "wechat", rules(), send_brief=send_brief, notify=notify, clock=FakeClock()
    )
    [refused] = await commands(said("#send", user="999", name="Editor"))  # an impostor
    assert "管理员" in refused.text and sent == []
    [started] = await commands(said("#send 2026-11-27 channels", user=ADMIN, name="Editor"))
    assert "2026-11-27" in started.text
    await asyncio.wait_for(done.wait(), 5)
    assert sent == [("wechat", dt.date(2026, 11, 27), "channels")]
    # a group that was not found counts as a failure in the summary, and is named
    assert "失败 1" in notices[0].text and "group 'x' not found" in notices[0].text
    [bad] = await commands(said("#preview 27-11-2026", user=ADMIN))
    assert "YYYY-MM-DD" in bad.text


async def test_help_comes_from_the_command_table(core: Core) -> None:
    commands = Commands(core, "wechat", rules(user_cooldown=0, group_cooldown=0))
    [for_reader] = await commands(said("#help", group=False))
    [for_admin] = await commands(said("#help", user=ADMIN, group=False))
    admin_only = [c.name for c in COMMANDS if c.admin]
    assert admin_only and all(f"#{name}" in for_admin.text for name in admin_only)
    assert not any(f"#{name}" in for_reader.text for name in admin_only)
    assert ("send", "发送简报", "Send a brief", True) in menu()


async def test_subscribing_a_group_needs_a_chat_admin(core: Core) -> None:
    async def only_admin(_chat: str, user: str) -> bool:
        return user == ADMIN

    commands = Commands(
        core, "wechat", rules(user_cooldown=0, group_cooldown=0), chat_admin=only_admin
    )
    [refused] = await commands(said("#subscribe"))
    assert "管理员" in refused.text
    [ok] = await commands(said("#subscribe", user=ADMIN))
    assert "已订阅" in ok.text and "#unsubscribe" in ok.text
    assert [s.chat_id for s in core.store.subscribers("wechat")] == ["room@chatroom"]
