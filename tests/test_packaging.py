"""What ships and how it is layered: the wheel carries its data; the core imports no platform."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PLATFORM_LIBRARIES = {"telegram", "wechaty", "wechaty_puppet", "wechaty_grpc", "grpclib"}
# Only the adapters and the loopback servers may touch platform libraries.
EDGE = ("bot/platforms/telegram.py", "bot/platforms/wechat.py", "bot/platforms/wechat_compat.py")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_the_core_imports_no_platform_library() -> None:
    offenders = {}
    for path in sorted((REPO / "bot").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel in EDGE or rel.startswith("bot/sandbox/"):
            continue
        bad = imported_modules(path) & PLATFORM_LIBRARIES
        if bad:
            offenders[rel] = sorted(bad)
    assert offenders == {}


def test_adapters_reach_the_store_only_through_the_core() -> None:
    for rel in EDGE:
        tree = ast.parse((REPO / rel).read_text(encoding="utf-8"))
        modules = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not any(m.startswith("bot.store") for m in modules), rel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("briefbot-*.whl")
    return built


def test_wheel_carries_templates_samples_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "bot/templates/telegram/brief.j2",
        "bot/templates/wechat/search.j2",
        "bot/templates/markdown/brief.j2",
        "bot/samples/2026-11-27.md",
        "bot/store/migrations/env.py",
        "bot/store/migrations/versions/0001_initial.py",
        "bot/py.typed",
    ):
        assert required in names, required


def test_installed_wheel_renders_a_brief_from_its_own_files(wheel: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    script = (
        "import bot, json, sys\n"
        "from bot.cli import main\n"
        "from bot.ingest import SAMPLES_DIR\n"
        f"assert bot.__file__.startswith({str(site)!r}), bot.__file__\n"
        "db = ['--db', 'sqlite:///installed.db']\n"
        "assert main([*db, 'ingest', str(SAMPLES_DIR)]) == 0\n"
        "sys.exit(main([*db, 'preview', '--platform', 'telegram', '--json']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "【AI简报20261127】" in result.stdout
