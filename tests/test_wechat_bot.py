"""WeChat end to end: the real service wiring and wechaty client against the loopback puppet."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.brief import assemble_brief
from bot.config import DeliverySettings, RenderSettings, Settings, StoreSettings
from bot.core import Core, build_core
from bot.delivery import build_outbox
from bot.domain import Brief, DeliveryStatus
from bot.ingest import SAMPLES_DIR
from bot.ingest.importer import import_paths
from bot.platforms.wechat import WechatGroup, WechatSettings
from bot.platforms.wechat.adapter import WechatPlatform
from bot.sandbox.wechat_puppet import SentText, WechatPuppetServer
from bot.service import Service, build_service, start_platforms
from tests.wechat_fixtures import (
    ALICE,
    BOB,
    CAROL,
    OTHER_ROOM,
    ROOM,
    SELF_ID,
    TOPIC,
    running_server,
)

DAY = dt.date(2026, 11, 27)
MAX_LENGTH = 600
QUIET = 0.5  # how long "no reply" is waited for
DAVE = "wxid_dave000004"  # a second member of ROOM who is not an admin
MALLORY = "wxid_mallory05"  # an impostor who calls himself Alice


@dataclass
class Harness:
    server: WechatPuppetServer
    core: Core
    service: Service

    @property
    def platform(self) -> WechatPlatform:
        platform = self.service.platforms["wechat"]
        assert isinstance(platform, WechatPlatform)
        return platform

    async def say(
        self,
        chat_id: str,
        user_id: str,
        text: str,
        *,
        replies: int = 1,
        mention: bool = False,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[SentText]:
        """Send as ``user_id`` (in a group if ``chat_id`` is a room) and wait for the replies."""
        before = len(self.server.texts_to(chat_id))
        await self._inject(chat_id, user_id, text, mention=mention)
        got = await self.server.wait_for_texts(chat_id, before + replies, timeout=timeout)
        return got[before:]

    async def say_unanswered(self, chat_id: str, user_id: str, text: str) -> None:
        """Send and assert that the bot stays silent."""
        before = len(self.server.texts_to(chat_id))
        await self._inject(chat_id, user_id, text)
        await asyncio.sleep(QUIET)
        assert self.server.texts_to(chat_id)[before:] == []

    async def _inject(
        self, chat_id: str, user_id: str, text: str, *, mention: bool = False
    ) -> None:
        if chat_id.endswith("@chatroom"):
            if mention:
                text = self.server.mention(room_id=chat_id) + text
            ids = [SELF_ID] if mention else []
            await self.server.inject_room_message(chat_id, user_id, text, mention_ids=ids)
        else:
            await self.server.inject_private_message(user_id, text)

    def texts_to(self, chat_id: str) -> list[str]:
        return [s.text for s in self.server.texts_to(chat_id)]


def make_settings(server: WechatPuppetServer, tmp_path: Path, **wechat: Any) -> Settings:
    options: dict[str, Any] = {
        "endpoint": server.endpoint,
        "admins": (ALICE,),
        "groups": (WechatGroup(topic=TOPIC), WechatGroup(id=OTHER_ROOM)),
        "min_interval": 0.05,
        "jitter": 0.0,
        "user_cooldown": 0.0,
        "group_cooldown": 0.0,
    } | wechat
    return Settings(
        store=StoreSettings(url=f"sqlite:///{tmp_path / 'b.db'}"),
        render=RenderSettings(),
        delivery=DeliverySettings(backoff_base=0.05, backoff_max=0.2),
        platforms={"wechat": WechatSettings(**{"max_length": MAX_LENGTH, **options})},
    )


@contextlib.asynccontextmanager
async def running_bot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **wechat: Any
) -> AsyncIterator[Harness]:
    async with running_server() as server:
        server.add_contact(DAVE, "Dave")
        server.add_contact(MALLORY, "Alice", alias="Alice")
        server.add_room(ROOM, TOPIC, [ALICE, BOB, DAVE, MALLORY])
        monkeypatch.setenv("BRIEFBOT_WECHAT_TOKEN", server.token)
        core = build_core(make_settings(server, tmp_path, **wechat))
        import_paths(core.store, [SAMPLES_DIR])
        service = build_service(core, platforms=("wechat",))
        platform = service.platforms["wechat"]
        assert isinstance(platform, WechatPlatform)
        # Documented constructor settings that build_service leaves at production values.
        platform.backoff_base, platform.backoff_max = 0.05, 0.2
        platform.login_timeout = 5.0
        # WeChat's global rate (one send per 2 s) has no setting; tests cannot wait that long.
        assert service.engine is not None
        pacer = service.outboxes["wechat"].pacer
        pacer.limits = pacer.limits.with_overrides(global_rate=200.0)
        await start_platforms(service)
        try:
            yield Harness(server, core, service)
        finally:
            await service.stop()
            core.store.close()


@pytest.fixture
async def wx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    async with running_bot(tmp_path, monkeypatch) as harness:
        yield harness


@pytest.fixture
async def wx_cooldown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Harness]:
    async with running_bot(
        tmp_path, monkeypatch, user_cooldown=30.0, group_cooldown=0.1
    ) as harness:
        yield harness


async def eventually(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def is_search_reply(reply: SentText, asker: str) -> bool:
    return reply.mention_ids == (asker,) and "芯片" in reply.text and "https://" in reply.text


# --- broadcasting --------------------------------------------------------------------------


async def test_brief_reaches_each_group_once_in_order_and_split(wx: Harness) -> None:
    expected = _parts(wx, DAY)
    assert len(expected) >= 3, "the sample day should need several parts at 600 characters"
    result = await wx.service.send(DAY)
    assert result.report is not None
    assert result.report.count(DeliveryStatus.SENT) == 2 and result.unresolved == []
    assert result.report is not None
    reached = {o.target.chat_id for o in result.report.outcomes}
    assert reached == {ROOM, OTHER_ROOM}  # by topic and by id
    for room in (ROOM, OTHER_ROOM):
        texts = wx.texts_to(room)
        assert texts == expected  # every part once, in order
        assert all(len(text) <= MAX_LENGTH for text in texts)
        assert all(s.mention_ids == () for s in wx.server.texts_to(room))
    assert "AI简报20261127" in expected[0]
    sent_before = list(wx.server.sent)
    second = await wx.service.send(DAY)
    assert second.report is not None and second.report.count(DeliveryStatus.SKIPPED) == 2
    assert wx.server.sent == sent_before
    rows = wx.core.store.deliveries(DAY, "wechat")
    assert {r.chat_id: r.status for r in rows} == {
        ROOM: DeliveryStatus.SENT,
        OTHER_ROOM: DeliveryStatus.SENT,
    }


async def test_group_removed_mid_send_is_gone_in_the_ledger(wx: Harness) -> None:
    # Parts to one group are spaced apart, so the group can disappear between two of them.
    pacer = wx.service.outboxes["wechat"].pacer
    pacer.limits = pacer.limits.with_overrides(per_chat_interval=0.3)
    send = asyncio.create_task(wx.service.send(DAY))
    await wx.server.wait_for_texts(ROOM, 1)
    wx.server.remove_room(ROOM)
    result = await send
    assert result.report is not None
    outcomes = {o.target.chat_id: o for o in result.report.outcomes}
    assert outcomes[ROOM].status is DeliveryStatus.GONE
    assert outcomes[OTHER_ROOM].status is DeliveryStatus.SENT
    rows = {r.chat_id: r for r in wx.core.store.deliveries(DAY, "wechat")}
    assert rows[ROOM].status is DeliveryStatus.GONE
    assert "NOT_FOUND" in (rows[ROOM].last_error or "")  # the gateway's reason is kept
    assert rows[ROOM].parts_sent == len(wx.texts_to(ROOM)) >= 1
    assert rows[OTHER_ROOM].status is DeliveryStatus.SENT
    assert len(wx.texts_to(OTHER_ROOM)) == rows[OTHER_ROOM].parts_total > len(wx.texts_to(ROOM))


async def test_group_removed_before_the_send_is_reported_and_others_still_get_it(
    wx: Harness,
) -> None:
    wx.server.remove_room(ROOM)
    result = await wx.service.send(DAY)
    assert result.report is not None
    assert result.report is not None
    assert [o.target.chat_id for o in result.report.outcomes] == [OTHER_ROOM]
    assert len(result.unresolved) == 1 and TOPIC in result.unresolved[0]
    assert result.summary()["unresolved"] == 1
    assert wx.texts_to(OTHER_ROOM) and "AI简报20261127" in wx.texts_to(OTHER_ROOM)[0]
    assert wx.texts_to(ROOM) == []


# --- keyword queries in a group --------------------------------------------------------------


async def test_group_queries_by_mention_and_prefixes_mention_the_asker(wx: Harness) -> None:
    [by_mention] = await wx.say(ROOM, BOB, "芯片", mention=True)
    assert is_search_reply(by_mention, BOB), by_mention
    # a group shows a member's WeChat name, not the remark ("老王") the bot's owner gave him
    assert by_mention.text.startswith("@Bob\u2005")
    [by_hash] = await wx.say(ROOM, ALICE, "#芯片")
    assert is_search_reply(by_hash, ALICE), by_hash
    [by_cha] = await wx.say(ROOM, DAVE, "查芯片")
    assert is_search_reply(by_cha, DAVE), by_cha
    assert by_cha.text.startswith("@Dave\u2005🔎 芯片：")  # the prefix is not part of it
    # a prefixed word that finds nothing is not worth a message to the whole group
    await wx.say_unanswered(ROOM, DAVE, "#zzzz-no-such-word")
    # asked by name, the bot says it found nothing, in one short line
    [no_match] = await wx.say(ROOM, BOB, "zzzz-no-such-word", mention=True)
    assert "没有找到" in no_match.text and "https://" not in no_match.text
    assert len(no_match.text) < 60


@pytest.mark.parametrize(
    "said",
    [
        "查了一下，好像官网还没更新",
        "#今天谁去开会",
        "#今天 谁去 开会",
        "查到了",
        "查一下芯片的资料，谁有？",
        "# 今天下午三点开会，大家别迟到",
        "#1",
        "更多",
    ],
)
async def test_conversation_that_starts_like_a_query_gets_no_reply(wx: Harness, said: str) -> None:
    await wx.say_unanswered(ROOM, BOB, said)
    assert wx.server.sent == []


async def test_more_and_a_number_continue_the_askers_last_list(wx: Harness) -> None:
    [first] = await wx.say(ROOM, BOB, "#芯片")
    assert "第 1–" in first.text and "#更多" in first.text
    shown = int(first.text.split("第 1–", 1)[1].split(" ", 1)[0].rstrip("条"))
    [more] = await wx.say(ROOM, BOB, "#更多")
    assert more.mention_ids == (BOB,)
    assert f"第 {shown + 1}–" in more.text and f"{shown + 1}. " in more.text
    # a number shows that result whole: its summary and every link
    [whole] = await wx.say(ROOM, BOB, "2")
    assert whole.mention_ids == (BOB,) and "https://" in whole.text
    title = first.text.split("\n2. ", 1)[1].split(" · ", 1)[0].replace("【", "").replace("】", "")
    assert title in whole.text
    # someone else's "#更多" or number is not a continuation of Bob's list
    await wx.say_unanswered(ROOM, DAVE, "2")


async def test_replies_follow_the_chats_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with running_bot(tmp_path, monkeypatch, language="en") as english:
        [reply] = await english.say(ROOM, BOB, "#芯片")
        assert ": 1–" in reply.text and "of" in reply.text and "共" not in reply.text
        assert "#more" in reply.text


async def test_a_group_can_have_its_own_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = (WechatGroup(topic=TOPIC, language="en"), WechatGroup(id=OTHER_ROOM))
    async with running_bot(tmp_path, monkeypatch, groups=groups) as bot:
        [english] = await bot.say(ROOM, BOB, "#芯片")  # the group named by its topic
        assert ": 1–" in english.text and "共" not in english.text
        [chinese] = await bot.say(CAROL, CAROL, "芯片")  # elsewhere, [wechat] language
        assert "共" in chinese.text and " of " not in chinese.text


async def test_the_latest_brief_again_in_a_group_is_its_headlines(wx: Harness) -> None:
    await wx.service.send(DAY)
    [short] = await wx.say(ROOM, BOB, "今日简报")
    assert short.text.startswith("@Bob\u20052026-11-27 的简报已于 ")
    assert "1. " in short.text and "https://" not in short.text
    assert len(short.text) < 600
    # and a group gets it at most once per latest_cooldown
    await wx.say_unanswered(ROOM, DAVE, "今日简报")


async def test_hot_keyword_sends_the_latest_brief(wx: Harness) -> None:
    parts = await wx.say(ROOM, BOB, "今日简报")
    assert "AI简报20261127" in parts[0].text
    assert parts[0].mention_ids == (BOB,)


async def test_group_chatter_gets_no_reply(wx: Harness) -> None:
    await wx.say_unanswered(ROOM, BOB, "今天天气不错")
    await wx.say_unanswered(ROOM, BOB, "谁有芯片资料")
    await wx.say_unanswered(ROOM, ALICE, "今日简报真不错")  # not the bare keyword
    assert wx.server.sent == []


# --- cooldowns and bad queries ---------------------------------------------------------------


async def test_user_cooldown_keeps_one_answer_per_person(wx_cooldown: Harness) -> None:
    [first] = await wx_cooldown.say(ROOM, BOB, "#芯片")
    assert is_search_reply(first, BOB)
    await wx_cooldown.say_unanswered(ROOM, BOB, "查芯片")
    [other] = await wx_cooldown.say(ROOM, DAVE, "#芯片")  # the group cooldown has passed
    assert is_search_reply(other, DAVE)


async def test_empty_queries_get_a_hint_and_long_ones_are_cut(wx: Harness) -> None:
    [empty] = await wx.say(ROOM, BOB, "#")
    assert "例如" in empty.text and "https://" not in empty.text
    assert empty.mention_ids == (BOB,) and len(empty.text) < 80
    # a very long query is cut to [search] max_query_length and answered, not refused
    [long] = await wx.say(CAROL, CAROL, "芯片" + "x" * 300)
    assert "芯片" in long.text and "x" * 64 not in long.text


async def test_following_the_hint_is_answered(wx_cooldown: Harness) -> None:
    [hint] = await wx_cooldown.say(ROOM, BOB, "#")
    assert "#芯片" in hint.text
    [answer] = await wx_cooldown.say(ROOM, BOB, "#芯片", timeout=2.0)
    assert is_search_reply(answer, BOB)


# --- private messages ------------------------------------------------------------------------


async def test_private_text_is_a_search(wx: Harness) -> None:
    [reply] = await wx.say(CAROL, CAROL, "芯片")
    assert "芯片" in reply.text and "https://" in reply.text
    assert reply.mention_ids == ()
    [other] = await wx.say(CAROL, CAROL, "查 zzzz-no-such-word")
    assert "zzzz-no-such-word" in other.text and "没有找到" in other.text


# --- admin commands --------------------------------------------------------------------------


async def test_admin_stats_in_private(wx: Harness) -> None:
    await wx.service.send(DAY)
    [stats] = await wx.say(ALICE, ALICE, "#stats")
    assert stats.text.startswith("统计")
    assert "platform: wechat" in stats.text
    assert "last_delivery_date: 2026-11-27" in stats.text and "sent 2" in stats.text


async def test_admin_send_in_a_group(wx: Harness) -> None:
    parts = len(_parts(wx, DAY))
    *replies, done = await wx.say(ROOM, ALICE, "#send 2026-11-27", replies=parts + 2)
    # the acknowledgement and the brief go out concurrently; the summary comes last
    [started] = [s for s in replies if "开始发送" in s.text]
    brief = [s for s in replies if s is not started]
    assert "开始发送 2026-11-27" in started.text and started.mention_ids == (ALICE,)
    assert "发送完成" in done.text and "成功 2" in done.text and "失败 0" in done.text
    assert done.mention_ids == (ALICE,)
    assert [s.text for s in brief] == _parts(wx, DAY)
    assert wx.texts_to(OTHER_ROOM) == _parts(wx, DAY)


async def test_impostor_with_the_admins_name_is_refused(wx: Harness) -> None:
    assert wx.server.mention(MALLORY, ROOM) == wx.server.mention(ALICE, ROOM)  # same name
    [refused] = await wx.say(ROOM, MALLORY, "#send 2026-11-27")
    assert "仅限管理员" in refused.text
    assert refused.mention_ids == (MALLORY,)
    [refused_private] = await wx.say(MALLORY, MALLORY, "#send")
    assert "仅限管理员" in refused_private.text
    await asyncio.sleep(QUIET)  # a send, had one started, would have begun by now
    assert wx.texts_to(OTHER_ROOM) == []
    assert len(wx.texts_to(ROOM)) == 1
    assert wx.core.store.deliveries(DAY) == []


async def test_admin_preview_of_a_day(wx: Harness) -> None:
    expected = _parts(wx, dt.date(2026, 11, 26))
    got = await wx.say(ALICE, ALICE, "#preview 2026-11-26", replies=len(expected))
    assert [s.text for s in got] == expected
    assert "AI简报20261126" in got[0].text
    assert wx.core.store.deliveries(dt.date(2026, 11, 26)) == []  # a preview sends nothing


async def test_admin_send_summary_counts_a_missing_group(wx: Harness) -> None:
    wx.server.remove_room(OTHER_ROOM)
    parts = len(_parts(wx, DAY))
    *_, done = await wx.say(ROOM, ALICE, "#send", replies=parts + 2)
    assert "成功 1" in done.text
    assert "失败 0" not in done.text


# --- connection ------------------------------------------------------------------------------


async def test_reconnects_after_the_stream_drops_and_still_answers(wx: Harness) -> None:
    assert wx.platform.connections == 1
    await wx.server.drop_stream()
    await wx.server.wait_connected(streams_opened=2)
    await eventually(lambda: wx.platform.connections == 2 and wx.platform.connected)
    [reply] = await wx.say(ROOM, BOB, "#芯片")
    assert is_search_reply(reply, BOB)


# --- helpers ---------------------------------------------------------------------------------


def _brief(core: Core, date: dt.date) -> Brief:
    brief = assemble_brief(core.store, date, core.settings.brief)
    assert brief is not None
    return brief


def _parts(wx: Harness, date: dt.date) -> list[str]:
    limits = wx.core.limits("wechat")
    return [m.text for m in wx.core.renderer.brief(_brief(wx.core, date), "wechat", limits)]


# --- the account's daily cap and per-group spacing ------------------------------------------

INTERVAL = 0.3  # [wechat] min_interval in the cap tests


class CapRefusals(logging.Handler):
    """Counts messages the outbox refused for the daily cap: the adapter logs each reply or
    notice it could not send, so a test can wait for a refusal instead of for silence."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "daily cap" in record.getMessage():
            self.count += 1
            self._changed.set()

    async def wait_for(self, count: int, within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while self.count < count:
                self._changed.clear()
                await self._changed.wait()


@contextlib.contextmanager
def cap_refusals() -> Iterator[CapRefusals]:
    logger = logging.getLogger("briefbot.wechat")
    handler, level = CapRefusals(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def brief_parts(tmp_path: Path, date: dt.date) -> int:
    """How many messages the brief of ``date`` takes on WeChat at MAX_LENGTH."""
    settings = Settings(
        store=StoreSettings(url=f"sqlite:///{tmp_path / 'parts.db'}"),
        platforms={"wechat": WechatSettings(max_length=MAX_LENGTH)},
    )
    core = build_core(settings)
    try:
        import_paths(core.store, [SAMPLES_DIR])
        return len(core.renderer.brief(_brief(core, date), "wechat", core.limits("wechat")))
    finally:
        core.store.close()


def assert_spaced(server: WechatPuppetServer, room: str, interval: float) -> None:
    """Sends to ``room`` arrived at least ``interval`` apart."""
    times = [a.t for a in server.arrivals if a.chat_id == room]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= interval for gap in gaps), (room, gaps)


def sent_per_day(server: WechatPuppetServer, zone: dt.tzinfo) -> dict[dt.date, int]:
    """Texts the puppet delivered per day in ``zone`` (the brief's time zone: the cap's day)."""
    assert len(server.arrivals) == len(server.sent)  # every send that arrived was delivered
    return dict(Counter(s.at.astimezone(zone).date() for s in server.sent))


async def test_replies_and_admin_notices_count_towards_the_daily_cap_and_keep_the_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a cap that fits a search reply, an admin's #send acknowledgement and the brief
    to both groups, the summary notice after that send is one message too many: the outbox
    refuses it, and any later reply, and the puppet never gets more than the cap that day.
    Every message to one group, whatever sent it, arrives at least min_interval after the
    previous one."""
    parts = brief_parts(tmp_path, DAY)
    cap = 1 + 1 + 2 * parts  # search reply, acknowledgement, the brief to ROOM and OTHER_ROOM
    with cap_refusals() as refused:
        async with running_bot(tmp_path, monkeypatch, daily_cap=cap, min_interval=INTERVAL) as wx:
            [reply] = await wx.say(ROOM, ALICE, "#芯片")
            assert is_search_reply(reply, ALICE)
            await wx.server.inject_room_message(ROOM, ALICE, "#send 2026-11-27")
            # the acknowledgement and the brief, in some order (they go out concurrently)
            room = await wx.server.wait_for_texts(ROOM, 1 + 1 + parts, timeout=30)
            await wx.server.wait_for_texts(OTHER_ROOM, parts, timeout=30)
            assert [s.text for s in room if "开始发送" in s.text] != []
            # the acknowledgement went out after the send began: wait for its summary, which
            # the outbox refuses (the replies before it used up the cap)
            await refused.wait_for(1, within=30)
            await wx.service.commands["wechat"].wait_background(grace=30)
            assert refused.count == 1
            rows = wx.core.store.deliveries(DAY, "wechat")
            assert {r.chat_id: r.status for r in rows} == {
                ROOM: DeliveryStatus.SENT,
                OTHER_ROOM: DeliveryStatus.SENT,
            }
            # the cap is used up: a member's search is not answered either
            await wx.server.inject_room_message(ROOM, BOB, "#芯片")
            await refused.wait_for(2, within=30)
            assert len(wx.texts_to(ROOM)) == 1 + 1 + parts
            assert not any("发送完成" in s.text for s in wx.server.sent)
            assert list(sent_per_day(wx.server, wx.core.settings.tz).values()) == [cap]
            assert_spaced(wx.server, ROOM, INTERVAL)
            assert_spaced(wx.server, OTHER_ROOM, INTERVAL)


async def test_a_restart_keeps_the_replies_already_sent_today_under_the_cap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replies use up the cap; a restarted process (a new outbox on the same store, as
    build_service makes) must not answer again that day."""
    cap = 2
    with cap_refusals() as refused:
        async with running_bot(tmp_path, monkeypatch, daily_cap=cap, min_interval=0.0) as wx:
            for _ in range(cap):
                await wx.say(CAROL, CAROL, "芯片")
            await wx.server.inject_private_message(CAROL, "芯片")
            await refused.wait_for(1, within=30)
            # what a restart builds: an outbox whose cap counts what the store says went out
            platform = wx.service.platforms["wechat"]
            core = wx.core
            restarted = build_outbox(
                platform,
                core.store,
                core.settings.delivery,
                today=core.today,
            )
            platform.outbox = wx.service.outboxes["wechat"] = restarted
            await wx.server.inject_private_message(CAROL, "芯片")
            async with asyncio.timeout(30):
                while refused.count < 2 and len(wx.server.sent) <= cap:  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            assert list(sent_per_day(wx.server, core.settings.tz).values()) == [cap]
