"""Import content files into the store one by one; a bad file is reported, the rest go in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.domain import Item
from bot.errors import ContentError
from bot.ingest import discover, parse_file
from bot.store import IngestCounts, Store, item_identity


@dataclass
class FileOutcome:
    path: str
    counts: IngestCounts = field(default_factory=IngestCounts)
    dates: list[dt.date] = field(default_factory=list)
    error: str | None = None


@dataclass
class ImportReport:
    files: list[FileOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[FileOutcome]:
        return [f for f in self.files if f.error]

    def total(self) -> IngestCounts:
        return IngestCounts(
            added=sum(f.counts.added for f in self.files),
            updated=sum(f.counts.updated for f in self.files),
            unchanged=sum(f.counts.unchanged for f in self.files),
            removed=sum(f.counts.removed for f in self.files),
        )


def check_unique(items: Iterable[Item], path: str) -> None:
    """Two items of one day with the same primary link would overwrite each other."""
    seen: dict[tuple[dt.date, str], Item] = {}
    for item in items:
        key = (item.date, item_identity(item))
        if key in seen:
            raise ContentError(
                f"items {seen[key].title!r} and {item.title!r} ({item.date}) have the same "
                f"primary link {item.primary_url!r}: give each item its own 原文 link",
                path=path,
            )
        seen[key] = item


def import_paths(
    store: Store,
    paths: Iterable[Path],
    *,
    feed_date: dt.date | None = None,
    progress: Callable[[Iterable[Path]], Iterable[Path]] = lambda files: files,
) -> ImportReport:
    """Parse and store every supported file under ``paths``; each file is its own transaction."""
    report = ImportReport()
    files: set[Path] = set()
    for path in paths:  # a missing path is reported; the others are still imported
        try:
            files.update(discover([path]))
        except ContentError as exc:
            report.files.append(FileOutcome(str(path), error=str(exc)))
    for path in progress(sorted(files)):
        outcome = FileOutcome(str(path))
        report.files.append(outcome)
        try:
            document = parse_file(path, feed_date=feed_date)
            check_unique(document.items, str(path))
        except ContentError as exc:
            outcome.error = str(exc)
            continue
        except OSError as exc:
            outcome.error = f"{path}: cannot read: {exc.strerror or exc}"
            continue
        outcome.counts = store.upsert_items(document.items, source=str(path))
        for info in document.briefs:
            store.save_brief_info(info, source=str(path))
        outcome.dates = sorted({item.date for item in document.items})
    return report
