"""Find content files on disk and parse each with the parser its suffix names."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from bot.errors import ContentError
from bot.ingest.archive import parse_archive
from bot.ingest.cleanup import decode
from bot.ingest.document import ParsedDocument
from bot.ingest.feed import parse_feed
from bot.ingest.markdown import parse_markdown

MARKDOWN_SUFFIXES = frozenset((".md", ".markdown"))
ARCHIVE_SUFFIXES = frozenset((".txt",))
FEED_SUFFIXES = frozenset((".xml", ".rss", ".atom"))
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | ARCHIVE_SUFFIXES | FEED_SUFFIXES

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"


def _supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def discover(paths: Iterable[Path]) -> list[Path]:
    """Expand folders (recursively) to the content files in them, sorted and without repeats.

    Hidden files and folders (a leading dot, such as ``.git``) are skipped inside folders;
    a file named explicitly must have a supported suffix.
    """
    found: set[Path] = set()
    for path in paths:
        if path.is_dir():
            for candidate in path.rglob("*"):
                relative = candidate.relative_to(path).parts
                if any(part.startswith(".") for part in relative):
                    continue
                if candidate.is_file() and _supported(candidate):
                    found.add(candidate)
        elif path.is_file():
            if not _supported(path):
                supported = " ".join(sorted(SUPPORTED_SUFFIXES))
                raise ContentError(
                    f"unsupported file type {path.suffix or '(none)'!r} (supported: {supported})",
                    path=str(path),
                )
            found.add(path)
        else:
            raise ContentError("no such file or folder", path=str(path))
    return sorted(found)


def parse_file(path: Path, *, feed_date: dt.date | None = None) -> ParsedDocument:
    """Parse one content file: Markdown, a plain-text archive or an RSS/Atom feed."""
    name = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = " ".join(sorted(SUPPORTED_SUFFIXES))
        raise ContentError(
            f"unsupported file type {suffix or '(none)'!r} (supported: {supported})", path=name
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ContentError(f"cannot read the file: {exc.strerror or exc}", path=name) from None
    if suffix in FEED_SUFFIXES:
        return parse_feed(data, date=feed_date, path=name)
    if suffix in ARCHIVE_SUFFIXES:
        return parse_archive(decode(data, path=name, allow_gb18030=True), path=name)
    return parse_markdown(decode(data, path=name), path=name)
