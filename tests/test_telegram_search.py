"""Telegram search and chat etiquette end to end: the real PTB client over HTTP against the
loopback Bot API server (result pages, buttons that turn them, inline mode, deep links,
unknown commands, /latest in groups, query stats)."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.brief import assemble_brief
from bot.core import Core, build_core
from bot.domain import DeliveryStatus, TargetKind
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.platforms.telegram import TOKEN_ENV
from bot.reports import latest_day
from bot.sandbox.telegram_api import SentMessage, TelegramTestServer
from bot.service import Service, build_service, start_platforms
from tests.sandbox_fixtures import ALICE, BOB, GROUP, telegram_server
from tests.test_telegram_bot import make_settings

__all__ = ["telegram_server"]  # the fixture is used by name

CAROL = 1003  # a Chinese-speaking member of the groups below, not an admin
SENT_GROUP = -4002  # a group the brief is delivered to
OTHER_GROUP = -4003  # a group the brief is not delivered to
BOT_USERNAME = "briefbot_test_bot"
QUIET = 0.5  # how long "no reply" is waited for
PAGE = 5  # [search] limit, the default
CHIP_MATCHES = 12  # sample items that match 芯片
ENGLISH_CHROME = ("Results", "matches", "Next", "Previous")
CHINESE_CHROME = ("共", "条", "下一页", "上一页")


@dataclass
class SearchBot:
    server: TelegramTestServer
    core: Core
    service: Service

    async def ask(
        self, chat_id: int, user_id: int, text: str, replies: int = 1
    ) -> tuple[int, list[SentMessage]]:
        """Send as a user; wait for the bot's ``replies`` new messages in that chat. Returns
        the asker's message id and those messages."""
        before = len(self.server.messages_to(chat_id))
        update = self.server.send_user_message(chat_id, user_id, text)
        got = await self.server.wait_for_messages(chat_id, before + replies, timeout=10)
        return int(update["message"]["message_id"]), got[before:]

    async def one(self, chat_id: int, user_id: int, text: str) -> SentMessage:
        _, [reply] = await self.ask(chat_id, user_id, text)
        return reply

    async def mention(self, chat_id: int, user_id: int, words: str) -> SentMessage:
        """ "@bot words" in a group (the server marks the handle as a ``mention`` entity)."""
        before = len(self.server.messages_to(chat_id))
        handle = f"@{BOT_USERNAME}"
        update = self.server.send_user_message(chat_id, user_id, f"{handle} {words}")
        assert update["message"]["entities"] == [
            {"type": "mention", "offset": 0, "length": len(handle)}
        ]
        got = await self.server.wait_for_messages(chat_id, before + 1, timeout=10)
        return got[before]

    async def ignored(self, chat_id: int, user_id: int, text: str) -> None:
        """Send, and assert that the bot stays silent."""
        before = len(self.server.messages_to(chat_id))
        self.server.send_user_message(chat_id, user_id, text)
        await asyncio.sleep(QUIET)
        assert self.server.messages_to(chat_id)[before:] == []

    async def press(self, chat_id: int, user_id: int, message: SentMessage, data: str) -> str:
        """Press a button under ``message``; wait until the press is answered and the message
        edited once more. Returns the message's text now."""
        edits = len(self.server.edits_of(chat_id, message.message_id))
        update = self.server.press_button(chat_id, user_id, message.message_id, data)
        await self.server.wait_for_callback_answer(update["callback_query"]["id"], timeout=10)
        await self.server.wait_for_edit(chat_id, message.message_id, edits + 1, timeout=10)
        return self.server.current_text(chat_id, message.message_id)

    def buttons(self, chat_id: int, message_id: int) -> list[tuple[str, str]]:
        """(label, callback data) of the buttons under a message now."""
        markup = self.server.message(chat_id, message_id).get("reply_markup") or {}
        return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]

    async def restart(self) -> None:
        """A new process: the same store, a fresh service (which remembers no result pages)."""
        await self.service.stop()
        self.service = build_service(self.core, platforms=("telegram",))
        await start_platforms(self.service)


@pytest.fixture
async def bot(
    telegram_server: TelegramTestServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[SearchBot]:
    telegram_server.add_user(CAROL, "Carol")
    for group in (SENT_GROUP, OTHER_GROUP):
        telegram_server.add_chat(
            group, "group", title=f"group {group}", admins=[ALICE], members=[BOB, CAROL]
        )
    monkeypatch.setenv(TOKEN_ENV, telegram_server.token)
    core = build_core(make_settings(telegram_server, tmp_path))
    import_paths(core.store, [SAMPLES_DIR])
    service = build_service(core, platforms=("telegram",))
    await start_platforms(service)
    harness = SearchBot(telegram_server, core, service)
    try:
        yield harness
    finally:
        await harness.service.stop()
        core.store.close()


def numbers(text: str) -> list[int]:
    """The result numbers of a result page ("6. headline · date" lines)."""
    return [
        int(line.split(".", 1)[0])
        for line in text.splitlines()
        if line.split(".", 1)[0].isdecimal() and " · 20" in line
    ]


def chip_titles(core: Core, offset: int, limit: int = PAGE) -> list[str]:
    return [r.item.title for r in core.search("芯片", offset=offset, limit=limit).results]


# -- result pages -------------------------------------------------------------------------


async def test_group_search_is_threaded_highlighted_and_in_the_askers_language(
    bot: SearchBot,
) -> None:
    asked, [reply] = await bot.ask(GROUP, ALICE, "/search 芯片")
    assert reply.reply_to_message_id == asked
    assert reply.parse_mode == "HTML" and reply.link_preview_disabled
    assert reply.text.splitlines()[0] == f"🔎 芯片：共 {CHIP_MATCHES} 条，第 1–{PAGE} 条"
    assert numbers(reply.text) == [1, 2, 3, 4, 5]
    assert "<b>芯片</b>" in reply.html
    for title in chip_titles(bot.core, 0):
        assert title in reply.text
    # each headline links its primary source
    assert reply.html.count('<a href="https://') >= PAGE
    assert not any(word in reply.text for word in ENGLISH_CHROME)
    [(label, data)] = bot.buttons(GROUP, reply.message_id)
    assert label == "下一页 ▶" and re.fullmatch(r"page:[0-9a-f]{12}:5", data)
    assert len(data.encode()) <= 64

    asked, [english] = await bot.ask(GROUP, BOB, "/search 芯片")
    assert english.reply_to_message_id == asked
    assert english.text.splitlines()[0] == f"🔎 芯片: 1–{PAGE} of {CHIP_MATCHES} matches"
    assert numbers(english.text) == [1, 2, 3, 4, 5]
    assert "<b>芯片</b>" in english.html
    assert not any(word in english.text.splitlines()[0] for word in CHINESE_CHROME)
    assert [label for label, _ in bot.buttons(GROUP, english.message_id)] == ["Next ▶"]


async def test_private_search_is_not_threaded(bot: SearchBot) -> None:
    _, [reply] = await bot.ask(ALICE, ALICE, "/search 芯片")
    assert reply.reply_to_message_id is None
    assert numbers(reply.text) == [1, 2, 3, 4, 5]


async def test_next_and_previous_turn_the_page_in_place(bot: SearchBot) -> None:
    _, [reply] = await bot.ask(SENT_GROUP, ALICE, "/search 芯片")
    sent = len(bot.server.messages_to(SENT_GROUP))
    [(_, following)] = bot.buttons(SENT_GROUP, reply.message_id)

    second = await bot.press(SENT_GROUP, ALICE, reply, following)
    assert numbers(second) == [6, 7, 8, 9, 10]
    assert second.splitlines()[0] == f"🔎 芯片：共 {CHIP_MATCHES} 条，第 6–10 条"
    for title in chip_titles(bot.core, PAGE):
        assert title in second
    assert "<b>芯片</b>" in bot.server.edits_of(SENT_GROUP, reply.message_id)[-1].html
    buttons = bot.buttons(SENT_GROUP, reply.message_id)
    assert [label for label, _ in buttons] == ["◀ 上一页", "下一页 ▶"]
    (_, previous), (_, last_page) = buttons
    assert previous.endswith(":0") and last_page.endswith(":10")

    third = await bot.press(SENT_GROUP, CAROL, reply, last_page)  # anyone in the group may turn it
    assert numbers(third) == [11, 12]
    [(label, back)] = bot.buttons(SENT_GROUP, reply.message_id)  # the last page: no Next
    assert (label, back) == ("◀ 上一页", previous.removesuffix(":0") + ":5")
    again = await bot.press(SENT_GROUP, ALICE, reply, back)
    assert numbers(again) == [6, 7, 8, 9, 10]
    [(_, first_page), _] = bot.buttons(SENT_GROUP, reply.message_id)
    first = await bot.press(SENT_GROUP, ALICE, reply, first_page)
    assert numbers(first) == [1, 2, 3, 4, 5]
    assert bot.buttons(SENT_GROUP, reply.message_id) == [("下一页 ▶", following)]

    assert len(bot.server.edits_of(SENT_GROUP, reply.message_id)) == 4
    assert len(bot.server.messages_to(SENT_GROUP)) == sent  # presses edit, they send nothing


async def test_a_button_of_a_previous_process_says_the_results_expired(bot: SearchBot) -> None:
    _, [reply] = await bot.ask(ALICE, ALICE, "/search 芯片")
    [(_, following)] = bot.buttons(ALICE, reply.message_id)
    await bot.restart()

    before = len(bot.server.messages_to(ALICE))
    update = bot.server.press_button(ALICE, ALICE, reply.message_id, following)
    await bot.server.wait_for_callback_answer(update["callback_query"]["id"], timeout=10)
    [expired] = (await bot.server.wait_for_messages(ALICE, before + 1, timeout=10))[before:]
    assert expired.text == "这组结果已过期，请重新搜索。"
    assert bot.server.edits_of(ALICE, reply.message_id) == []
    assert numbers(bot.server.current_text(ALICE, reply.message_id)) == [1, 2, 3, 4, 5]


async def test_a_button_of_a_previous_process_never_shows_another_querys_results(
    bot: SearchBot,
) -> None:
    _, [reply] = await bot.ask(ALICE, ALICE, "/search 芯片")
    [(_, following)] = bot.buttons(ALICE, reply.message_id)
    await bot.restart()
    # the new process hands out its first page token to another query
    _, [other] = await bot.ask(BOB, BOB, "/search 模型")
    assert bot.buttons(BOB, other.message_id)  # it has more pages: a token was handed out

    before = len(bot.server.messages_to(ALICE))
    update = bot.server.press_button(ALICE, ALICE, reply.message_id, following)
    await bot.server.wait_for_callback_answer(update["callback_query"]["id"], timeout=10)
    await edit_or_message(bot.server, ALICE, reply.message_id, before)
    # either the 芯片 list turns to its own next page, or the press is told the list
    # expired: the message never becomes another query's list
    heading = bot.server.current_text(ALICE, reply.message_id).splitlines()[0]
    assert heading.startswith("🔎 芯片"), heading


async def edit_or_message(
    server: TelegramTestServer, chat_id: int, message_id: int, messages_before: int
) -> None:
    """Wait until the bot edits ``message_id`` or sends a new message to ``chat_id``."""
    waits = {
        asyncio.ensure_future(server.wait_for_edit(chat_id, message_id, 1, timeout=10)),
        asyncio.ensure_future(server.wait_for_messages(chat_id, messages_before + 1, timeout=10)),
    }
    done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    for task in done:
        task.result()


# -- inline mode --------------------------------------------------------------------------


async def test_inline_query_answers_with_item_cards(bot: SearchBot) -> None:
    query_id = bot.server.send_inline_query(BOB, "芯片", chat_type="group")["inline_query"]["id"]
    answer = await bot.server.wait_for_inline_answer(query_id, timeout=10)
    results: list[dict[str, Any]] = answer["results"]
    best = bot.core.search("芯片", limit=10).results
    assert 1 <= len(results) <= 10 and len(results) == len(best)
    ids = [r["id"] for r in results]
    assert len(set(ids)) == len(ids)
    assert ids == [str(r.item_id) for r in best]
    for card, result in zip(results, best, strict=True):
        assert card["type"] == "article"
        assert card["title"] == result.item.title
        assert card["description"].startswith(f"{result.item.date.isoformat()} · ")
        content = card["input_message_content"]
        assert content["parse_mode"] == "HTML"
        # the headline in bold (the template escapes quotes its own way: compare unescaped)
        assert html.unescape(content["message_text"]).startswith(f"<b>{result.item.title}</b>")
    assert answer["cache_time"] == 60


async def test_an_empty_inline_query_is_answered_with_no_cards(bot: SearchBot) -> None:
    query_id = bot.server.send_inline_query(ALICE, "")["inline_query"]["id"]
    answer = await bot.server.wait_for_inline_answer(query_id, timeout=10)
    assert answer["results"] == []


# -- /start, unknown commands -------------------------------------------------------------


async def test_start_subscribe_deep_link_subscribes_the_private_chat(bot: SearchBot) -> None:
    store = bot.core.store
    reply = await bot.one(BOB, BOB, "/start subscribe")
    assert reply.text == "Subscribed to the daily AI brief. /unsubscribe to stop."
    [subscriber] = store.subscribers("telegram")
    assert (subscriber.chat_id, subscriber.kind) == (str(BOB), TargetKind.SUBSCRIBER)
    assert store.count_subscribers("telegram") == 1
    again = await bot.one(BOB, BOB, "/start subscribe")
    assert again.text == "You are already subscribed."

    help_text = await bot.one(ALICE, ALICE, "/start")
    assert help_text.text.startswith("AI 简报机器人") and "/search" in help_text.text
    assert not store.is_subscribed("telegram", str(ALICE))
    assert store.count_subscribers("telegram") == 1


async def test_unknown_commands(bot: SearchBot) -> None:
    zh = await bot.one(ALICE, ALICE, "/foo")
    assert zh.text == "没有 /foo 这个命令，发送 /help 查看可用命令。"
    en = await bot.one(BOB, BOB, "/foo bar")
    assert en.text == "There is no /foo command; /help lists them."
    # in a group a bare /foo may be another bot's; addressed to us, it is answered
    await bot.ignored(SENT_GROUP, CAROL, "/foo")
    await bot.ignored(SENT_GROUP, CAROL, "/foo@some_other_bot")
    addressed = await bot.one(SENT_GROUP, CAROL, f"/foo@{BOT_USERNAME}")
    assert addressed.text == "没有 /foo 这个命令，发送 /help 查看可用命令。"


# -- /latest in groups --------------------------------------------------------------------


async def test_latest_in_groups_is_short_where_the_brief_was_sent_and_rate_limited(
    bot: SearchBot,
) -> None:
    core, server = bot.core, bot.server
    date = latest_day(core.store, core.today())
    assert date is not None
    brief = assemble_brief(core.store, date, core.settings.brief)
    assert brief is not None
    whole = core.renderer.brief(brief, "telegram", core.limits("telegram"))
    core.store.add_subscriber("telegram", str(SENT_GROUP), TargetKind.GROUP)
    result = await bot.service.send(date)
    assert result.report is not None and result.report.count(DeliveryStatus.SENT) == 2
    assert [m.html for m in server.messages_to(SENT_GROUP)] == [m.text for m in whole]
    sent_at = core.store.sent_at(date, "telegram", str(SENT_GROUP))
    assert sent_at is not None
    local = sent_at.astimezone(core.settings.tz)

    short = await bot.one(SENT_GROUP, CAROL, "/latest")
    heading, *headlines = short.text.splitlines()
    assert heading.startswith(f"{date.isoformat()} 的简报已于 ")
    assert heading.endswith(f"{local:%H:%M} 发到本群，标题如下：")
    assert headlines == [f"{n}. {item.title}" for n, item in enumerate(brief.items, 1)]
    # a second /latest from anyone but an admin is ignored within the cooldown
    await bot.ignored(SENT_GROUP, CAROL, "/latest")
    await bot.ignored(SENT_GROUP, BOB, "/latest")
    _, answered = await bot.ask(SENT_GROUP, ALICE, "/latest")  # admins are exempt
    assert answered

    # a group that did not receive it gets the whole brief, once
    _, got = await bot.ask(OTHER_GROUP, CAROL, "/latest", replies=len(whole))
    assert [m.html for m in got] == [m.text for m in whole]
    await bot.ignored(OTHER_GROUP, BOB, "/latest")
    await bot.ignored(OTHER_GROUP, CAROL, "/latest")


async def test_an_admins_latest_is_short_where_the_brief_was_sent(bot: SearchBot) -> None:
    core = bot.core
    date = latest_day(core.store, core.today())
    assert date is not None
    core.store.add_subscriber("telegram", str(SENT_GROUP), TargetKind.GROUP)
    await bot.service.send(date)
    before = len(bot.server.messages_to(SENT_GROUP))
    reply = await bot.one(SENT_GROUP, ALICE, "/latest")
    assert reply.text.startswith(f"{date.isoformat()} 的简报已于 ")
    await asyncio.sleep(QUIET)
    assert len(bot.server.messages_to(SENT_GROUP)) == before + 1


# -- plain text, mentions, stats ----------------------------------------------------------


async def test_private_plain_text_is_a_search(bot: SearchBot) -> None:
    found = await bot.one(ALICE, ALICE, "芯片")
    assert numbers(found.text) == [1, 2, 3, 4, 5] and "<b>芯片</b>" in found.html
    nothing = await bot.one(ALICE, ALICE, "zzzz-nothing")
    assert nothing.text == "没有找到与「zzzz-nothing」相关的内容。"
    assert nothing.reply_markup is None
    english = await bot.one(BOB, BOB, "zzzz-nothing")
    assert english.text == "No items match “zzzz-nothing”."


async def test_a_mention_in_a_group_with_no_match_gets_one_line(bot: SearchBot) -> None:
    reply = await bot.mention(SENT_GROUP, CAROL, "zzzz-nothing")
    assert "\n" not in reply.text and reply.text.startswith("没有找到与「")
    assert reply.reply_markup is None


async def test_a_mention_searches_for_the_words_after_it(bot: SearchBot) -> None:
    nothing = await bot.mention(SENT_GROUP, CAROL, "zzzz-nothing")
    assert nothing.text == "没有找到与「zzzz-nothing」相关的内容。"
    found = await bot.mention(SENT_GROUP, CAROL, "芯片")
    assert found.text.splitlines()[0] == f"🔎 芯片：共 {CHIP_MATCHES} 条，第 1–{PAGE} 条"
    asked = {q.query for q in bot.core.store.query_counts(since=dt.date(2000, 1, 1))}
    assert asked == {"zzzz-nothing", "芯片"}


async def test_searches_are_counted(bot: SearchBot) -> None:
    await bot.one(ALICE, ALICE, "芯片")
    await bot.one(GROUP, BOB, "/search 芯片")
    await bot.one(BOB, BOB, "zzzz-nothing")
    # turning a page is not another search
    _, [reply] = await bot.ask(ALICE, ALICE, "/search 芯片")
    [(_, following)] = bot.buttons(ALICE, reply.message_id)
    await bot.press(ALICE, ALICE, reply, following)

    since = bot.core.today() - dt.timedelta(days=1)
    counts = {(q.query, q.asked, q.no_hits) for q in bot.core.store.query_counts(since=since)}
    assert counts == {("芯片", 3, 0), ("zzzz-nothing", 1, 1)}
    [unanswered] = bot.core.store.unanswered_queries(since=since)
    assert (unanswered.query, unanswered.asked, unanswered.no_hits) == ("zzzz-nothing", 1, 1)
