"""Pacing as the platform sees it: arrivals counted at the loopback Bot API server.

The scenario a user tried: 60 subscribers, a brief of four messages, an admin's /send, and
people searching while it goes out. In no one-second window may the server receive more
than the global limit, nor any chat more than its own, and the searches are answered
during the broadcast, not after it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from bot.brief import assemble_brief
from bot.config import DeliverySettings, Settings, StoreSettings
from bot.core import Core, build_core
from bot.domain import Brief, Item
from bot.platforms.telegram import TelegramSettings
from bot.sandbox.telegram_api import TelegramTestServer
from bot.service import build_service, start_platforms
from tests.factories import make_item

DAY = dt.date(2026, 11, 27)
ADMIN = 500
FIRST = 1000
READERS = 60
LIMIT = 30


def long_brief() -> list[Item]:
    """Twelve items long enough that the brief takes four Telegram messages."""
    return [
        make_item(
            f"第{n}条：芯片与大模型新闻",
            date=DAY,
            summary=("新一代推理芯片发布，吞吐提升。" * 40 + "\n\n") * 2,
            position=n,
        )
        for n in range(12)
    ]


async def test_arrivals_stay_within_the_limits_and_searches_are_answered_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = TelegramTestServer(global_rate=LIMIT)
    server.add_user(ADMIN, "Editor")
    for n in range(READERS):
        server.add_user(FIRST + n, f"reader{n}")
    async with server:
        monkeypatch.setenv("BRIEFBOT_TELEGRAM_TOKEN", server.token)
        settings = Settings(
            store=StoreSettings(url=f"sqlite:///{tmp_path / 'pacing.db'}"),
            delivery=DeliverySettings(backoff_base=0.05),
            platforms={"telegram": TelegramSettings(api_base_url=server.base_url, admins=(ADMIN,))},
        )
        core = build_core(settings)
        core.store.upsert_items(long_brief())
        for n in range(READERS):
            core.store.add_subscriber("telegram", str(FIRST + n))
        parts = len(core.renderer.brief(_brief(core), "telegram", core.limits("telegram")))
        assert parts == 4
        service = build_service(core, platforms=("telegram",))
        await start_platforms(service)
        try:
            server.send_user_message(ADMIN, ADMIN, f"/send {DAY.isoformat()}")
            await server.wait_for_messages(ADMIN, 1, timeout=10)  # "sending…"
            # the broadcast is under way: three readers search meanwhile
            await server.wait_for_messages(FIRST + READERS - 1, 1, timeout=30)
            searchers = (FIRST + 1, FIRST + 2, FIRST + 3)
            before = {s: len(server.messages_to(s)) for s in searchers}
            for reader in searchers:
                server.send_user_message(reader, reader, "芯片")
            for reader in searchers:
                await server.wait_for_messages(reader, before[reader] + 1, timeout=10)
            still_sending = len(server.sent) < READERS * parts
            await server.wait_for_messages(ADMIN, 2, timeout=60)  # the summary
            assert "成功 60" in server.messages_to(ADMIN)[-1].text
        finally:
            await service.stop()
            core.store.close()
    assert still_sending, "the searches were answered only after the broadcast"
    for n in range(READERS):
        briefs = [m for m in server.messages_to(FIRST + n) if m.text.startswith("【AI简报")]
        assert len(briefs) >= 1
    assert server.stats["rate_limited"] == 0
    assert server.max_in_window(1.0) <= LIMIT
    for chat in [ADMIN, *(FIRST + n for n in range(READERS))]:
        assert server.max_in_window(1.0, chat_id=chat) <= 1, chat


def _brief(core: Core) -> Brief:
    brief = assemble_brief(core.store, DAY, core.settings.brief)
    assert brief is not None
    return brief
