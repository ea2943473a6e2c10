"""The loopback Bot API, driven by the real python-telegram-bot client over HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import sys
import time

import httpx
import pytest
from telegram import Bot, MessageEntity, Update
from telegram.constants import ChatMemberStatus
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import ApplicationBuilder, CommandHandler, ContextTypes

from bot.sandbox.telegram_api import Arrival, FloodControl, TelegramTestServer
from bot.sandbox.telegram_html import EntityParseError, parse_html, utf16_len
from bot.sandbox.telegram_limits import max_in_window
from tests.sandbox_fixtures import (
    ALICE,
    BOB,
    CHANNEL,
    CHANNEL_USERNAME,
    GROUP,
    telegram_bot,
    telegram_server,
)

__all__ = ["telegram_bot", "telegram_server"]  # fixtures, imported to be found by pytest


# ── HTML subset (no network) ─────────────────────────────────────────────────────────────


def test_html_entities_count_utf16_units() -> None:
    text, entities = parse_html(
        '😀 <b>粗 <i>体</i></b> &lt;&amp;&#65;&#x42;&quot; <a href="u?a=1&amp;b=2">链</a>'
    )
    assert text == '😀 粗 体 <&AB" 链'
    assert entities == [
        {"type": "bold", "offset": 3, "length": 3},
        {"type": "italic", "offset": 5, "length": 1},
        {"type": "text_link", "offset": 13, "length": 1, "url": "u?a=1&b=2"},
    ]
    assert utf16_len("😀a") == 3


def test_html_pre_language_spoiler_blockquote() -> None:
    text, entities = parse_html(
        '<pre><code class="language-python">x = 1</code></pre>'
        '<tg-spoiler>s</tg-spoiler><span class="tg-spoiler">t</span>'
        "<blockquote expandable>q</blockquote><b></b>"
    )
    assert text == "x = 1stq"
    assert [e["type"] for e in entities] == [
        "pre",
        "spoiler",
        "spoiler",
        "expandable_blockquote",
    ]
    assert entities[0]["language"] == "python"


@pytest.mark.parametrize(
    ("html", "wording"),
    [
        ("a < b", 'Unsupported start tag "" at byte offset 2'),
        ("<br>x", 'Unsupported start tag "br"'),
        ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b>x</i>", 'expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag"),
        ("&foo;", 'Unsupported HTML entity "&foo;"'),
        ("AT&T", 'Unsupported HTML entity "&"'),
        ("<span>x</span>", 'must have class "tg-spoiler"'),
        ('<a href="x>y</a>', "Unclosed attribute value"),
    ],
)
def test_html_errors(html: str, wording: str) -> None:
    with pytest.raises(EntityParseError, match=wording):
        parse_html(html)


def test_html_lenient_mode_keeps_stray_ampersands_like_telegram() -> None:
    assert parse_html("AT&T &foo;", strict=False) == ("AT&T &foo;", [])


# ── flood control (synthetic clock) ──────────────────────────────────────────────────────


def test_flood_control_semantics() -> None:
    flood = FloodControl(global_rate=3, private_per_second=1, group_per_minute=2)
    assert [_send(flood, 1, True, 0.0) for _ in range(3)] == [0, 0, 1]  # burst of 2, then 1/s
    assert _send(flood, 1, True, 0.5) == 1  # half a token is not enough
    assert _send(flood, 1, True, 1.0) == 0
    assert _send(flood, 2, True, 1.2) == 0
    assert _send(flood, -5, False, 1.4) == 0
    assert _send(flood, -5, False, 1.6) == 1  # global: 3 sends within the last second
    assert _send(flood, -5, False, 2.05) == 0
    assert _send(flood, -5, False, 10.0) == 52  # group: 2 per 60 s; the first expires at 61.4
    flood.set_limits(group_per_minute=math.inf)
    assert _send(flood, -5, False, 10.0) == 0
    with pytest.raises(ValueError, match="positive"):
        flood.set_limits(global_rate=0)


def _send(flood: FloodControl, chat: int, private: bool, now: float) -> int:
    wait = flood.check(chat, private=private, now=now)
    if not wait:
        flood.record(chat, private=private, now=now)
    return wait


def test_max_in_window_counts_a_closed_window() -> None:
    arrivals = [
        Arrival(10.0, "sendMessage", 1),
        Arrival(10.5, "getMe", None),
        Arrival(11.0, "sendMessage", 2),  # exactly one window after the first: same window
        Arrival(11.25, "sendMessage", 1),
        Arrival(11.5, "sendMessage", 1),
    ]
    assert max_in_window(arrivals, 1.0, method="sendMessage") == 3  # 11.0, 11.25, 11.5
    assert max_in_window(arrivals, 1.0, method="SENDMESSAGE", chat_id=1) == 2
    assert max_in_window(arrivals, 1.0) == 4  # every method: 10.5 … 11.5
    assert max_in_window(arrivals, 0.0, chat_id=1) == 1
    assert max_in_window(arrivals[::-1], 1.0, method="sendMessage") == 3  # order is irrelevant
    assert max_in_window([], 1.0) == 0
    with pytest.raises(ValueError, match="non-negative"):
        max_in_window(arrivals, -1.0)


# ── the Bot API through PTB ──────────────────────────────────────────────────────────────


async def test_get_me_and_html_message(
    telegram_server: TelegramTestServer, telegram_bot: Bot
) -> None:
    me = await telegram_bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123456, "briefbot_test_bot", True)

    html = '<b>今日</b> AI 简报 😀 <a href="https://example.com/a?x=1&amp;y=2">原文</a>'
    message = await telegram_bot.send_message(
        ALICE, html, parse_mode="HTML", disable_web_page_preview=True
    )
    assert message.text == "今日 AI 简报 😀 原文"
    assert message.from_user is not None and message.from_user.id == me.id
    assert message.chat.id == ALICE
    assert message.entities == (
        MessageEntity(MessageEntity.BOLD, 0, 2),
        MessageEntity(MessageEntity.TEXT_LINK, 12, 2, url="https://example.com/a?x=1&y=2"),
    )
    [sent] = telegram_server.messages_to(ALICE)
    assert (sent.html, sent.parse_mode, sent.message_id) == (html, "HTML", message.message_id)
    assert sent.link_preview_disabled
    assert telegram_server.stats["requests"]["sendMessage"] == 1

    reply = await telegram_bot.send_message(ALICE, "re", reply_to_message_id=message.message_id)
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.message_id == message.message_id
    with pytest.raises(BadRequest, match="replied not found"):
        await telegram_bot.send_message(ALICE, "re", reply_to_message_id=999)


async def test_channel_by_username_and_chat_queries(telegram_bot: Bot) -> None:
    post = await telegram_bot.send_message(f"@{CHANNEL_USERNAME}", "早安")
    assert post.chat.id == CHANNEL and post.sender_chat is not None and post.from_user is None
    chat = await telegram_bot.get_chat(GROUP)
    assert (chat.type, chat.title) == ("group", "AI 读书会")
    statuses = [(await telegram_bot.get_chat_member(GROUP, u)).status for u in (ALICE, BOB)]
    assert statuses == [ChatMemberStatus.OWNER, ChatMemberStatus.MEMBER]
    admins = await telegram_bot.get_chat_administrators(GROUP)
    assert [a.user.id for a in admins] == [ALICE, 123456]
    assert await telegram_bot.get_chat_member_count(GROUP) == 3
    assert (await telegram_bot.get_chat_member(CHANNEL, ALICE)).status == ChatMemberStatus.LEFT
    with pytest.raises(BadRequest, match="Chat not found"):
        await telegram_bot.send_message(-777, "x")
    with pytest.raises(BadRequest, match="Chat not found"):
        await telegram_bot.send_message("@nobody_here", "x")

    await telegram_bot.set_my_commands([("latest", "最新简报"), ("search", "搜索")])
    assert [c.command for c in await telegram_bot.get_my_commands()] == ["latest", "search"]
    with pytest.raises(BadRequest):
        await telegram_bot.set_my_commands([("Bad-Command", "x")])


@pytest.mark.parametrize(
    ("text", "parse_mode", "wording"),
    [
        ("", None, "Message text is empty"),
        ("<b> </b>", "HTML", "Message text is empty"),
        ("x" * 4097, None, "Message is too long"),
        ("😀" * 2049, None, "Message is too long"),  # 4098 UTF-16 units
        ("<b>" + "x" * 4096 + "</b>", "HTML", None),  # tags do not count
        ("<b>x</b> " * 101, "HTML", "too many message entities"),
        ("1 < 2", "HTML", "Can't parse entities: unsupported start tag"),
        ("<b>x", "HTML", "Can't parse entities: can't find end tag"),
        ("R&D", "HTML", "Can't parse entities"),
        ("<br>", "HTML", "Can't parse entities"),
    ],
)
async def test_text_rules(
    telegram_bot: Bot, text: str, parse_mode: str | None, wording: str | None
) -> None:
    if wording is None:
        await telegram_bot.send_message(BOB, text, parse_mode=parse_mode)
        return
    with pytest.raises(BadRequest, match=f"(?i){wording}"):
        await telegram_bot.send_message(BOB, text, parse_mode=parse_mode)


async def test_state_errors(telegram_server: TelegramTestServer, telegram_bot: Bot) -> None:
    telegram_server.block_bot(BOB)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await telegram_bot.send_message(BOB, "x")
    telegram_server.unblock_bot(BOB)
    await telegram_bot.send_message(BOB, "x")

    telegram_server.migrate_chat(GROUP, -1009999)
    with pytest.raises(ChatMigrated) as migrated:
        await telegram_bot.send_message(GROUP, "x")
    assert migrated.value.new_chat_id == -1009999
    await telegram_bot.send_message(-1009999, "x")

    telegram_server.kick_bot(-1009999)
    with pytest.raises(Forbidden, match="kicked from the supergroup chat"):
        await telegram_bot.send_message(-1009999, "x")
    assert telegram_server.stats["errors_by_code"] == {403: 2, 400: 1}


async def test_injected_faults(telegram_server: TelegramTestServer, telegram_bot: Bot) -> None:
    faults = telegram_server.faults
    faults.add("rate_limit", retry_after=7)
    with pytest.raises(RetryAfter) as limited:
        await telegram_bot.send_message(ALICE, "x")
    assert limited.value.retry_after == dt.timedelta(seconds=7)

    faults.add("forbidden", chat_id=ALICE)
    await telegram_bot.send_message(BOB, "other chats are unaffected")
    with pytest.raises(Forbidden, match="blocked"):
        await telegram_bot.send_message(ALICE, "x")

    faults.add("migrate", chat_id=GROUP, migrate_to_chat_id=-1004001)
    with pytest.raises(ChatMigrated) as migrated:
        await telegram_bot.send_message(GROUP, "x")
    assert migrated.value.new_chat_id == -1004001

    faults.add("server_error")
    with pytest.raises(NetworkError, match="Internal Server Error") as failed:
        await telegram_bot.send_message(ALICE, "x")
    assert not isinstance(failed.value, TimedOut)

    faults.add("timeout", drop=True)
    with pytest.raises(NetworkError, match="disconnected"):
        await telegram_bot.send_message(ALICE, "x")

    faults.add("timeout", delay=5.0, deliver=True)
    with pytest.raises(TimedOut):
        await telegram_bot.send_message(ALICE, "delivered, never confirmed", read_timeout=0.2)
    assert [m.text for m in telegram_server.messages_to(ALICE)] == ["delivered, never confirmed"]

    faults.add("server_error", method="getChat", count=2)
    for _ in range(2):
        with pytest.raises(NetworkError):
            await telegram_bot.get_chat(ALICE)
    await telegram_bot.get_chat(ALICE)
    assert faults.pending == []
    assert telegram_server.stats["faults_injected"] == 8
    assert telegram_server.stats["rate_limited"] == 1


async def test_flood_limits_enforced(
    telegram_server: TelegramTestServer, telegram_bot: Bot
) -> None:
    outcomes: list[int] = []
    for n in range(3):
        try:
            await telegram_bot.send_message(ALICE, f"quick {n}")
            outcomes.append(0)
        except RetryAfter as err:
            assert isinstance(err.retry_after, dt.timedelta)
            outcomes.append(int(err.retry_after.total_seconds()))
    assert outcomes[0] == 0 and outcomes[1:] != [0, 0]
    assert telegram_server.stats["rate_limited"] == outcomes.count(1)

    telegram_server.set_limits(group_per_minute=2)
    await telegram_bot.send_message(GROUP, "1")
    await telegram_bot.send_message(GROUP, "2")
    with pytest.raises(RetryAfter) as group_limited:
        await telegram_bot.send_message(GROUP, "3")
    wait = group_limited.value.retry_after
    assert isinstance(wait, dt.timedelta)  # PTB_TIMEDELTA=1
    assert dt.timedelta(seconds=58) <= wait <= dt.timedelta(seconds=60)

    telegram_server.set_limits(global_rate=1, private_per_second=math.inf)
    await asyncio.sleep(1.0)
    await telegram_bot.send_message(BOB, "a")
    with pytest.raises(RetryAfter):
        await telegram_bot.send_message(ALICE, "b")


async def test_raw_http_json_body_and_auth(telegram_server: TelegramTestServer) -> None:
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            telegram_server.method_url("sendMessage"),
            json={"chat_id": ALICE, "text": "<i>json</i>", "parse_mode": "HTML"},
        )
        assert answer.status_code == 200
        assert answer.json()["result"]["entities"] == [{"type": "italic", "offset": 0, "length": 4}]
        answer = await client.get(telegram_server.method_url("getMe"))
        assert answer.json()["result"]["username"] == "briefbot_test_bot"
        wrong = telegram_server.base_url + "999:WRONG/getMe"
        answer = await client.get(wrong)
        assert (answer.status_code, answer.json()) == (
            401,
            {"ok": False, "error_code": 401, "description": "Unauthorized"},
        )
        answer = await client.post(telegram_server.method_url("noSuchMethod"))
        assert (answer.status_code, answer.json()["description"]) == (404, "Not Found")
        answer = await client.post(telegram_server.method_url("sendMessage"), json={"text": "x"})
        assert answer.json()["description"] == "Bad Request: chat_id is empty"
    with pytest.raises(InvalidToken, match="rejected by the server"):  # PTB's initialize
        async with Bot("999:WRONG", base_url=telegram_server.base_url):
            pass


async def test_get_updates_offsets(telegram_server: TelegramTestServer, telegram_bot: Bot) -> None:
    ids = [telegram_server.send_user_message(ALICE, ALICE, t)["update_id"] for t in "abc"]
    assert [u.update_id for u in await telegram_bot.get_updates()] == ids
    assert [u.update_id for u in await telegram_bot.get_updates(offset=ids[1])] == ids[1:]
    assert [u.update_id for u in await telegram_bot.get_updates(limit=1)] == ids[1:2]
    assert [u.update_id for u in await telegram_bot.get_updates(offset=-1)] == ids[2:]
    assert await telegram_bot.get_updates(offset=ids[2] + 1) == ()


async def test_server_stop_wakes_long_poll(
    telegram_server: TelegramTestServer, telegram_bot: Bot
) -> None:
    poll = asyncio.create_task(telegram_bot.get_updates(timeout=10, read_timeout=15))
    # The server has no "poll started" hook; a short poll loop keeps the test API small.
    while not any(method == "getUpdates" for method, _ in telegram_server.calls):  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    started = time.monotonic()
    await telegram_server.stop()
    assert await poll == ()
    assert time.monotonic() - started < 1.0


async def test_application_answers_a_command(telegram_server: TelegramTestServer) -> None:
    replies: list[int] = []

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text(f"你好, {context.args}")
        replies.append(update.update_id)

    app = (
        ApplicationBuilder()
        .token(telegram_server.token)
        .base_url(telegram_server.base_url)
        .concurrent_updates(True)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0)
        telegram_server.send_user_message(ALICE, ALICE, "/start@briefbot_test_bot now")
        telegram_server.send_user_message(GROUP, BOB, "/start")
        [to_alice] = await telegram_server.wait_for_messages(ALICE, 1)
        await telegram_server.wait_for_messages(GROUP, 1)
        assert to_alice.text == "你好, ['now']"
        started = time.monotonic()
        await app.updater.stop()
        await app.stop()
        assert time.monotonic() - started < 1.0
    methods = [method for method, _ in telegram_server.calls]
    assert methods[:3] == ["getMe", "deleteWebhook", "getUpdates"]
    assert sorted(replies) == [1, 2]
    # PTB's last getUpdates confirms what it handled: nothing is left queued.
    assert await _pending_updates(telegram_server) == []


async def _pending_updates(server: TelegramTestServer) -> list[object]:
    async with Bot(server.token, base_url=server.base_url) as bot:
        return list(await bot.get_updates())


# ── holds: a request provably in flight ──────────────────────────────────────────────────


async def test_held_request_is_received_but_not_delivered_until_released(
    telegram_server: TelegramTestServer, telegram_bot: Bot
) -> None:
    telegram_server.set_limits(private_per_second=math.inf)
    hold = telegram_server.hold_requests(chat_id=ALICE, after=1)
    await telegram_bot.send_message(ALICE, "first passes")
    second = asyncio.create_task(telegram_bot.send_message(ALICE, "second is held"))
    await hold.wait_held(1)
    assert hold.held == 1 and hold.matched == 2
    assert [m.text for m in telegram_server.messages_to(ALICE)] == ["first passes"]
    assert telegram_server.stats["requests"]["sendMessage"] == 2  # received and counted
    assert [a.chat_id for a in telegram_server.arrivals if a.method == "sendMessage"] == [
        ALICE,
        ALICE,
    ]
    await telegram_bot.send_message(BOB, "other chats pass")
    assert not second.done()

    hold.release()
    assert hold.held == 0 and hold.released
    message = await second
    assert message.text == "second is held"
    await telegram_bot.send_message(ALICE, "later ones pass")
    texts = [m.text for m in telegram_server.messages_to(ALICE)]
    assert texts == ["first passes", "second is held", "later ones pass"]
    assert (hold.held_total, hold.abandoned) == (1, 0)


async def test_cancelled_client_abandons_its_held_request(
    telegram_server: TelegramTestServer, telegram_bot: Bot
) -> None:
    hold = telegram_server.hold_requests()
    sending = asyncio.create_task(telegram_bot.send_message(ALICE, "never delivered"))
    await hold.wait_held()
    sending.cancel()
    await hold.wait_abandoned()
    assert hold.held == 0
    hold.release()
    await telegram_bot.send_message(ALICE, "after the crash")
    assert [m.text for m in telegram_server.sent] == ["after the crash"]
    assert sending.cancelled()


async def test_killed_client_process_abandons_its_held_request(
    telegram_server: TelegramTestServer,
) -> None:
    hold = telegram_server.hold_requests(method="sendMessage", chat_id=ALICE)
    body = json.dumps({"chat_id": ALICE, "text": "from a process that dies"})
    script = (
        "import sys, httpx\n"
        "httpx.post(sys.argv[1], content=sys.argv[2], "
        "headers={'content-type': 'application/json'}, timeout=60)\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, telegram_server.method_url("sendMessage"), body
    )
    try:
        await hold.wait_held(timeout=30)  # the child imports httpx first
        process.kill()
        await process.wait()
        await hold.wait_abandoned()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    hold.release()
    assert telegram_server.sent == []
    assert [a.chat_id for a in telegram_server.arrivals] == [ALICE]


async def test_deliver_first_hold_delivers_and_holds_the_answer(
    telegram_server: TelegramTestServer, telegram_bot: Bot
) -> None:
    hold = telegram_server.hold_requests(chat_id=f"@{CHANNEL_USERNAME}", deliver_first=True)
    sending = asyncio.create_task(telegram_bot.send_message(CHANNEL, "delivered, unheard"))
    await hold.wait_held()
    assert [m.text for m in telegram_server.messages_to(CHANNEL)] == ["delivered, unheard"]
    sending.cancel()
    await hold.wait_abandoned()
    hold.release()
    assert len(telegram_server.messages_to(CHANNEL)) == 1


async def test_holds_apply_per_method_and_in_turn(
    telegram_server: TelegramTestServer, telegram_bot: Bot
) -> None:
    get_chat = telegram_server.hold_requests(method="getChat")
    any_method = telegram_server.hold_requests(method=None, chat_id=GROUP, after=1)
    await telegram_bot.send_message(GROUP, "first to the group passes")
    await telegram_bot.get_me()  # no chat: not the group's hold
    asking = asyncio.create_task(telegram_bot.get_chat(GROUP))
    await get_chat.wait_held()
    assert any_method.matched == 1  # not reached yet: holds apply one after the other
    get_chat.release()
    await any_method.wait_held()
    any_method.release()
    assert (await asking).id == GROUP
    assert "getChat" in repr(get_chat) and "released" in repr(get_chat)


async def test_stop_aborts_held_requests(
    telegram_server: TelegramTestServer, telegram_bot: Bot
) -> None:
    hold = telegram_server.hold_requests()
    sending = asyncio.create_task(telegram_bot.send_message(ALICE, "x", read_timeout=10))
    await hold.wait_held()
    started = time.monotonic()
    await telegram_server.stop()
    with pytest.raises(NetworkError):
        await sending
    assert time.monotonic() - started < 1.0
    assert hold.aborted and not hold.released and hold.held == 0
    assert telegram_server.sent == [] and telegram_server.holds == []
    with pytest.raises(TimeoutError, match="aborted"):
        await hold.wait_held(timeout=0.1)
    with pytest.raises(RuntimeError, match="start"):
        telegram_server.hold_requests()


# ── arrivals: pacing measured at the server ──────────────────────────────────────────────


async def test_arrivals_count_every_authorised_request_before_faults_and_limits(
    telegram_server: TelegramTestServer, telegram_bot: Bot
) -> None:
    before = time.monotonic()
    await telegram_bot.send_message(ALICE, "1")
    await telegram_bot.send_message(ALICE, "2")
    with pytest.raises(RetryAfter):  # flood control: the third is refused, but it arrived
        await telegram_bot.send_message(ALICE, "3")
    telegram_server.faults.add("server_error", chat_id=BOB)
    with pytest.raises(NetworkError):
        await telegram_bot.send_message(BOB, "injected failure, still an arrival")
    await telegram_bot.send_message(f"@{CHANNEL_USERNAME}", "by username")
    with pytest.raises(BadRequest):
        await telegram_bot.send_message(-777, "unknown chat keeps its number")
    async with httpx.AsyncClient() as client:
        await client.get(telegram_server.base_url + "999:WRONG/sendMessage")  # not authorised

    sends = [a for a in telegram_server.arrivals if a.method == "sendMessage"]
    assert [a.chat_id for a in sends] == [ALICE, ALICE, ALICE, BOB, CHANNEL, -777]
    assert all(before <= a.t <= time.monotonic() for a in sends)
    assert [a.t for a in telegram_server.arrivals] == sorted(a.t for a in telegram_server.arrivals)
    assert telegram_server.arrivals[0].method == "getMe"  # PTB's initialize
    assert len(telegram_server.sent) == 3
    assert telegram_server.max_in_window(60.0) == 6
    assert telegram_server.max_in_window(60.0, chat_id=ALICE) == 3
    assert telegram_server.max_in_window(60.0, method=None) == len(telegram_server.arrivals)
    assert telegram_server.max_in_window(0.0) == 1

    telegram_server.reset_stats()
    assert telegram_server.arrivals == [] and telegram_server.max_in_window() == 0


# ── token revocation ─────────────────────────────────────────────────────────────────────


async def test_revoked_token_answers_401_like_a_wrong_one(
    telegram_server: TelegramTestServer, telegram_bot: Bot
) -> None:
    await telegram_bot.send_message(ALICE, "before")
    old_url = telegram_server.method_url("getMe")
    telegram_server.revoke_token()
    with pytest.raises(InvalidToken):
        await telegram_bot.send_message(ALICE, "after")
    async with httpx.AsyncClient() as client:
        answer = await client.post(old_url)
    assert (answer.status_code, answer.json()) == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    assert [m.text for m in telegram_server.sent] == ["before"]
    # refused before it is counted or stamped, as a wrong token is
    assert telegram_server.stats["requests"]["sendMessage"] == 1
    assert [a.method for a in telegram_server.arrivals].count("sendMessage") == 1


async def test_revoke_with_a_replacement_token(telegram_server: TelegramTestServer) -> None:
    old = telegram_server.token
    with pytest.raises(ValueError, match="same bot id"):
        telegram_server.revoke_token("999:OTHER-BOT")
    telegram_server.revoke_token("123456:NEW-SECRET")
    assert telegram_server.token == "123456:NEW-SECRET"
    async with Bot(telegram_server.token, base_url=telegram_server.base_url) as bot:
        await bot.send_message(ALICE, "with the new token")
    with pytest.raises(InvalidToken):
        async with Bot(old, base_url=telegram_server.base_url):
            pass
    with pytest.raises(ValueError, match="not used before"):
        telegram_server.revoke_token(old)


async def test_held_request_finishes_after_revocation(
    telegram_server: TelegramTestServer, telegram_bot: Bot
) -> None:
    hold = telegram_server.hold_requests()
    sending = asyncio.create_task(telegram_bot.send_message(ALICE, "authorised on arrival"))
    await hold.wait_held()
    telegram_server.revoke_token()
    hold.release()
    assert (await sending).text == "authorised on arrival"


# ── request bodies ───────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("encoding", ["json", "form", "multipart"])
async def test_send_message_body_encodings(
    telegram_server: TelegramTestServer, encoding: str
) -> None:
    """The real Bot API takes JSON, urlencoded and multipart bodies; PTB sends the latter two,
    other clients (and curl users) the first, with real JSON types instead of strings."""
    keyboard = {"inline_keyboard": [[{"text": "原文", "url": "https://example.com"}]]}
    params: dict[str, object] = {
        "chat_id": ALICE,
        "text": "<b>简报</b>",
        "parse_mode": "HTML",
        "reply_markup": keyboard,
        "link_preview_options": {"is_disabled": True},
    }
    as_strings = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    async with httpx.AsyncClient() as client:
        url = telegram_server.method_url("sendMessage")
        if encoding == "json":
            answer = await client.post(url, json=params)
        elif encoding == "form":
            answer = await client.post(url, data=as_strings)
        else:
            answer = await client.post(url, data=as_strings, files={"unused": b"x"})
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert result["text"] == "简报"
    assert result["entities"] == [{"type": "bold", "offset": 0, "length": 2}]
    assert result["reply_markup"] == keyboard
    [sent] = telegram_server.sent
    assert (sent.chat_id, sent.link_preview_disabled, sent.reply_markup) == (ALICE, True, keyboard)


async def test_bad_json_body_is_a_400_and_still_an_arrival(
    telegram_server: TelegramTestServer,
) -> None:
    async with httpx.AsyncClient() as client:
        url = telegram_server.method_url("sendMessage")
        headers = {"content-type": "application/json; charset=utf-8"}
        answer = await client.post(url, content=b"{not json", headers=headers)
        assert (answer.status_code, answer.json()["description"]) == (
            400,
            "Bad Request: can't parse JSON request body",
        )
        answer = await client.post(url, json=[ALICE, "x"])
        assert answer.json()["description"] == (
            "Bad Request: the JSON request body must be an object"
        )
    assert [(a.method, a.chat_id) for a in telegram_server.arrivals] == [
        ("sendMessage", None),
        ("sendMessage", None),
    ]
