"""The store on SQLite and PostgreSQL: items, briefs, subscribers, the ledger, migrations."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from bot.domain import BriefInfo, ClaimResult, DeliveryStatus, Link, Target, TargetKind
from bot.errors import StoreError
from bot.store import DeliveryRecord, Store, item_identity
from bot.store.database import HEAD_REVISION
from tests.factories import DAY, make_item


def test_open_creates_sqlite_file_and_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dir' / 'b.db'}"
    store = Store.open(url)
    try:
        assert (tmp_path / "nested" / "dir" / "b.db").is_file()
        tables = set(inspect(store.engine).get_table_names())
        assert {"items", "briefs", "subscribers", "deliveries", "alembic_version"} <= tables
        with store.engine.connect() as conn:
            assert (
                conn.execute(text("select version_num from alembic_version")).scalar()
                == HEAD_REVISION
            )
    finally:
        store.close()


def test_reopen_is_idempotent(store_url: str) -> None:
    first = Store.open(store_url)
    first.upsert_items([make_item()])
    first.close()
    second = Store.open(store_url)
    try:
        assert second.count_items() == 1
    finally:
        second.close()


def test_bad_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="invalid database URL"):
        Store.open("not a url at all")


def test_unreachable_database_names_it_without_password() -> None:
    with pytest.raises(StoreError) as info:
        Store.open("postgresql://user:s3cret@127.0.0.1:1/nothing")
    assert "s3cret" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)


def test_upsert_is_idempotent_and_updates_changes(store: Store) -> None:
    items = [make_item("A", position=0), make_item("B", position=1)]
    assert store.upsert_items(items).added == 2
    again = store.upsert_items(items)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2)
    changed = store.upsert_items([make_item("A (fixed)", position=0)])
    assert (changed.added, changed.updated) == (0, 1)
    assert [i.title for i in store.items_on(DAY)] == ["A (fixed)", "B"]


def test_identity_normalises_url_case_and_trailing_slash() -> None:
    a = make_item(url="https://Example.COM/path/")
    b = make_item(url="https://example.com/path")
    assert item_identity(a) == item_identity(b)


def test_items_keep_order_links_tags_and_section(store: Store) -> None:
    item = make_item("X", tags=("芯片", "量化"), section="研究", position=0)
    item = replace(
        item,
        links=(Link("原文", "https://a.example/1"), Link("论文地址", "https://arxiv.org/abs/1")),
    )
    store.upsert_items([make_item("Y", position=1), item])
    got = store.items_on(DAY)
    assert [i.title for i in got] == ["X", "Y"]
    assert got[0].links == (
        Link("原文", "https://a.example/1"),
        Link("论文地址", "https://arxiv.org/abs/1"),
    )
    assert got[0].tags == ("芯片", "量化")
    assert got[0].section == "研究"


def test_brief_info_and_dates(store: Store) -> None:
    older = DAY - dt.timedelta(days=1)
    store.upsert_items([make_item(date=older), make_item(date=DAY)])
    store.save_brief_info(BriefInfo(DAY, "【AI简报20261127】标题", "编辑部"))
    store.save_brief_info(BriefInfo(DAY, None, None))  # an empty update keeps what was known
    assert store.brief_info(DAY) == BriefInfo(DAY, "【AI简报20261127】标题", "编辑部")
    assert store.dates() == [DAY, older]
    assert store.latest_date() == DAY
    assert store.latest_date(on_or_before=older) == older


def test_subscribers_lifecycle(store: Store) -> None:
    assert store.add_subscriber("telegram", "42", name="Ann", language="zh")
    assert not store.add_subscriber("telegram", "42")
    assert store.is_subscribed("telegram", "42")
    assert store.deactivate_subscriber("telegram", "42", "unsubscribed")
    assert not store.deactivate_subscriber("telegram", "42", "again")
    assert not store.is_subscribed("telegram", "42")
    assert store.subscribers("telegram") == []
    [inactive] = store.subscribers("telegram", active_only=False)
    assert inactive.inactive_reason == "unsubscribed"
    assert store.add_subscriber("telegram", "42")  # re-subscribing re-activates


def test_move_subscriber_follows_migration(store: Store) -> None:
    store.add_subscriber("telegram", "-1", TargetKind.GROUP)
    store.move_subscriber("telegram", "-1", "-1001")
    assert [s.chat_id for s in store.subscribers("telegram")] == ["-1001"]


def _prepare(
    store: Store, target: Target, *, parts: int = 2, digest: str = "h1", force: bool = False
) -> list[DeliveryRecord]:
    return store.prepare_deliveries(
        DAY,
        [target],
        parts_total={"telegram": parts},
        content_hash={"telegram": digest},
        force=force,
    )


def _claim(store: Store, row_id: int, worker: str, digest: str = "h1", stale: bool = False):  # type: ignore[no-untyped-def]
    return store.claim(
        row_id, worker, content_hash=digest, parts_total=2, may_take_over=lambda _w, _t: stale
    )


def test_ledger_prepare_claim_progress_finish(store: Store) -> None:
    target = Target("telegram", "42")
    [row] = _prepare(store, target)
    assert row.status is DeliveryStatus.PENDING
    result, claimed = _claim(store, row.id, "w1")
    assert result is ClaimResult.CLAIMED and claimed is not None and claimed.attempts == 1
    assert store.record_part_sent(row.id, "w1", 0, "m1", last=False)
    assert store.record_part_sent(row.id, "w1", 1, "m2", last=True)
    [done] = store.deliveries(DAY)
    assert (done.status, done.parts_sent, done.message_ids) == (
        DeliveryStatus.SENT,
        2,
        ["m1", "m2"],
    )
    assert done.sent_at is not None
    assert _claim(store, row.id, "w2") == (ClaimResult.DONE, None)
    [same] = _prepare(store, target)
    assert same.status is DeliveryStatus.SENT and same.id == row.id
    [forced] = _prepare(store, target, parts=3, force=True)
    assert (forced.status, forced.parts_sent, forced.parts_total) == (DeliveryStatus.PENDING, 0, 3)


def test_a_live_claim_excludes_other_workers(store: Store) -> None:
    [row] = _prepare(store, Target("telegram", "42"))
    assert _claim(store, row.id, "w1")[0] is ClaimResult.CLAIMED
    assert _claim(store, row.id, "w2") == (ClaimResult.BUSY, None)
    assert not store.record_part_sent(row.id, "w2", 0, "m", last=False)
    taken, _ = _claim(store, row.id, "w2", stale=True)  # w1 died: w2 may take over
    assert taken is ClaimResult.CLAIMED
    assert not store.record_part_sent(row.id, "w1", 0, "m", last=False)  # w1 lost its claim


def test_a_changed_brief_is_not_resumed_part_by_part(store: Store) -> None:
    [row] = _prepare(store, Target("telegram", "42"))
    _claim(store, row.id, "w1")
    store.record_part_sent(row.id, "w1", 0, "m1", last=False)
    result, record = _claim(store, row.id, "w2", digest="h2", stale=True)
    assert result is ClaimResult.CONTENT_CHANGED
    assert record is not None and "--force" in (record.last_error or "")
    [failed] = store.deliveries(DAY)
    assert failed.status is DeliveryStatus.FAILED


def test_release_claim_makes_the_row_pending_again(store: Store) -> None:
    [row] = _prepare(store, Target("telegram", "42"))
    _claim(store, row.id, "w1")
    store.release_claim(row.id, "w1")
    [again] = store.deliveries(DAY)
    assert again.status is DeliveryStatus.PENDING
    assert _claim(store, row.id, "w2")[0] is ClaimResult.CLAIMED


def test_parts_of_many_chats_commit_together_and_a_lost_claim_is_reported(store: Store) -> None:
    from bot.store import PartSent

    rows = store.prepare_deliveries(
        DAY,
        [Target("telegram", str(n)) for n in range(3)],
        parts_total={"telegram": 1},
        content_hash={"telegram": "h"},
        force=False,
    )
    claims = store.claim_many(
        [r.id for r in rows],
        "w1",
        content_hash={r.id: "h" for r in rows},
        parts_total={r.id: 1 for r in rows},
        may_take_over=lambda _w, _t: False,
    )
    assert [c[0] for c in claims] == [ClaimResult.CLAIMED] * 3
    store.release_claim(rows[2].id, "w1")  # as if another run had taken this one
    done = store.record_parts_sent(
        [PartSent(r.id, "w1", 1, (f"m{n}",), last=True) for n, r in enumerate(rows)]
    )
    assert done == [True, True, False]
    statuses = {d.chat_id: d.status for d in store.deliveries(DAY)}
    assert statuses == {
        "0": DeliveryStatus.SENT,
        "1": DeliveryStatus.SENT,
        "2": DeliveryStatus.PENDING,
    }
    assert store.delivery_counts(DAY) == {"sent": 2, "pending": 1}
