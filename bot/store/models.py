"""SQLAlchemy tables of the store: items, briefs, subscribers and the delivery ledger."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: DateTime(timezone=True),
    }


class ItemRow(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("date", "identity", name="uq_items_date_identity"),
        Index("ix_items_date_position", "date", "position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    date: Mapped[dt.date] = mapped_column(Date)
    # stable identity within a day: the primary URL, or a hash of the title when there is none
    identity: Mapped[str] = mapped_column(String(512))
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text)
    links: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    tags: Mapped[list[str]] = mapped_column(JSON)
    section: Mapped[str | None] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)
    # the full-text index's tokens (bot.search.tokens), written with the row; the index
    # follows them (bot.store.search_index)
    search_title: Mapped[str] = mapped_column(Text, default="")
    search_tags: Mapped[str] = mapped_column(Text, default="")
    search_body: Mapped[str] = mapped_column(Text, default="")
    source: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class BriefRow(Base):
    __tablename__ = "briefs"

    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    title: Mapped[str | None] = mapped_column(Text)
    publisher: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text, default="")


class SubscriberRow(Base):
    __tablename__ = "subscribers"
    __table_args__ = (UniqueConstraint("platform", "chat_id", name="uq_subscribers_chat"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str | None] = mapped_column(String(16))
    # the reader's choices: topics (empty: every item), the time of day and time zone the
    # brief comes at (None: the platform's schedule), paused until then (None: not paused)
    topics: Mapped[list[str]] = mapped_column(JSON, default=list)
    send_time: Mapped[str | None] = mapped_column(String(5))
    timezone: Mapped[str | None] = mapped_column(String(64))
    paused_until: Mapped[dt.datetime | None] = mapped_column()
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    inactive_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DeliveryRow(Base):
    """The ledger: one row per (brief date, platform, chat). ``parts_sent`` makes a multi-part
    brief resumable part by part; ``status`` is a :class:`bot.domain.DeliveryStatus`."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("brief_date", "platform", "chat_id", name="uq_deliveries_target"),
        Index("ix_deliveries_status", "brief_date", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    brief_date: Mapped[dt.date] = mapped_column(Date)
    platform: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    parts_total: Mapped[int] = mapped_column(Integer, default=0)
    parts_sent: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    message_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    # sha256 of the rendered parts being sent: resuming a changed brief part by part would
    # repeat or skip text, so the engine refuses to
    content_hash: Mapped[str | None] = mapped_column(String(64))
    # who is sending it now (process id / host), for several instances sharing the work later
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()


class SearchQueryRow(Base):
    """How often a folded query was asked per day and whether it found anything: what
    readers look for. No user or chat id is kept."""

    __tablename__ = "search_queries"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    query: Mapped[str] = mapped_column(String(200), primary_key=True)
    asked: Mapped[int] = mapped_column(Integer, default=0)
    # times it was asked and nothing matched
    no_hits: Mapped[int] = mapped_column(Integer, default=0)


class MessagesSentRow(Base):
    """Messages a platform's outbox sent outside the ledger (replies, notices) per day, in
    the brief's time zone: with the ledger's brief parts, what a daily cap counts."""

    __tablename__ = "messages_sent"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    sent: Mapped[int] = mapped_column(Integer, default=0)


class BriefStateRow(Base):
    """A day's brief in the editors' workflow: ``state`` is a :class:`bot.domain.BriefState`;
    ``content_hash`` is the rendered content an approval was given to (a later change to the
    items moves the brief back to draft)."""

    __tablename__ = "brief_states"

    date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    content_hash: Mapped[str | None] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(Text)
    approved_at: Mapped[dt.datetime | None] = mapped_column()
    published_at: Mapped[dt.datetime | None] = mapped_column()
    corrected_at: Mapped[dt.datetime | None] = mapped_column()
    # the items as readers got them (bot.reports.item_json each): what a correction compares
    snapshot: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CorrectionRow(Base):
    """One correction of a published brief to one target, exactly once: ``revision`` is the
    content hash of the corrected brief; ``parts_done`` makes it resumable part by part."""

    __tablename__ = "corrections"
    __table_args__ = (
        UniqueConstraint(
            "brief_date", "platform", "chat_id", "revision", name="uq_corrections_target"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    brief_date: Mapped[dt.date] = mapped_column(Date)
    platform: Mapped[str] = mapped_column(String(32))
    chat_id: Mapped[str] = mapped_column(String(128))
    revision: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    parts_done: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AuditRow(Base):
    """Who changed what, when: every editorial change (console, CLI, chat)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ConsoleAdminRow(Base):
    """An editor who may log in to the web console; the password only as a KDF hash."""

    __tablename__ = "console_admins"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
