"""Inline keyboards, callback queries, message edits and inline mode on the loopback Bot API,
driven by the real python-telegram-bot client over HTTP."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    Message,
    Update,
)
from telegram.error import BadRequest, RetryAfter
from telegram.ext import (
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    InlineQueryHandler,
)

from bot.sandbox.telegram_api import TelegramTestServer
from tests.sandbox_fixtures import ALICE, BOB, CHANNEL, GROUP, telegram_bot, telegram_server

__all__ = ["telegram_bot", "telegram_server"]  # fixtures, imported to be found by pytest

QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
HOUR = 3600


def _exactly(text: str) -> str:
    """A pattern for a Bot API description as PTB shows it: the "Bad Request: " prefix gone
    and the rest capitalised (``str.capitalize`` lowercases all but the first letter)."""
    return f"(?i)^{re.escape(text)}$"


def _pages(page: int, *, last: int = 3) -> InlineKeyboardMarkup:
    buttons = []
    if page > 1:
        buttons.append(InlineKeyboardButton("‹ 上一页", callback_data=f"search:AI:{page - 1}"))
    if page < last:
        buttons.append(InlineKeyboardButton("下一页 ›", callback_data=f"search:AI:{page + 1}"))
    return InlineKeyboardMarkup([buttons])


def _article(
    result_id: str, text: str = "<b>AI</b> 简报", title: str = "AI"
) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(
        result_id, title, InputTextMessageContent(text, parse_mode="HTML")
    )


@pytest.fixture
def server(telegram_server: TelegramTestServer) -> TelegramTestServer:
    """The shared server without per-chat flood limits, for tests that send and edit often
    (one test below checks that edits do count against them)."""
    telegram_server.set_limits(private_per_second=math.inf, group_per_minute=math.inf)
    return telegram_server


@pytest.fixture
async def strict_edit_server() -> AsyncIterator[TelegramTestServer]:
    """A server with the optional 48-hour edit limit outside private chats."""
    server = TelegramTestServer(edit_time_limit=48 * HOUR)
    server.add_user(ALICE, "Alice")
    server.add_user(BOB, "Bob")
    server.add_chat(GROUP, "group", title="AI 读书会", admins=[ALICE], members=[BOB])
    async with server:
        yield server


# ── inline keyboards on sendMessage ──────────────────────────────────────────────────────


async def test_message_with_an_inline_keyboard(
    server: TelegramTestServer, telegram_bot: Bot
) -> None:
    keyboard = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("下一页 ›", callback_data="search:AI:2")],
            [
                InlineKeyboardButton("原文", url="https://example.com/a"),
                InlineKeyboardButton("分享", switch_inline_query="AI"),
                InlineKeyboardButton("再搜", switch_inline_query_current_chat="AI"),
            ],
        ]
    )
    message = await telegram_bot.send_message(ALICE, "结果 1/3", reply_markup=keyboard)
    assert message.reply_markup == keyboard
    [sent] = server.messages_to(ALICE)
    assert sent.reply_markup == keyboard.to_dict()
    assert server.message(ALICE, message.message_id)["reply_markup"] == keyboard.to_dict()


async def test_a_button_with_several_actions_keeps_the_first_the_server_looks_for(
    server: TelegramTestServer,
) -> None:
    both = {"text": "原文", "callback_data": "x", "url": "https://example.com"}
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            server.method_url("sendMessage"),
            json={"chat_id": ALICE, "text": "x", "reply_markup": {"inline_keyboard": [[both]]}},
        )
    assert answer.json()["result"]["reply_markup"] == {
        "inline_keyboard": [[{"text": "原文", "url": "https://example.com"}]]
    }


async def test_callback_data_is_limited_in_bytes(
    server: TelegramTestServer, telegram_bot: Bot
) -> None:
    fits = "简" * 21 + "x"  # 22 characters, 64 bytes of UTF-8
    message = await telegram_bot.send_message(
        ALICE,
        "ok",
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data=fits)]]),
    )
    assert message.reply_markup is not None
    assert message.reply_markup.inline_keyboard[0][0].callback_data == fits

    for too_long in ("x" * 65, "简" * 22):  # 65 bytes; 22 characters but 66 bytes
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data=too_long)]])
        with pytest.raises(BadRequest, match=_exactly("BUTTON_DATA_INVALID")):
            await telegram_bot.send_message(ALICE, "no", reply_markup=markup)
    assert [m.text for m in server.messages_to(ALICE)] == ["ok"]


async def test_buttons_without_an_action_or_a_text(server: TelegramTestServer) -> None:
    async def send(rows: list[list[dict[str, object]]]) -> httpx.Response:
        async with httpx.AsyncClient() as client:
            return await client.post(
                server.method_url("sendMessage"),
                json={"chat_id": ALICE, "text": "x", "reply_markup": {"inline_keyboard": rows}},
            )

    answer = await send([[{"text": "只有文字"}]])
    assert (answer.status_code, answer.json()["description"]) == (
        400,
        "Bad Request: can't parse inline keyboard button: "
        "Text buttons are unallowed in the inline keyboard",
    )
    answer = await send([[{"text": "空数据", "callback_data": ""}]])  # empty data is no action
    assert "Text buttons are unallowed" in answer.json()["description"]
    answer = await send([[{"callback_data": "x"}]])
    assert answer.json()["description"] == (
        "Bad Request: can't parse inline keyboard button: Can't find field \"text\""
    )
    # TDLib drops buttons with an empty text; a keyboard left empty is no keyboard.
    answer = await send([[{"text": "", "callback_data": "a"}, {"text": "b", "callback_data": "b"}]])
    assert answer.json()["result"]["reply_markup"] == {
        "inline_keyboard": [[{"text": "b", "callback_data": "b"}]]
    }
    answer = await send([[{"text": "", "callback_data": "a"}]])
    assert "reply_markup" not in answer.json()["result"]


async def test_switch_inline_buttons_are_refused_in_channels(telegram_bot: Bot) -> None:
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("分享", switch_inline_query="AI")]])
    with pytest.raises(BadRequest, match=r"(?i)can't use switch_inline_query button in a channel"):
        await telegram_bot.send_message(CHANNEL, "x", reply_markup=markup)


# ── callback queries ─────────────────────────────────────────────────────────────────────


async def test_pressed_button_reaches_ptb_as_a_callback_query(
    server: TelegramTestServer, telegram_bot: Bot
) -> None:
    message = await telegram_bot.send_message(GROUP, "结果 1/3", reply_markup=_pages(1))
    pressed = server.press_button(GROUP, BOB, message.message_id, "search:AI:2")

    [update] = await telegram_bot.get_updates()
    query = update.callback_query
    assert query is not None and update.update_id == pressed["update_id"]
    assert (query.id, query.data) == (pressed["callback_query"]["id"], "search:AI:2")
    assert query.from_user.id == BOB
    assert isinstance(query.message, Message)
    assert query.message.message_id == message.message_id
    assert query.message.chat.id == GROUP
    assert query.message.reply_markup == _pages(1)
    again = server.press_button(GROUP, ALICE, message.message_id, "search:AI:2")
    assert again["callback_query"]["chat_instance"] == query.chat_instance
    assert again["callback_query"]["id"] != query.id


async def test_only_existing_buttons_can_be_pressed_by_users_in_the_chat(
    server: TelegramTestServer, telegram_bot: Bot
) -> None:
    message = await telegram_bot.send_message(ALICE, "结果 1/3", reply_markup=_pages(1))
    plain = await telegram_bot.send_message(ALICE, "没有按钮")
    with pytest.raises(ValueError, match="no callback button"):
        server.press_button(ALICE, ALICE, message.message_id, "search:AI:9")
    with pytest.raises(ValueError, match="no callback button"):
        server.press_button(ALICE, ALICE, plain.message_id, "search:AI:2")
    with pytest.raises(ValueError, match="not in chat"):
        server.press_button(ALICE, BOB, message.message_id, "search:AI:2")
    with pytest.raises(ValueError, match="no message"):
        server.press_button(ALICE, ALICE, 999, "search:AI:2")
    assert await telegram_bot.get_updates() == ()


async def test_answer_callback_query_once(server: TelegramTestServer, telegram_bot: Bot) -> None:
    message = await telegram_bot.send_message(ALICE, "结果 1/3", reply_markup=_pages(1))
    query_id = server.press_button(ALICE, ALICE, message.message_id, "search:AI:2")[
        "callback_query"
    ]["id"]
    waiting = asyncio.create_task(server.wait_for_callback_answer(query_id))

    with pytest.raises(BadRequest, match=_exactly("MESSAGE_TOO_LONG")):
        await telegram_bot.answer_callback_query(query_id, text="长" * 201)
    assert await telegram_bot.answer_callback_query(query_id, text="第 2 页", show_alert=True)
    assert await waiting == {"text": "第 2 页", "show_alert": True, "url": "", "cache_time": 0}
    assert server.callback_answers == {query_id: await waiting}

    with pytest.raises(BadRequest, match=_exactly(QUERY_TOO_OLD)):
        await telegram_bot.answer_callback_query(query_id, text="again")
    with pytest.raises(BadRequest, match=_exactly(QUERY_TOO_OLD)):
        await telegram_bot.answer_callback_query("12345", text="never asked")
    assert list(server.callback_answers) == [query_id]


async def test_an_expired_callback_query_cannot_be_answered(
    server: TelegramTestServer, telegram_bot: Bot
) -> None:
    message = await telegram_bot.send_message(ALICE, "结果 1/3", reply_markup=_pages(1))
    query_id = server.press_button(ALICE, ALICE, message.message_id, "search:AI:2")[
        "callback_query"
    ]["id"]
    server.expire_query(query_id)
    with pytest.raises(BadRequest, match=_exactly(QUERY_TOO_OLD)):
        await telegram_bot.answer_callback_query(query_id)
    with pytest.raises(TimeoutError, match="not answered"):
        await server.wait_for_callback_answer(query_id, timeout=0.05)


# ── editMessageText ──────────────────────────────────────────────────────────────────────


async def test_edit_changes_text_and_keyboard(
    server: TelegramTestServer, telegram_bot: Bot
) -> None:
    message = await telegram_bot.send_message(ALICE, "结果 1/3", reply_markup=_pages(1))
    waiting = asyncio.create_task(server.wait_for_edit(ALICE, message.message_id))

    edited = await telegram_bot.edit_message_text(
        "<b>结果</b> 2/3",
        chat_id=ALICE,
        message_id=message.message_id,
        parse_mode="HTML",
        reply_markup=_pages(2),
    )
    assert isinstance(edited, Message)
    assert (edited.message_id, edited.text) == (message.message_id, "结果 2/3")
    assert edited.edit_date is not None and edited.reply_markup == _pages(2)
    [edit] = await waiting
    assert (edit.text, edit.html, edit.reply_markup) == (
        "结果 2/3",
        "<b>结果</b> 2/3",
        _pages(2).to_dict(),
    )
    [sent] = server.messages_to(ALICE)
    assert (sent.text, sent.edit_count, sent.reply_markup) == ("结果 2/3", 1, _pages(2).to_dict())
    assert server.current_text(ALICE, message.message_id) == "结果 2/3"

    # The same text with another keyboard is a change; without reply_markup the keyboard goes.
    await telegram_bot.edit_message_text(
        "<b>结果</b> 2/3",
        chat_id=ALICE,
        message_id=message.message_id,
        parse_mode="HTML",
        reply_markup=_pages(3),
    )
    last = await telegram_bot.edit_message_text(
        "<b>结果</b> 2/3", chat_id=ALICE, message_id=message.message_id, parse_mode="HTML"
    )
    assert not isinstance(last, bool) and last.reply_markup is None
    assert "reply_markup" not in server.message(ALICE, message.message_id)
    assert len(server.edits_of(ALICE, message.message_id)) == 3
    with pytest.raises(ValueError, match="no callback button"):
        server.press_button(ALICE, ALICE, message.message_id, "search:AI:2")


async def test_edit_that_changes_nothing_is_refused(
    server: TelegramTestServer, telegram_bot: Bot
) -> None:
    message = await telegram_bot.send_message(
        ALICE, "<i>结果</i> 1/3", parse_mode="HTML", reply_markup=_pages(1)
    )
    with pytest.raises(BadRequest, match=_exactly(NOT_MODIFIED)):
        await telegram_bot.edit_message_text(
            "<i>结果</i> 1/3",
            chat_id=ALICE,
            message_id=message.message_id,
            parse_mode="HTML",
            reply_markup=_pages(1),
        )
    # Other markup for the same visible text and entities changes nothing either.
    with pytest.raises(BadRequest, match=_exactly(NOT_MODIFIED)):
        await telegram_bot.edit_message_text(
            "<em>结果</em> 1/3",
            chat_id=ALICE,
            message_id=message.message_id,
            parse_mode="HTML",
            reply_markup=_pages(1),
        )
    assert server.edits == []
    assert server.messages_to(ALICE)[0].edit_count == 0


async def test_edit_validates_like_send(server: TelegramTestServer, telegram_bot: Bot) -> None:
    message = await telegram_bot.send_message(ALICE, "结果 1/3")
    mid = message.message_id
    with pytest.raises(BadRequest, match=r"(?i)^can't parse entities: "):
        await telegram_bot.edit_message_text(
            "<b>结果 2/3", parse_mode="HTML", chat_id=ALICE, message_id=mid
        )
    with pytest.raises(BadRequest, match=r"(?i)^can't parse entities: "):
        await telegram_bot.edit_message_text(
            "1 < 2", parse_mode="HTML", chat_id=ALICE, message_id=mid
        )
    with pytest.raises(BadRequest, match=_exactly("message text is empty")):
        await telegram_bot.edit_message_text(
            "<b> </b>", parse_mode="HTML", chat_id=ALICE, message_id=mid
        )
    with pytest.raises(BadRequest, match=_exactly("MESSAGE_TOO_LONG")):
        await telegram_bot.edit_message_text(
            "😀" * 2049, chat_id=ALICE, message_id=mid
        )  # 4098 UTF-16 units
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("a", callback_data="x" * 65)]])
    with pytest.raises(BadRequest, match=_exactly("BUTTON_DATA_INVALID")):
        await telegram_bot.edit_message_text(
            "结果 2/3", reply_markup=markup, chat_id=ALICE, message_id=mid
        )
    with pytest.raises(BadRequest, match=_exactly("message to edit not found")):
        await telegram_bot.edit_message_text("结果 2/3", chat_id=ALICE, message_id=999)
    with pytest.raises(BadRequest, match=_exactly("message to edit not found")):
        await telegram_bot.edit_message_text("结果 2/3", chat_id=BOB, message_id=message.message_id)
    assert server.edits == []
    assert server.current_text(ALICE, message.message_id) == "结果 1/3"


async def test_bot_edits_only_its_own_messages(
    server: TelegramTestServer, telegram_bot: Bot
) -> None:
    written = server.send_user_message(GROUP, BOB, "/search AI")["message"]["message_id"]
    with pytest.raises(BadRequest, match=_exactly("message can't be edited")):
        await telegram_bot.edit_message_text("改了", chat_id=GROUP, message_id=written)


async def test_old_messages_stay_editable_by_default(
    server: TelegramTestServer, telegram_bot: Bot
) -> None:
    """Telegram sets no age limit on a bot's edits of its own messages (TDLib)."""
    message = await telegram_bot.send_message(GROUP, "结果 1/3")
    server.age_message(GROUP, message.message_id, 30 * 24 * HOUR)
    edited = await telegram_bot.edit_message_text(
        "结果 2/3", chat_id=GROUP, message_id=message.message_id
    )
    assert not isinstance(edited, bool) and edited.text == "结果 2/3"


async def test_edit_time_limit_outside_private_chats(
    strict_edit_server: TelegramTestServer,
) -> None:
    server = strict_edit_server
    async with Bot(server.token, base_url=server.base_url) as bot:
        in_group = await bot.send_message(GROUP, "结果 1/3")
        in_private = await bot.send_message(ALICE, "结果 1/3")
        server.age_message(GROUP, in_group.message_id, 47 * HOUR)
        await bot.edit_message_text("结果 2/3", chat_id=GROUP, message_id=in_group.message_id)

        server.age_message(GROUP, in_group.message_id, 1 * HOUR)  # now 48 hours old
        with pytest.raises(BadRequest, match=_exactly("message can't be edited")):
            await bot.edit_message_text("结果 3/3", chat_id=GROUP, message_id=in_group.message_id)
        server.age_message(ALICE, in_private.message_id, 30 * 24 * HOUR)
        await bot.edit_message_text("结果 2/3", chat_id=ALICE, message_id=in_private.message_id)
    assert server.current_text(GROUP, in_group.message_id) == "结果 2/3"
    assert server.current_text(ALICE, in_private.message_id) == "结果 2/3"


async def test_edits_count_against_flood_control(
    telegram_server: TelegramTestServer, telegram_bot: Bot
) -> None:
    telegram_server.set_limits(group_per_minute=2)
    message = await telegram_bot.send_message(GROUP, "结果 1/3")
    await telegram_bot.edit_message_text("结果 2/3", chat_id=GROUP, message_id=message.message_id)
    with pytest.raises(RetryAfter):
        await telegram_bot.edit_message_text(
            "结果 3/3", chat_id=GROUP, message_id=message.message_id
        )
    with pytest.raises(RetryAfter):
        await telegram_bot.send_message(GROUP, "另一条")
    assert telegram_server.current_text(GROUP, message.message_id) == "结果 2/3"


async def test_edit_of_an_inline_message(server: TelegramTestServer, telegram_bot: Bot) -> None:
    assert await telegram_bot.edit_message_text(
        "<b>已更新</b>", inline_message_id="AgAAAEx0", parse_mode="HTML", reply_markup=_pages(2)
    )
    [edit] = server.edits
    assert (edit.inline_message_id, edit.chat_id, edit.text) == ("AgAAAEx0", None, "已更新")
    with pytest.raises(BadRequest, match=_exactly("message identifier is not specified")):
        await telegram_bot.edit_message_text("x")


# ── inline mode ──────────────────────────────────────────────────────────────────────────


async def test_inline_query_reaches_ptb(server: TelegramTestServer, telegram_bot: Bot) -> None:
    me = await telegram_bot.get_me()
    assert me.supports_inline_queries
    sent = server.send_inline_query(BOB, "AI 芯片", chat_type="group", offset="2")
    long_query = server.send_inline_query(ALICE, "长" * 300)

    first, second = await telegram_bot.get_updates()
    query = first.inline_query
    assert query is not None and first.update_id == sent["update_id"]
    assert (query.id, query.query, query.offset, query.chat_type) == (
        sent["inline_query"]["id"],
        "AI 芯片",
        "2",
        "group",
    )
    assert query.from_user.id == BOB
    assert second.inline_query is not None
    assert second.inline_query.query == "长" * 256
    assert long_query["inline_query"]["id"] != query.id
    with pytest.raises(ValueError, match="chat_type"):
        server.send_inline_query(BOB, "x", chat_type="forum")


async def test_inline_mode_off() -> None:
    async with TelegramTestServer(inline=False) as server:
        server.add_user(ALICE, "Alice")
        async with Bot(server.token, base_url=server.base_url) as bot:
            assert not (await bot.get_me()).supports_inline_queries
        with pytest.raises(ValueError, match="inline mode is off"):
            server.send_inline_query(ALICE, "AI")


async def test_answer_inline_query_is_recorded(
    server: TelegramTestServer, telegram_bot: Bot
) -> None:
    query_id = server.send_inline_query(ALICE, "AI")["inline_query"]["id"]
    waiting = asyncio.create_task(server.wait_for_inline_answer(query_id))
    results = [_article(str(n), f"<b>AI</b> 第 {n} 条", f"结果 {n}") for n in range(1, 4)]
    assert await telegram_bot.answer_inline_query(
        query_id, results, cache_time=0, is_personal=True, next_offset="3"
    )
    answer = await waiting
    assert [r["id"] for r in answer["results"]] == ["1", "2", "3"]
    assert answer["results"][0]["input_message_content"]["message_text"] == "<b>AI</b> 第 1 条"
    assert (answer["cache_time"], answer["is_personal"], answer["next_offset"]) == (0, True, "3")
    assert server.inline_answers == {query_id: answer}

    with pytest.raises(BadRequest, match=_exactly(QUERY_TOO_OLD)):
        await telegram_bot.answer_inline_query(query_id, results)
    with pytest.raises(BadRequest, match=_exactly(QUERY_TOO_OLD)):
        await telegram_bot.answer_inline_query("777", results)
    expired = server.send_inline_query(ALICE, "AI")["inline_query"]["id"]
    server.expire_query(expired)
    with pytest.raises(BadRequest, match=_exactly(QUERY_TOO_OLD)):
        await telegram_bot.answer_inline_query(expired, results)
    assert list(server.inline_answers) == [query_id]


@pytest.mark.parametrize(
    ("results", "next_offset", "wording"),
    [
        ([_article(str(n)) for n in range(51)], None, "too many inline query results specified"),
        ([_article("1"), _article("2"), _article("1")], None, "RESULT_ID_DUPLICATE"),
        ([_article("")], None, "RESULT_ID_EMPTY"),
        ([_article("x" * 65)], None, "RESULT_ID_INVALID"),
        ([_article("1", "长" * 4097)], None, "MESSAGE_TOO_LONG"),
        ([_article("1", "😀" * 2049)], None, "MESSAGE_TOO_LONG"),  # 4098 UTF-16 units
        ([_article("1", title="")], None, "ARTICLE_TITLE_EMPTY"),
        ([_article("1")], "页" * 22, "NEXT_OFFSET_INVALID"),  # 66 bytes
    ],
)
async def test_answer_inline_query_limits(
    server: TelegramTestServer,
    telegram_bot: Bot,
    results: list[InlineQueryResultArticle],
    next_offset: str | None,
    wording: str,
) -> None:
    query_id = server.send_inline_query(ALICE, "AI")["inline_query"]["id"]
    with pytest.raises(BadRequest, match=_exactly(wording)):
        await telegram_bot.answer_inline_query(query_id, results, next_offset=next_offset)
    assert server.inline_answers == {}
    # A refused answer does not use the query up.
    assert await telegram_bot.answer_inline_query(query_id, [_article(str(n)) for n in range(50)])
    assert len(server.inline_answers[query_id]["results"]) == 50


async def test_inline_result_text_is_parsed_as_html(
    server: TelegramTestServer, telegram_bot: Bot
) -> None:
    query_id = server.send_inline_query(ALICE, "AI")["inline_query"]["id"]
    with pytest.raises(
        BadRequest, match=r"(?i)^can't parse inline query result: can't parse entities: "
    ):
        await telegram_bot.answer_inline_query(query_id, [_article("1", "<b>AI")])
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            server.method_url("answerInlineQuery"),
            json={
                "inline_query_id": query_id,
                "results": [
                    {"type": "article", "id": "1"},
                    {"type": "article", "id": "2", "input_message_content": {"message_text": "x"}},
                ],
            },
        )
        # Client.cpp looks for the message text before the title.
        assert answer.json()["description"] == (
            "Bad Request: can't parse inline query result: Can't find field \"message_text\""
        )
        answer = await client.post(
            server.method_url("answerInlineQuery"),
            json={
                "inline_query_id": query_id,
                "results": [
                    {"type": "article", "id": "2", "input_message_content": {"message_text": "x"}}
                ],
            },
        )
        assert answer.json()["description"] == (
            "Bad Request: can't parse inline query result: Can't find field \"title\""
        )
    assert await telegram_bot.answer_inline_query(query_id, [_article("1", "<b>AI</b> &lt;3")])


# ── getUpdates allowed_updates ───────────────────────────────────────────────────────────


async def test_allowed_updates_filter_new_updates_and_persist(
    server: TelegramTestServer, telegram_bot: Bot
) -> None:
    message = await telegram_bot.send_message(ALICE, "结果 1/3", reply_markup=_pages(1))
    queued = server.press_button(ALICE, ALICE, message.message_id, "search:AI:2")

    # The filter applies to updates created after the call; the queued press stays.
    updates = await telegram_bot.get_updates(allowed_updates=["message"])
    assert [u.update_id for u in updates] == [queued["update_id"]]
    server.press_button(ALICE, ALICE, message.message_id, "search:AI:2")
    server.send_inline_query(ALICE, "AI")
    text = server.send_user_message(ALICE, ALICE, "/latest")
    updates = await telegram_bot.get_updates(offset=queued["update_id"] + 1)  # keeps the filter
    assert [u.update_id for u in updates] == [text["update_id"]]

    await telegram_bot.get_updates(
        offset=text["update_id"] + 1, allowed_updates=["message", "callback_query", "inline_query"]
    )
    press = server.press_button(ALICE, ALICE, message.message_id, "search:AI:2")
    inline = server.send_inline_query(ALICE, "AI")
    updates = await telegram_bot.get_updates(offset=text["update_id"] + 1)
    assert [u.update_id for u in updates] == [press["update_id"], inline["update_id"]]
    assert updates[0].callback_query is not None and updates[1].inline_query is not None


# ── a PTB Application paging search results ──────────────────────────────────────────────


async def test_application_pages_results_and_answers_inline_queries(
    server: TelegramTestServer, telegram_bot: Bot
) -> None:
    async def page(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        number = int(query.data.rsplit(":", 1)[1])
        await query.answer(f"第 {number} 页")
        await query.edit_message_text(
            f"<b>AI</b> 结果 {number}/3", parse_mode="HTML", reply_markup=_pages(number)
        )

    async def inline(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.inline_query is not None
        await update.inline_query.answer(
            [_article("1", f"<b>{update.inline_query.query}</b>")], cache_time=0
        )

    app = ApplicationBuilder().token(server.token).base_url(server.base_url).build()
    app.add_handler(CallbackQueryHandler(page, pattern=r"^search:"))
    app.add_handler(InlineQueryHandler(inline))
    message = await telegram_bot.send_message(
        GROUP, "<b>AI</b> 结果 1/3", parse_mode="HTML", reply_markup=_pages(1)
    )
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(
            poll_interval=0, allowed_updates=["message", "callback_query", "inline_query"]
        )
        press = server.press_button(GROUP, BOB, message.message_id, "search:AI:2")
        query = server.send_inline_query(ALICE, "芯片")
        [edit] = await server.wait_for_edit(GROUP, message.message_id)
        callback_answer = await server.wait_for_callback_answer(press["callback_query"]["id"])
        inline_answer = await server.wait_for_inline_answer(query["inline_query"]["id"])
        await app.updater.stop()
        await app.stop()
    assert (edit.text, edit.reply_markup) == ("AI 结果 2/3", _pages(2).to_dict())
    assert callback_answer["text"] == "第 2 页"
    assert inline_answer["results"][0]["input_message_content"]["message_text"] == "<b>芯片</b>"
