"""Replace a folder whole: build beside it, then swap a symlink, so a reader never sees half.

``out_dir`` becomes a symlink to ``.<name>.build-XXXX`` next to it; each build writes a new
such folder and points the link at it with one ``rename``, which POSIX makes atomic. The
previous version is kept until the next build, so a request that resolved the old folder a
moment before the swap can still finish reading it.
"""

from __future__ import annotations

import fcntl
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bot.errors import ConfigError

# Written into every built folder: the sign that a folder is briefbot's to replace.
MARKER = ".briefbot-site"


def _version_pattern(name: str) -> re.Pattern[str]:
    # tempfile.mkdtemp's random part: lowercase letters, digits and "_"
    return re.compile(rf"\.{re.escape(name)}\.build-[a-z0-9_]+")


def _check_replaceable(out_dir: Path) -> None:
    """Refuse to replace anything briefbot did not build: out_dir is wiped on each build."""
    name = out_dir.name
    if out_dir.is_symlink():
        target = os.readlink(out_dir)
        if not _version_pattern(name).fullmatch(target):
            raise ConfigError(
                f"[site] out_dir {out_dir} is a link to {target}, which briefbot did not make; "
                "point it at a path briefbot may replace on each build (a new or empty folder)"
            )
        return
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise ConfigError(f"[site] out_dir {out_dir} is a file, not a folder")
    if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise ConfigError(
            f"[site] out_dir {out_dir} holds files briefbot did not write; point it at a new "
            "or empty folder (each build replaces the folder whole)"
        )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One build at a time per out_dir (the service after a publish, the CLI by hand)."""
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextmanager
def staged_folder(out_dir: Path) -> Iterator[Path]:
    """A new empty folder beside ``out_dir`` to build into. When the block ends normally it
    replaces ``out_dir`` in one step; when it raises, it is removed and ``out_dir`` is as it was.
    """
    out_dir = Path(os.path.abspath(out_dir))  # not resolve(): out_dir itself may be our link
    parent, name = out_dir.parent, out_dir.name
    with ExitStack() as stack:
        try:
            parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(_locked(parent / f".{name}.lock"))
            _check_replaceable(out_dir)
            stage = Path(tempfile.mkdtemp(prefix=f".{name}.build-", dir=parent))
        except OSError as exc:
            raise ConfigError(
                f"[site] out_dir {out_dir}: cannot write there: {exc.strerror or exc}"
            ) from exc
        try:
            stage.chmod(0o755)  # mkdtemp makes it private; a web server may run as another user
            yield stage
            (stage / MARKER).write_text("built by briefbot: replaced whole on each build\n")
            previous = _swap(out_dir, stage)
        except BaseException:
            shutil.rmtree(stage, ignore_errors=True)
            raise
        _prune(parent, name, keep={stage.name, previous})


def _swap(out_dir: Path, stage: Path) -> str | None:
    """Point ``out_dir`` at ``stage``; returns the name of the folder it showed before."""
    parent, name = out_dir.parent, out_dir.name
    previous: str | None = None
    if out_dir.is_symlink():
        previous = os.readlink(out_dir)
    elif out_dir.exists():
        # A real folder (empty, or built by an older briefbot) becomes a kept version: the
        # one moment out_dir is missing, and only the first time.
        previous = f".{name}.build-{secrets.token_hex(4)}"
        out_dir.rename(parent / previous)
    link = parent / f".{name}.link-{secrets.token_hex(4)}"
    os.symlink(stage.name, link)
    os.replace(link, out_dir)
    return previous


def _prune(parent: Path, name: str, keep: set[str | None]) -> None:
    """Remove versions older than the previous one, and leftovers of interrupted builds."""
    pattern = _version_pattern(name)
    for entry in parent.iterdir():
        if entry.name in keep:
            continue
        if pattern.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(f".{name}.link-") and entry.is_symlink():
            entry.unlink(missing_ok=True)


def current_version(out_dir: Path) -> Path | None:
    """The folder ``out_dir`` shows now (None: not built yet)."""
    return out_dir.resolve() if out_dir.exists() else None
