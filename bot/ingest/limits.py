"""What one item and one day may hold: the documented size limits, checked at ingest.

Without them a 10 MB summary was accepted and rendered to 855 Telegram messages per chat. The
limits are generous for a news brief and keep every stored value inside what both stores
accept (a PostgreSQL INTEGER, the section column's 200 characters, no NUL byte).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from bot.domain import Item
from bot.errors import ContentError

MAX_TITLE = 300  # characters
MAX_SUMMARY = 10_000  # characters (about 3 Telegram messages)
MAX_SECTION = 200  # characters (the column's size)
MAX_LINKS = 20
MAX_LABEL = 50  # characters
MAX_URL = 2_048  # characters
MAX_TAGS = 20
MAX_TAG = 50  # characters
MAX_POSITION = 100_000
MAX_ITEMS_PER_DAY = 200

# C0 controls but tab, newline and carriage return; NUL breaks PostgreSQL text and SQLite search
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def check_items(items: Iterable[Item], path: str) -> None:
    """Raise a :class:`ContentError` naming the file, the item and the limit for the first
    value over a limit."""
    per_day: Counter[object] = Counter()
    for number, item in enumerate(items, start=1):
        where = f"item {number} ({item.title[:40]!r})"
        per_day[item.date] += 1
        if per_day[item.date] > MAX_ITEMS_PER_DAY:
            raise ContentError(
                f"more than {MAX_ITEMS_PER_DAY} items on {item.date}: split the day", path=path
            )
        texts = {
            "title": (item.title, MAX_TITLE),
            "summary": (item.summary, MAX_SUMMARY),
            "section": (item.section or "", MAX_SECTION),
        }
        for index, link in enumerate(item.links, start=1):
            texts[f"link {index} label"] = (link.label, MAX_LABEL)
            texts[f"link {index} URL"] = (link.url, MAX_URL)
        for index, tag in enumerate(item.tags, start=1):
            texts[f"tag {index}"] = (tag, MAX_TAG)
        for field, (text, limit) in texts.items():
            if len(text) > limit:
                raise ContentError(
                    f"{where}: the {field} is {len(text):,} characters, over the limit of "
                    f"{limit:,}",
                    path=path,
                )
            control = _CONTROL.search(text)
            if control is not None:
                raise ContentError(
                    f"{where}: the {field} contains the control character "
                    f"U+{ord(control.group()):04X} at character {control.start() + 1}: remove it",
                    path=path,
                )
        if len(item.links) > MAX_LINKS:
            raise ContentError(f"{where}: {len(item.links)} links, over {MAX_LINKS}", path=path)
        if len(item.tags) > MAX_TAGS:
            raise ContentError(f"{where}: {len(item.tags)} tags, over {MAX_TAGS}", path=path)
        if not 0 <= item.position <= MAX_POSITION:
            raise ContentError(
                f"{where}: position {item.position} is outside 0…{MAX_POSITION:,}", path=path
            )
