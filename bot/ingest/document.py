"""What a parser returns for one source: its items and what it says about whole briefs."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.domain import BriefInfo, Item


@dataclass
class ParsedDocument:
    """The items of one file or feed, in order, and any brief-level info it carries.

    ``Item.position`` is the item's order within its day in this document (0-based);
    a one-item Markdown file takes it from its front matter (default 0).
    """

    path: str
    items: list[Item] = field(default_factory=list)
    briefs: list[BriefInfo] = field(default_factory=list)
