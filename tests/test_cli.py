"""The briefbot command line end to end: verbs, JSON shapes, errors and exit codes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.cli import build_parser, main
from bot.domain import DeliveryStatus
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.render import utf16_len
from bot.sandbox.telegram_api import TelegramTestServer
from bot.store import DeliveryRecord, Store
from tests.sandbox_fixtures import ALICE, CHANNEL, CHANNEL_USERNAME, telegram_server

__all__ = ["telegram_server"]


# A day file of two items, for the re-ingest tests.
DAY_HEAD = "---\ndate: 2026-11-27\n---\n\n"
ITEM_ONE = "## 第一条\n\n正文一。\n\n- 原文: https://e.x/1\n\n"
ITEM_TWO = "## 第二条\n\n正文二。\n\n- 原文: https://e.x/2\n\n"


@pytest.fixture
def db(tmp_path: Path) -> list[str]:
    return ["--db", f"sqlite:///{tmp_path / 'cli.db'}"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert isinstance(data, dict)
    return data


def test_every_verb_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    verbs: Any = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert {
        "ingest",
        "items",
        "preview",
        "search",
        "send",
        "subscribers",
        "run",
        "status",
        "stats",
        "demo",
        "approve",
        "correct",
        "site",
        "console",
    } <= set(verbs)
    actions = [
        "subscribers list",
        "subscribers add",
        "subscribers remove",
        "site build",
        "console add-admin",
        "console list-admins",
    ]
    for verb in [*verbs, *actions]:
        with pytest.raises(SystemExit) as info:
            main([*verb.split(), "--help"])
        assert info.value.code == 0
        assert "usage: briefbot" in capsys.readouterr().out


async def test_demo_runs_the_whole_service_on_a_fresh_machine(tmp_path: Path) -> None:
    code, out, err = await _cli("demo", env={"HOME": str(tmp_path)})
    assert code == 0, out + err
    assert "已订阅" in out  # a Telegram user subscribed
    assert "mentions wxid_bob0000002" in out  # a WeChat group's keyword got a reply to the asker
    assert "This command is for admins only." in out
    assert "Telegram channel @ai_brief_demo: 1 message(s)" in out
    assert "WeCom: the group robot posts the brief" in out
    assert "1 markdown message(s)" in out  # the WeCom robot, within 4096 bytes
    assert "skipped 4 (already delivered" in out  # channel, subscriber, WeChat group, robot
    assert "Traceback" not in err


def test_ingest_is_idempotent(capsys: pytest.CaptureFixture[str], db: list[str]) -> None:
    first = run_json(capsys, *db, "ingest", str(SAMPLES_DIR))
    assert first["added"] and first["failed"] == 0
    second = run_json(capsys, *db, "ingest", str(SAMPLES_DIR))
    assert second["added"] == 0 and second["updated"] == 0
    assert second["unchanged"] == first["added"]


def test_a_bad_file_is_named_and_the_rest_still_go_in(
    capsys: pytest.CaptureFixture[str], db: list[str], tmp_path: Path
) -> None:
    folder = tmp_path / "content"
    folder.mkdir()
    (folder / "good.md").write_text(
        (SAMPLES_DIR / "2026-11-27.md").read_text(encoding="utf-8"), encoding="utf-8"
    )
    (folder / "bad.md").write_text(
        "---\ndate: 2026-13-40\n---\n\n## X\n\ntext\n\n- 原文: https://e.x/1\n", encoding="utf-8"
    )
    (folder / "broken.txt").write_text("原文:\n\n没有链接的条目\n", encoding="utf-8")
    code, out, err = run(capsys, *db, "ingest", str(folder))
    assert code == 1
    assert "bad.md" in err and "date" in err
    assert "broken.txt:1" in err
    assert "2 file(s) failed" in out
    code, out, _ = run(capsys, *db, "items", "--date", "2026-11-27")
    assert code == 0 and "FlowServe" in out


def test_missing_path_is_a_clear_error(capsys: pytest.CaptureFixture[str], db: list[str]) -> None:
    code, _, err = run(capsys, *db, "ingest", "no/such/folder")
    assert code == 1 and "no/such/folder" in err
    assert "Traceback" not in err


def test_items_json_shape(capsys: pytest.CaptureFixture[str], db: list[str]) -> None:
    run(capsys, *db, "ingest", str(SAMPLES_DIR))
    data = run_json(capsys, *db, "items", "--date", "2026-11-26")
    items = data["items"]
    assert isinstance(items, list) and items
    first = items[0]
    assert {"date", "title", "summary", "links", "tags"} <= set(first)
    assert first["date"] == "2026-11-26"
    assert first["links"][0].keys() == {"label", "url"}


@pytest.mark.parametrize("platform", ["telegram", "wechat", "markdown"])
def test_preview_json_shape(
    capsys: pytest.CaptureFixture[str], db: list[str], platform: str
) -> None:
    run(capsys, *db, "ingest", str(SAMPLES_DIR))
    data = run_json(capsys, *db, "preview", "--platform", platform, "--date", "2026-11-24")
    assert data["date"] == "2026-11-24" and data["platform"] == platform
    assert str(data["title"]).startswith("【AI简报20261124】")
    messages = data["messages"]
    assert isinstance(messages, list) and messages
    if platform == "telegram":
        assert all(utf16_len(m) <= 4096 for m in messages)
        assert "C++ &amp; CUDA" in "".join(messages)  # escaped, not raw
    if platform == "wechat":
        assert all(len(m) <= 1800 for m in messages)
        assert "https://" in messages[0]


def test_preview_of_an_empty_day_says_so(capsys: pytest.CaptureFixture[str], db: list[str]) -> None:
    run(capsys, *db, "ingest", str(SAMPLES_DIR))
    code, _, err = run(capsys, *db, "preview", "--date", "2020-01-01")
    assert code == 1 and "no items on 2020-01-01" in err


def test_empty_store_tells_what_to_do(capsys: pytest.CaptureFixture[str], db: list[str]) -> None:
    code, _, err = run(capsys, *db, "items")
    assert code == 1 and "briefbot ingest" in err


def test_search_json_shape(capsys: pytest.CaptureFixture[str], db: list[str]) -> None:
    run(capsys, *db, "ingest", str(SAMPLES_DIR))
    data = run_json(capsys, *db, "search", "芯片", "--limit", "3")
    assert data["query"] == "芯片"
    results = data["results"]
    assert isinstance(results, list) and len(results) == 3
    assert {"date", "title", "links", "score", "snippet"} <= set(results[0])
    assert "芯片" in results[0]["title"] + results[0]["snippet"]
    assert isinstance(data["total"], int) and data["total"] >= 10
    assert isinstance(data["took_ms"], float) and 0 < data["took_ms"] < 5000
    assert data["partial"] is False
    english = run_json(capsys, *db, "search", "TRANSFORMER")
    assert english["results"]
    nothing = run_json(capsys, *db, "search", "zzzz-nothing")
    assert nothing["results"] == [] and nothing["total"] == 0
    # the next page starts where the first ended
    second = run_json(capsys, *db, "search", "芯片", "--limit", "3", "--offset", "3")
    assert {r["title"] for r in second["results"]}.isdisjoint(r["title"] for r in results)


def test_search_reindex_rebuilds_and_reports(
    capsys: pytest.CaptureFixture[str], db: list[str]
) -> None:
    run(capsys, *db, "ingest", str(SAMPLES_DIR))
    before = run_json(capsys, *db, "search", "芯片")
    report = run_json(capsys, *db, "search", "--reindex", "--json")
    assert report["reindexed"] == 43
    assert run_json(capsys, *db, "search", "芯片")["results"] == before["results"]
    code, _, err = run(capsys, *db, "search")
    assert code == 1 and "QUERY" in err


def test_stats_lists_what_readers_asked_and_did_not_find(
    capsys: pytest.CaptureFixture[str], db: list[str]
) -> None:
    from bot.config import Settings, StoreSettings
    from bot.core import build_core

    url = db[db.index("--db") + 1]
    core = build_core(Settings(store=StoreSettings(url=url)))
    try:
        for query, found in (("芯片", True), ("芯片", True), ("量子纠错", False)):
            core.store.count_query(query, found=found, day=core.today())
    finally:
        core.store.close()
    data = run_json(capsys, *db, "stats", "--queries", "--days", "7", "--json")
    assert data["top"][0] == {"query": "芯片", "asked": 2, "no_hits": 0}
    assert data["no_results"] == [{"query": "量子纠错", "asked": 1, "no_hits": 1}]
    code, out, _ = run(capsys, *db, "stats", "--queries")
    assert code == 0 and "芯片" in out and "Found nothing" in out and "量子纠错" in out


def test_bad_config_exits_2_with_the_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[telegram]\nadmins = ['@boss']\n", encoding="utf-8")
    code, _, err = run(capsys, "--config", str(cfg), "items")
    assert code == 2 and "[telegram] admins" in err


def test_subscribers_add_list_remove(capsys: pytest.CaptureFixture[str], db: list[str]) -> None:
    assert run(capsys, *db, "subscribers", "add", "42", "--name", "Ann")[0] == 0
    data = run_json(capsys, *db, "subscribers", "list")
    assert [s["chat_id"] for s in data["subscribers"]] == ["42"]
    assert run(capsys, *db, "subscribers", "remove", "42")[0] == 0
    assert run(capsys, *db, "subscribers", "remove", "42")[0] == 1
    assert run_json(capsys, *db, "subscribers", "list")["subscribers"] == []


def test_send_without_a_token_is_a_configuration_error(
    capsys: pytest.CaptureFixture[str], db: list[str]
) -> None:
    run(capsys, *db, "ingest", str(SAMPLES_DIR))
    code, _, err = run(capsys, *db, "send", "--platform", "telegram")
    assert code == 2
    assert "BRIEFBOT_TELEGRAM_TOKEN" in err


async def _cli(*argv: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``python -m bot`` as a separate process, as a user would."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *argv,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_send_through_the_loopback_server_once_then_skips(
    telegram_server: TelegramTestServer, tmp_path: Path
) -> None:
    cfg = tmp_path / "b.toml"
    cfg.write_text(
        f'[store]\ndata_dir = "{tmp_path / "data"}"\n'
        f'[telegram]\napi_base_url = "{telegram_server.base_url}"\n'
        f'[[telegram.channels]]\nchat = "@{CHANNEL_USERNAME}"\n',
        encoding="utf-8",
    )
    env = {"BRIEFBOT_CONFIG": str(cfg), "BRIEFBOT_TELEGRAM_TOKEN": telegram_server.token}
    assert (await _cli("ingest", str(SAMPLES_DIR), env=env))[0] == 0
    assert (await _cli("subscribers", "add", str(ALICE), env=env))[0] == 0
    code, out, err = await _cli("send", "--date", "2026-11-27", "--dry-run", "--json", env=env)
    assert code == 0, err
    plan = json.loads(out)
    assert plan["dry_run"] and plan["summary"] == {"pending": 2}
    assert telegram_server.messages_to(ALICE) == []
    code, out, err = await _cli("send", "--date", "2026-11-27", "--json", env=env)
    assert code == 0, err
    report = json.loads(out)
    assert report["summary"]["sent"] == 2
    assert telegram_server.token not in out + err
    parts = len(telegram_server.messages_to(CHANNEL))
    assert parts >= 1 and len(telegram_server.messages_to(ALICE)) == parts
    code, out, _ = await _cli("send", "--date", "2026-11-27", env=env)
    assert code == 0 and "skipped 2" in out
    assert len(telegram_server.messages_to(ALICE)) == parts
    code, out, _ = await _cli("status", "--json", env=env)
    status = json.loads(out)
    assert status["platforms"]["telegram"]["last_delivery"]["sent"] == 2
    assert set(status["next_runs"]) == {"telegram:subscribers:08:00", "telegram:channels:08:00"}
    telegram = status["platforms"]["telegram"]
    assert telegram["subscribers"] == 1 and telegram["configured_targets"] == 1


# In-flight slots of the `briefbot send` processes below ([delivery] max_in_flight): the tests
# hold one request in the sandbox per slot, so the process can have no other one in transit.
IN_FLIGHT = 4
DATE = "2026-11-27"


async def _until(condition: Callable[[], bool], what: str, within: float = 60.0) -> None:
    """Wait until ``condition`` holds (the check decides; the sleep only spaces the checks)."""
    try:
        async with asyncio.timeout(within):
            while not condition():  # noqa: ASYNC110 - another process's state: no event to await
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"not within {within}s: {what}") from None


def _fan_out_config(server: TelegramTestServer, tmp_path: Path, users: list[int]) -> dict[str, str]:
    """A config sending to ``users`` (subscribed, content ingested) through ``server``, with
    IN_FLIGHT requests at most in flight; returns the environment for `briefbot`."""
    for uid in users:
        server.add_user(uid, f"U{uid}")
    server.set_limits(global_rate=1000)  # a rerun right after must not meet flood control
    cfg = tmp_path / "b.toml"
    cfg.write_text(
        f'[store]\ndata_dir = "{tmp_path / "data"}"\n'
        f"[delivery]\nmax_in_flight = {IN_FLIGHT}\n"
        f'[telegram]\napi_base_url = "{server.base_url}"\nglobal_rate = 100\n',
        encoding="utf-8",
    )
    store = Store.open(f"sqlite:///{tmp_path / 'data' / 'briefbot.db'}")
    try:
        import_paths(store, [SAMPLES_DIR])
        for uid in users:
            store.add_subscriber("telegram", str(uid))
    finally:
        store.close()
    return {"BRIEFBOT_CONFIG": str(cfg), "BRIEFBOT_TELEGRAM_TOKEN": server.token}


def _ledger(tmp_path: Path, store: Store | None = None) -> list[DeliveryRecord]:
    """The delivery rows of DATE, read through ``store`` or a store opened for this."""
    if store is not None:
        return store.deliveries(dt.date.fromisoformat(DATE))
    opened = Store.open(f"sqlite:///{tmp_path / 'data' / 'briefbot.db'}")
    try:
        return _ledger(tmp_path, opened)
    finally:
        opened.close()


@dataclass
class _Running:
    """A `briefbot` process started by :func:`_briefbot`; its output is read as it comes."""

    proc: asyncio.subprocess.Process
    output: asyncio.Task[tuple[bytes, bytes]]

    async def finish(self) -> tuple[int, str, str]:
        """Wait for the process to end: its exit code, stdout and stderr."""
        out, err = await self.output
        assert self.proc.returncode is not None
        return self.proc.returncode, out.decode(), err.decode()

    async def kill(self) -> tuple[int, str, str]:
        if self.proc.returncode is None:
            self.proc.kill()
        return await self.finish()


@asynccontextmanager
async def _briefbot(*argv: str, env: dict[str, str]) -> AsyncIterator[_Running]:
    """Run ``python -m bot ARGV`` in the background; killed at the end if still running, its
    stderr added to any failure inside the block."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *argv,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    running = _Running(proc, asyncio.create_task(proc.communicate()))
    try:
        yield running
    except BaseException as exc:
        _, _, err = await running.kill()
        exc.add_note(f"briefbot {' '.join(argv)} wrote to stderr:\n{err}")
        raise
    finally:
        await running.kill()


async def test_send_killed_mid_fan_out_then_rerun_delivers_each_message_once(
    telegram_server: TelegramTestServer, tmp_path: Path
) -> None:
    """SIGKILL a real `briefbot send` while every one of its in-flight requests is held in
    the sandbox, run it again: each message reaches each chat once, the held ones too."""
    users = list(range(7001, 7041))
    env = _fan_out_config(telegram_server, tmp_path, users)
    passed = 15

    def delivered() -> set[int]:
        return {m.chat_id for u in users for m in telegram_server.messages_to(u)}

    ledger = Store.open(f"sqlite:///{tmp_path / 'data' / 'briefbot.db'}")

    def recorded() -> set[int]:
        return {int(r.chat_id) for r in _ledger(tmp_path, ledger) if r.parts_sent > 0}

    hold = telegram_server.hold_requests("sendMessage", after=passed)
    try:
        async with _briefbot("send", "--date", DATE, env=env) as send:
            # every in-flight slot holds a request: the process can send nothing more
            await hold.wait_held(IN_FLIGHT, timeout=60)
            assert len(delivered()) == passed
            # a part is committed just after the platform accepted it: wait until every
            # delivered message is in the ledger, so the kill finds none accepted but unrecorded
            await _until(lambda: recorded() == delivered(), "the ledger has what was delivered")
            assert hold.held == IN_FLIGHT and send.proc.returncode is None
            code, _, _ = await send.kill()
    finally:
        ledger.close()
    assert code == -signal.SIGKILL
    # the dead process's connections are closed: its held requests will never be processed
    await hold.wait_abandoned(IN_FLIGHT, timeout=30)
    hold.release()
    before = delivered()
    assert len(before) == passed, "the kill did not land mid fan-out"
    sent_to = [a.chat_id for a in telegram_server.arrivals if a.method == "sendMessage"]
    abandoned = {int(str(chat)) for chat in sent_to} - before
    assert len(abandoned) == IN_FLIGHT and hold.held_total == IN_FLIGHT

    code, out, err = await _cli("send", "--date", DATE, "--json", env=env)
    assert code == 0, err
    summary = json.loads(out)["summary"]
    assert (summary["sent"], summary["skipped"]) == (len(users) - passed, passed), summary
    per_chat = {u: [m.html for m in telegram_server.messages_to(u)] for u in users}
    assert all(len(v) == 1 for v in per_chat.values()), "a message was lost or arrived twice"
    assert len({v[0] for v in per_chat.values()}) == 1, "the chats got different messages"
    assert all(r.status is DeliveryStatus.SENT for r in _ledger(tmp_path))


async def test_send_with_a_token_revoked_mid_fan_out_names_the_token_and_fails(
    telegram_server: TelegramTestServer, tmp_path: Path
) -> None:
    """The token is revoked while a real `briefbot send` has a request held in every slot:
    it stops, prints what to check, exits non-zero and leaves the rest pending."""
    users = list(range(7101, 7131))
    env = _fan_out_config(telegram_server, tmp_path, users)
    passed = 5
    hold = telegram_server.hold_requests("sendMessage", after=passed)
    async with _briefbot("send", "--date", DATE, env=env) as send:
        await hold.wait_held(IN_FLIGHT, timeout=60)
        telegram_server.revoke_token()
        hold.release()
        async with asyncio.timeout(60):
            code, out, err = await send.finish()
    assert code == 1, out + err
    assert "BRIEFBOT_TELEGRAM_TOKEN" in err and "rejected" in err
    assert telegram_server.token not in out + err
    assert "Traceback" not in err
    delivered = [u for u in users if telegram_server.messages_to(u)]
    assert len(delivered) == passed + IN_FLIGHT  # the held ones arrived with a valid token
    rows = {int(r.chat_id): r for r in _ledger(tmp_path)}
    assert sorted(rows) == users
    for uid, row in rows.items():
        expected = DeliveryStatus.SENT if uid in delivered else DeliveryStatus.PENDING
        assert row.status is expected, row


def test_a_missing_path_does_not_stop_the_others(
    capsys: pytest.CaptureFixture[str], db: list[str]
) -> None:
    day = SAMPLES_DIR / "2026-11-27.md"
    code, out, err = run(capsys, *db, "ingest", "missing.md", str(day))
    assert code == 1 and "missing.md" in err
    assert "1 file(s) failed" in out
    assert run(capsys, *db, "items", "--date", "2026-11-27")[0] == 0


def test_reingesting_an_edited_file_removes_dropped_items_and_rejects_twins(
    capsys: pytest.CaptureFixture[str], db: list[str], tmp_path: Path
) -> None:
    day = tmp_path / "day.md"
    head, one, two = DAY_HEAD, ITEM_ONE, ITEM_TWO
    day.write_text(head + one + two, encoding="utf-8")
    assert run_json(capsys, *db, "ingest", str(day))["added"] == 2
    day.write_text(head + one, encoding="utf-8")  # the editor deleted an item
    assert run_json(capsys, *db, "ingest", str(day))["removed"] == 1
    titles = [i["title"] for i in run_json(capsys, *db, "items", "--date", "2026-11-27")["items"]]
    assert titles == ["第一条"]
    twin = "## 第三条\n\n正文三。\n\n- 原文: https://e.x/1\n\n"
    day.write_text(head + one + twin, encoding="utf-8")
    code, _, err = run(capsys, *db, "ingest", str(day))
    assert code == 1 and "same primary link" in err and "第三条" in err


async def test_ingest_a_feed_by_url(tmp_path: Path) -> None:
    """A feed served over HTTP (on loopback) goes into the day given with --date."""
    from aiohttp import web

    feed = (Path(__file__).parent / "fixtures" / "ingest" / "feed.rss").read_bytes()
    app = web.Application()

    async def serve_feed(_request: web.Request) -> web.Response:
        return web.Response(body=feed, content_type="application/rss+xml")

    app.router.add_get("/feed.rss", serve_feed)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        db = f"sqlite:///{tmp_path / 'feed.db'}"
        url = f"http://127.0.0.1:{port}/feed.rss"
        code, out, err = await _cli(
            "--db", db, "ingest", url, "--date", "2026-11-20", "--json", env={}
        )
        assert code == 0, err
        assert json.loads(out)["added"] >= 1
        code, out, err = await _cli("--db", db, "ingest", url.replace("feed", "nothing"), env={})
        assert code == 1 and "HTTP 404" in err
    finally:
        await runner.cleanup()


def test_a_file_named_two_ways_is_one_source(
    capsys: pytest.CaptureFixture[str], db: list[str], tmp_path: Path
) -> None:
    day = tmp_path / "day.md"
    head, one, two = DAY_HEAD, ITEM_ONE, ITEM_TWO
    day.write_text(head + one + two, encoding="utf-8")
    assert run_json(capsys, *db, "ingest", "day.md")["added"] == 2  # the tests run in tmp_path
    day.write_text(head + one, encoding="utf-8")
    assert run_json(capsys, *db, "ingest", str(day))["removed"] == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["search", "芯片", "--offset", "-3"],
        ["search", "芯片", "--limit", "x"],
        ["stats", "--queries", "--days", "-1"],
    ],
)
def test_counts_on_the_command_line_are_whole_numbers(
    capsys: pytest.CaptureFixture[str], db: list[str], argv: list[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main([*db, *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "must be 0 or more" in err or "not a whole number" in err
