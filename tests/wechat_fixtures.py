"""Shared WeChat test data: a populated loopback puppet service and a running wechaty client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.platforms.wechat.compat import make_wechaty, reset_wechaty_state
from bot.sandbox.wechat_puppet import WechatPuppetServer

SELF_ID = "wxid_briefbot"
SELF_NAME = "简报机器人"
ALICE = "wxid_alice00001"
BOB = "wxid_bob0000002"
CAROL = "wxid_carol00003"  # a contact who shares no group with the bot
ROOM = "20001000001@chatroom"
TOPIC = "AI简报交流群"
OTHER_ROOM = "20001000002@chatroom"
OTHER_TOPIC = "周末闲聊"


def populated_server(**options: Any) -> WechatPuppetServer:
    """A puppet service where the bot shares two groups with Alice and Bob, and knows Carol."""
    server = WechatPuppetServer(self_id=SELF_ID, self_name=SELF_NAME, **options)
    server.add_contact(ALICE, "Alice")
    server.add_contact(BOB, "Bob", alias="老王")
    server.add_contact(CAROL, "Carol")
    server.add_room(ROOM, TOPIC, [ALICE, BOB])
    server.add_room(OTHER_ROOM, OTHER_TOPIC, [BOB])
    return server


@contextlib.asynccontextmanager
async def running_server(**options: Any) -> AsyncIterator[WechatPuppetServer]:
    async with populated_server(**options) as server:
        try:
            yield server
        finally:
            reset_wechaty_state()


@dataclass
class ClientRun:
    """A real wechaty client logged in to the loopback service, started as a task."""

    bot: Any
    task: asyncio.Task[None] | None = None
    logins: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    messages: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    async def next_message(self, within: float = 5.0) -> Any:
        return await asyncio.wait_for(self.messages.get(), within)

    async def next_login(self, within: float = 5.0) -> Any:
        return await asyncio.wait_for(self.logins.get(), within)

    def restart(self) -> None:
        self.task = asyncio.create_task(self.bot.start())


@contextlib.asynccontextmanager
async def running_client(server: WechatPuppetServer, cache_dir: Path) -> AsyncIterator[ClientRun]:
    bot = make_wechaty(server.endpoint, server.token, cache_dir=cache_dir)
    run = ClientRun(bot)

    async def on_login(contact: Any) -> None:
        run.logins.put_nowait(contact)

    async def on_message(message: Any) -> None:
        run.messages.put_nowait(message)

    bot.on("login", on_login)
    bot.on("message", on_message)
    run.restart()
    try:
        await run.next_login()
        yield run
    finally:
        if run.task is not None:
            run.task.cancel()
            with contextlib.suppress(BaseException):
                await run.task
        await bot.stop()
