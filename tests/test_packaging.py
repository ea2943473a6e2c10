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
PLATFORM_NAMES = ("telegram", "wechat")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def is_edge(rel: str) -> bool:
    """A platform's adapter modules and the loopback servers: the only code that may use a
    platform's library. A platform's registry entry (its ``__init__``) may not."""
    in_platform = rel.startswith("bot/platforms/") and rel.count("/") == 3
    return (in_platform and not rel.endswith("__init__.py")) or rel.startswith("bot/sandbox/")


def test_the_core_and_the_registry_entries_import_no_platform_library() -> None:
    offenders = {}
    for path in sorted((REPO / "bot").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if is_edge(rel):
            continue
        bad = imported_modules(path) & PLATFORM_LIBRARIES
        if bad:
            offenders[rel] = sorted(bad)
    assert offenders == {}


def test_adapters_reach_the_store_only_through_the_core() -> None:
    for path in sorted((REPO / "bot" / "platforms").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        modules = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert not any(m.startswith("bot.store") for m in modules), path


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def test_the_core_names_no_platform() -> None:
    """Outside bot/platforms/<name>/ and bot/sandbox/, no code (names, strings, imports;
    docstrings and comments aside) names a platform: the core loops over the registry."""
    offenders = []
    for path in sorted((REPO / "bot").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith("bot/sandbox/") or (
            rel.startswith("bot/platforms/") and rel.count("/") == 3
        ):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            words: list[str] = []
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                words = [] if id(node) in skip else [node.value]
            elif isinstance(node, ast.Name):
                words = [node.id]
            elif isinstance(node, ast.Attribute):
                words = [node.attr]
            elif isinstance(
                node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef | ast.alias
            ):
                words = [node.name]
            elif isinstance(node, ast.ImportFrom) and node.module:
                words = [node.module]
            for word in words:
                if any(name in word.lower() for name in PLATFORM_NAMES):
                    offenders.append(f"{rel}:{getattr(node, 'lineno', '?')}: {word[:60]!r}")
    assert offenders == []


def test_light_commands_import_no_heavy_library() -> None:
    """`briefbot --help` (and building the parser) loads neither a platform library, nor
    SQLAlchemy, Alembic, Jinja2 or APScheduler."""
    script = (
        "import sys\n"
        "from bot.cli import build_parser\n"
        "build_parser().format_help()\n"
        "heavy = {'telegram', 'wechaty', 'grpclib', 'sqlalchemy', 'alembic', 'jinja2',\n"
        "         'apscheduler', 'tqdm', 'httpx', 'aiohttp'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"


def test_the_cli_choices_match_the_domain() -> None:
    from bot.broadcast import Audience
    from bot.cli import AUDIENCES, TARGET_KINDS
    from bot.domain import TargetKind

    assert tuple(a.value for a in Audience) == AUDIENCES
    assert tuple(k.value for k in TargetKind) == TARGET_KINDS


def test_the_schema_revision_the_store_knows_is_the_newest_migration() -> None:
    from bot.store.database import HEAD_REVISION, MIGRATIONS

    revisions = sorted(p.name.split("_")[0] for p in (MIGRATIONS / "versions").glob("0*.py"))
    assert revisions[-1] == HEAD_REVISION


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
