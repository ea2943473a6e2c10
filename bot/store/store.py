"""Store operations: items and briefs, subscribers, and the delivery ledger."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot.domain import BriefInfo, DeliveryStatus, Item, Link, Target, TargetKind
from bot.errors import StoreError
from bot.store.models import BriefRow, DeliveryRow, ItemRow, SubscriberRow, utcnow
from bot.text import normalize

MIGRATIONS = Path(__file__).parent / "migrations"
# A delivery in one of these states is done: a later run without --force leaves it alone.
FINAL_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.GONE, DeliveryStatus.SKIPPED)


def item_identity(item: Item) -> str:
    """Date + this value identify an item: its primary URL (normalised), else its title."""
    url = item.primary_url
    if url:
        parts = urlsplit(url.strip())
        path = parts.path.rstrip("/") or "/"
        return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))[:512]
    return "title:" + hashlib.sha256(normalize(item.title).encode()).hexdigest()


def search_text(item: Item) -> str:
    return normalize("\n".join([item.title, item.summary, " ".join(item.tags)]))


@dataclass(frozen=True)
class IngestCounts:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0


@dataclass(frozen=True)
class Subscriber:
    platform: str
    chat_id: str
    kind: TargetKind
    name: str
    language: str | None
    active: bool
    inactive_reason: str | None
    created_at: dt.datetime

    @property
    def target(self) -> Target:
        return Target(self.platform, self.chat_id, self.kind, self.name)


@dataclass(frozen=True)
class DeliveryRecord:
    id: int
    brief_date: dt.date
    platform: str
    chat_id: str
    kind: TargetKind
    status: DeliveryStatus
    parts_total: int
    parts_sent: int
    attempts: int
    last_error: str | None
    message_ids: list[str] = field(default_factory=list)
    sent_at: dt.datetime | None = None

    @property
    def target(self) -> Target:
        return Target(self.platform, self.chat_id, self.kind)


def _item(row: ItemRow) -> Item:
    return Item(
        date=row.date,
        title=row.title,
        summary=row.summary,
        links=tuple(Link(d["label"], d["url"]) for d in row.links),
        tags=tuple(row.tags),
        section=row.section,
        position=row.position,
    )


def _subscriber(row: SubscriberRow) -> Subscriber:
    return Subscriber(
        platform=row.platform,
        chat_id=row.chat_id,
        kind=TargetKind(row.kind),
        name=row.name,
        language=row.language,
        active=row.active,
        inactive_reason=row.inactive_reason,
        created_at=row.created_at,
    )


def _delivery(row: DeliveryRow) -> DeliveryRecord:
    return DeliveryRecord(
        id=row.id,
        brief_date=row.brief_date,
        platform=row.platform,
        chat_id=row.chat_id,
        kind=TargetKind(row.kind),
        status=DeliveryStatus(row.status),
        parts_total=row.parts_total,
        parts_sent=row.parts_sent,
        attempts=row.attempts,
        last_error=row.last_error,
        message_ids=list(row.message_ids or []),
        sent_at=row.sent_at,
    )


def _aware(moment: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes for timezone=True columns; they were stored as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparsable database URL>"


class Store:
    """All persistent state. Methods are short transactions, safe to call from async code."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, migrate: bool = True) -> Store:
        """Open (creating a SQLite file's folder if needed) and migrate to the latest schema."""
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StoreError(f"invalid database URL {_redact(url)!r}: {exc}") from exc
        if parsed.drivername == "postgresql":
            # psycopg 3 is what the postgres extra installs; SQLAlchemy's default is psycopg2.
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        try:
            engine = create_engine(parsed, pool_pre_ping=True)
        except (ArgumentError, ImportError) as exc:
            raise StoreError(f"cannot use database {_redact(url)}: {exc}") from exc
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine)
        if migrate:
            store.migrate()
        return store

    def migrate(self) -> None:
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                cfg.attributes["connection"] = connection
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            where = _redact(self.engine.url.render_as_string(hide_password=False))
            raise StoreError(f"cannot open database {where}: {exc.orig}") from exc

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session, session.begin():
            yield session

    # -- content ---------------------------------------------------------------------------

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
                    "search_text": search_text(item),
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
            return [_item(r) for r in rows]

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

    def find_items(self, terms: Sequence[str], *, candidates: int) -> list[tuple[Item, str]]:
        """Items whose normalised text contains every term, newest first, with that text.

        Terms are bound as parameters and LIKE wildcards are escaped: user text is never syntax.
        """
        with self.session() as s:
            query = select(ItemRow)
            for term in terms:
                pattern = (
                    "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                )
                query = query.where(ItemRow.search_text.like(pattern, escape="\\"))
            query = query.order_by(ItemRow.date.desc(), ItemRow.position).limit(candidates)
            return [(_item(r), r.search_text) for r in s.scalars(query)]

    # -- subscribers -----------------------------------------------------------------------

    def add_subscriber(
        self,
        platform: str,
        chat_id: str,
        kind: TargetKind = TargetKind.SUBSCRIBER,
        *,
        name: str = "",
        language: str | None = None,
    ) -> bool:
        """Subscribe (or re-activate) a chat. Returns False if it was already active."""
        with self.session() as s:
            row = s.scalars(
                select(SubscriberRow).where(
                    SubscriberRow.platform == platform, SubscriberRow.chat_id == chat_id
                )
            ).one_or_none()
            if row is None:
                s.add(
                    SubscriberRow(
                        platform=platform,
                        chat_id=chat_id,
                        kind=kind.value,
                        name=name,
                        language=language,
                        active=True,
                    )
                )
                return True
            was_active = row.active
            row.active, row.inactive_reason = True, None
            row.name = name or row.name
            row.language = language or row.language
            return not was_active

    def deactivate_subscriber(self, platform: str, chat_id: str, reason: str) -> bool:
        """Mark a chat inactive (unsubscribed, blocked, kicked). Returns False if not active."""
        with self.session() as s:
            result = s.execute(
                update(SubscriberRow)
                .where(
                    SubscriberRow.platform == platform,
                    SubscriberRow.chat_id == chat_id,
                    SubscriberRow.active.is_(True),
                )
                .values(active=False, inactive_reason=reason, updated_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def move_subscriber(self, platform: str, old_chat_id: str, new_chat_id: str) -> None:
        """Follow a chat that changed id (a Telegram group upgraded to a supergroup)."""
        with self.session() as s:
            rows = {
                r.chat_id: r
                for r in s.scalars(
                    select(SubscriberRow).where(
                        SubscriberRow.platform == platform,
                        SubscriberRow.chat_id.in_([old_chat_id, new_chat_id]),
                    )
                )
            }
            old = rows.get(old_chat_id)
            if old is None:
                return
            if new_chat_id in rows:
                s.delete(old)
            else:
                old.chat_id = new_chat_id

    def subscribers(
        self, platform: str | None = None, *, active_only: bool = True
    ) -> list[Subscriber]:
        with self.session() as s:
            query = select(SubscriberRow).order_by(SubscriberRow.id)
            if platform:
                query = query.where(SubscriberRow.platform == platform)
            if active_only:
                query = query.where(SubscriberRow.active.is_(True))
            return [_subscriber(r) for r in s.scalars(query)]

    def is_subscribed(self, platform: str, chat_id: str) -> bool:
        with self.session() as s:
            found = s.scalar(
                select(SubscriberRow.id).where(
                    SubscriberRow.platform == platform,
                    SubscriberRow.chat_id == chat_id,
                    SubscriberRow.active.is_(True),
                )
            )
            return found is not None

    # -- the delivery ledger ---------------------------------------------------------------

    def prepare_deliveries(
        self,
        date: dt.date,
        targets: Sequence[Target],
        *,
        parts_total: Mapping[str, int],
        content_hash: Mapping[str, str],
        force: bool,
    ) -> list[DeliveryRecord]:
        """Make sure a ledger row exists per target; with ``force`` reset rows to pending.
        Returns the rows, in the targets' order."""
        for attempt in range(3):
            try:
                return self._prepare_deliveries(date, targets, parts_total, content_hash, force)
            except IntegrityError as exc:
                # another run created some of the same rows at the same moment: read them
                if attempt == 2:
                    raise StoreError(
                        f"ledger conflict preparing deliveries for {date}: {exc.orig}"
                    ) from exc
        raise AssertionError("unreachable")

    def _prepare_deliveries(
        self,
        date: dt.date,
        targets: Sequence[Target],
        parts_total: Mapping[str, int],
        content_hash: Mapping[str, str],
        force: bool,
    ) -> list[DeliveryRecord]:
        with self.session() as s:
            existing = {
                (r.platform, r.chat_id): r
                for r in s.scalars(select(DeliveryRow).where(DeliveryRow.brief_date == date))
            }
            out: list[DeliveryRow] = []
            for target in targets:
                row = existing.get((target.platform, target.chat_id))
                total, digest = parts_total[target.platform], content_hash[target.platform]
                if row is None:
                    row = DeliveryRow(
                        brief_date=date,
                        platform=target.platform,
                        chat_id=target.chat_id,
                        kind=target.kind.value,
                        status=DeliveryStatus.PENDING.value,
                        parts_total=total,
                        parts_sent=0,
                        attempts=0,
                        message_ids=[],
                        content_hash=digest,
                    )
                    s.add(row)
                    existing[(target.platform, target.chat_id)] = row
                elif force:
                    row.status = DeliveryStatus.PENDING.value
                    row.parts_total, row.parts_sent, row.message_ids = total, 0, []
                    row.last_error, row.sent_at, row.content_hash = None, None, digest
                    # a run still sending the old version loses its claim
                    row.claimed_by, row.attempts = None, row.attempts + 1
                out.append(row)
            s.flush()
            return [_delivery(r) for r in out]

    def start_attempt(
        self,
        delivery_id: int,
        worker: str,
        *,
        content_hash: str,
        parts_total: int,
        may_take_over: Callable[[str, dt.datetime], bool],
    ) -> tuple[DeliveryRecord | None, str]:
        """Claim a delivery for ``worker``: returns the claimed row, or None and why not.

        A row another worker is sending is left alone unless ``may_take_over`` says that
        worker is gone. The claim is a compare-and-set on ``attempts``, so two runs racing
        for one row cannot both win. A row whose sent parts came from a different rendering
        is failed: resuming it part by part would repeat or skip text.
        """
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id)
            if row is None or row.status in {st.value for st in FINAL_STATUSES}:
                return None, "already delivered"
            if (
                row.status == DeliveryStatus.SENDING.value
                and row.claimed_by not in (None, worker)
                and not may_take_over(row.claimed_by or "", _aware(row.updated_at))
            ):
                return None, "being sent by another run"
            if row.parts_sent and row.content_hash not in (None, content_hash):
                row.status = DeliveryStatus.FAILED.value
                row.claimed_by = None
                row.last_error = (
                    f"the brief changed after {row.parts_sent} of {row.parts_total} parts were "
                    "sent; send it again with --force to deliver the new version"
                )
                return None, row.last_error
            result = s.execute(
                update(DeliveryRow)
                .where(DeliveryRow.id == delivery_id, DeliveryRow.attempts == row.attempts)
                .values(
                    status=DeliveryStatus.SENDING.value,
                    attempts=row.attempts + 1,
                    claimed_by=worker,
                    content_hash=content_hash,
                    parts_total=parts_total,
                    updated_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return None, "being sent by another run"
            s.refresh(row)
            return _delivery(row), ""

    def record_part_sent(
        self, delivery_id: int, worker: str, part_index: int, message_id: str, *, last: bool
    ) -> bool:
        """Commit one part as sent before the next is tried: a crash loses no progress.

        With ``last`` the delivery is marked sent in the same transaction (one commit per
        single-message chat, which is what bounds a large fan-out on SQLite). False if the
        worker no longer holds the claim.
        """
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id, with_for_update=True)
            if (
                row is None
                or row.claimed_by != worker
                or row.status != DeliveryStatus.SENDING.value
            ):
                return False
            row.parts_sent = part_index + 1
            row.message_ids = [*row.message_ids, message_id]
            if last:
                row.status = DeliveryStatus.SENT.value
                row.last_error = row.claimed_by = None
                row.sent_at = utcnow()
            return True

    def finish_delivery(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        *,
        error: str | None = None,
        worker: str | None = None,
    ) -> None:
        """Record an outcome and release the claim (only ``worker``'s claim, if named)."""
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id)
            if row is None or (worker is not None and row.claimed_by != worker):
                return
            row.status = status.value
            row.last_error = error
            row.claimed_by = None
            if status is DeliveryStatus.SENT:
                row.sent_at = utcnow()

    def touch_claim(self, delivery_id: int, worker: str) -> bool:
        """Renew ``worker``'s claim; False if the row is no longer its to send."""
        with self.session() as s:
            result = s.execute(
                update(DeliveryRow)
                .where(
                    DeliveryRow.id == delivery_id,
                    DeliveryRow.claimed_by == worker,
                    DeliveryRow.status == DeliveryStatus.SENDING.value,
                )
                .values(updated_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def release_claim(self, delivery_id: int, worker: str) -> None:
        """Give a row back as pending (a send cancelled at shutdown)."""
        with self.session() as s:
            s.execute(
                update(DeliveryRow)
                .where(
                    DeliveryRow.id == delivery_id,
                    DeliveryRow.claimed_by == worker,
                    DeliveryRow.status == DeliveryStatus.SENDING.value,
                )
                .values(status=DeliveryStatus.PENDING.value, claimed_by=None, updated_at=utcnow())
            )

    def retarget_delivery(self, delivery_id: int, new_chat_id: str) -> DeliveryRecord | None:
        """Move a delivery to the chat's new id; returns the row to continue with.

        If the new chat already has a row for that day, the old row is closed as skipped and
        the new one is returned, or None when it is already finished.
        """
        with self.session() as s:
            row = s.get(DeliveryRow, delivery_id)
            if row is None:
                return None
            other = s.scalars(
                select(DeliveryRow).where(
                    DeliveryRow.brief_date == row.brief_date,
                    DeliveryRow.platform == row.platform,
                    DeliveryRow.chat_id == new_chat_id,
                )
            ).one_or_none()
            if other is None:
                row.chat_id = new_chat_id
                return _delivery(row)
            row.status = DeliveryStatus.SKIPPED.value
            row.claimed_by = None
            row.last_error = f"chat migrated to {new_chat_id}, which has its own delivery"
            if other.status in {st.value for st in FINAL_STATUSES}:
                return None
            return _delivery(other)

    def parts_sent_since(self, platform: str, since: dt.datetime) -> int:
        """Messages the ledger recorded as sent on ``platform`` since ``since`` (daily caps)."""
        with self.session() as s:
            rows = s.scalars(
                select(DeliveryRow.message_ids).where(
                    DeliveryRow.platform == platform, DeliveryRow.updated_at >= since
                )
            )
            return sum(len(ids or []) for ids in rows)

    def deliveries(self, date: dt.date, platform: str | None = None) -> list[DeliveryRecord]:
        with self.session() as s:
            query = select(DeliveryRow).where(DeliveryRow.brief_date == date)
            if platform:
                query = query.where(DeliveryRow.platform == platform)
            return [_delivery(r) for r in s.scalars(query.order_by(DeliveryRow.id))]

    def last_delivery_date(self, platform: str | None = None) -> dt.date | None:
        with self.session() as s:
            query = select(func.max(DeliveryRow.brief_date))
            if platform:
                query = query.where(DeliveryRow.platform == platform)
            return s.scalar(query)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # WAL lets the CLI read while the service writes; a busy timeout avoids spurious "locked".
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    # In WAL mode NORMAL still survives a crash of the process (what the ledger guards
    # against); only a power cut may lose the last commits. It halves the cost of a commit.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


__all__ = [
    "DeliveryRecord",
    "IngestCounts",
    "Store",
    "Subscriber",
    "item_identity",
]
