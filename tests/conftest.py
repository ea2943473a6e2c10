"""Shared fixtures: an isolated environment and a store on SQLite and (where set) PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import MetaData, create_engine
from sqlalchemy.engine import make_url

from bot.store import Store

# The loopback servers live on 127.0.0.1: never route them through a proxy.
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")
# PTB 22 warns about RetryAfter.retry_after's type unless this opts in to timedelta.
os.environ.setdefault("PTB_TIMEDELTA", "1")

PG_ENV = "BRIEFBOT_TEST_DATABASE_URL"
KEEP_ENV = {PG_ENV}


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's BRIEFBOT_* settings or ./data leak into a test."""
    for name in list(os.environ):
        if name.startswith("BRIEFBOT_") and name not in KEEP_ENV:
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def postgres_url() -> str:
    url = os.environ.get(PG_ENV, "")
    if not url:
        pytest.skip(
            f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://postgres@127.0.0.1:5432/test); "
            ".ci/run sets it"
        )
    return url


def reset_postgres(url: str) -> None:
    """Drop every table so each test starts from an empty, unmigrated database."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed)
    try:
        meta = MetaData()
        meta.reflect(engine)
        meta.drop_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'data' / 'briefbot.db'}"
    url = postgres_url()
    reset_postgres(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store.open(store_url)
    try:
        yield opened
    finally:
        opened.close()


# The slower tier: real clients against the loopback servers, subprocesses, wheel builds.
# `pytest -m "not integration"` is the fast tier (seconds); CI runs both.
INTEGRATION_MODULES = {
    "test_cli",
    "test_console_browser",
    "test_large_fanout",
    "test_packaging",
    "test_pacing_at_server",
    "test_robots_integration",
    "test_sandbox_telegram",
    "test_sandbox_telegram_interactive",
    "test_sandbox_wechat",
    "test_scheduler",
    "test_site_browser",
    "test_telegram_bot",
    "test_telegram_search",
    "test_wechat_bot",
    "test_wechat_platform",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py")
        params = item.nodeid.rpartition("[")[2] if "[" in item.nodeid else ""
        if module in INTEGRATION_MODULES or "sandbox" in params:
            item.add_marker(pytest.mark.integration)
