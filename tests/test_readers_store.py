"""The readers' choices in the store, on SQLite and PostgreSQL: topic groups, who is due at
a minute in their own zone, pauses, and the filters a fan-out uses."""

from __future__ import annotations

import datetime as dt

from bot.store import Store
from bot.store.subscribers import SubscriberFilter

DAY = dt.date(2026, 11, 27)
UTC = dt.UTC


def seed(store: Store) -> None:
    for chat in ("1", "2", "3", "4", "5"):
        store.add_subscriber("telegram", chat)
    store.set_topics("telegram", "1", ["芯片", "开源"])
    store.set_topics("telegram", "2", ["芯片", "开源"])
    store.set_topics("telegram", "3", ["机器人"])
    store.set_send_time("telegram", "2", "07:30")
    store.set_timezone("telegram", "2", "Europe/Berlin")
    store.set_send_time("telegram", "4", "07:30")  # no zone: the default (Shanghai)
    store.set_send_time("telegram", "5", "07:30")
    store.set_timezone("telegram", "5", "Europe/Berlin")
    store.pause_subscriber("telegram", "5", dt.datetime(2026, 12, 1, tzinfo=UTC))


def test_topic_groups_and_filters(store: Store) -> None:
    seed(store)
    groups = dict((topics, key) for key, topics in store.topic_sets("telegram"))
    assert set(groups) == {("芯片", "开源"), ("机器人",)}
    chip = SubscriberFilter(topic_keys=(groups[("芯片", "开源")],))
    pages = list(store.subscriber_pages("telegram", where=chip))
    assert sorted(s.chat_id for page in pages for s in page) == ["1", "2"]
    everything = SubscriberFilter(no_topics=True)
    assert sorted(
        s.chat_id for page in store.subscriber_pages("telegram", where=everything) for s in page
    ) == ["4", "5"]


def test_due_readers_in_their_own_zone_not_paused(store: Store) -> None:
    seed(store)
    # 07:30 in Berlin is 06:30 UTC; 07:30 in Shanghai is 23:30 UTC the day before
    berlin = dt.datetime(2026, 11, 27, 6, 30, 20, tzinfo=UTC)
    due = store.due_readers("telegram", berlin, DAY, window=60, default_timezone="Asia/Shanghai")
    assert due == ["2"]  # 5 is paused, 4 is in Shanghai
    shanghai = dt.datetime(2026, 11, 26, 23, 30, 5, tzinfo=UTC)
    assert store.due_readers(
        "telegram", shanghai, DAY, window=60, default_timezone="Asia/Shanghai"
    ) == ["4"]
    later = dt.datetime(2026, 11, 27, 6, 45, tzinfo=UTC)
    assert store.due_readers("telegram", later, DAY, window=60, default_timezone="UTC") == []


def test_a_late_reader_is_not_due_for_the_next_days_brief_after_midnight(store: Store) -> None:
    store.add_subscriber("telegram", "42")
    store.set_send_time("telegram", "42", "23:30")  # in the default zone, Shanghai
    just_after_midnight = dt.datetime(2026, 11, 27, 16, 5, tzinfo=UTC)  # 00:05 on the 28th
    tomorrow = dt.date(2026, 11, 28)
    due = store.due_readers(
        "telegram", just_after_midnight, tomorrow, window=3600, default_timezone="Asia/Shanghai"
    )
    assert due == []
    # the day whose 23:30 it was: still within the grace for that day's brief
    assert store.due_readers(
        "telegram", just_after_midnight, DAY, window=3600, default_timezone="Asia/Shanghai"
    ) == ["42"]
