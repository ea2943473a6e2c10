"""Readers choose: topics, their own time and time zone, a pause, the digest and its buttons.

The fast tier: the chat router on its own, the store on SQLite, the broadcast through the
delivery engine on the scripted platform and a virtual clock (tests/doubles.py), and the
readers' minute job across a simulated day with time-machine (not ticking: deterministic).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from bot.brief import assemble_brief
from bot.broadcast import (
    FULL_TEXT_BUTTON,
    NO_MATCH,
    Audience,
    TopicMatcher,
    canonical_topics,
    personal_brief,
    render_brief,
    render_for_target,
    send_brief,
)
from bot.chat.router import Commands, zone_named
from bot.config import DeliverySettings, ScheduleSettings, Settings, StoreSettings
from bot.core import Core, build_core
from bot.delivery import DeliveryEngine, build_outbox
from bot.domain import ChatKind, DeliveryStatus, IncomingMessage, Item, Link, OutgoingMessage
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.platforms.base import ChatRules
from bot.platforms.telegram import TelegramSettings
from bot.scheduler import BriefScheduler
from bot.search.aliases import Aliases
from bot.store.subscribers import SubscriberFilter
from tests.doubles import ScriptedPlatform, VirtualClock

DAY = dt.date(2026, 11, 27)
SHANGHAI = ZoneInfo("Asia/Shanghai")
ALICE, BOB, CAROL, DAVE = "1001", "1002", "1003", "1004"
GROUP_ADMIN, GROUP = "2001", "-4001"


def make_core(tmp_path: Path, **telegram: Any) -> Core:
    settings = Settings(
        store=StoreSettings(url=f"sqlite:///{tmp_path / 'readers.db'}"),
        platforms={"telegram": TelegramSettings(**telegram)},
        delivery=DeliverySettings(backoff_base=0.01, backoff_max=0.02),
        schedule=ScheduleSettings(default="08:00", timezone="Asia/Shanghai", misfire_grace=3600),
    )
    core = build_core(settings)
    import_paths(core.store, [SAMPLES_DIR])
    return core


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Core]:
    built = make_core(tmp_path)
    try:
        yield built
    finally:
        built.store.close()


def telegram_rules() -> ChatRules:
    return ChatRules(command_prefix="/", admins=frozenset(), thread_replies=True, buttons=True)


def commands_for(core: Core, platform: str = "telegram") -> Commands:
    async def chat_admin(_chat: str, user: str) -> bool:
        return user == GROUP_ADMIN

    if platform == "telegram":
        rules = telegram_rules()
    else:
        rules = ChatRules(command_prefix="#", admins=frozenset(), query_prefixes=("#",))
    return Commands(core, platform, rules, chat_admin=chat_admin)


def said(
    text: str,
    user: str = ALICE,
    *,
    chat: str | None = None,
    kind: ChatKind = ChatKind.PRIVATE,
    language: str | None = "zh-hans",
    platform: str = "telegram",
    action: str | None = None,
) -> IncomingMessage:
    return IncomingMessage(
        platform,
        chat or user,
        kind,
        user,
        "Reader",
        text,
        language=language,
        message_id="77",
        action=action,
    )


async def one(commands: Commands, message: IncomingMessage) -> OutgoingMessage:
    [reply] = await commands(message)
    return reply


# -- topics: the same matching as search -----------------------------------------------------


def item(title: str, summary: str, *, tags: tuple[str, ...] = (), n: int = 1) -> Item:
    return Item(DAY, title, summary, (Link("原文", f"https://example.com/{n}"),), tags, None, n)


def test_topics_are_stored_once_per_folded_form_in_one_order() -> None:
    assert canonical_topics(["开源", "GPU", "gpu", " 芯片 ", "開源", ""]) == ("GPU", "开源", "芯片")
    assert canonical_topics(["x" * 40]) == ("x" * 32,)


def test_a_topic_matches_chinese_english_aliases_and_traditional_forms() -> None:
    aliases = Aliases.from_settings(())
    chip_en = item("Startup tapes out an inference chip", "The chip ships next year.", n=1)
    chip_tw = item("新創公司發表推論晶片", "晶片明年量產。", n=2)
    chip_zh = item("英伟达发布新一代推理芯片", "单卡吞吐提升。", n=3)
    open_tw = item("Meta 開源多模態模型", "模型權重已公開。", n=4)
    tagged = item("一个标题", "正文里没有那个词。", tags=("芯片",), n=5)
    other = item("自动驾驶出租车扩大运营", "新增三座城市。", n=6)
    days = [chip_en, chip_tw, chip_zh, open_tw, tagged, other]
    chips = TopicMatcher(["芯片"], aliases=aliases).items(days)
    assert chips == (chip_en, chip_tw, chip_zh, tagged)
    assert TopicMatcher(["chip"], aliases=aliases).items(days) == chips  # either way round
    assert TopicMatcher(["晶片"], aliases=aliases).items(days) == chips
    assert TopicMatcher(["开源"], aliases=aliases).items(days) == (open_tw,)  # 開源 folds
    assert TopicMatcher(["開源"], aliases=aliases).items(days) == (open_tw,)
    assert TopicMatcher(["长颈鹿"], aliases=aliases).items(days) == ()
    # any of a reader's topics
    both = TopicMatcher(["开源", "自动驾驶"], aliases=aliases).items(days)
    assert both == (open_tw, other)
    # a word inside a longer Latin word is not that word ("chip" is not in "chipset"... but
    # a Chinese word is found inside a run, as search finds it)
    assert TopicMatcher(["推理"], aliases=aliases).items([chip_zh]) == (chip_zh,)
    assert TopicMatcher(["chip"], aliases=aliases).items([item("New chipsets", "x")]) == ()


@pytest.mark.parametrize(
    "topic",
    ["芯片", "chip", "开源", "開源", "推理", "量化", "Transformer", "机器人", "GPU", "论文"],
)
def test_a_topic_matches_exactly_what_a_search_for_it_finds(core: Core, topic: str) -> None:
    for day in sorted({DAY - dt.timedelta(days=n) for n in range(8)}):
        items = core.store.items_on(day)
        matched = {i.title for i in TopicMatcher([topic], aliases=core.aliases).items(items)}
        page = core.search(topic, limit=300)
        assert page.total < 300 and not page.partial
        found = {r.item.title for r in page.results if r.item.date == day}
        assert matched == found, (topic, day)


def test_a_personal_brief_has_its_own_title_and_the_matching_items_only(core: Core) -> None:
    brief = assemble_brief(core.store, DAY, core.settings.brief)
    assert brief is not None
    mine = personal_brief(core, brief, ("芯片",))
    assert mine is not None
    assert [i.title for i in mine.items] == [
        "芯片出口新规落地，厂商调整产品线",
        "本周 AI 简报读者调查开启",
    ]
    assert mine.title.startswith("【AI简报20261127】芯片出口新规落地") and mine.title.endswith(
        "#芯片"
    )
    assert mine.title != brief.title
    assert personal_brief(core, brief, ("长颈鹿",)) is None


# -- the store: a reader's choices ---------------------------------------------------------


def test_the_store_keeps_a_readers_choices_and_filters_fanouts(core: Core) -> None:
    store = core.store
    for chat in (ALICE, BOB, CAROL, DAVE):
        store.add_subscriber("telegram", chat)
    assert store.set_topics("telegram", BOB, ("芯片",))
    assert store.set_topics("telegram", CAROL, ("芯片",))
    assert store.set_topics("telegram", DAVE, ("GPU", "开源"))
    assert store.set_send_time("telegram", CAROL, "07:30")
    assert store.set_timezone("telegram", CAROL, "Europe/Berlin")
    now = dt.datetime(2026, 11, 27, 0, 0, tzinfo=dt.UTC)
    assert store.pause_subscriber("telegram", DAVE, now + dt.timedelta(days=2))
    assert not store.set_topics("telegram", "9999", ("x",))  # not a subscriber
    carol = store.subscriber("telegram", CAROL)
    assert carol is not None
    assert (carol.topics, carol.send_time, carol.timezone) == (("芯片",), "07:30", "Europe/Berlin")
    dave = store.subscriber("telegram", DAVE)
    assert dave is not None and dave.paused_at(now) and not dave.paused_at(now + dt.timedelta(3))

    def chats(where: SubscriberFilter) -> list[str]:
        pages = store.subscriber_pages("telegram", page=2, where=where)
        return [s.chat_id for page in pages for s in page]

    assert chats(SubscriberFilter()) == [ALICE, BOB, CAROL, DAVE]
    assert chats(SubscriberFilter(awake_at=now)) == [ALICE, BOB, CAROL]
    assert chats(SubscriberFilter(timed=False)) == [ALICE, BOB, DAVE]
    assert chats(SubscriberFilter(no_topics=True)) == [ALICE]
    assert chats(SubscriberFilter(chat_ids=(DAVE, ALICE, "9999"))) == [ALICE, DAVE]
    sets = store.topic_sets("telegram")
    assert [topics for _, topics in sets] == [("GPU", "开源"), ("芯片",)]
    chip_key = next(key for key, topics in sets if topics == ("芯片",))
    assert chats(SubscriberFilter(topic_keys=(chip_key,))) == [BOB, CAROL]
    assert [t for _, t in store.topic_sets("telegram", SubscriberFilter(awake_at=now))] == [
        ("芯片",)
    ]


def test_due_readers_are_found_per_time_zone_within_the_window(core: Core) -> None:
    store = core.store
    store.add_subscriber("telegram", ALICE)  # 07:30 in the schedule's zone (Shanghai)
    store.set_send_time("telegram", ALICE, "07:30")
    store.add_subscriber("telegram", BOB)  # 07:30 in Berlin: 14:30 in Shanghai
    store.set_send_time("telegram", BOB, "07:30")
    store.set_timezone("telegram", BOB, "Europe/Berlin")
    store.add_subscriber("telegram", CAROL)  # 23:50 in Shanghai: a window across midnight
    store.set_send_time("telegram", CAROL, "23:50")
    store.add_subscriber("telegram", DAVE)  # no time of their own: never due here

    def due(hour: int, minute: int, *, window: float = 600, day: int = 27) -> list[str]:
        now = dt.datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI)
        return store.due_readers(
            "telegram", now, DAY, window=window, default_timezone="Asia/Shanghai"
        )

    assert due(7, 29) == [] and due(7, 30) == [ALICE] and due(7, 40) == [ALICE]
    assert due(7, 41) == []  # more than the window after
    assert due(14, 30) == [BOB]
    assert due(23, 50) == [CAROL] and due(0, 0, day=28) == [CAROL]  # across midnight
    assert due(0, 1, day=28) == []
    # a ledger row that is not pending means they had it (sent, skipped, failed, gone)
    [row] = store.prepare_deliveries(
        DAY,
        [store.subscribers("telegram")[0].target],
        parts_total={"telegram": 1},
        content_hash={"telegram": "x"},
        force=False,
    )
    assert due(7, 30) == [ALICE]  # pending: still due
    store.finish_delivery(row.id, DeliveryStatus.SENT)
    assert due(7, 30) == []
    # paused until tomorrow: not due
    store.pause_subscriber("telegram", BOB, dt.datetime(2026, 11, 28, tzinfo=SHANGHAI))
    assert due(14, 30) == []


# -- the router: commands and buttons --------------------------------------------------------


async def test_subscribe_with_topics_then_list_and_drop_them(core: Core) -> None:
    commands = commands_for(core)
    reply = await one(commands, said("/subscribe 芯片 开源"))
    assert "芯片" in reply.text and "开源" in reply.text and "/unsubscribe" in reply.text
    assert [b.action for b in reply.buttons] == ["sub", "unsub", "latest", "settings"]
    subscriber = core.store.subscriber("telegram", ALICE)
    assert subscriber is not None and subscriber.topics == ("开源", "芯片")
    more = await one(commands, said("/subscribe GPU 芯片"))  # added, once each
    assert "GPU" in more.text
    listed = await one(commands, said("/topics"))
    assert "GPU、开源、芯片" in listed.text
    dropped = await one(commands, said("/unsubscribe 開源"))  # folds like search
    assert "开源" in dropped.text and "GPU、芯片" in dropped.text
    missing = await one(commands, said("/unsubscribe 长颈鹿"))
    assert "长颈鹿" in missing.text
    await one(commands, said("/unsubscribe GPU 芯片"))
    subscriber = core.store.subscriber("telegram", ALICE)
    assert subscriber is not None and subscriber.active and subscriber.topics == ()
    everything = await one(commands, said("/topics"))
    assert "全部" in everything.text
    gone = await one(commands, said("/unsubscribe"))  # plain: unsubscribes entirely
    assert "已退订" in gone.text and not core.store.is_subscribed("telegram", ALICE)
    again = await one(commands, said("/subscribe"))  # a new subscription starts afresh
    assert "已订阅" in again.text
    fresh = core.store.subscriber("telegram", ALICE)
    assert fresh is not None and fresh.topics == ()


async def test_topic_errors_are_clear(core: Core) -> None:
    commands = commands_for(core)
    bad = await one(commands, said("/subscribe ！！！", language="en"))
    assert "no word" in bad.text
    many = " ".join(f"词{i}" for i in range(11))
    too_many = await one(commands, said(f"/subscribe {many}", language="en"))
    assert "At most 10" in too_many.text
    assert not core.store.is_subscribed("telegram", ALICE)
    first = await one(commands, said("/topics", language="en"))
    assert "/subscribe" in first.text


async def test_time_asks_for_the_zone_and_tz_validates(core: Core) -> None:
    commands = commands_for(core)
    need = await one(commands, said("/time 07:30", language="en"))
    assert "Subscribe first" in need.text
    await commands(said("/subscribe"))
    asked = await one(commands, said("/time 7:30", language="en"))
    assert "07:30" in asked.text and "Asia/Shanghai" in asked.text and "/tz" in asked.text
    usage = await one(commands, said("/time 25:00", language="en"))
    assert "Usage" in usage.text
    unknown = await one(commands, said("/tz Mars/Olympus", language="en"))
    assert "Unknown time zone" in unknown.text and "Europe/Berlin" in unknown.text
    with time_machine.travel(dt.datetime(2026, 11, 27, 6, 0, tzinfo=dt.UTC), tick=False):
        zone = await one(commands, said("/tz europe/berlin", language="en"))
    assert "Europe/Berlin" in zone.text and "07:00" in zone.text
    reader = core.store.subscriber("telegram", ALICE)
    assert reader is not None and (reader.send_time, reader.timezone) == ("07:30", "Europe/Berlin")
    settled = await one(commands, said("/time 06:45", language="en"))
    assert "06:45 (Europe/Berlin)" in settled.text and "/tz" not in settled.text
    off = await one(commands, said("/time off", language="en"))
    assert "everyone's time" in off.text and "08:00" in off.text
    reader = core.store.subscriber("telegram", ALICE)
    assert reader is not None and reader.send_time is None and reader.timezone == "Europe/Berlin"
    assert zone_named("asia/SHANGHAI") == "Asia/Shanghai" and zone_named("../etc/passwd") is None


async def test_pause_and_resume(core: Core) -> None:
    commands = commands_for(core)
    await commands(said("/subscribe"))
    with time_machine.travel(dt.datetime(2026, 11, 27, 9, 0, tzinfo=SHANGHAI), tick=False):
        for arg, resume_on in (("7d", "2026-12-04"), ("2w", "2026-12-11"), ("3天", "2026-11-30")):
            paused = await one(commands, said(f"/pause {arg}"))
            assert resume_on in paused.text, arg
        dated = await one(commands, said("/pause 2026-12-24"))
        assert "2026-12-24" in dated.text
        reader = core.store.subscriber("telegram", ALICE)
        assert reader is not None
        assert reader.paused_until == dt.datetime(2026, 12, 24, tzinfo=SHANGHAI)
        shown = await one(commands, said("/settings"))
        assert "2026-12-24 00:00" in shown.text
        past = await one(commands, said("/pause 2026-11-26", language="en"))
        assert "passed" in past.text
        far = await one(commands, said("/pause 2028-01-01", language="en"))
        assert "at most" in far.text
        wrong = await one(commands, said("/pause soon", language="en"))
        assert "Usage" in wrong.text
        resumed = await one(commands, said("/resume"))
        assert "已恢复" in resumed.text
        assert "没有暂停" in (await one(commands, said("/resume"))).text
    reader = core.store.subscriber("telegram", ALICE)
    assert reader is not None and reader.paused_until is None


async def test_start_and_settings_have_buttons_and_buttons_act(core: Core) -> None:
    commands = commands_for(core)
    [*_, start] = await commands(said("/start", language="en"))
    assert [b.label for b in start.buttons] == ["Subscribe", "Unsubscribe", "Latest", "Settings"]
    assert "/time" in start.text and "/pause" in start.text  # the help lists the new commands
    subscribed = await one(commands, said("", action="sub", language="en"))
    assert "Subscribed" in subscribed.text and core.store.is_subscribed("telegram", ALICE)
    settings = await one(commands, said("", action="settings", language="en"))
    assert "every item" in settings.text and "08:00" in settings.text
    assert settings.buttons
    latest = await commands(said("", action="latest"))
    assert latest and "AI简报20261127" in latest[0].text
    left = await one(commands, said("", action="unsub", language="en"))
    assert "Unsubscribed" in left.text and not core.store.is_subscribed("telegram", ALICE)


async def test_a_group_chooses_through_its_admins_only(core: Core) -> None:
    commands = commands_for(core)
    refused = await one(commands, said("/subscribe 芯片", chat=GROUP, kind=ChatKind.GROUP))
    assert "管理员" in refused.text
    ok = await one(commands, said("/subscribe 芯片", GROUP_ADMIN, chat=GROUP, kind=ChatKind.GROUP))
    assert "芯片" in ok.text
    for text in ("/time 08:30", "/tz Europe/Berlin", "/pause 3d", "/resume", "/unsubscribe 芯片"):
        no = await one(commands, said(text, chat=GROUP, kind=ChatKind.GROUP))
        assert "管理员" in no.text, text
    group = core.store.subscriber("telegram", GROUP)
    assert group is not None and group.topics == ("芯片",) and group.send_time is None


async def test_wechat_subscribes_to_topics_with_its_prefix(core: Core) -> None:
    commands = commands_for(core, "wechat")
    reply = await one(commands, said("#subscribe 芯片", platform="wechat"))
    assert "芯片" in reply.text and not reply.buttons  # no buttons on WeChat
    subscriber = core.store.subscriber("wechat", ALICE)
    assert subscriber is not None and subscriber.topics == ("芯片",)
    [help_text] = await commands(said("#help", platform="wechat", language="en"))
    for name in ("#topics", "#time", "#tz", "#pause", "#resume", "#settings"):
        assert name in help_text.text


# -- the broadcast: per-topic renderings through the engine ----------------------------------


def make_engine(core: Core) -> tuple[DeliveryEngine, ScriptedPlatform]:
    clock = VirtualClock()
    platform = ScriptedPlatform(clock)
    outbox = build_outbox(
        platform,
        core.store,
        core.settings.delivery,
        today=lambda: DAY,
        clock=clock,
        sleep=clock.sleep,
    )
    platform.outbox = outbox
    engine = DeliveryEngine(core.store, {"telegram": outbox}, core.settings.delivery, clock=clock)
    return engine, platform


def texts_to(platform: ScriptedPlatform, chat: str) -> list[str]:
    return [text for to, text, _ in platform.delivered if to == chat]


async def test_topic_readers_get_their_own_short_brief_and_a_no_match_day_is_skipped(
    core: Core,
) -> None:
    store = core.store
    for chat in (ALICE, BOB, CAROL, DAVE):
        store.add_subscriber("telegram", chat)
    store.set_topics("telegram", BOB, ("芯片",))
    store.set_topics("telegram", CAROL, ("芯片",))
    store.set_topics("telegram", DAVE, ("长颈鹿",))
    engine, platform = make_engine(core)
    result = await send_brief(core, engine, {"telegram": platform}, DAY)
    assert result.summary() == {
        "pending": 0,
        "sending": 0,
        "sent": 3,
        "failed": 0,
        "gone": 0,
        "skipped": 1,
        "unresolved": 0,
    }
    alice, bob, carol = (texts_to(platform, c) for c in (ALICE, BOB, CAROL))
    assert alice and "FlowServe" in "".join(alice)
    assert bob == carol and "芯片出口新规落地" in bob[0] and "FlowServe" not in "".join(bob)
    assert "#芯片" in bob[0] and alice[0] != bob[0]
    assert texts_to(platform, DAVE) == []
    rows = {row.chat_id: row for row in store.deliveries(DAY, "telegram")}
    assert rows[DAVE].status is DeliveryStatus.SKIPPED and rows[DAVE].last_error == NO_MATCH
    assert rows[BOB].status is DeliveryStatus.SENT
    # exactly once per (brief, target): a second run sends nothing and tries no one again
    before = len(platform.delivered)
    again = await send_brief(core, engine, {"telegram": platform}, DAY)
    assert again.report is not None and again.report.count(DeliveryStatus.SKIPPED) == 4
    assert len(platform.delivered) == before
    # what a correction would redo per target is what each was sent
    brief = assemble_brief(store, DAY, core.settings.brief)
    assert brief is not None
    for chat in (ALICE, BOB, DAVE):
        redo = render_for_target(
            core, brief, next(s.target for s in store.subscribers("telegram") if s.chat_id == chat)
        )
        assert [p.text for p in redo] == texts_to(platform, chat), chat
    # a dry run shows who would get what
    plan = await send_brief(core, None, {"telegram": None}, DAY, dry_run=True, force=True)
    assert {p.target.chat_id: (p.status, p.parts > 0) for p in plan.plan}[DAVE] == (
        DeliveryStatus.SKIPPED,
        False,
    )


async def test_parts_after_the_first_are_silent_and_the_first_may_be_pinned(core: Core) -> None:
    brief = assemble_brief(core.store, DAY, core.settings.brief)
    assert brief is not None
    long_brief = type(brief)(brief.date, brief.title, brief.items * 6)
    parts = render_brief(core, long_brief, "telegram")
    assert len(parts) > 1
    assert [(p.silent, p.pin) for p in parts] == [(False, True)] + [(True, False)] * (
        len(parts) - 1
    )


async def test_paused_and_timed_readers_wait_for_their_turn(core: Core) -> None:
    store = core.store
    for chat in (ALICE, BOB, CAROL):
        store.add_subscriber("telegram", chat)
    store.set_send_time("telegram", BOB, "07:30")  # today's brief comes at Bob's time
    store.pause_subscriber("telegram", CAROL, dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    engine, platform = make_engine(core)
    with time_machine.travel(dt.datetime(2026, 11, 27, 8, 0, tzinfo=SHANGHAI), tick=False):
        result = await send_brief(
            core, engine, {"telegram": platform}, DAY, audience=Audience.SUBSCRIBERS
        )
        assert result.report is not None
        assert {o.target.chat_id for o in result.report.outcomes} == {ALICE}
        # the minute job names Bob; Carol stays paused even when named
        named = await send_brief(
            core,
            engine,
            {"telegram": platform},
            DAY,
            audience=Audience.SUBSCRIBERS,
            only=[BOB, CAROL],
        )
        assert named.report is not None
        assert {o.target.chat_id for o in named.report.outcomes} == {BOB}
    # another day's brief (a catch-up, an admin's resend) goes to timed readers at once
    older = DAY - dt.timedelta(days=1)
    with time_machine.travel(dt.datetime(2026, 11, 27, 9, 0, tzinfo=SHANGHAI), tick=False):
        result = await send_brief(core, engine, {"telegram": platform}, older)
    assert result.report is not None
    assert {o.target.chat_id for o in result.report.outcomes} == {ALICE, BOB}


# -- the digest ----------------------------------------------------------------------------


async def test_the_digest_is_one_message_of_linked_headlines_with_a_full_text_button(
    tmp_path: Path,
) -> None:
    core = make_core(tmp_path, style="digest")
    try:
        brief = assemble_brief(core.store, DAY, core.settings.brief)
        assert brief is not None
        [digest] = render_brief(core, brief, "telegram")
        assert digest.parse_mode == "html" and digest.pin and not digest.silent
        for entry in brief.items:
            assert f'<a href="{entry.primary_url}">' in digest.text
        assert "FP4 量化推理" in digest.text and "官方测试显示" not in digest.text  # no summaries
        [button] = digest.buttons
        assert (button.label, button.action) == (FULL_TEXT_BUTTON, "full:2026-11-27")
        # pressed by a reader in their chat: the whole text, ringing once
        commands = commands_for(core)
        full = await commands(said("", action="full:2026-11-27"))
        assert len(full) >= 1 and "官方测试显示" in "".join(p.text for p in full)
        assert not full[0].silent and all(p.silent for p in full[1:])
        assert not any(p.private for p in full)
        # pressed in a channel or group: to the presser's private chat, not to everyone
        in_group = await commands(
            said("", action="full:2026-11-27", chat=GROUP, kind=ChatKind.CHANNEL)
        )
        assert in_group and all(p.private for p in in_group)
        # a reader with topics gets their items only
        core.store.add_subscriber("telegram", BOB)
        core.store.set_topics("telegram", BOB, ("芯片",))
        mine = await commands(said("", BOB, action="full:2026-11-27"))
        assert "芯片出口新规落地" in mine[0].text and "FlowServe" not in "".join(
            p.text for p in mine
        )
        expired = await one(commands, said("", action="full:someday"))
        assert "过期" in expired.text
    finally:
        core.store.close()


def test_style_is_checked_where_it_is_set() -> None:
    from bot.config import load_settings
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match=r"\[telegram\] style must be full or digest"):
        load_settings(environ={"BRIEFBOT_TELEGRAM_STYLE": "fancy"})


# -- the readers' minute job across a simulated day -----------------------------------------


async def test_the_minute_job_sends_each_reader_once_at_their_time(core: Core) -> None:
    store = core.store
    readers = {
        ALICE: ("07:30", None),  # the schedule's zone, Shanghai
        BOB: ("07:30", "Europe/Berlin"),  # 14:30 in Shanghai
        CAROL: ("06:00", "America/New_York"),  # 19:00 in Shanghai
        DAVE: ("07:30", None),  # paused until tomorrow
        "1005": ("12:00", None),  # topics that match nothing today: skipped, once
    }
    for chat, (at, zone) in readers.items():
        store.add_subscriber("telegram", chat)
        store.set_send_time("telegram", chat, at)
        store.set_timezone("telegram", chat, zone)
    store.add_subscriber("telegram", "1006")  # no time of their own: not the minute job's
    store.pause_subscriber("telegram", DAVE, dt.datetime(2026, 11, 28, tzinfo=SHANGHAI))
    store.set_topics("telegram", "1005", ("长颈鹿",))
    engine, platform = make_engine(core)
    calls: list[tuple[str, list[str]]] = []

    async def scheduled_send(name: str, audience: str, only: Any) -> None:
        local = dt.datetime.now(SHANGHAI).strftime("%H:%M")
        calls.append((local, list(only)))
        await send_brief(
            core,
            engine,
            {name: platform},
            core.today(),
            audience=Audience(audience),
            only=only,
            detailed=False,
        )

    scheduler = BriefScheduler(store, core.settings, scheduled_send, registry_key="readers-day")
    try:
        start = dt.datetime(2026, 11, 27, 0, 0, tzinfo=SHANGHAI)
        with time_machine.travel(start, tick=False) as traveller:
            for minute in range(24 * 60):
                traveller.move_to(start + dt.timedelta(minutes=minute))
                await scheduler.send_due_readers("telegram")
    finally:
        scheduler.shutdown()
    assert calls == [
        ("07:30", [ALICE]),
        ("12:00", ["1005"]),
        ("14:30", [BOB]),
        ("19:00", [CAROL]),
    ]
    for chat in (ALICE, BOB, CAROL):
        parts = texts_to(platform, chat)
        assert parts and "AI简报20261127" in parts[0], chat
        assert len(parts) == len(texts_to(platform, ALICE))  # the whole brief, once each
    assert texts_to(platform, DAVE) == [] and texts_to(platform, "1006") == []
    rows = {row.chat_id: row.status for row in store.deliveries(DAY, "telegram")}
    assert rows == {
        ALICE: DeliveryStatus.SENT,
        BOB: DeliveryStatus.SENT,
        CAROL: DeliveryStatus.SENT,
        "1005": DeliveryStatus.SKIPPED,
    }


@pytest.mark.parametrize(
    ("down_until", "expected"), [("07:45", [("07:45", [ALICE])]), ("08:31", [])]
)
async def test_a_restart_catches_up_within_the_grace_only(
    core: Core, down_until: str, expected: list[tuple[str, list[str]]]
) -> None:
    core.store.add_subscriber("telegram", ALICE)
    core.store.set_send_time("telegram", ALICE, "07:30")
    calls: list[tuple[str, list[str]]] = []

    async def scheduled_send(_name: str, _audience: str, only: Any) -> None:
        calls.append((dt.datetime.now(SHANGHAI).strftime("%H:%M"), list(only)))
        [target] = [s.target for s in core.store.subscribers("telegram") if s.chat_id in only]
        [row] = core.store.prepare_deliveries(
            DAY, [target], parts_total={"telegram": 1}, content_hash={"telegram": "x"}, force=False
        )
        core.store.finish_delivery(row.id, DeliveryStatus.SENT)

    scheduler = BriefScheduler(core.store, core.settings, scheduled_send, registry_key="restart")
    hour, minute = (int(x) for x in down_until.split(":"))
    back = dt.datetime(2026, 11, 27, hour, minute, tzinfo=SHANGHAI)
    try:
        with time_machine.travel(back, tick=False) as traveller:
            for step in range(30):  # the process is back: the minute job runs again
                traveller.move_to(back + dt.timedelta(minutes=step))
                await scheduler.send_due_readers("telegram")
    finally:
        scheduler.shutdown()
    assert calls == expected
