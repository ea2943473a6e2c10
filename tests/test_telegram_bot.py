"""Telegram end to end: the real PTB client over HTTP against the loopback Bot API server."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from bot.broadcast import Audience
from bot.config import DeliverySettings, Secret, Settings, StoreSettings
from bot.core import Core, build_core
from bot.domain import DeliveryStatus, OutgoingMessage, Target
from bot.errors import AuthRejected
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.platforms.telegram import TOKEN_ENV, TelegramChannel, TelegramSettings
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


# In-flight slots of the services the kill and revocation tests build: every slot ends up
# holding a request in the sandbox, so no other request can be in transit at that moment.
IN_FLIGHT = 4


def with_in_flight(core: Core, max_in_flight: int, *, token: str | None = None) -> Core:
    """The same store and renderer, settings with another in-flight cap (and token)."""
    settings = replace(
        core.settings, delivery=replace(core.settings.delivery, max_in_flight=max_in_flight)
    )
    if token is not None:
        settings = replace(settings, secrets={**settings.secrets, TOKEN_ENV: Secret(token)})
    return replace(core, settings=settings)


@asynccontextmanager
async def sending_service(core: Core) -> AsyncIterator[Service]:
    """A started send-only service (what `briefbot send` builds), stopped afterwards."""
    service = build_service(core, platforms=("telegram",), receive=False)
    await start_platforms(service)
    try:
        yield service
    finally:
        await service.stop()


def add_subscribers(tg: Harness, users: list[int]) -> None:
    for uid in users:
        tg.server.add_user(uid, f"U{uid}")
        tg.core.store.add_subscriber("telegram", str(uid))


async def test_killed_halfway_then_rerun_delivers_each_message_exactly_once(
    tg: Harness,
) -> None:
    """Cancel a fan-out while every in-flight slot holds a request the server has not
    processed; a fresh service then sends exactly what did not arrive, the held ones too."""
    users = list(range(5001, 5031))
    add_subscribers(tg, users)
    tg.server.set_limits(global_rate=1000)  # the rerun must not meet flood control
    passed = 12
    hold = tg.server.hold_requests("sendMessage", after=passed)
    async with sending_service(with_in_flight(tg.core, IN_FLIGHT)) as first:
        task = asyncio.create_task(first.send(DAY, audience=Audience.SUBSCRIBERS))
        # every slot is taken by a held request: the fan-out can start no other one
        await hold.wait_held(IN_FLIGHT, timeout=30)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the cancelled requests' connections are closed: the server will never process them
        await hold.wait_abandoned(IN_FLIGHT, timeout=30)
    hold.release()
    assert (hold.held_total, hold.abandoned) == (IN_FLIGHT, IN_FLIGHT)
    arrived = [a.chat_id for a in tg.server.arrivals if a.method == "sendMessage"]
    delivered = {m.chat_id for u in users for m in tg.server.messages_to(u)}
    assert len(arrived) == passed + IN_FLIGHT and len(delivered) == passed
    abandoned = {int(str(chat)) for chat in arrived} - delivered
    assert len(abandoned) == IN_FLIGHT
    # the ledger kept what the platform accepted and gave every other row back
    rows = {r.chat_id: r.status for r in tg.core.store.deliveries(DAY)}
    assert rows == {
        str(u): DeliveryStatus.SENT if u in delivered else DeliveryStatus.PENDING for u in users
    }

    # a new process: fresh engine and outbox, same store
    async with sending_service(tg.core) as restarted:
        result = await restarted.send(DAY, audience=Audience.SUBSCRIBERS)
    assert result.report is not None
    assert result.report.summary() == {
        **dict.fromkeys((s.value for s in DeliveryStatus), 0),
        "sent": len(users) - passed,
        "skipped": passed,
    }
    counts = Counter((m.chat_id, m.html) for u in users for m in tg.server.messages_to(u))
    assert set(counts.values()) == {1}, "a message arrived twice"
    per_user = Counter(chat for chat, _ in counts)
    assert per_user == dict.fromkeys(users, 1), "a message was lost"
    assert all(len(tg.server.messages_to(chat)) == 1 for chat in abandoned)
    assert all(r.status is DeliveryStatus.SENT for r in tg.core.store.deliveries(DAY))


async def test_token_revoked_mid_fan_out_stops_it_and_leaves_the_rest_pending(
    tg: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Revoke the token while every in-flight slot holds a request: those finish (they
    arrived with a valid token), at most one more request per slot meets the 401, and the
    fan-out stops with the error naming the token's variable; the ledger keeps every unsent
    row pending, and a run with a new token delivers exactly those."""
    users = list(range(6001, 6051))
    add_subscribers(tg, users)
    tg.server.set_limits(global_rate=1000)
    passed = 10
    core = with_in_flight(tg.core, IN_FLIGHT)
    async with sending_service(core) as service:
        outbox = service.outboxes["telegram"]
        platform = service.platforms["telegram"]
        send = platform.send
        calls: list[tuple[bool, str]] = []  # (started after the rejection, outcome)

        async def recording_send(target: Target, message: OutgoingMessage) -> str:
            late = outbox.rejected is not None
            try:
                message_id = await send(target, message)
            except AuthRejected:
                calls.append((late, "rejected"))
                raise
            calls.append((late, "sent"))
            return message_id

        monkeypatch.setattr(platform, "send", recording_send)
        hold = tg.server.hold_requests("sendMessage", after=passed)
        task = asyncio.create_task(service.send(DAY, audience=Audience.SUBSCRIBERS))
        await hold.wait_held(IN_FLIGHT, timeout=30)
        tg.server.revoke_token()
        hold.release()
        with pytest.raises(AuthRejected, match=TOKEN_ENV) as raised:
            await task
        assert tg.server.token not in str(raised.value)

        rejected = [late for late, outcome in calls if outcome == "rejected"]
        assert 1 <= len(rejected) <= IN_FLIGHT, calls
        assert not any(late for late, _ in calls), "a request started after the rejection"
        delivered = [u for u in users if tg.server.messages_to(u)]
        assert len(delivered) == passed + IN_FLIGHT  # the held ones arrived authorised
        assert all(len(tg.server.messages_to(u)) == 1 for u in delivered)
        assert len(calls) == len(delivered) + len(rejected)

        rows = tg.core.store.deliveries(DAY)
        assert len(rows) == len(users)
        for row in rows:
            if int(row.chat_id) in delivered:
                assert row.status is DeliveryStatus.SENT
            else:
                assert (row.status, row.parts_sent) == (DeliveryStatus.PENDING, 0), row

        # the outbox stays stopped: another send fails at once, without a request
        with pytest.raises(AuthRejected, match=TOKEN_ENV):
            await service.send(DAY, audience=Audience.SUBSCRIBERS)
        assert len(calls) == len(delivered) + len(rejected)
        assert all(r.status is not DeliveryStatus.SENDING for r in tg.core.store.deliveries(DAY))

    # with a new token, a new process sends exactly the rows left pending
    tg.server.revoke_token("123456:ROTATED-SECRET")
    async with sending_service(with_in_flight(tg.core, IN_FLIGHT, token=tg.server.token)) as new:
        result = await new.send(DAY, audience=Audience.SUBSCRIBERS)
    assert result.report is not None
    assert result.report.count(DeliveryStatus.SENT) == len(users) - len(delivered)
    assert result.report.count(DeliveryStatus.SKIPPED) == len(delivered)
    assert all(len(tg.server.messages_to(u)) == 1 for u in users)
    assert all(r.status is DeliveryStatus.SENT for r in tg.core.store.deliveries(DAY))


async def test_commands_for_another_bot_are_ignored(tg: Harness) -> None:
    tg.server.send_user_message(GROUP, ALICE, "/subscribe@some_other_bot")
    [reply] = await tg.say(GROUP, BOB, "/search@briefbot_test_bot 芯片")
    assert "芯片" in reply
    assert len(tg.texts_to(GROUP)) == 1
    assert not tg.core.store.is_subscribed("telegram", str(GROUP))
