"""The WeChat adapter against the loopback puppet service, with a tiny handler and no store."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from grpclib.const import Status

from bot.domain import ChatKind, IncomingMessage, OutgoingMessage, Target, TargetKind
from bot.errors import ConfigError, RetryLater, TargetGone, TransientFailure
from bot.platforms.wechat.adapter import WechatPlatform
from bot.sandbox.wechat_puppet import WechatPuppetServer
from tests.wechat_fixtures import (
    ALICE,
    BOB,
    CAROL,
    OTHER_ROOM,
    ROOM,
    SELF_ID,
    SELF_NAME,
    TOPIC,
    running_server,
)

AT = "\u2005"


class Conversation:
    """What the handler saw; it answers every message with one reply."""

    def __init__(self) -> None:
        self.seen: asyncio.Queue[IncomingMessage] = asyncio.Queue()
        self.fail_on: str | None = None

    async def handler(self, message: IncomingMessage) -> list[OutgoingMessage]:
        self.seen.put_nowait(message)
        if message.text == self.fail_on:
            raise RuntimeError("handler bug")
        mentions = (message.user_id,) if message.chat_kind is ChatKind.GROUP else ()
        return [OutgoingMessage(f"答：{message.text}", mentions=mentions)]

    async def next(self, within: float = 5.0) -> IncomingMessage:
        return await asyncio.wait_for(self.seen.get(), within)


@pytest.fixture
async def server() -> AsyncIterator[WechatPuppetServer]:
    async with running_server() as started:
        yield started


@pytest.fixture
def conversation() -> Conversation:
    return Conversation()


def make_platform(
    server: WechatPuppetServer, conversation: Conversation, tmp_path: Path
) -> WechatPlatform:
    return WechatPlatform(
        endpoint=server.endpoint,
        token=server.token,
        handler=conversation.handler,
        cache_dir=tmp_path / "wechaty",
        login_timeout=5.0,
        backoff_base=0.05,  # short backoff so reconnect tests stay fast
        backoff_max=0.2,
    )


@pytest.fixture
async def platform(
    server: WechatPuppetServer, conversation: Conversation, tmp_path: Path
) -> AsyncIterator[WechatPlatform]:
    started = make_platform(server, conversation, tmp_path)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# --- messages in, replies out --------------------------------------------------------------


async def test_group_mention_is_answered_with_a_mention(
    server: WechatPuppetServer, platform: WechatPlatform, conversation: Conversation
) -> None:
    assert platform.self_id == SELF_ID and platform.self_name == SELF_NAME
    text = server.mention() + "查 openai"
    await server.inject_room_message(ROOM, ALICE, text, mention_ids=[SELF_ID])
    incoming = await conversation.next()
    assert incoming == IncomingMessage(
        platform="wechat",
        chat_id=ROOM,
        chat_kind=ChatKind.GROUP,
        user_id=ALICE,
        user_name="Alice",
        text="查 openai",
        mentions_bot=True,
    )
    [reply] = await server.wait_for_texts(ROOM, 1)
    assert reply.text == f"@Alice{AT}答：查 openai"
    assert reply.mention_ids == (ALICE,)


async def test_mention_by_group_nickname_is_stripped_and_names_are_group_nicknames(
    server: WechatPuppetServer, platform: WechatPlatform, conversation: Conversation
) -> None:
    server.set_room_alias(ROOM, SELF_ID, "小助手")
    server.set_room_alias(ROOM, BOB, "王总")
    text = server.mention(room_id=ROOM) + "今日简报"
    await server.inject_room_message(ROOM, BOB, text, mention_ids=[SELF_ID])
    incoming = await conversation.next()
    assert (incoming.text, incoming.user_name, incoming.mentions_bot) == ("今日简报", "王总", True)
    [reply] = await server.wait_for_texts(ROOM, 1)
    assert reply.text.startswith(f"@王总{AT}")


async def test_group_chatter_is_ignored_and_prefixed_queries_pass(
    server: WechatPuppetServer, platform: WechatPlatform, conversation: Conversation
) -> None:
    await server.inject_room_message(ROOM, ALICE, "大家早上好")
    await server.inject_room_message(ROOM, SELF_ID, "#我自己说的")  # the bot's own message
    await server.inject_room_message(ROOM, BOB, "#agent")
    incoming = await conversation.next()
    assert (incoming.text, incoming.user_id, incoming.mentions_bot) == ("#agent", BOB, False)
    assert conversation.seen.empty()


async def test_private_message_is_answered(
    server: WechatPuppetServer, platform: WechatPlatform, conversation: Conversation
) -> None:
    await server.inject_private_message(CAROL, "最新简报")
    incoming = await conversation.next()
    assert incoming.chat_kind is ChatKind.PRIVATE
    assert (incoming.chat_id, incoming.user_id, incoming.user_name) == (CAROL, CAROL, "Carol")
    [reply] = await server.wait_for_texts(CAROL, 1)
    assert (reply.text, reply.mention_ids) == ("答：最新简报", ())


async def test_handler_error_is_logged_and_the_bot_keeps_going(
    server: WechatPuppetServer,
    platform: WechatPlatform,
    conversation: Conversation,
    caplog: pytest.LogCaptureFixture,
) -> None:
    conversation.fail_on = "boom"
    with caplog.at_level(logging.ERROR, logger="briefbot.wechat"):
        await server.inject_private_message(CAROL, "boom")
        await conversation.next()
        await server.inject_private_message(CAROL, "还好吗")
        [reply] = await server.wait_for_texts(CAROL, 1)
    assert reply.text == "答：还好吗"
    assert any("wechat.handler_failed" in r.getMessage() for r in caplog.records)


# --- sending -------------------------------------------------------------------------------


async def test_send_to_room_with_mentions(
    server: WechatPuppetServer, platform: WechatPlatform
) -> None:
    target = Target("wechat", ROOM, TargetKind.GROUP, TOPIC)
    message_id = await platform.send(target, OutgoingMessage("简报", mentions=(ALICE, CAROL)))
    [sent] = server.texts_to(ROOM)
    assert sent.message_id == message_id
    assert sent.text == f"@Alice{AT}简报"  # Carol is not in the group: no mention
    assert sent.mention_ids == (ALICE,)


async def test_send_to_a_chatroom_id_without_kind_and_to_a_person(
    server: WechatPuppetServer, platform: WechatPlatform
) -> None:
    await platform.send(Target("wechat", OTHER_ROOM), OutgoingMessage("群发"))
    await platform.send(Target("wechat", CAROL), OutgoingMessage("私发"))
    assert [s.text for s in server.texts_to(OTHER_ROOM)] == ["群发"]
    assert [s.text for s in server.texts_to(CAROL)] == ["私发"]


async def test_send_outcomes(server: WechatPuppetServer, platform: WechatPlatform) -> None:
    room = Target("wechat", ROOM, TargetKind.GROUP)
    with pytest.raises(TargetGone):
        await platform.send(
            Target("wechat", "999@chatroom", TargetKind.GROUP), OutgoingMessage("x")
        )
    with pytest.raises(TargetGone):
        await platform.send(Target("wechat", "wxid_nobody_here"), OutgoingMessage("x"))
    server.fail_next_send(ROOM)
    with pytest.raises(TransientFailure):
        await platform.send(room, OutgoingMessage("x"))
    server.fail_next_send(ROOM, status=Status.RESOURCE_EXHAUSTED)
    with pytest.raises(RetryLater):
        await platform.send(room, OutgoingMessage("x"))
    server.remove_room(ROOM)
    with pytest.raises(TargetGone):
        await platform.send(room, OutgoingMessage("x"))
    assert server.sent == []


async def test_resolve_room(server: WechatPuppetServer, platform: WechatPlatform) -> None:
    assert await platform.resolve_room(topic=TOPIC) == ROOM
    assert await platform.resolve_room(room_id=OTHER_ROOM) == OTHER_ROOM
    assert await platform.resolve_room(topic="AI简报") is None  # exact topics only
    assert await platform.resolve_room(room_id="999@chatroom") is None
    server.add_room("20001000003@chatroom", TOPIC, [ALICE])
    with pytest.raises(ConfigError, match="matches 2 groups"):
        await platform.resolve_room(topic=TOPIC)


# --- connection ----------------------------------------------------------------------------


async def test_reconnects_after_the_stream_drops(
    server: WechatPuppetServer,
    platform: WechatPlatform,
    conversation: Conversation,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="briefbot.wechat"):
        await server.drop_stream()
        await server.wait_connected(streams_opened=2)
        await eventually(lambda: platform.connections == 2 and platform.connected)
        await server.inject_private_message(CAROL, "重连了吗")
        assert (await conversation.next()).text == "重连了吗"
        await server.wait_for_texts(CAROL, 1)
    messages = [r.getMessage() for r in caplog.records]
    assert any("wechat.disconnected" in m for m in messages)
    for secret in (SELF_ID, CAROL, server.token):
        assert not any(secret in m for m in messages), secret


async def test_reconnects_with_backoff_while_the_gateway_is_down(
    server: WechatPuppetServer, platform: WechatPlatform, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="briefbot.wechat"):
        await server.stop()
        await eventually(lambda: not platform.connected)
        with pytest.raises(TransientFailure, match="not connected"):
            await platform.send(Target("wechat", CAROL), OutgoingMessage("x"))
        await eventually(
            lambda: sum("wechat.disconnected" in r.getMessage() for r in caplog.records) >= 3
        )
        await server.start()  # same port, as a restarted gateway
        await eventually(lambda: platform.connected)
    await platform.send(Target("wechat", CAROL), OutgoingMessage("回来了"))
    assert [s.text for s in server.texts_to(CAROL)] == ["回来了"]


async def test_wrong_token_is_a_config_error(server: WechatPuppetServer, tmp_path: Path) -> None:
    platform = WechatPlatform(
        endpoint=server.endpoint, token="insecure_wrong", handler=None, cache_dir=tmp_path
    )
    with pytest.raises(ConfigError, match="rejected the token"):
        await platform.start()


async def test_no_gateway_is_a_transient_failure(tmp_path: Path) -> None:
    async with WechatPuppetServer() as probe:
        endpoint = probe.endpoint  # a port that is free again once the probe stops
    platform = WechatPlatform(
        endpoint=endpoint,
        token="insecure_x",
        handler=None,
        cache_dir=tmp_path,
        login_timeout=0.5,
        backoff_base=0.05,
    )
    with pytest.raises(TransientFailure, match="did not log in"):
        await platform.start()
    assert not platform.connected


def test_missing_endpoint_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="BRIEFBOT_WECHAT_ENDPOINT"):
        WechatPlatform(endpoint="", token="insecure_x", handler=None)


async def test_name_mention_without_mention_ids_still_counts(
    server: WechatPuppetServer, platform: WechatPlatform, conversation: Conversation
) -> None:
    # Some puppets leave mentionIdList empty; the text still starts with "@<bot name>".
    await server.inject_room_message(ROOM, ALICE, f"@{SELF_NAME} 查 rag")
    incoming = await conversation.next()
    assert (incoming.text, incoming.mentions_bot) == ("查 rag", True)
