"""Import content files into the store one by one; a bad file is reported, the rest go in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from bot.domain import Item
from bot.errors import ContentError, StoreError
from bot.ingest.document import ParsedDocument
from bot.ingest.feed import fetch_feed, parse_feed
from bot.ingest.files import discover, parse_file
from bot.ingest.limits import check_items
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


FEED_SUFFIXES = {".xml", ".rss", ".atom"}


def is_url(source: str | Path) -> bool:
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


def _store_document(
    store: Store, document: ParsedDocument, outcome: FileOutcome, *, source: str, prune: bool
) -> None:
    check_unique(document.items, outcome.path)
    check_items(document.items, outcome.path)
    try:
        outcome.counts = store.upsert_items(document.items, source=source, prune=prune)
    except StoreError as exc:
        raise ContentError(f"cannot store it: {exc}", path=outcome.path) from exc
    except SQLAlchemyError as exc:  # a value the database refuses: this file, not the others
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise ContentError(f"the database refused it: {reason}", path=outcome.path) from exc
    for info in document.briefs:
        store.save_brief_info(info, source=source)
    outcome.dates = sorted({item.date for item in document.items})


def import_paths(
    store: Store,
    paths: Iterable[str | Path],
    *,
    feed_date: dt.date | None = None,
    progress: Callable[[Iterable[Path]], Iterable[Path]] = lambda files: files,
) -> ImportReport:
    """Parse and store every supported file under ``paths`` (and feeds given by http(s) URL);
    each file is its own transaction, and a bad one does not stop the others."""
    report = ImportReport()
    files: set[Path] = set()
    for source in paths:
        if is_url(source):
            outcome = FileOutcome(str(source))
            report.files.append(outcome)
            try:
                data = fetch_feed(str(source))
                document = parse_feed(data, date=feed_date, path=str(source))
                # a feed shows only its latest entries: one that scrolled off is not deleted
                _store_document(store, document, outcome, source=str(source), prune=False)
            except ContentError as exc:
                outcome.error = str(exc)
            continue
        path = Path(source)
        try:
            files.update(discover([path]))
        except ContentError as exc:
            report.files.append(FileOutcome(str(path), error=str(exc)))
    for path in progress(sorted(files)):
        outcome = FileOutcome(str(path))
        report.files.append(outcome)
        try:
            document = parse_file(path, feed_date=feed_date)
            # a file is the truth for its days (not a feed file: it shows only recent entries);
            # the resolved path names it however it was typed
            prune = path.suffix.lower() not in FEED_SUFFIXES
            _store_document(store, document, outcome, source=str(path.resolve()), prune=prune)
        except ContentError as exc:
            outcome.error = str(exc)
        except OSError as exc:
            outcome.error = f"{path}: cannot read: {exc.strerror or exc}"
    return report
