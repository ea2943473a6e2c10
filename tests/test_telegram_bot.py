"""Telegram end to end: the real PTB client over HTTP against the loopback Bot API server."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.broadcast import Audience
from bot.config import DeliverySettings, Settings, StoreSettings
from bot.core import Core, build_core
from bot.domain import DeliveryStatus
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.platforms.telegram import TelegramChannel, TelegramSettings
from bot.sandbox.telegram_api import TelegramTestServer
from bot.service import Service, build_service, start_platforms
from tests.sandbox_fixtures import ALICE, BOB, CHANNEL, CHANNEL_USERNAME, GROUP, telegram_server

__all__ = ["telegram_server"]  # the fixture is used by name

DAY = dt.date(2026, 11, 27)


@dataclass
class Harness:
    server: TelegramTestServer
    core: Core
    service: Service

    async def say(self, chat_id: int, user_id: int, text: str, replies: int = 1) -> list[str]:
        """Send as a user and wait for the bot's ``replies`` new messages in that chat."""
        before = len(self.server.messages_to(chat_id))
        self.server.send_user_message(chat_id, user_id, text)
        got = await self.server.wait_for_messages(chat_id, before + replies, timeout=10)
        return [m.text for m in got[before:]]

    def texts_to(self, chat_id: int) -> list[str]:
        return [m.text for m in self.server.messages_to(chat_id)]


def make_settings(server: TelegramTestServer, tmp_path: Path) -> Settings:
    return Settings(
        store=StoreSettings(url=f"sqlite:///{tmp_path / 'b.db'}"),
        platforms={
            "telegram": TelegramSettings(
                api_base_url=server.base_url,
                admins=(ALICE,),
                channels=(TelegramChannel(f"@{CHANNEL_USERNAME}"),),
            )
        },
        delivery=DeliverySettings(backoff_base=0.05, backoff_max=0.2),
    )


@pytest.fixture
async def tg(
    telegram_server: TelegramTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Harness]:
    monkeypatch.setenv("BRIEFBOT_TELEGRAM_TOKEN", telegram_server.token)
    core = build_core(make_settings(telegram_server, tmp_path))
    import_paths(core.store, [SAMPLES_DIR])
    service = build_service(core, platforms=("telegram",))
    await start_platforms(service)
    try:
        yield Harness(telegram_server, core, service)
    finally:
        await service.stop()
        core.store.close()


async def test_commands_are_registered_in_both_languages(tg: Harness) -> None:
    public = {
        lang: [c["command"] for c in commands]
        for (scope, lang), commands in tg.server.commands.items()
        if '"default"' in scope
    }
    assert set(public) == {"", "en"}
    assert "search" in public["en"] and "send" not in public["en"]  # admin commands hidden
    # admins see every command, in their own private chat's scope
    admin_scope = [cmds for (scope, _), cmds in tg.server.commands.items() if str(ALICE) in scope]
    assert admin_scope and all("send" in [c["command"] for c in c2] for c2 in admin_scope)


async def test_start_and_help_follow_the_users_language(tg: Harness) -> None:
    [zh] = await tg.say(ALICE, ALICE, "/start")
    [en] = await tg.say(BOB, BOB, "/help")
    assert "订阅" in zh
    assert "subscribe" in en.lower()
    assert "/send" in zh and "/send" not in en  # admin commands shown to admins only


async def test_subscribe_then_send_reaches_subscriber_and_channel_once(tg: Harness) -> None:
    [reply] = await tg.say(ALICE, ALICE, "/subscribe")
    assert "已订阅" in reply
    [again] = await tg.say(ALICE, ALICE, "/subscribe")
    assert "已经订阅" in again
    before = len(tg.texts_to(ALICE))
    result = await tg.service.send(DAY)
    assert result.report is not None
    assert result.report.count(DeliveryStatus.SENT) == 2  # Alice and the channel
    alice = tg.texts_to(ALICE)[before:]
    channel = tg.texts_to(CHANNEL)
    assert alice and alice == channel
    assert "AI简报20261127" in alice[0]
    second = await tg.service.send(DAY)
    assert second.report is not None and second.report.count(DeliveryStatus.SKIPPED) == 2
    assert tg.texts_to(CHANNEL) == channel


async def test_unsubscribe_stops_delivery(tg: Harness) -> None:
    await tg.say(BOB, BOB, "/subscribe")
    [reply] = await tg.say(BOB, BOB, "/unsubscribe")
    assert "unsubscribed" in reply.lower()
    before = len(tg.texts_to(BOB))
    await tg.service.send(DAY)
    assert len(tg.texts_to(BOB)) == before


async def test_only_a_group_admin_can_subscribe_the_group(tg: Harness) -> None:
    [refused] = await tg.say(GROUP, BOB, "/subscribe")
    assert "administrator" in refused.lower() or "管理员" in refused
    assert not tg.core.store.is_subscribed("telegram", str(GROUP))
    [ok] = await tg.say(GROUP, ALICE, "/subscribe@briefbot_test_bot")
    assert "已订阅" in ok
    assert tg.core.store.is_subscribed("telegram", str(GROUP))


async def test_admin_send_and_non_admin_refused(tg: Harness) -> None:
    [refused] = await tg.say(BOB, BOB, "/send 2026-11-27")
    assert "admins only" in refused.lower()
    assert tg.texts_to(CHANNEL) == []
    started, done = await tg.say(ALICE, ALICE, "/send 2026-11-27 channels", replies=2)
    assert "开始发送" in started
    assert "发送完成" in done and "成功 1" in done
    assert tg.texts_to(CHANNEL) and "AI简报20261127" in tg.texts_to(CHANNEL)[0]


async def test_admin_preview_and_stats(tg: Harness) -> None:
    [preview, *_] = await tg.say(ALICE, ALICE, "/preview 2026-11-26")
    assert "AI简报20261126" in preview
    [stats] = await tg.say(ALICE, ALICE, "/stats")
    assert "telegram" in stats.lower() or "订阅" in stats


async def test_plain_text_in_private_is_a_search(tg: Harness) -> None:
    [reply] = await tg.say(ALICE, ALICE, "芯片")
    assert "芯片" in reply
    assert (
        '<a href="https://' in tg.server.messages_to(ALICE)[-1].html
    )  # each result links its source
    [nothing] = await tg.say(BOB, BOB, "zzzz-no-such-word")
    assert "zzzz-no-such-word" in nothing
    [hostile] = await tg.say(BOB, BOB, "/search <b>&amp;")
    assert "<b>&amp;" in hostile  # shown as text, not markup


async def test_group_chatter_is_ignored(tg: Harness) -> None:
    tg.server.send_user_message(GROUP, BOB, "今天天气不错")
    [reply] = await tg.say(GROUP, BOB, "/search 芯片")
    assert "芯片" in reply
    assert len(tg.texts_to(GROUP)) == 1


async def test_latest_sends_the_newest_brief(tg: Harness) -> None:
    [first, *_] = await tg.say(ALICE, ALICE, "/latest")
    newest = tg.core.store.latest_date()
    assert newest is not None and newest.strftime("%Y%m%d") in first


async def test_429_is_honoured(tg: Harness) -> None:
    tg.core.store.add_subscriber("telegram", str(ALICE))
    tg.server.faults.add("rate_limit", chat_id=ALICE, retry_after=1)
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await tg.service.send(DAY, audience=Audience.SUBSCRIBERS)
    assert result.report is not None
    assert result.report.rate_limited == 1
    assert result.report.count(DeliveryStatus.SENT) == 1
    assert loop.time() - start >= 1.0
    assert tg.server.stats["rate_limited"] == 1


async def test_403_deactivates_the_subscriber(tg: Harness) -> None:
    tg.core.store.add_subscriber("telegram", str(BOB))
    tg.server.block_bot(BOB)
    result = await tg.service.send(DAY, audience=Audience.SUBSCRIBERS)
    assert result.report is not None and result.report.count(DeliveryStatus.GONE) == 1
    assert not tg.core.store.is_subscribed("telegram", str(BOB))
    [row] = tg.core.store.deliveries(DAY, "telegram")
    assert row.status is DeliveryStatus.GONE and "blocked" in (row.last_error or "")


async def test_group_migration_is_followed(tg: Harness) -> None:
    await tg.say(GROUP, ALICE, "/subscribe")
    new_id = -1009998887776
    tg.server.migrate_chat(GROUP, new_id)
    result = await tg.service.send(DAY, audience=Audience.SUBSCRIBERS)
    assert result.report is not None and result.report.count(DeliveryStatus.SENT) == 1
    assert tg.texts_to(new_id) and "AI简报20261127" in tg.texts_to(new_id)[0]
    assert tg.core.store.is_subscribed("telegram", str(new_id))
    assert not tg.core.store.is_subscribed("telegram", str(GROUP))


async def test_server_errors_are_retried(tg: Harness) -> None:
    tg.core.store.add_subscriber("telegram", str(ALICE))
    tg.server.faults.add("server_error", chat_id=ALICE, count=2)
    result = await tg.service.send(DAY, audience=Audience.SUBSCRIBERS)
    assert result.report is not None
    assert result.report.count(DeliveryStatus.SENT) == 1 and result.report.retries == 2


async def test_killed_halfway_then_rerun_delivers_each_message_exactly_once(
    tg: Harness,
) -> None:
    users = list(range(5001, 5031))
    for uid in users:
        tg.server.add_user(uid, f"U{uid}")
        tg.core.store.add_subscriber("telegram", str(uid))
    # Sends are paced 50 ms apart and take ~1-3 ms on loopback, so a kill 20 ms after a
    # delivery lands between two sends (the in-flight case is covered in the README).
    tg.server.set_limits(global_rate=1000)
    engine = tg.service.engine
    assert engine is not None
    tg.service.outboxes["telegram"].pacer.limits = tg.service.outboxes[
        "telegram"
    ].pacer.limits.with_overrides(global_rate=20.0)
    task = asyncio.create_task(tg.service.send(DAY, audience=Audience.SUBSCRIBERS))
    await tg.server.wait_for_messages(users[0], 1, timeout=10)
    while sum(len(tg.server.messages_to(u)) for u in users) < 12:  # noqa: ASYNC110
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.02)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    delivered_before = sum(len(tg.server.messages_to(u)) for u in users)
    assert 12 <= delivered_before < len(users)
    # a new process: fresh engine, same store
    restarted = build_service(tg.core, platforms=("telegram",), receive=False)
    await start_platforms(restarted)
    try:
        result = await restarted.send(DAY, audience=Audience.SUBSCRIBERS)
    finally:
        await restarted.stop()
    assert result.report is not None
    counts = Counter((m.chat_id, m.html) for u in users for m in tg.server.messages_to(u))
    assert set(counts.values()) == {1}, "a message arrived twice"
    per_user = Counter(chat for chat, _ in counts)
    assert len(set(per_user.values())) == 1 and len(per_user) == len(users), "a message was lost"
    assert all(r.status is DeliveryStatus.SENT for r in tg.core.store.deliveries(DAY))


async def test_commands_for_another_bot_are_ignored(tg: Harness) -> None:
    tg.server.send_user_message(GROUP, ALICE, "/subscribe@some_other_bot")
    [reply] = await tg.say(GROUP, BOB, "/search@briefbot_test_bot 芯片")
    assert "芯片" in reply
    assert len(tg.texts_to(GROUP)) == 1
    assert not tg.core.store.is_subscribed("telegram", str(GROUP))
