"""Plain domain values of briefbot (items, briefs, targets, deliveries): no I/O here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class Link:
    """A labelled source link of an item, such as 原文 or 论文地址."""

    label: str
    url: str


@dataclass(frozen=True, slots=True)
class Item:
    """One entry of a day's brief: a headline, a summary and its source links.

    ``summary`` holds one or more paragraphs separated by a blank line. The first link
    is the primary source; together with the date it gives the item its identity.
    """

    date: dt.date
    title: str
    summary: str
    links: tuple[Link, ...]
    tags: tuple[str, ...] = ()
    section: str | None = None
    position: int = 0

    @property
    def paragraphs(self) -> list[str]:
        return [p.strip() for p in self.summary.split("\n\n") if p.strip()]

    @property
    def primary_url(self) -> str | None:
        return self.links[0].url if self.links else None


@dataclass(frozen=True, slots=True)
class BriefInfo:
    """What a source says about a day's brief as a whole (an archive's title line, publisher)."""

    date: dt.date
    title: str | None = None
    publisher: str | None = None


@dataclass(frozen=True, slots=True)
class Brief:
    """A day's digest, ready to render: its items in order, a title, an intro and a footer."""

    date: dt.date
    title: str
    items: tuple[Item, ...]
    intro: str = ""
    footer: str = ""
    publisher: str | None = None


class TargetKind(StrEnum):
    CHANNEL = "channel"
    SUBSCRIBER = "subscriber"
    GROUP = "group"


@dataclass(frozen=True, slots=True)
class Target:
    """Somewhere a brief is delivered: a platform and a chat id there."""

    platform: str
    chat_id: str
    kind: TargetKind = TargetKind.SUBSCRIBER
    name: str = ""

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.chat_id}"


class ClaimResult(StrEnum):
    """What the ledger answers when a run asks to send a delivery."""

    CLAIMED = "claimed"  # it is this run's to send now
    DONE = "done"  # already delivered (or gone, or skipped): nothing to do
    BUSY = "busy"  # another live run is sending it
    CONTENT_CHANGED = "content_changed"  # parts of another rendering went out: needs --force


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    GONE = "gone"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class Button:
    """A button under a message (Telegram's inline keyboard); pressing it comes back as an
    :class:`IncomingMessage` whose ``action`` is ``action`` (at most 64 bytes)."""

    label: str
    action: str


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One rendered message; ``parse_mode`` is ``"html"`` or ``None`` for plain text.

    ``reply_to`` threads it under that message; ``edit`` replaces the text of that message
    (sent by the bot) instead of sending a new one; ``buttons`` are shown under it on
    platforms that have buttons (:attr:`bot.platforms.base.ChatRules.buttons`).

    ``silent`` arrives without a notification where the platform can do that (parts 2..N of
    a brief: a brief of N parts rings once); ``pin`` marks a brief's first part, which a
    chat configured to pin briefs pins; ``private`` goes to the asker's private chat rather
    than to the group or channel they pressed a button in (a reader's own copy).
    """

    text: str
    parse_mode: str | None = None
    mentions: tuple[str, ...] = field(default=())
    reply_to: str | None = None
    edit: str | None = None
    buttons: tuple[Button, ...] = ()
    silent: bool = False
    pin: bool = False
    private: bool = False


class ChatKind(StrEnum):
    PRIVATE = "private"
    GROUP = "group"
    CHANNEL = "channel"


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A chat message as the core sees it, translated from a platform at the adapter's edge.

    ``user_id`` is the platform's stable id and the only thing admin checks use;
    ``user_name`` is for display (anyone can change a nickname).
    """

    platform: str
    chat_id: str
    chat_kind: ChatKind
    user_id: str
    user_name: str
    text: str
    mentions_bot: bool = False
    language: str | None = None
    # the platform's id of this message (a reply threads under it); for a button press, the
    # id of the bot's message that carries the button
    message_id: str | None = None
    # a pressed button's action (Button.action); ``text`` is then empty
    action: str | None = None


@dataclass(frozen=True, slots=True)
class InlineQuery:
    """Someone typing ``@bot words`` in any chat (Telegram's inline mode): they pick a card
    to share into that chat."""

    platform: str
    user_id: str
    query: str
    language: str | None = None


@dataclass(frozen=True, slots=True)
class InlineCard:
    """One answer to an inline query: what the picker shows, and the message it shares."""

    id: str  # unique within one answer, at most 64 bytes
    title: str
    description: str
    message: OutgoingMessage
    url: str | None = None


class BriefState(StrEnum):
    """Where a day's brief is in the editors' workflow."""

    DRAFT = "draft"  # being edited; not sent by the schedule when approval is required
    APPROVED = "approved"  # an editor approved this content; the schedule may send it
    PUBLISHED = "published"  # it went out to at least one chat
    CORRECTED = "corrected"  # published, then corrected in place


@dataclass(frozen=True, slots=True)
class BriefStatus:
    """A day's brief's state, who approved which content and when it went out."""

    date: dt.date
    state: BriefState
    content_hash: str | None = None  # what was approved (or published)
    approved_by: str | None = None
    approved_at: dt.datetime | None = None
    published_at: dt.datetime | None = None
    corrected_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One editorial change: who (a console admin, a chat user id, "cli"), what, when."""

    at: dt.datetime
    actor: str
    action: str
    subject: str
    detail: dict[str, object] = field(default_factory=dict)
