"""Brief assembly: order, titles from the pattern or the source, intro and footer."""

from __future__ import annotations

from bot.brief import assemble_brief, brief_title
from bot.config import BriefSettings
from bot.domain import BriefInfo
from bot.store import Store
from tests.factories import DAY, make_item


def test_title_from_pattern_with_first_headlines() -> None:
    items = [make_item("甲", position=0), make_item("乙", position=1), make_item("丙", position=2)]
    assert brief_title(DAY, items, BriefSettings()) == "【AI简报20261127】甲、乙"
    custom = BriefSettings(
        title_pattern="AI Brief {date}: {headlines}", title_headlines=3, headline_separator=" / "
    )
    assert brief_title(DAY, items, custom) == "AI Brief 2026-11-27: 甲 / 乙 / 丙"


def test_braces_in_headlines_stay_text() -> None:
    items = [make_item("{date} {0} {__class__}")]
    assert brief_title(DAY, items, BriefSettings()) == "【AI简报20261127】{date} {0} {__class__}"


def test_assemble_orders_items_and_uses_config(store: Store) -> None:
    store.upsert_items([make_item("second", position=1), make_item("first", position=0)])
    brief = assemble_brief(store, DAY, BriefSettings(intro="早上好", footer="完"))
    assert brief is not None
    assert [i.title for i in brief.items] == ["first", "second"]
    assert brief.title == "【AI简报20261127】first、second"
    assert (brief.intro, brief.footer) == ("早上好", "完")


def test_published_title_wins(store: Store) -> None:
    store.upsert_items([make_item("first")])
    store.save_brief_info(BriefInfo(DAY, "【AI简报20261127】编辑写的标题", "AI简报编辑部"))
    brief = assemble_brief(store, DAY, BriefSettings())
    assert brief is not None
    assert brief.title == "【AI简报20261127】编辑写的标题"
    assert brief.publisher == "AI简报编辑部"


def test_empty_day_has_no_brief(store: Store) -> None:
    assert assemble_brief(store, DAY, BriefSettings()) is None
