"""A send to 100k subscribers starts without stalling the bot.

The fan-out streams its targets a page at a time and keeps the database off the event loop,
so someone searching while an admin's /send to 100k subscribers starts is answered at once.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest
from sqlalchemy import insert

from bot.config import Settings, StoreSettings
from bot.core import build_core
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.platforms.telegram import TelegramSettings
from bot.sandbox.telegram_api import TelegramTestServer
from bot.service import build_service, start_platforms
from bot.store.models import SubscriberRow

DAY = dt.date(2026, 11, 27)
ADMIN, SEARCHER = 500, 501
FIRST = 10_000_000
SUBSCRIBERS = 100_000


async def test_a_search_during_the_start_of_a_100k_send_is_answered_within_a_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = TelegramTestServer()
    server.add_user(ADMIN, "Editor")
    server.add_user(SEARCHER, "Reader")
    async with server:
        monkeypatch.setenv("BRIEFBOT_TELEGRAM_TOKEN", server.token)
        settings = Settings(
            store=StoreSettings(url=f"sqlite:///{tmp_path / 'large.db'}"),
            platforms={"telegram": TelegramSettings(api_base_url=server.base_url, admins=(ADMIN,))},
        )
        core = build_core(settings)
        import_paths(core.store, [SAMPLES_DIR])
        with core.store.engine.begin() as connection:  # 100k subscribers, quickly
            connection.execute(
                insert(SubscriberRow),
                [
                    {"platform": "telegram", "chat_id": str(FIRST + n), "kind": "subscriber"}
                    for n in range(SUBSCRIBERS)
                ],
            )
        service = build_service(core, platforms=("telegram",))
        await start_platforms(service)
        try:
            server.send_user_message(ADMIN, ADMIN, f"/send {DAY.isoformat()}")
            await server.wait_for_messages(ADMIN, 1, timeout=10)  # "sending…": it started
            started = time.monotonic()
            server.send_user_message(SEARCHER, SEARCHER, "芯片")
            [answer] = await server.wait_for_messages(SEARCHER, 1, timeout=10)
            waited = time.monotonic() - started
            assert "芯片" in answer.text
            assert waited < 1.0, f"the search waited {waited:.2f}s behind the 100k send"
        finally:
            await service.stop(grace=0)
        # stopped mid-send: only claimed rows exist, and none is left claimed
        statuses = core.store.delivery_counts(DAY, "telegram")
        assert statuses.get("sending", 0) == 0
        assert sum(statuses.values()) < SUBSCRIBERS  # prepared a page at a time
        core.store.close()
