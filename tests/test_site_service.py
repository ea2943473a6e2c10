"""The archive as people reach it: `briefbot site build`, and `briefbot run` serving the site
and rebuilding it once a day's brief is sent."""

from __future__ import annotations

import dataclasses
import json
import socket
from pathlib import Path

import feedparser
import httpx
import pytest

from bot.cli import main
from bot.config import load_settings
from bot.core import build_core
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.sandbox.wecom_robot import WecomRobotServer
from bot.service import build_service, start_service
from tests.factories import make_item


def _config(tmp_path: Path, extra: str = "") -> Path:
    config = tmp_path / "b.toml"
    config.write_text(f'[store]\ndata_dir = "{tmp_path / "data"}"\n{extra}', encoding="utf-8")
    return config


def test_site_build_writes_the_archive_and_reports_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = _config(tmp_path)
    assert main(["--config", str(config), "ingest", str(SAMPLES_DIR)]) == 0
    capsys.readouterr()
    out = tmp_path / "public"
    code = main(
        ["--config", str(config), "site", "build", str(out), "--base-url", "https://brief.example/"]
    )
    printed, err = capsys.readouterr()
    assert code == 0, err
    assert "8 brief(s)" in printed and str(out) in printed
    feed = feedparser.parse((out / "feed.xml").read_bytes())
    assert feed.bozo == 0 and len(feed.entries) == 8
    assert feed.entries[0].link.startswith("https://brief.example/briefs/2026-11-27")
    code = main(["--config", str(config), "site", "build", str(out), "--json"])
    data, err = capsys.readouterr()
    # no base URL anywhere: feeds cannot have absolute links, and the error says what to set
    assert code == 2 and "[site] base_url" in err and data == ""


def test_site_build_defaults_to_the_data_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    config = _config(tmp_path, '[site]\nbase_url = "https://brief.example/"\n')
    assert main(["--config", str(config), "ingest", str(SAMPLES_DIR)]) == 0
    capsys.readouterr()
    assert main(["--config", str(config), "site", "build", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["briefs"] == 8 and report["items"] > 7
    assert (tmp_path / "data" / "site" / "index.html").is_file()


def test_site_listen_is_checked_when_the_settings_load(tmp_path: Path) -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[site\] listen must be host:port"):
        load_settings(_config(tmp_path, '[site]\nlisten = "8080"\n'), environ={})


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_run_serves_the_site_and_shows_today_once_it_is_sent(tmp_path: Path) -> None:
    """Today's brief is not public before it goes out; once the service has sent it, the
    served site and its feed show it, without a restart."""
    async with WecomRobotServer() as wecom:
        robot = wecom.add_robot("ops")
        port = _free_port()
        config = _config(
            tmp_path,
            f'[site]\nlisten = "127.0.0.1:{port}"\n'
            "[wecom]\nper_minute = 6000\n"
            '[[wecom.robots]]\nname = "ops"\n',
        )
        settings = load_settings(config, environ={"BRIEFBOT_WECOM_WEBHOOK_OPS": robot.webhook_url})
        core = build_core(settings)
        import_paths(core.store, [SAMPLES_DIR])
        today = core.today()
        core.store.upsert_items(
            [dataclasses.replace(make_item("今天的头条：新芯片发布"), date=today)], source="today"
        )
        service = build_service(core, receive=False)
        try:
            await start_service(service, schedule=False, site_dir=tmp_path / "data" / "site")
            base = f"http://127.0.0.1:{port}/"
            async with httpx.AsyncClient(base_url=base) as client:
                index = await client.get("/")
                assert index.status_code == 200 and "text/html" in index.headers["content-type"]
                assert "今天的头条" not in index.text
                assert (await client.get(f"/briefs/{today.isoformat()}.html")).status_code == 404
                result = await service.send(today, platform="wecom")
                assert result.summary()["sent"] == 1
                assert len(wecom.messages_to("ops")) == 1
                index = await client.get("/")
                assert "今天的头条" in index.text
                page = await client.get(f"/briefs/{today.isoformat()}.html")
                assert page.status_code == 200 and "今天的头条" in page.text
                feed = await client.get("/atom.xml")
                assert feed.headers["content-type"].startswith("application/atom+xml")
                parsed = feedparser.parse(feed.content)
                assert parsed.bozo == 0 and today.isoformat() in parsed.entries[0].link
        finally:
            await service.stop(grace=1)
            core.store.close()
