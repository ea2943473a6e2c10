"""The content part of the store: items and the briefs they make."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.domain import BriefInfo, Item, Link
from bot.normalize import normalize
from bot.store.database import Database
from bot.store.models import BriefRow, ItemRow
from bot.store.search_index import index_columns


def item_identity(item: Item) -> str:
    """Date + this value identify an item: its primary URL (normalised), else its title."""
    url = item.primary_url
    if url:
        parts = urlsplit(url.strip())
        path = parts.path.rstrip("/") or "/"
        return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))[:512]
    return "title:" + hashlib.sha256(normalize(item.title).encode()).hexdigest()


@dataclass(frozen=True)
class IngestCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0


def item_of_row(row: ItemRow) -> Item:
    return Item(
        date=row.date,
        title=row.title,
        summary=row.summary,
        links=tuple(Link(d["label"], d["url"]) for d in row.links),
        tags=tuple(row.tags),
        section=row.section,
        position=row.position,
    )


class ContentStore(Database):
    """Items by day, with their brief's title and publisher."""

    def upsert_items(
        self, items: Iterable[Item], *, source: str = "", prune: bool = False
    ) -> IngestCounts:
        """Insert new items and update changed ones; the same content twice changes nothing.

        With ``prune``, items ``source`` held before for the same days and no longer has are
        removed: an editor who deletes an item from a file and re-ingests sees it gone.
        """
        added = updated = unchanged = 0
        items_by_day: dict[dt.date, set[str]] = {}
        with self.session() as s:
            for item in items:
                identity = item_identity(item)
                items_by_day.setdefault(item.date, set()).add(identity)
                row = s.scalars(
                    select(ItemRow).where(ItemRow.date == item.date, ItemRow.identity == identity)
                ).one_or_none()
                values = {
                    "title": item.title,
                    "summary": item.summary,
                    "links": [{"label": link.label, "url": link.url} for link in item.links],
                    "tags": list(item.tags),
                    "section": item.section,
                    "position": item.position,
                    **index_columns(item),
                }
                if row is None:
                    s.add(ItemRow(date=item.date, identity=identity, source=source, **values))
                    s.flush()
                    added += 1
                elif any(getattr(row, k) != v for k, v in values.items()):
                    for key, value in values.items():
                        setattr(row, key, value)
                    row.source = source
                    updated += 1
                else:
                    row.source = source  # the item may have moved to another file
                    unchanged += 1
            removed = self._remove_dropped(s, items_by_day, source) if prune and source else 0
        return IngestCounts(added, updated, unchanged, removed)

    @staticmethod
    def _remove_dropped(s: Session, items_by_day: dict[dt.date, set[str]], source: str) -> int:
        """A file is the truth for the days it holds: items it no longer has are removed."""
        removed = 0
        for day, identities in items_by_day.items():
            stale = s.scalars(
                select(ItemRow).where(
                    ItemRow.source == source,
                    ItemRow.date == day,
                    ItemRow.identity.not_in(identities),
                )
            ).all()
            for row in stale:
                s.delete(row)
            removed += len(stale)
        return removed

    def save_brief_info(self, info: BriefInfo, *, source: str = "") -> None:
        with self.session() as s:
            row = s.get(BriefRow, info.date)
            if row is None:
                s.add(
                    BriefRow(
                        date=info.date, title=info.title, publisher=info.publisher, source=source
                    )
                )
                return
            if info.title:
                row.title = info.title
            if info.publisher:
                row.publisher = info.publisher
            row.source = source

    def brief_info(self, date: dt.date) -> BriefInfo | None:
        with self.session() as s:
            row = s.get(BriefRow, date)
            return None if row is None else BriefInfo(row.date, row.title, row.publisher)

    def items_on(self, date: dt.date) -> list[Item]:
        with self.session() as s:
            rows = s.scalars(
                select(ItemRow).where(ItemRow.date == date).order_by(ItemRow.position, ItemRow.id)
            )
            return [item_of_row(r) for r in rows]

    def dates(self) -> list[dt.date]:
        """Days that have items, newest first."""
        with self.session() as s:
            return list(s.scalars(select(ItemRow.date).distinct().order_by(ItemRow.date.desc())))

    def latest_date(self, *, on_or_before: dt.date | None = None) -> dt.date | None:
        with self.session() as s:
            query = select(func.max(ItemRow.date))
            if on_or_before is not None:
                query = query.where(ItemRow.date <= on_or_before)
            return s.scalar(query)

    def count_items(self) -> int:
        with self.session() as s:
            return s.scalar(select(func.count(ItemRow.id))) or 0
