"""The editors' workflow: approval gating at the scheduled time, test sends, and corrections
after publication (edited in place on Telegram, a note once per group elsewhere), through the
real clients and the loopback servers."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import load_settings
from bot.core import Core, build_core
from bot.corrections import correct
from bot.domain import BriefState, Item
from bot.editorial import after_ingest, approve, held_reason, status
from bot.errors import UsageError
from bot.platforms.telegram import TOKEN_ENV
from bot.sandbox.telegram_api import TelegramTestServer
from bot.sandbox.wecom_robot import WecomRobotServer
from bot.service import Service, build_service, start_platforms
from bot.store import Store
from tests.factories import make_item
from tests.sandbox_fixtures import ALICE, CHANNEL, CHANNEL_USERNAME, telegram_server
from tests.test_cli import _briefbot, _cli

__all__ = ["telegram_server"]  # the fixture is used by name

DAY = dt.date(2026, 11, 27)


def brief_items() -> list[Item]:
    return [
        make_item("英伟达发布新芯片", position=0, summary="训练性能提升三倍。"),
        make_item("开源模型登顶榜单", position=1, summary="在多项评测中排名第一。"),
        make_item("机器人学会叠衣服", position=2, summary="二十次示范即可学会。"),
    ]


def editorial_core(
    tmp_path: Path,
    telegram: TelegramTestServer | None,
    wecom: WecomRobotServer | None,
    robots: tuple[str, ...] = ("ops",),
) -> Core:
    config = tmp_path / "b.toml"
    text = (
        f'[store]\ndata_dir = "{tmp_path / "data"}"\n'
        "[schedule]\nrequire_approval = true\n"
        "[delivery]\nbackoff_base = 0.01\n"
    )
    env: dict[str, str] = {}
    if telegram is not None:
        text += (
            f'[telegram]\napi_base_url = "{telegram.base_url}"\nglobal_rate = 100\n'
            f'[[telegram.channels]]\nchat = "@{CHANNEL_USERNAME}"\n'
            f'[editors]\nplatform = "telegram"\nchat = "{ALICE}"\n'
        )
        env[TOKEN_ENV] = telegram.token
    if wecom is not None:
        text += "[wecom]\nper_minute = 6000\n"
        for name in robots:
            text += f'[[wecom.robots]]\nname = "{name}"\n'
            env[f"BRIEFBOT_WECOM_WEBHOOK_{name.upper()}"] = wecom.add_robot(name).webhook_url
    config.write_text(text, encoding="utf-8")
    core = build_core(load_settings(config, environ=env))
    core.store.upsert_items(brief_items(), source="test")
    return core


@pytest.fixture
async def wecom() -> AsyncIterator[WecomRobotServer]:
    async with WecomRobotServer() as server:
        yield server


async def started(core: Core) -> Service:
    service = build_service(core, receive=False)
    await start_platforms(service)
    return service


def edit_second_item(core: Core) -> None:
    items = brief_items()
    items[1] = dataclasses.replace(items[1], summary="更正：在三项评测中排名第一，而非多项。")
    core.store.upsert_items(items, source="test")


# -- approval ------------------------------------------------------------------------------


def test_approval_is_given_to_content_and_a_change_makes_it_a_draft_again(
    tmp_path: Path,
) -> None:
    core = editorial_core(tmp_path, None, None)
    assert status(core, DAY).state is BriefState.DRAFT
    assert held_reason(core, DAY) == "the brief of 2026-11-27 is not approved yet"
    approved = approve(core, DAY, "console:alice")
    assert approved.state is BriefState.APPROVED and held_reason(core, DAY) is None
    edit_second_item(core)
    # the schedule sees the change at once, before anyone re-ingests
    assert "changed after console:alice approved it" in (held_reason(core, DAY) or "")
    warnings = after_ingest(core, [DAY])
    assert warnings and "draft again" in warnings[0]
    assert status(core, DAY).state is BriefState.DRAFT
    assert [e.action for e in core.store.audit_entries()] == ["unapprove", "approve"]


async def test_scheduled_send_holds_an_unapproved_brief_and_tells_the_editors_once(
    telegram_server: TelegramTestServer, tmp_path: Path
) -> None:
    core = editorial_core(tmp_path, telegram_server, None)
    service = await started(core)
    core.today = lambda: DAY  # type: ignore[method-assign]
    try:
        await service.scheduled_send("telegram", "channels", ())
        await service.scheduled_send("telegram", "subscribers", ())
        assert telegram_server.messages_to(CHANNEL) == []
        told = [m.text for m in telegram_server.messages_to(ALICE)]
        assert len(told) == 1 and "not approved yet" in told[0]
        approve(core, DAY, "telegram:1")
        await service.scheduled_send("telegram", "channels", ())
        assert len(telegram_server.messages_to(CHANNEL)) == 1
        assert status(core, DAY).state is BriefState.PUBLISHED
        with pytest.raises(UsageError, match="already published"):
            approve(core, DAY, "cli")
    finally:
        await service.stop(grace=1)


async def test_test_send_goes_to_the_editors_chat_only_and_can_repeat(
    telegram_server: TelegramTestServer, tmp_path: Path
) -> None:
    core = editorial_core(tmp_path, telegram_server, None)
    service = await started(core)
    try:
        assert await service.test_send(DAY, "cli") == 2
        assert await service.test_send(DAY, "cli") == 2
    finally:
        await service.stop(grace=1)
    texts = [m.text for m in telegram_server.messages_to(ALICE)]
    assert len(texts) == 4 and texts[0].startswith("🧪 测试发送 / Test send · 2026-11-27 · draft")
    assert "英伟达发布新芯片" in texts[1]
    assert telegram_server.messages_to(CHANNEL) == []
    assert core.store.deliveries(DAY) == []  # outside the ledger: nothing is published
    assert status(core, DAY).state is BriefState.DRAFT


# -- corrections ---------------------------------------------------------------------------


async def test_a_correction_edits_the_telegram_message_in_place_once(
    telegram_server: TelegramTestServer, tmp_path: Path
) -> None:
    core = editorial_core(tmp_path, telegram_server, None)
    approve(core, DAY, "cli")
    service = await started(core)
    try:
        await service.send(DAY, platform="telegram")
        [posted] = telegram_server.messages_to(CHANNEL)
        assert "在多项评测中排名第一" in posted.text
        edit_second_item(core)
        report = await correct(service, DAY)
        assert [c.number for c in report.changes] == [2] and report.edited == 1
        assert report.notes == 0
        text = telegram_server.current_text(CHANNEL, posted.message_id)
        assert "更正：在三项评测中排名第一" in text and "英伟达发布新芯片" in text
        assert len(telegram_server.edits_of(CHANNEL, posted.message_id)) == 1
        assert len(telegram_server.messages_to(CHANNEL)) == 1  # no new message
        again = await correct(service, DAY)
        assert again.changes == [] and again.edited == 0
        assert len(telegram_server.edits_of(CHANNEL, posted.message_id)) == 1
    finally:
        await service.stop(grace=1)
    assert status(core, DAY).state is BriefState.CORRECTED
    assert core.store.audit_entries()[0].action == "correct"


async def test_a_robot_gets_one_correction_note_naming_the_item(
    wecom: WecomRobotServer, tmp_path: Path
) -> None:
    core = editorial_core(tmp_path, None, wecom)
    service = await started(core)
    try:
        await service.send(DAY, platform="wecom")
        assert len(wecom.messages_to("ops")) == 1
        edit_second_item(core)
        dry = await correct(service, DAY, dry_run=True)
        assert dry.targets == {"wecom:ops": "would note"} and len(wecom.messages_to("ops")) == 1
        report = await correct(service, DAY)
        assert report.notes == 1 and report.targets == {"wecom:ops": "done"}
        await correct(service, DAY)
    finally:
        await service.stop(grace=1)
    notes = wecom.messages_to("ops")[1:]
    assert len(notes) == 1
    assert "更正 / Correction" in notes[0].text and "2. 开源模型登顶榜单" in notes[0].text
    assert "更正：在三项评测中排名第一" in notes[0].text
    assert "英伟达" not in notes[0].text  # only the changed item


@pytest.mark.integration
async def test_a_correction_killed_mid_way_then_rerun_sends_no_double_note(
    tmp_path: Path,
) -> None:
    """SIGKILL a real `briefbot correct` while its note to the second robot is held in the
    sandbox; the rerun finishes: each robot has exactly one note."""
    async with WecomRobotServer() as server:
        core = editorial_core(tmp_path, None, server)
        second = server.add_robot("sales")
        config = tmp_path / "b.toml"
        config.write_text(
            config.read_text(encoding="utf-8") + '[[wecom.robots]]\nname = "sales"\n',
            encoding="utf-8",
        )
        env = {
            "BRIEFBOT_CONFIG": str(config),
            "BRIEFBOT_WECOM_WEBHOOK_OPS": server.robot("ops").webhook_url,
            "BRIEFBOT_WECOM_WEBHOOK_SALES": second.webhook_url,
        }
        core.store.close()
        code, out, err = await _cli("send", "--date", DAY.isoformat(), "--json", env=env)
        assert code == 0, err
        assert json.loads(out)["summary"]["sent"] == 2
        store = Store.open(f"sqlite:///{tmp_path / 'data' / 'briefbot.db'}")
        try:
            items = brief_items()
            items[1] = dataclasses.replace(items[1], summary="更正：三项评测。")
            store.upsert_items(items, source="test")
        finally:
            store.close()
        hold = server.hold_requests(after=1)  # the first robot's note passes
        async with _briefbot("correct", "--date", DAY.isoformat(), env=env) as running:
            await hold.wait_held(1, timeout=60)
            code, _, _ = await running.kill()
        assert code == -signal.SIGKILL
        await hold.wait_abandoned(1, timeout=30)
        hold.release()
        code, out, err = await _cli("correct", "--date", DAY.isoformat(), "--json", env=env)
        assert code == 0, err
        report = json.loads(out)
        assert set(report["targets"].values()) <= {"done", "done before"}, report
        for name in ("ops", "sales"):
            notes = [m for m in server.messages_to(name) if "更正 / Correction" in m.text]
            assert len(notes) == 1, f"robot {name} got {len(notes)} notes"


# -- reports to editors --------------------------------------------------------------------


async def test_editors_get_one_summary_and_an_urgent_alert_once_an_hour(
    telegram_server: TelegramTestServer, wecom: WecomRobotServer, tmp_path: Path
) -> None:
    core = editorial_core(tmp_path, telegram_server, wecom)
    approve(core, DAY, "cli")
    wecom.revoke("ops")  # the robot was removed from its group: gone, and a person must act
    service = await started(core)
    core.today = lambda: DAY  # type: ignore[method-assign]
    try:
        await service.scheduled_send("wecom", "channels", ())
        await service.scheduled_send("wecom", "channels", ("ops",))  # again: no second alert
    finally:
        await service.stop(grace=1)
    told = [m.text for m in telegram_server.messages_to(ALICE)]
    alerts = [t for t in told if t.startswith("🚨")]
    summaries = [t for t in told if t.startswith("📮")]
    assert len(alerts) == 1 and "wecom:ops gone" in alerts[0]
    assert "removed" in alerts[0] and "qyapi" not in alerts[0]
    assert len(summaries) == 2
    assert "1 target(s): sent 0, failed 0, gone 1" in summaries[0]
    assert "1 × gone: wecom robot 'ops'" in summaries[0]


async def test_an_admin_approves_in_the_chat_by_user_id_and_others_cannot(
    tmp_path: Path,
) -> None:
    from bot.chat.router import Commands
    from bot.domain import ChatKind, IncomingMessage

    core = editorial_core(tmp_path, None, None)
    commands = Commands(
        core, "telegram", dataclasses.replace(core.rules("telegram"), admins=frozenset({"42"}))
    )

    def said(user: str, text: str) -> IncomingMessage:
        return IncomingMessage("telegram", user, ChatKind.PRIVATE, user, "Alice", text)

    refused = await commands(said("7", "/approve 2026-11-27"))
    assert status(core, DAY).state is BriefState.DRAFT and refused
    replies = await commands(said("42", "/approve 2026-11-27"))
    assert "已批准 2026-11-27" in replies[0].text
    approved = status(core, DAY)
    assert approved.state is BriefState.APPROVED and approved.approved_by == "telegram:42"


@pytest.mark.integration
async def test_a_wechat_group_gets_one_correction_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """WeChat cannot edit a sent message: each group that has the brief gets one 更正 note
    with the corrected item, through the real wechaty client, and a rerun sends nothing."""
    from tests.test_wechat_bot import running_bot
    from tests.wechat_fixtures import OTHER_ROOM, ROOM

    async with running_bot(tmp_path, monkeypatch) as wx:
        await wx.service.send(DAY, platform="wechat")
        before = {room: len(wx.texts_to(room)) for room in (ROOM, OTHER_ROOM)}
        assert all(before.values())
        items = wx.core.store.items_on(DAY)
        fixed = dataclasses.replace(items[1], summary="更正：数字应为 1.5 倍，而非 1.7 倍。")
        wx.core.store.upsert_items([fixed], source="correction")
        report = await correct(wx.service, DAY)
        assert [c.number for c in report.changes] == [2]
        assert report.notes == 2 and report.edited == 0
        assert (await correct(wx.service, DAY)).notes == 0
        for room in (ROOM, OTHER_ROOM):
            notes = wx.texts_to(room)[before[room] :]
            assert len(notes) == 1, room
            assert notes[0].startswith("【更正 / Correction】2026-11-27")
            assert f"2. {fixed.title}" in notes[0] and "1.5 倍" in notes[0]


async def test_an_edit_after_publication_is_not_sent_by_the_schedule_until_corrected(
    wecom: WecomRobotServer, tmp_path: Path
) -> None:
    """The 08:00 robot got the approved brief; an edit at 09:00 must not reach the 12:00
    robot as new text nobody approved: it is held until `correct` takes it to the first."""
    core = editorial_core(tmp_path, None, wecom, robots=("early", "late"))
    approve(core, DAY, "cli")
    service = await started(core)
    core.today = lambda: DAY  # type: ignore[method-assign]
    try:
        await service.scheduled_send("wecom", "channels", ("early",))
        edit_second_item(core)
        await service.scheduled_send("wecom", "channels", ("late",))
        assert wecom.messages_to("late") == []
        assert "changed after it was published" in (held_reason(core, DAY) or "")
        report = await correct(service, DAY)
        assert report.targets == {"wecom:early": "done"}
        await service.scheduled_send("wecom", "channels", ("late",))
    finally:
        await service.stop(grace=1)
    [late] = wecom.messages_to("late")
    assert "更正：在三项评测中排名第一" in late.text  # the corrected brief, not a note
    assert len(wecom.messages_to("early")) == 2  # the brief, then one correction note


async def test_what_is_published_is_what_the_send_rendered_not_an_edit_made_meanwhile(
    wecom: WecomRobotServer, tmp_path: Path
) -> None:
    core = editorial_core(tmp_path, None, wecom, robots=("a", "b"))
    service = await started(core)
    hold = wecom.hold_requests(robot="b")
    try:
        sending = asyncio.create_task(service.send(DAY, platform="wecom"))
        await hold.wait_held(1)
        edit_second_item(core)  # an editor's fix lands while the fan-out is in flight
        hold.release()
        await sending
        assert "在多项评测中排名第一" in wecom.messages_to("b")[0].text
        report = await correct(service, DAY)
    finally:
        await service.stop(grace=1)
    assert [c.number for c in report.changes] == [2], "the fix must still reach the readers"
    assert report.notes == 2


async def test_a_correction_that_fails_half_way_resumes_without_repeating_a_part(
    wecom: WecomRobotServer, tmp_path: Path
) -> None:
    core = editorial_core(tmp_path, None, wecom)
    service = await started(core)
    try:
        await service.send(DAY, platform="wecom")
        long = "更正后的长段落。" * 180  # each corrected item is about 4 KB: a note of parts
        core.store.upsert_items(
            [dataclasses.replace(item, summary=long) for item in brief_items()], source="test"
        )
        injected: list[bool] = []

        def fail_after_the_first_part(message: object) -> None:
            if not injected and "更正 / Correction" in getattr(message, "text", ""):
                injected.append(True)
                wecom.fail("errcode", errcode=40058)  # the next part is refused once

        wecom.on_message = fail_after_the_first_part
        first = await correct(service, DAY)
        assert first.targets["wecom:ops"].startswith("failed")
        second = await correct(service, DAY)
        assert second.targets == {"wecom:ops": "done"}
    finally:
        await service.stop(grace=1)
    notes = [m.text for m in wecom.messages_to("ops")[1:]]
    assert first.notes == 1 and len(notes) == 1 + second.notes >= 3
    assert sum("更正 / Correction" in n for n in notes) == 1, "a part was sent twice"


async def test_readers_never_see_a_draft_with_approval_required(
    wecom: WecomRobotServer, tmp_path: Path
) -> None:
    """/latest and a (forgeable) 全文 button press show only a published brief; so does
    the archive site."""
    from bot.chat.router import Commands
    from bot.domain import ChatKind, IncomingMessage
    from bot.site import public_dates

    core = editorial_core(tmp_path, None, wecom)
    commands = Commands(core, "telegram", core.rules("telegram"))

    def said(text: str = "", action: str | None = None) -> IncomingMessage:
        return IncomingMessage(
            "telegram", "9", ChatKind.PRIVATE, "9", "Reader", text, action=action
        )

    async def shown() -> list[str]:
        replies = [
            *await commands(said("/latest")),
            *await commands(said(action="full:2026-11-27")),
        ]
        return [r.text for r in replies]

    assert all("还没有可发送的简报" in text for text in await shown())
    assert public_dates(core.store, DAY + dt.timedelta(days=1), published_only=True) == []
    approve(core, DAY, "cli")
    service = await started(core)
    try:
        await service.send(DAY, platform="wecom")
    finally:
        await service.stop(grace=1)
    assert any("英伟达发布新芯片" in text for text in await shown())
    assert public_dates(core.store, DAY + dt.timedelta(days=1), published_only=True) == [DAY]


@pytest.mark.integration
async def test_a_reader_with_topics_gets_no_note_about_an_item_they_never_received(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_wechat_bot import running_bot
    from tests.wechat_fixtures import ALICE as WX_ALICE
    from tests.wechat_fixtures import ROOM

    async with running_bot(tmp_path, monkeypatch) as wx:
        wx.core.store.add_subscriber("wechat", WX_ALICE)
        wx.core.store.set_topics("wechat", WX_ALICE, ["机器人"])
        await wx.service.send(DAY, platform="wechat")
        got = wx.texts_to(WX_ALICE)
        assert got and "FlowServe" not in "".join(got)  # her brief: robots only
        items = wx.core.store.items_on(DAY)
        flowserve = next(i for i in items if "FlowServe" in i.title)
        fixed = dataclasses.replace(flowserve, summary="更正：吞吐量提升约 1.5 倍。")
        wx.core.store.upsert_items([fixed], source="correction")
        before = {chat: len(wx.texts_to(chat)) for chat in (ROOM, WX_ALICE)}
        report = await correct(wx.service, DAY)
        assert report.targets[f"wechat:{WX_ALICE}"] == "done"
        assert len(wx.texts_to(ROOM)) == before[ROOM] + 1  # the group had that item
        assert len(wx.texts_to(WX_ALICE)) == before[WX_ALICE]  # she never had it
