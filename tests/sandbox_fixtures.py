"""Fixtures that start the loopback Telegram Bot API and point a real PTB ``Bot`` at it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from bot.sandbox.telegram_api import TelegramTestServer

# Loopback traffic must never go through a proxy; PTB 22 warns about RetryAfter's int type
# unless it may return a timedelta (and pytest turns warnings into errors).
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")
os.environ.setdefault("PTB_TIMEDELTA", "1")

ALICE = 1001  # a private chat
BOB = 1002  # another private chat
GROUP = -4001
CHANNEL = -1002003004005
CHANNEL_USERNAME = "ai_daily_brief"


@pytest.fixture
async def telegram_server() -> AsyncIterator[TelegramTestServer]:
    """A running server with two users, a group (Alice creates it, Bob is a member) and a
    public channel the bot administers."""
    server = TelegramTestServer()
    server.add_user(ALICE, "Alice", username="alice")
    server.add_user(BOB, "Bob", language_code="en")
    server.add_chat(GROUP, "group", title="AI 读书会", admins=[ALICE], members=[BOB])
    server.add_chat(CHANNEL, "channel", title="AI 日报", username=CHANNEL_USERNAME)
    async with server:
        yield server


@pytest.fixture
async def telegram_bot(telegram_server: TelegramTestServer) -> AsyncIterator[Bot]:
    """An initialised PTB ``Bot`` talking to ``telegram_server``."""
    async with Bot(telegram_server.token, base_url=telegram_server.base_url) as bot:
        yield bot
