"""The loopback puppet service, driven by the real wechaty 0.10.7 client over gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import StreamTerminatedError

from bot.errors import ConfigError
from bot.platforms.wechat_compat import check_python, load_wechaty, make_wechaty, mask_id
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
    ClientRun,
    running_client,
    running_server,
)


@pytest.fixture
async def server() -> AsyncIterator[WechatPuppetServer]:
    async with running_server() as started:
        yield started


@pytest.fixture
async def client(server: WechatPuppetServer, tmp_path: Path) -> AsyncIterator[ClientRun]:
    async with running_client(server, tmp_path / "wechaty-cache") as run:
        yield run


@contextlib.asynccontextmanager
async def raw_stub(server: WechatPuppetServer, token: str) -> AsyncIterator[Any]:
    load_wechaty()
    from wechaty_grpc.wechaty import PuppetStub

    channel = Channel(server.host, server.port)
    channel._authority = token  # what wechaty does with its token
    try:
        yield PuppetStub(channel)
    finally:
        channel.close()


# --- the compatibility layer ---------------------------------------------------------------


def test_import_leaves_the_working_directory_alone(tmp_path: Path) -> None:
    module = load_wechaty(tmp_path / "cache")
    assert module.__name__ == "wechaty"
    assert not (Path.cwd() / ".wechaty").exists()
    assert os.environ["CACHE_DIR"] != ".wechaty"
    wechaty_logger = logging.getLogger("Wechaty")
    assert wechaty_logger.propagate and not wechaty_logger.handlers


def test_python_313_gets_a_clear_error() -> None:
    check_python((3, 12))
    with pytest.raises(ConfigError, match=r"needs Python 3\.11 or 3\.12"):
        check_python((3, 13))


@pytest.mark.parametrize(
    ("endpoint", "token", "expected"),
    [
        ("", "insecure_x", "BRIEFBOT_WECHAT_ENDPOINT"),
        ("https://gateway.example:443", "insecure_x", "TLS"),
        ("gateway.example", "insecure_x", "host:port"),
        ("127.0.0.1:8788", "", "BRIEFBOT_WECHAT_TOKEN"),
        ("127.0.0.1:8788", "has space", "without spaces"),
    ],
)
def test_make_wechaty_refuses_what_would_reach_discovery_or_break(
    endpoint: str, token: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        make_wechaty(endpoint, token)


async def test_explicit_endpoint_wins_over_the_wechaty_environment(
    server: WechatPuppetServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WECHATY_PUPPET_SERVICE_ENDPOINT", "192.0.2.1:9")
    monkeypatch.setenv("WECHATY_PUPPET_SERVICE_TOKEN", "puppet_wrong")
    async with running_client(server, tmp_path) as run:
        assert run.bot.puppet.options.end_point == server.endpoint
        assert run.bot.puppet.options.token == server.token


def test_mask_id_keeps_the_kind_and_hides_the_rest() -> None:
    assert mask_id("wxid_abcdefgh12yz") == "wxid_ab…yz"
    assert mask_id("20001000001@chatroom") == "20…01@chatroom"
    assert mask_id("wxid_abc") == "wxid_…"
    assert mask_id("") == "-"


def test_library_logs_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    make_wechaty("127.0.0.1:9", "insecure_secret_token")  # registers the token for masking
    with caplog.at_level(logging.WARNING):
        logging.getLogger("Wechaty").warning(
            "token <%s> from %s in %s", "insecure_secret_token", ALICE, ROOM
        )
    text = caplog.text
    assert "insecure_secret_token" not in text and ALICE not in text and ROOM not in text
    assert mask_id(ALICE) in text


# --- the real client against the loopback service -------------------------------------------


async def test_client_logs_in(server: WechatPuppetServer, client: ClientRun) -> None:
    me = client.bot.user_self()
    assert me.contact_id == SELF_ID
    assert me.name == SELF_NAME
    assert server.calls[:3] == ["Stop", "Start", "Event"]


async def test_room_find_by_topic_and_list(client: ClientRun) -> None:
    room = await client.bot.Room.find(TOPIC)
    assert room is not None and room.room_id == ROOM
    assert await room.topic() == TOPIC
    rooms = await client.bot.Room.find_all()
    assert {r.room_id for r in rooms} == {ROOM, OTHER_ROOM}
    members = await room.member_list()
    assert {m.contact_id for m in members} == {SELF_ID, ALICE, BOB}


async def test_room_message_with_mention_reaches_the_handler(
    server: WechatPuppetServer, client: ClientRun
) -> None:
    text = server.mention(room_id=ROOM) + "查 openai"
    message_id = await server.inject_room_message(ROOM, ALICE, text, mention_ids=[SELF_ID])
    message = await client.next_message()
    assert message.message_id == message_id
    assert message.text() == text
    assert message.room().room_id == ROOM
    assert message.talker().contact_id == ALICE
    assert message.talker().name == "Alice"
    assert await message.mention_self()
    assert not message.is_self()
    assert message.type() == client.bot.Message.Type.MESSAGE_TYPE_TEXT


async def test_room_message_without_mention(server: WechatPuppetServer, client: ClientRun) -> None:
    await server.inject_room_message(ROOM, BOB, "大家早")
    message = await client.next_message()
    assert message.text() == "大家早"
    assert not await message.mention_self()


async def test_say_in_room_with_mention_is_recorded(
    server: WechatPuppetServer, client: ClientRun
) -> None:
    room = await client.bot.Room.find(TOPIC)
    sent = await room.say("今日简报已送达", mention_ids=[ALICE])
    [recorded] = await server.wait_for_texts(ROOM, 1)
    assert recorded.mention_ids == (ALICE,)
    assert recorded.text == "@Alice 今日简报已送达"
    assert sent.message_id == recorded.message_id
    assert sent.talker().contact_id == SELF_ID


async def test_private_message_and_reply(server: WechatPuppetServer, client: ClientRun) -> None:
    await server.inject_private_message(CAROL, "查 agent")
    message = await client.next_message()
    assert message.room() is None
    assert message.talker().contact_id == CAROL
    assert message.text() == "查 agent"
    await message.say("没有找到")
    [reply] = await server.wait_for_texts(CAROL, 1)
    assert reply.text == "没有找到"
    assert reply.mention_ids == ()


async def test_failed_send_is_a_grpc_error(server: WechatPuppetServer, client: ClientRun) -> None:
    room = await client.bot.Room.find(TOPIC)
    server.fail_next_send(ROOM)
    with pytest.raises(GRPCError) as failure:
        await room.say("first")
    assert failure.value.status is Status.UNAVAILABLE
    await room.say("second")
    assert [s.text for s in server.texts_to(ROOM)] == ["second"]


async def test_dropped_stream_ends_start_and_a_new_start_logs_in_again(
    server: WechatPuppetServer, client: ClientRun
) -> None:
    # wechaty 0.10.7's own start() would sleep 60 s and recurse here; ours reports the loss
    # and the platform adapter reconnects with backoff.
    await server.drop_stream()
    assert client.task is not None
    with pytest.raises(StreamTerminatedError):
        await asyncio.wait_for(client.task, 5)
    client.restart()
    await server.wait_connected(streams_opened=2)
    relogin = await client.next_login()
    assert relogin.contact_id == SELF_ID
    await server.inject_private_message(ALICE, "还在吗")
    message = await client.next_message()
    assert message.text() == "还在吗"
    await message.say("在")
    assert [s.text for s in await server.wait_for_texts(ALICE, 1)] == ["在"]


async def test_unimplemented_method_says_which(server: WechatPuppetServer) -> None:
    async with raw_stub(server, server.token) as stub:
        with pytest.raises(GRPCError) as failure:
            await stub.room_create(contact_ids=[ALICE, BOB], topic="新群")
    assert failure.value.status is Status.UNIMPLEMENTED
    assert "RoomCreate" in str(failure.value.message)


async def test_wrong_token_is_refused(server: WechatPuppetServer) -> None:
    async with raw_stub(server, "insecure_wrong") as stub:
        with pytest.raises(GRPCError) as failure:
            await stub.start()
    assert failure.value.status is Status.UNAUTHENTICATED
    assert not server.started


async def test_unknown_room_payload_is_not_found(server: WechatPuppetServer) -> None:
    async with raw_stub(server, server.token) as stub:
        with pytest.raises(GRPCError) as failure:
            await stub.room_payload(id="999@chatroom")
    assert failure.value.status is Status.NOT_FOUND
