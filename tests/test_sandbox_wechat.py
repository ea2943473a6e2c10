"""The loopback puppet service, driven by the real wechaty 0.10.7 client over gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.exceptions import StreamTerminatedError

from bot.errors import ConfigError
from bot.platforms.wechat.compat import check_python, load_wechaty, make_wechaty, mask_id
from bot.sandbox.wechat_puppet import SendFailure, WechatPuppetServer
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


# --- send faults --------------------------------------------------------------------------

# Every status a gateway answers a send with that briefbot tells apart, as the client sees it.
SEND_STATUSES = [
    Status.RESOURCE_EXHAUSTED,  # rate limited
    Status.UNAVAILABLE,  # transient
    Status.NOT_FOUND,  # gone
    Status.PERMISSION_DENIED,  # gone
    Status.INVALID_ARGUMENT,  # permanent
    Status.UNAUTHENTICATED,  # the token
]


async def test_each_injected_send_status_reaches_the_client(
    server: WechatPuppetServer, client: ClientRun
) -> None:
    room = await client.bot.Room.find(TOPIC)
    for status in SEND_STATUSES:
        failure = server.fail_next_send(ROOM, status=status)
        with pytest.raises(GRPCError) as failed:
            await room.say(f"fails with {status.name}")
        assert failed.value.status is status
        assert str(failed.value.message).startswith("injected: ")
        assert (failure.hits, failure.remaining) == (1, 0)
    await room.say("then it works")
    assert [s.text for s in server.texts_to(ROOM)] == ["then it works"]
    assert server.send_failures == []


async def test_send_failures_per_conversation_or_for_the_next_n(
    server: WechatPuppetServer,
) -> None:
    async with raw_stub(server, server.token) as stub:
        gone = server.fail_next_send(ALICE, None, status=Status.PERMISSION_DENIED)
        for _ in range(3):  # count=None: until cleared
            with pytest.raises(GRPCError) as failed:
                await stub.message_send_text(conversation_id=ALICE, text="x")
            assert failed.value.status is Status.PERMISSION_DENIED
        await stub.message_send_text(conversation_id=BOB, text="other conversations pass")
        assert gone.hits == 3 and gone.remaining is None

        server.clear_send_failures()
        next_two = server.fail_next_send(
            count=2, status=Status.RESOURCE_EXHAUSTED, message="slow down"
        )
        outcomes = []
        for conversation in (ALICE, BOB, ALICE):
            try:
                await stub.message_send_text(conversation_id=conversation, text="y")
                outcomes.append("sent")
            except GRPCError as err:
                outcomes.append(f"{err.status.name}: {err.message}")
    assert outcomes == ["RESOURCE_EXHAUSTED: slow down", "RESOURCE_EXHAUSTED: slow down", "sent"]
    assert next_two.hits == 2
    assert [s.text for s in server.sent] == ["other conversations pass", "y"]
    with pytest.raises(ValueError, match="at least 1"):
        server.fail_next_send(count=0)
    assert isinstance(next_two, SendFailure)


# --- holds: a send provably in flight -----------------------------------------------------


async def test_held_send_is_received_but_not_delivered_until_released(
    server: WechatPuppetServer, client: ClientRun
) -> None:
    room = await client.bot.Room.find(TOPIC)
    hold = server.hold_sends(ROOM, after=1)
    await room.say("first passes")
    saying = asyncio.create_task(room.say("second is held"))
    await hold.wait_held()
    assert [s.text for s in server.texts_to(ROOM)] == ["first passes"]
    assert [a.chat_id for a in server.arrivals] == [ROOM, ROOM]
    await client.bot.Contact.load(CAROL).say("other conversations pass")
    assert not saying.done()
    hold.release()
    await saying
    assert [s.text for s in server.texts_to(ROOM)] == ["first passes", "second is held"]
    assert (hold.matched, hold.held_total, hold.abandoned) == (2, 1, 0)


async def test_cancelled_send_abandons_its_held_request(
    server: WechatPuppetServer, client: ClientRun
) -> None:
    room = await client.bot.Room.find(TOPIC)
    hold = server.hold_sends()
    saying = asyncio.create_task(room.say("never delivered"))
    await hold.wait_held()
    saying.cancel()
    await hold.wait_abandoned()
    hold.release()
    await room.say("after the crash")
    assert [s.text for s in server.sent] == ["after the crash"]


async def test_deliver_first_hold_delivers_and_holds_the_answer(
    server: WechatPuppetServer, client: ClientRun
) -> None:
    room = await client.bot.Room.find(TOPIC)
    hold = server.hold_sends(ROOM, deliver_first=True)
    saying = asyncio.create_task(room.say("delivered, unheard"))
    await hold.wait_held()
    [delivered] = await server.wait_for_texts(ROOM, 1)
    assert delivered.text == "delivered, unheard"
    saying.cancel()
    await hold.wait_abandoned()
    hold.release()
    assert len(server.texts_to(ROOM)) == 1


async def test_stop_aborts_held_sends(server: WechatPuppetServer) -> None:
    hold = server.hold_sends()
    async with raw_stub(server, server.token) as stub:
        sending = asyncio.create_task(stub.message_send_text(conversation_id=ALICE, text="x"))
        await hold.wait_held()
        started = time.monotonic()
        await server.stop()
        with pytest.raises((GRPCError, StreamTerminatedError, ConnectionError)):
            await sending
    assert time.monotonic() - started < 1.0
    assert hold.aborted and hold.held == 0 and server.holds == []
    assert server.sent == []
    with pytest.raises(RuntimeError, match="start"):
        server.hold_sends()


# --- arrivals and token revocation ----------------------------------------------------------


async def test_arrivals_count_every_send_before_failures(server: WechatPuppetServer) -> None:
    before = time.monotonic()
    async with raw_stub(server, server.token) as stub:
        await stub.message_send_text(conversation_id=ROOM, text="1")
        server.fail_next_send(ROOM, status=Status.RESOURCE_EXHAUSTED)
        with pytest.raises(GRPCError):
            await stub.message_send_text(conversation_id=ROOM, text="refused, still arrived")
        with pytest.raises(GRPCError):
            await stub.message_send_text(conversation_id="999@chatroom", text="unknown")
        await stub.message_send_text(conversation_id=ALICE, text="2")
        await stub.version()  # not a send
    assert [(a.method, a.chat_id) for a in server.arrivals] == [
        ("MessageSendText", ROOM),
        ("MessageSendText", ROOM),
        ("MessageSendText", "999@chatroom"),
        ("MessageSendText", ALICE),
    ]
    assert all(before <= a.t <= time.monotonic() for a in server.arrivals)
    assert server.max_in_window(60.0) == 4
    assert server.max_in_window(60.0, conversation_id=ROOM) == 2
    assert server.max_in_window(0.0) == 1
    server.reset_stats()
    assert server.arrivals == [] and server.max_in_window() == 0


async def test_revoked_token_refuses_every_later_call(
    server: WechatPuppetServer, client: ClientRun
) -> None:
    room = await client.bot.Room.find(TOPIC)
    await room.say("before")
    server.revoke_token()
    with pytest.raises(GRPCError) as refused:
        await room.say("after")
    assert refused.value.status is Status.UNAUTHENTICATED
    assert [s.text for s in server.sent] == ["before"]
    assert len(server.arrivals) == 1  # refused before it counts as a send
    async with raw_stub(server, server.token) as stub:
        with pytest.raises(GRPCError) as refused:
            await stub.version()
    assert refused.value.status is Status.UNAUTHENTICATED


async def test_revoke_with_a_replacement_token(server: WechatPuppetServer) -> None:
    old = server.token
    server.revoke_token("insecure_rotated")
    async with raw_stub(server, "insecure_rotated") as stub:
        assert (await stub.version()).version == "briefbot-loopback"
    async with raw_stub(server, old) as stub:
        with pytest.raises(GRPCError) as refused:
            await stub.version()
    assert refused.value.status is Status.UNAUTHENTICATED
    with pytest.raises(ValueError, match="not used before"):
        server.revoke_token(old)
