"""Readers choose, end to end: python-telegram-bot over HTTP against the loopback Bot API.

Topics, a reader's own time and zone (the minute job, at a wall-clock time chosen with
time-machine), the digest and its 全文 / Full button, silent parts, pinned channel posts and
forum topics; and the loopback server's own rules for pins and threads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from telegram import Bot
from telegram.error import BadRequest

from bot.broadcast import Audience
from bot.config import DeliverySettings, ScheduleSettings, Settings, StoreSettings
from bot.core import Core, build_core
from bot.domain import DeliveryStatus
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.platforms.telegram import TelegramChannel, TelegramSettings
from bot.sandbox.telegram_api import SentMessage, TelegramTestServer
from bot.service import Service, build_service, start_platforms, start_service
from tests.sandbox_fixtures import (
    ALICE,
    BOB,
    CHANNEL,
    CHANNEL_USERNAME,
    GROUP,
    telegram_bot,
    telegram_server,
)

pytestmark = pytest.mark.integration
__all__ = ["telegram_bot", "telegram_server"]  # the fixtures are used by name

DAY = dt.date(2026, 11, 27)
LONG_DAY = dt.date(2026, 11, 29)  # a day long enough for several messages
SHANGHAI = ZoneInfo("Asia/Shanghai")
FORUM = -1009990001
PLAIN_SUPERGROUP = -1009990002


@dataclass
class Harness:
    server: TelegramTestServer
    core: Core
    service: Service

    async def say(self, chat_id: int, user_id: int, text: str, replies: int = 1) -> list[str]:
        before = len(self.server.messages_to(chat_id))
        self.server.send_user_message(chat_id, user_id, text)
        got = await self.server.wait_for_messages(chat_id, before + replies, timeout=10)
        return [m.text for m in got[before:]]

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        return self.server.messages_to(chat_id)

    def texts_to(self, chat_id: int) -> list[str]:
        return [m.text for m in self.sent_to(chat_id)]


def long_day(folder: Path) -> Path:
    """A day of twelve long items: a brief of several messages."""
    items = "\n\n".join(
        f"## 第{n}条：长篇新闻标题 {n}\n\n"
        + ("这是一段很长的新闻摘要，用来把简报撑到好几条消息。" * 12)
        + f"\n\n- 原文: https://example.com/long/{n}\n"
        for n in range(1, 13)
    )
    path = folder / "2026-11-29.md"
    path.write_text(f"---\ndate: {LONG_DAY.isoformat()}\n---\n\n{items}", encoding="utf-8")
    return path


def settings_for(server: TelegramTestServer, tmp_path: Path, **telegram: Any) -> Settings:
    values: dict[str, Any] = {
        "api_base_url": server.base_url,
        "admins": (ALICE,),
        "channels": (TelegramChannel(f"@{CHANNEL_USERNAME}"),),
    }
    values.update(telegram)
    return Settings(
        store=StoreSettings(url=f"sqlite:///{tmp_path / 'readers.db'}"),
        platforms={"telegram": TelegramSettings(**values)},
        delivery=DeliverySettings(backoff_base=0.05, backoff_max=0.2),
        schedule=ScheduleSettings(default="08:00", misfire_grace=3600),
    )


@pytest.fixture
def harness(
    telegram_server: TelegramTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """Start the service with some [telegram] settings: ``async with harness(...) as h``."""
    monkeypatch.setenv("BRIEFBOT_TELEGRAM_TOKEN", telegram_server.token)
    telegram_server.add_chat(FORUM, "supergroup", title="AI 论坛", is_forum=True)
    telegram_server.add_chat(PLAIN_SUPERGROUP, "supergroup", title="AI 交流")

    @asynccontextmanager
    async def running(*, schedule: bool = False, **telegram: Any) -> AsyncIterator[Harness]:
        core = build_core(settings_for(telegram_server, tmp_path, **telegram))
        import_paths(core.store, [SAMPLES_DIR, long_day(tmp_path)])
        service = build_service(core, platforms=("telegram",))
        if schedule:
            await start_service(service)
        else:
            await start_platforms(service)
        try:
            yield Harness(telegram_server, core, service)
        finally:
            await service.stop()
            core.store.close()

    return running


async def test_subscribe_to_a_topic_then_a_send_delivers_only_matching_items(
    harness: Callable[..., Any],
) -> None:
    async with harness() as h:
        [reply] = await h.say(BOB, BOB, "/subscribe 芯片")
        assert "芯片" in reply
        keyboard = h.sent_to(BOB)[-1].reply_markup
        assert keyboard is not None
        rows = [[b["callback_data"] for b in row] for row in keyboard["inline_keyboard"]]
        assert rows == [["sub", "unsub"], ["latest", "settings"]]
        await h.say(ALICE, ALICE, "/subscribe")
        [topics] = await h.say(BOB, BOB, "/topics")
        assert "芯片" in topics
        result = await h.service.send(DAY, audience=Audience.SUBSCRIBERS)
        assert result.report is not None and result.report.count(DeliveryStatus.SENT) == 2
        [bobs] = h.texts_to(BOB)[2:]
        assert "芯片出口新规落地" in bobs and "#芯片" in bobs and "FlowServe" not in bobs
        alices = "".join(h.texts_to(ALICE)[1:])
        assert "FlowServe" in alices and "芯片出口新规落地" in alices
        # a day whose items match nothing of Bob's: recorded as skipped, nothing sent
        await h.say(BOB, BOB, "/unsubscribe 芯片")
        await h.say(BOB, BOB, "/subscribe 长颈鹿")
        before = len(h.sent_to(BOB))
        other = await h.service.send(DAY - dt.timedelta(days=1), audience=Audience.SUBSCRIBERS)
        assert other.report is not None and other.report.count(DeliveryStatus.SKIPPED) == 1
        assert len(h.sent_to(BOB)) == before


async def test_a_readers_time_and_zone_bring_the_brief_once_at_that_minute(
    harness: Callable[..., Any],
) -> None:
    # 07:30 in Berlin (UTC+1 in November) is 14:30 in Shanghai, the brief's day still 11-27
    with time_machine.travel(dt.datetime(2026, 11, 27, 14, 29, 52, tzinfo=SHANGHAI), tick=True):
        async with harness(schedule=True) as h:
            await h.say(ALICE, ALICE, "/subscribe")  # everyone's time (08:00): not now
            await h.say(BOB, BOB, "/subscribe")
            [asked] = await h.say(BOB, BOB, "/time 07:30")
            assert "07:30" in asked and "/tz" in asked  # the zone is asked for
            [zone] = await h.say(BOB, BOB, "/tz Europe/Berlin")
            assert "Europe/Berlin" in zone
            replies = len(h.sent_to(BOB))
            got = await h.server.wait_for_messages(BOB, replies + 1, timeout=15)
            assert "AI简报20261127" in got[replies].text
            assert dt.datetime.now(SHANGHAI).strftime("%H:%M") >= "14:30"
            assert h.service.scheduler is not None
            assert await h.service.scheduler.send_due_readers("telegram") == []  # had it
            await asyncio.sleep(0.5)
            assert len(h.sent_to(BOB)) == replies + 1
            assert len(h.sent_to(ALICE)) == 1  # only the reply to /subscribe
            [row] = [r for r in h.core.store.deliveries(DAY) if r.chat_id == str(BOB)]
            assert row.status is DeliveryStatus.SENT


async def test_the_digest_and_its_full_text_button(harness: Callable[..., Any]) -> None:
    async with harness(style="digest") as h:
        await h.say(ALICE, ALICE, "/subscribe")
        result = await h.service.send(LONG_DAY)
        assert result.report is not None and result.report.count(DeliveryStatus.SENT) == 2
        [digest] = h.sent_to(ALICE)[1:]
        assert "长篇新闻标题 12" in digest.text and "很长的新闻摘要" not in digest.text
        assert any(e["type"] == "text_link" for e in digest.entities)
        assert digest.reply_markup is not None
        [[button]] = digest.reply_markup["inline_keyboard"]
        assert button["callback_data"] == "full:2026-11-29"
        before = len(h.sent_to(ALICE))
        h.server.press_button(ALICE, ALICE, digest.message_id, "full:2026-11-29")
        await h.server.wait_for_messages(ALICE, before + 2, timeout=10)
        await asyncio.sleep(0.3)
        full = h.sent_to(ALICE)[before:]
        assert len(full) >= 2 and "很长的新闻摘要" in full[0].text
        assert not full[0].disable_notification and all(m.disable_notification for m in full[1:])
        assert h.server.callback_answers  # the press was answered
        # in the channel: Bob presses, and the whole text comes to Bob, not to the channel
        [post] = h.sent_to(CHANNEL)
        channel_posts = len(h.sent_to(CHANNEL))
        h.server.press_button(CHANNEL, BOB, post.message_id, "full:2026-11-29")
        to_bob = await h.server.wait_for_messages(BOB, 2, timeout=10)
        assert "很长的新闻摘要" in to_bob[0].text
        assert len(h.sent_to(CHANNEL)) == channel_posts


async def test_parts_after_the_first_are_silent(harness: Callable[..., Any]) -> None:
    async with harness() as h:
        await h.say(ALICE, ALICE, "/subscribe")
        await h.service.send(LONG_DAY, audience=Audience.SUBSCRIBERS)
        parts = h.sent_to(ALICE)[1:]
        assert len(parts) >= 2
        assert [m.disable_notification for m in parts] == [False] + [True] * (len(parts) - 1)
        assert not h.sent_to(ALICE)[0].disable_notification  # a reply rings


async def test_channel_posts_are_pinned_where_configured(harness: Callable[..., Any]) -> None:
    channels = (
        TelegramChannel(f"@{CHANNEL_USERNAME}", pin=True),
        TelegramChannel(str(GROUP), pin=True),  # the bot may not pin there
    )
    async with harness(channels=channels) as h:
        h_server = h.server
        h_server.add_chat(GROUP, "group", title="AI 读书会", admins=[ALICE], bot_can_pin=False)
        result = await h.service.send(LONG_DAY, audience=Audience.CHANNELS)
        assert result.report is not None and result.report.count(DeliveryStatus.SENT) == 2
        posts = h.sent_to(CHANNEL)
        assert len(posts) >= 2
        assert h_server.pinned_messages(CHANNEL) == [posts[0].message_id]
        [pin] = [p for p in h_server.pins if p.chat_id == CHANNEL]
        assert pin.disable_notification
        # refused for lack of rights: logged, the brief still delivered once
        assert h_server.pinned_messages(GROUP) == []
        assert len(h.sent_to(GROUP)) == len(posts)
        again = await h.service.send(LONG_DAY, audience=Audience.CHANNELS)
        assert again.report is not None and again.report.count(DeliveryStatus.SKIPPED) == 2
        assert len(h_server.pins) == 1


async def test_a_forum_topic_gets_the_brief_in_its_thread(
    harness: Callable[..., Any], telegram_server: TelegramTestServer
) -> None:
    thread = telegram_server.add_forum_topic(FORUM, "AI 简报")
    channels = (
        TelegramChannel(str(FORUM), thread=thread),
        TelegramChannel(str(PLAIN_SUPERGROUP), thread=thread),  # not a forum
    )
    async with harness(channels=channels) as h:
        result = await h.service.send(DAY, audience=Audience.CHANNELS)
        assert result.report is not None
        [post] = h.sent_to(FORUM)
        assert post.message_thread_id == thread
        assert h.sent_to(PLAIN_SUPERGROUP) == []
        rows = {r.chat_id: r for r in h.core.store.deliveries(DAY)}
        assert rows[str(FORUM)].status is DeliveryStatus.SENT
        failed = rows[str(PLAIN_SUPERGROUP)]
        assert failed.status is DeliveryStatus.FAILED
        assert failed.last_error and "message thread not found" in failed.last_error.lower()


# -- the loopback server's rules -------------------------------------------------------------


async def test_the_server_pins_as_telegram_does(
    telegram_server: TelegramTestServer, telegram_bot: Bot
) -> None:
    server = telegram_server
    sent = await telegram_bot.send_message(CHANNEL, "置顶")
    assert await telegram_bot.pin_chat_message(CHANNEL, sent.message_id, disable_notification=True)
    assert server.pinned_messages(CHANNEL) == [sent.message_id]
    chat = await telegram_bot.get_chat(CHANNEL)
    assert chat.pinned_message is not None and chat.pinned_message.message_id == sent.message_id
    with pytest.raises(BadRequest, match=r"(?i)message to pin not found"):
        await telegram_bot.pin_chat_message(CHANNEL, 9999)
    server.add_chat(-4002, "group", title="无权限", admins=[ALICE], bot_can_pin=False)
    in_group = await telegram_bot.send_message(-4002, "hi")
    with pytest.raises(BadRequest, match=r"(?i)not enough rights to manage pinned messages"):
        await telegram_bot.pin_chat_message(-4002, in_group.message_id)
    member = await telegram_bot.get_chat_member(-4002, telegram_bot.id)
    assert getattr(member, "can_pin_messages", None) is False
    mine = await telegram_bot.send_message(ALICE, "私聊也可以置顶")
    assert await telegram_bot.pin_chat_message(ALICE, mine.message_id)  # private chats: allowed


async def test_the_server_knows_forum_topics(
    telegram_server: TelegramTestServer, telegram_bot: Bot
) -> None:
    server = telegram_server
    server.add_chat(FORUM, "supergroup", title="AI 论坛", is_forum=True)
    thread = server.add_forum_topic(FORUM, "简报")
    sent = await telegram_bot.send_message(FORUM, "hi", message_thread_id=thread)
    assert sent.message_thread_id == thread and sent.is_topic_message
    assert (await telegram_bot.get_chat(FORUM)).is_forum
    for chat, bad in ((FORUM, 1), (FORUM, thread + 100), (GROUP, thread)):  # 1: General
        with pytest.raises(BadRequest, match=r"(?i)message thread not found"):
            await telegram_bot.send_message(chat, "x", message_thread_id=bad)
    with pytest.raises(ValueError, match="supergroup"):
        server.add_chat(-4003, "group", is_forum=True)
    quiet = await telegram_bot.send_message(ALICE, "shh", disable_notification=True)
    [recorded] = [m for m in server.messages_to(ALICE) if m.message_id == quiet.message_id]
    assert recorded.disable_notification
