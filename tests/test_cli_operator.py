"""The CLI as operators use it: plans without credentials, output into pipes that close."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.sandbox.telegram_api import TelegramTestServer
from bot.store import Store
from tests.factories import make_item
from tests.sandbox_fixtures import telegram_server
from tests.test_cli import _cli

__all__ = ["telegram_server"]  # the fixture is used by name


def test_send_dry_run_needs_no_token(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "b.toml"
    config.write_text(
        f'[store]\ndata_dir = "{tmp_path}"\n[[telegram.channels]]\nchat = "@ai_brief"\n'
        '[[wecom.robots]]\nname = "ops"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "ingest", str(SAMPLES_DIR)]) == 0
    capsys.readouterr()
    code = main(["--config", str(config), "send", "--dry-run", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    plan = json.loads(out)
    assert plan["dry_run"] is True
    assert {(t["platform"], t["chat"]) for t in plan["targets"]} == {
        ("telegram", "@ai_brief"),
        ("wecom", "ops"),
    }


@pytest.mark.integration
def test_a_pipe_closed_early_ends_quietly(tmp_path: Path) -> None:
    """`briefbot items --json | head -c 10`: no BrokenPipeError traceback."""
    store = Store.open(f"sqlite:///{tmp_path / 'b.db'}")
    try:
        import_paths(store, [SAMPLES_DIR])
        store.upsert_items(
            [make_item(f"条目 {n}", position=n, summary="长摘要。" * 400) for n in range(150)],
            source="big",
        )
    finally:
        store.close()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "--db",
            f"sqlite:///{tmp_path / 'b.db'}",
            "items",
            "--json",
            "--date",
            "2026-11-27",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(10)
    proc.stdout.close()  # the reader leaves with most of the output unread
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err


@pytest.mark.integration
async def test_a_bot_api_address_that_answers_404_is_named_not_called_a_revoked_token(
    telegram_server: TelegramTestServer, tmp_path: Path
) -> None:
    config = tmp_path / "b.toml"
    wrong = telegram_server.base_url.removesuffix("/bot") + "/not-the-bot-api/bot"
    config.write_text(
        f'[store]\ndata_dir = "{tmp_path}"\n[telegram]\napi_base_url = "{wrong}"\n'
        '[[telegram.channels]]\nchat = "@ai_brief"\n',
        encoding="utf-8",
    )
    env = {"BRIEFBOT_CONFIG": str(config), "BRIEFBOT_TELEGRAM_TOKEN": telegram_server.token}
    assert (await _cli("ingest", str(SAMPLES_DIR), env=env))[0] == 0
    code, out, err = await _cli("send", "--platform", "telegram", env=env)
    assert code == 1, out + err
    assert "answered 404 Not Found" in err and "api_base_url" in err
    assert telegram_server.token not in out + err and "Traceback" not in err
