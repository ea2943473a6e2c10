"""Changes editors make to a day's items in the console: edit, add, reorder, delete and undo
a delete. Each change and its audit row are one transaction; afterwards the day's brief is
checked like after an ingest (an approved brief whose content changed is a draft again).

Blocking (the store): the server runs these in a thread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.core import Core
from bot.domain import Item, Link
from bot.errors import ContentError, UsageError
from bot.ingest.cleanup import PRIMARY_LABEL, clean_line, split_lines
from bot.ingest.limits import MAX_LINKS, MAX_SUMMARY, MAX_TAGS, MAX_TITLE, check_items
from bot.reports import item_json
from bot.store import item_identity
from bot.store.content import item_of_row
from bot.store.models import AuditRow, ItemRow
from bot.store.search_index import index_columns

SOURCE = "console"

_URL_AT_END = re.compile(r"(https?://\S+)\s*$", re.IGNORECASE)
_LABEL_END = " \t:：-–—|"
_TAG_SPLIT = re.compile(r"[,，、;；]")


class EditError(UsageError):
    """A change the console refuses, with what to fix."""


@dataclass(frozen=True, slots=True)
class EditableItem:
    """A stored item and the row id the console addresses it by."""

    id: int
    item: Item
    source: str


@dataclass(frozen=True, slots=True)
class ItemForm:
    """An item as the edit form sends it: raw text fields."""

    title: str = ""
    summary: str = ""
    links: str = ""  # one per line: "label: https://…" (label optional)
    tags: str = ""  # comma-separated (also ，、;)
    section: str = ""
    # the version of the item the form was filled from (:func:`item_version`; empty: any):
    # an edit made on a page opened before someone else's change would silently undo it
    base: str = ""

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> ItemForm:
        return cls(
            title=fields.get("title", ""),
            summary=fields.get("summary", ""),
            links=fields.get("links", ""),
            tags=fields.get("tags", ""),
            section=fields.get("section", ""),
            base=fields.get("base", ""),
        )

    @classmethod
    def of(cls, item: Item) -> ItemForm:
        """The form filled in with ``item`` (what the edit form shows)."""
        return cls(
            title=item.title,
            summary=item.summary,
            links="\n".join(f"{link.label}: {link.url}" for link in item.links),
            tags=", ".join(item.tags),
            section=item.section or "",
            base=item_version(item),
        )

    def to_item(self, date: dt.date, position: int) -> Item:
        """The item this form describes, or :class:`EditError` saying what is wrong."""
        title = " ".join(clean_line(self.title).split())
        if not title:
            raise EditError("the title is empty")
        if len(title) > MAX_TITLE:
            raise EditError(f"the title is longer than {MAX_TITLE} characters")
        summary = "\n".join(line.rstrip() for line in split_lines(self.summary)).strip()
        if not summary:
            raise EditError("the summary is empty: every item needs some text")
        if len(summary) > MAX_SUMMARY:
            raise EditError(f"the summary is longer than {MAX_SUMMARY} characters")
        links = parse_links(self.links)
        tags = tuple(dict.fromkeys(t for t in map(clean_line, _TAG_SPLIT.split(self.tags)) if t))
        if len(tags) > MAX_TAGS:
            raise EditError(f"at most {MAX_TAGS} tags")
        section = clean_line(self.section) or None
        item = Item(date, title, summary, links, tags, section, position)
        try:  # the limits an ingested file is held to (sizes, control characters)
            check_items([item], "the form")
        except ContentError as exc:
            raise EditError(exc.reason) from None
        return item


def item_version(item: Item) -> str:
    """A short fingerprint of an item's content (what an edit form was filled from)."""
    canonical = json.dumps(item_json(item), ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def parse_links(text: str) -> tuple[Link, ...]:
    """``label: https://…`` per line (``：`` or a space too; no label: 原文 for the first).
    Only http(s) addresses: a link is what readers click."""
    links: list[Link] = []
    for number, raw in enumerate(split_lines(text), start=1):
        line = clean_line(raw).removeprefix("- ").strip()
        if not line:
            continue
        found = _URL_AT_END.search(line)
        url = found.group(1) if found else ""
        if not found or not urlsplit(url).netloc:
            raise EditError(
                f"link line {number}: it needs an http:// or https:// address at its end, "
                f"like 原文: https://example.com/news (not {line!r})"
            )
        label = line[: found.start()].strip().rstrip(_LABEL_END).strip()
        links.append(Link(label or (PRIMARY_LABEL if not links else f"链接{len(links) + 1}"), url))
    if not links:
        raise EditError("every item needs a link (原文: https://…)")
    if len(links) > MAX_LINKS:
        raise EditError(f"at most {MAX_LINKS} links")
    return tuple(links)


@dataclass(frozen=True, slots=True)
class Change:
    """What a change did: a line for the editor, the brief's warnings, and the audit id of a
    delete (what Undo restores)."""

    message: str
    warnings: list[str] = field(default_factory=list)
    undo_id: int | None = None


def items_with_ids(core: Core, date: dt.date) -> list[EditableItem]:
    """The day's items in brief order (as :meth:`Store.items_on`), with their row ids."""
    with core.store.session() as s:
        rows = s.scalars(
            select(ItemRow).where(ItemRow.date == date).order_by(ItemRow.position, ItemRow.id)
        )
        return [EditableItem(r.id, item_of_row(r), r.source) for r in rows]


def _row(s: Session, date: dt.date, item_id: int) -> ItemRow:
    row = s.get(ItemRow, item_id)
    if row is None or row.date != date:
        raise EditError(
            f"item {item_id} is not on {date.isoformat()} (deleted meanwhile?): reload the page"
        )
    return row


def _identity_free(s: Session, date: dt.date, identity: str, except_id: int | None) -> None:
    query = select(ItemRow.id).where(ItemRow.date == date, ItemRow.identity == identity)
    if except_id is not None:
        query = query.where(ItemRow.id != except_id)
    if s.scalar(query) is not None:
        raise EditError(
            f"another item of {date.isoformat()} has the same first link ({identity}): "
            "an item is known by its day and first link"
        )


def _write(row: ItemRow, item: Item) -> None:
    row.identity = item_identity(item)
    row.title, row.summary = item.title, item.summary
    row.links = [{"label": link.label, "url": link.url} for link in item.links]
    row.tags, row.section, row.position = list(item.tags), item.section, item.position
    for key, value in index_columns(item).items():
        setattr(row, key, value)


def _audit(s: Session, actor: str, action: str, date: dt.date, **detail: Any) -> int:
    entry = AuditRow(actor=actor, action=action, subject=date.isoformat(), detail=detail)
    s.add(entry)
    s.flush()
    return entry.id


def _after(core: Core, date: dt.date, actor: str) -> list[str]:
    from bot.editorial import after_ingest

    return after_ingest(core, [date], actor=actor)


def _renumber(s: Session, date: dt.date) -> list[ItemRow]:
    """The day's rows in order, positions made 0…n-1 (ingested days may repeat positions)."""
    rows = list(
        s.scalars(
            select(ItemRow).where(ItemRow.date == date).order_by(ItemRow.position, ItemRow.id)
        )
    )
    for index, row in enumerate(rows):
        if row.position != index:
            row.position = index
    return rows


def edit_item(core: Core, date: dt.date, item_id: int, form: ItemForm, actor: str) -> Change:
    with core.store.session() as s:
        row = _row(s, date, item_id)
        before = item_of_row(row)
        if form.base and form.base != item_version(before):
            raise EditError(
                "someone changed this item after you opened the page (see the audit log): "
                "reload the page and make your change again"
            )
        after = form.to_item(date, before.position)
        if after == before:
            return Change("nothing changed")
        _identity_free(s, date, item_identity(after), except_id=row.id)
        _write(row, after)
        changed = sorted(
            key for key, value in item_json(after).items() if item_json(before)[key] != value
        )
        _audit(
            s,
            actor,
            "edit_item",
            date,
            item_id=row.id,
            changed=changed,
            before=item_json(before),
            after=item_json(after),
        )
    return Change(f"saved: {after.title}", _after(core, date, actor))


def add_item(core: Core, date: dt.date, form: ItemForm, actor: str) -> Change:
    with core.store.session() as s:
        last = s.scalar(select(func.max(ItemRow.position)).where(ItemRow.date == date))
        item = form.to_item(date, 0 if last is None else last + 1)
        identity = item_identity(item)
        _identity_free(s, date, identity, except_id=None)
        row = ItemRow(date=date, identity=identity, source=SOURCE, title="", summary="")
        _write(row, item)
        s.add(row)
        s.flush()
        _audit(s, actor, "add_item", date, item_id=row.id, item=item_json(item))
    return Change(f"added: {item.title}", _after(core, date, actor))


def move_item(core: Core, date: dt.date, item_id: int, offset: int, actor: str) -> Change:
    """Move an item ``offset`` places (-1: up, 1: down) within its day."""
    with core.store.session() as s:
        row = _row(s, date, item_id)
        rows = _renumber(s, date)
        index = rows.index(row)
        to = index + offset
        if offset == 0 or not 0 <= to < len(rows):
            return Change("it is already there")
        rows.insert(to, rows.pop(index))
        for position, each in enumerate(rows):
            each.position = position
        _audit(
            s,
            actor,
            "move_item",
            date,
            item_id=row.id,
            title=row.title,
            **{"from": index, "to": to},
        )
    return Change(f"moved to place {to + 1}: {row.title}", _after(core, date, actor))


def delete_item(core: Core, date: dt.date, item_id: int, actor: str) -> Change:
    """Delete an item; the audit row keeps all of it, so :func:`undo_delete` can restore it."""
    with core.store.session() as s:
        row = _row(s, date, item_id)
        item = item_of_row(row)
        s.delete(row)
        undo = _audit(
            s, actor, "delete_item", date, item_id=row.id, item=item_json(item), source=row.source
        )
        _renumber(s, date)
    return Change(f"deleted: {item.title}", _after(core, date, actor), undo_id=undo)


def _deleted(s: Session, date: dt.date, audit_id: int) -> tuple[Item, str] | None:
    """The item a delete (audit row ``audit_id``) removed and the source it came from, if it
    has not been restored since."""
    entry = s.get(AuditRow, audit_id)
    if entry is None or entry.action != "delete_item" or entry.subject != date.isoformat():
        return None
    restores = s.scalars(
        select(AuditRow.detail).where(
            AuditRow.action == "restore_item", AuditRow.subject == date.isoformat()
        )
    )
    if any((detail or {}).get("undo_of") == audit_id for detail in restores):
        return None
    data = entry.detail["item"]
    item = Item(
        date=date,
        title=data["title"],
        summary=data["summary"],
        links=tuple(Link(link["label"], link["url"]) for link in data["links"]),
        tags=tuple(data["tags"]),
        section=data["section"],
        position=int(data["position"]),
    )
    return item, str(entry.detail.get("source") or SOURCE)


def undo_delete(core: Core, date: dt.date, audit_id: int, actor: str) -> Change:
    """Put back the item a delete removed, at its old place."""
    with core.store.session() as s:
        found = _deleted(s, date, audit_id)
        if found is None:
            raise EditError("nothing to undo: that delete was undone already or is unknown")
        item, source = found
        identity = item_identity(item)
        _identity_free(s, date, identity, except_id=None)
        rows = _renumber(s, date)
        place = min(item.position, len(rows))
        for each in rows[place:]:
            each.position += 1
        row = ItemRow(date=date, identity=identity, source=source, title="", summary="")
        _write(row, item)
        row.position = place
        s.add(row)
        s.flush()
        _audit(s, actor, "restore_item", date, item_id=row.id, undo_of=audit_id, title=item.title)
    return Change(f"restored: {item.title}", _after(core, date, actor))
