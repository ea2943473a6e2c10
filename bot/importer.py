"""Import content files into the store one by one; a bad file is reported, the rest go in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import ContentError
from bot.ingest import discover, parse_file
from bot.store import IngestCounts, Store


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
        )


def import_paths(
    store: Store,
    paths: Iterable[Path],
    *,
    feed_date: dt.date | None = None,
    progress: Callable[[Iterable[Path]], Iterable[Path]] = lambda files: files,
) -> ImportReport:
    """Parse and store every supported file under ``paths``; each file is its own transaction."""
    report = ImportReport()
    files = discover(paths)
    for path in progress(files):
        outcome = FileOutcome(str(path))
        report.files.append(outcome)
        try:
            document = parse_file(path, feed_date=feed_date)
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
