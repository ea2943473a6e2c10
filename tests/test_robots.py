"""The work-chat group robots (WeCom, DingTalk, Feishu) and the outbound webhook, through
real HTTP against their loopback servers: byte limits, signatures, errcodes, the ledger."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_settings
from bot.core import Core, build_core
from bot.domain import DeliveryStatus, Item, Link, OutgoingMessage, Target, TargetKind
from bot.errors import (
    ConfigError,
    PermanentFailure,
    RetryLater,
    TargetAuthRejected,
    TargetGone,
    TransientFailure,
)
from bot.platforms import spec
from bot.platforms.base import PlatformContext
from bot.platforms.robot import RobotPlatform, plain_text
from bot.sandbox.dingtalk_robot import DingtalkRobotServer
from bot.sandbox.feishu_robot import FeishuRobotServer
from bot.sandbox.webhook_receiver import WebhookReceiver
from bot.sandbox.wecom_robot import WecomRobotServer
from bot.service import Service, build_service

DAY = dt.date(2026, 11, 27)
LINK = re.compile(r"\[((?:\\.|[^\]\\\n])*)\]\(([^()\s]*)\)")


def long_items(count: int = 8, paragraphs: int = 4) -> list[Item]:
    """A Chinese brief far over every robot's limit, with links in every item."""
    summary = "\n\n".join(
        f"第{p + 1}段：英伟达发布新一代芯片，训练性能提升三倍，推理成本下降一半。" * 6
        for p in range(paragraphs)
    )
    return [
        Item(
            date=DAY,
            title=f"第{i + 1}条：大模型与芯片的新进展 *重要* [内部]",
            summary=summary,
            links=(
                Link("原文", f"https://example.com/news/{i}?utm=1&x=(y)"),
                Link("论文地址", f"https://arxiv.org/abs/2611.{i:05d}"),
            ),
            tags=("芯片", "大模型"),
            section="行业" if i < count // 2 else "研究",
            position=i,
        )
        for i in range(count)
    ]


def make_core(
    tmp_path: Path, toml: str, env: Mapping[str, str], items: list[Item] | None = None
) -> Core:
    config = tmp_path / "briefbot.toml"
    config.write_text(toml, encoding="utf-8")
    settings = load_settings(config, environ=env)
    core = build_core(settings, database_url=f"sqlite:///{tmp_path / 'briefbot.db'}")
    core.store.upsert_items(items if items is not None else long_items(), source="test")
    return core


@pytest.fixture
async def wecom() -> AsyncIterator[WecomRobotServer]:
    async with WecomRobotServer() as server:
        yield server


@pytest.fixture
async def dingtalk() -> AsyncIterator[DingtalkRobotServer]:
    async with DingtalkRobotServer() as server:
        yield server


@pytest.fixture
async def feishu() -> AsyncIterator[FeishuRobotServer]:
    async with FeishuRobotServer() as server:
        yield server


async def send_all(core: Core, platform: str) -> Service:
    service = build_service(core, platforms=[platform], receive=False)
    try:
        await service.platforms[platform].start()
        await service.send(DAY, platform=platform)
    finally:
        await service.stop(grace=1)
    return service


def assert_links_whole(texts: list[str]) -> None:
    """Every link written in a part is whole: label and URL both there, URL unbroken."""
    for text in texts:
        for match in LINK.finditer(text):
            assert match.group(2).startswith("https://"), match.group(0)
        # nothing that looks like the start of a link is left open at a cut
        assert not re.search(r"\]\([^)]*$", text), text[-80:]
        assert not re.search(r"https?://\S*$", text.rstrip()) or text.rstrip().endswith(")")


# -- WeCom ---------------------------------------------------------------------------------


async def test_wecom_brief_over_4096_bytes_is_split_by_bytes_with_links_whole(
    wecom: WecomRobotServer, tmp_path: Path
) -> None:
    robot = wecom.add_robot("ops")
    core = make_core(
        tmp_path,
        '[wecom]\nper_minute = 6000\n[[wecom.robots]]\nname = "ops"\n',
        {"BRIEFBOT_WECOM_WEBHOOK_OPS": robot.webhook_url},
    )
    await send_all(core, "wecom")
    received = wecom.messages_to("ops")
    assert len(received) > 3
    sizes = [len(m.text.encode("utf-8")) for m in received]
    assert max(sizes) <= 4096 and sum(sizes) > 4 * 4096 * 0.6, sizes
    assert all(m.msgtype == "markdown" for m in received)
    assert wecom.stats.errors_by_code == {} or set(wecom.stats.errors_by_code) == {0}
    assert_links_whole([m.text for m in received])
    # every item's headline arrived once, in order, with its escaped emphasis left as text
    whole = "\n".join(m.text for m in received)
    headlines = [
        f"**{i + 1}. 第{i + 1}条：大模型与芯片的新进展 \\*重要\\* \\[内部\\]**" for i in range(8)
    ]
    positions = [whole.index(h) for h in headlines]
    assert positions == sorted(positions) and all(whole.count(h) == 1 for h in headlines)
    rows = core.store.deliveries(DAY, "wecom")
    assert [(r.chat_id, r.status, r.parts_sent) for r in rows] == [
        ("ops", DeliveryStatus.SENT, len(received))
    ]
    # a second run sends nothing: the ledger has it
    await send_all(core, "wecom")
    assert len(wecom.messages_to("ops")) == len(received)


async def test_wecom_errcodes_become_neutral_outcomes(wecom: WecomRobotServer) -> None:
    robot = wecom.add_robot("ops")
    platform = _adapter("wecom", {"BRIEFBOT_WECOM_WEBHOOK_OPS": robot.webhook_url}, ["ops"])
    target = Target("wecom", "ops", TargetKind.GROUP)
    message = OutgoingMessage("**简报** 你好", "markdown")
    await platform.start()
    try:
        assert (await platform.send(target, message)).startswith("ops:")
        wecom.fail("errcode", errcode=45009)
        with pytest.raises(RetryLater) as limited:
            await platform.send(target, message)
        assert limited.value.chat_only and limited.value.retry_after == 60
        wecom.fail("server_error", status=502)
        with pytest.raises(TransientFailure):
            await platform.send(target, message)
        wecom.fail("errcode", errcode=-1)  # "system busy": a retry, not a failure
        with pytest.raises(TransientFailure, match="busy"):
            await platform.send(target, message)
        with pytest.raises(PermanentFailure, match="40058"):
            await platform.send(target, OutgoingMessage("长" * 1400, "markdown"))
        wecom.revoke("ops")
        with pytest.raises(TargetGone, match="removed"):
            await platform.send(target, message)
    finally:
        await platform.stop()
    assert len(wecom.messages_to("ops")) == 1


def _adapter(
    name: str, env: Mapping[str, str], robots: list[str], extra: str = "", entry: str = ""
) -> Any:
    entries = "".join(f'[[{name}.{_key(name)}]]\nname = "{r}"\n{entry}' for r in robots)
    settings = load_settings(_write(f"[{name}]\n{extra}\n{entries}"), environ=env)
    registered = spec(name)
    section = settings.platform(name)
    platform = registered.build(
        section,
        PlatformContext(
            secrets=settings.secret_values(name),
            limits=registered.limits(section),
            handler=None,
            receive=False,
        ),
    )
    assert isinstance(platform, RobotPlatform)
    return platform


def _key(name: str) -> str:
    return "endpoints" if name == "webhook" else "robots"


_written: list[Path] = []


def _write(text: str) -> Path:
    import os
    import tempfile

    descriptor, name = tempfile.mkstemp(suffix=".toml", prefix="robots-")
    os.write(descriptor, text.encode("utf-8"))
    os.close(descriptor)
    path = Path(name)
    _written.append(path)
    return path


@pytest.fixture(autouse=True)
def _cleanup() -> Any:
    yield
    while _written:
        _written.pop().unlink(missing_ok=True)


# -- DingTalk ------------------------------------------------------------------------------


async def test_dingtalk_signed_robot_and_keyword_robot_both_receive(
    dingtalk: DingtalkRobotServer, tmp_path: Path
) -> None:
    signed = dingtalk.add_robot("signed", secret="SEC0123456789abcdef")
    keyword = dingtalk.add_robot("kw", keywords=("AI日报",))
    core = make_core(
        tmp_path,
        "[dingtalk]\nper_minute = 6000\n"
        '[[dingtalk.robots]]\nname = "signed"\n'
        '[[dingtalk.robots]]\nname = "kw"\nkeyword = "AI日报"\n',
        {
            "BRIEFBOT_DINGTALK_WEBHOOK_SIGNED": signed.webhook_url,
            "BRIEFBOT_DINGTALK_SECRET_SIGNED": "SEC0123456789abcdef",
            "BRIEFBOT_DINGTALK_WEBHOOK_KW": keyword.webhook_url,
        },
        long_items(count=30, paragraphs=6),
    )
    await send_all(core, "dingtalk")
    for name in ("signed", "kw"):
        received = dingtalk.messages_to(name)
        assert len(received) >= 2, name
        assert all(m.body_bytes <= 20_000 for m in received)
        assert all(m.title and "\n" not in m.title for m in received)
        assert_links_whole([m.text for m in received])
    assert all("AI日报" in m.text for m in dingtalk.messages_to("kw"))
    statuses = {r.chat_id: r.status for r in core.store.deliveries(DAY, "dingtalk")}
    assert statuses == {"signed": DeliveryStatus.SENT, "kw": DeliveryStatus.SENT}


async def test_dingtalk_wrong_secret_fails_that_robot_only_and_says_why(
    dingtalk: DingtalkRobotServer, tmp_path: Path
) -> None:
    good = dingtalk.add_robot("good", secret="SECgood")
    bad = dingtalk.add_robot("bad", secret="SECright")
    core = make_core(
        tmp_path,
        '[dingtalk]\nper_minute = 6000\n[[dingtalk.robots]]\nname = "good"\n'
        '[[dingtalk.robots]]\nname = "bad"\n',
        {
            "BRIEFBOT_DINGTALK_WEBHOOK_GOOD": good.webhook_url,
            "BRIEFBOT_DINGTALK_SECRET_GOOD": "SECgood",
            "BRIEFBOT_DINGTALK_WEBHOOK_BAD": bad.webhook_url,
            "BRIEFBOT_DINGTALK_SECRET_BAD": "SECwrong",
        },
        long_items(count=2),
    )
    await send_all(core, "dingtalk")
    rows = {r.chat_id: r for r in core.store.deliveries(DAY, "dingtalk")}
    assert rows["good"].status is DeliveryStatus.SENT
    assert rows["bad"].status is DeliveryStatus.FAILED
    assert "security setting" in (rows["bad"].last_error or "")
    assert "SECwrong" not in (rows["bad"].last_error or "")
    assert dingtalk.messages_to("bad") == []


async def test_dingtalk_signature_outside_the_hour_is_refused(
    dingtalk: DingtalkRobotServer,
) -> None:
    robot = dingtalk.add_robot("ops", secret="SECskew")
    env = {
        "BRIEFBOT_DINGTALK_WEBHOOK_OPS": robot.webhook_url,
        "BRIEFBOT_DINGTALK_SECRET_OPS": "SECskew",
    }
    platform = _adapter("dingtalk", env, ["ops"])
    target = Target("dingtalk", "ops", TargetKind.GROUP)
    await platform.start()
    try:
        dingtalk.skew = 3000.0  # 50 minutes: within the hour
        await platform.send(target, OutgoingMessage("简报 1", "markdown"))
        dingtalk.skew = 3700.0
        with pytest.raises(TargetAuthRejected):
            await platform.send(target, OutgoingMessage("简报 2", "markdown"))
    finally:
        await platform.stop()
    assert [m.text for m in dingtalk.messages_to("ops")] == ["简报 1"]


@pytest.mark.parametrize(
    ("errcode", "outcome"),
    [
        (130101, RetryLater),
        (410100, RetryLater),
        (310000, TargetAuthRejected),
        (300001, TargetGone),
        (400102, TargetGone),
        (400105, PermanentFailure),
        (-1, TransientFailure),  # "system busy"
    ],
)
async def test_dingtalk_errcodes_become_neutral_outcomes(
    dingtalk: DingtalkRobotServer, errcode: int, outcome: type[Exception]
) -> None:
    robot = dingtalk.add_robot("ops")
    platform = _adapter("dingtalk", {"BRIEFBOT_DINGTALK_WEBHOOK_OPS": robot.webhook_url}, ["ops"])
    dingtalk.fail("errcode", errcode=errcode)
    await platform.start()
    try:
        with pytest.raises(outcome) as raised:
            await platform.send(Target("dingtalk", "ops", TargetKind.GROUP), OutgoingMessage("x"))
    finally:
        await platform.stop()
    if isinstance(raised.value, RetryLater):
        assert raised.value.chat_only and raised.value.retry_after == 600


async def test_dingtalk_throttle_pauses_that_robot_only_then_delivers(
    tmp_path: Path,
) -> None:
    """Over its rate a robot is blocked (10 minutes on DingTalk; scaled down here): the
    outbox waits for that robot alone, and every part still arrives once."""
    async with DingtalkRobotServer(throttle_seconds=0.5) as server:
        slow = server.add_robot("slow")
        fast = server.add_robot("fast")
        core = make_core(
            tmp_path,
            "[dingtalk]\nper_minute = 6000\nthrottle_pause = 0.6\n"
            '[[dingtalk.robots]]\nname = "slow"\n[[dingtalk.robots]]\nname = "fast"\n',
            {
                "BRIEFBOT_DINGTALK_WEBHOOK_SLOW": slow.webhook_url,
                "BRIEFBOT_DINGTALK_WEBHOOK_FAST": fast.webhook_url,
            },
            long_items(count=2),
        )
        server.fail("errcode", robot="slow", errcode=410100)
        await send_all(core, "dingtalk")
        assert len(server.messages_to("slow")) == len(server.messages_to("fast")) >= 1
        statuses = {r.chat_id: r.status for r in core.store.deliveries(DAY, "dingtalk")}
        assert set(statuses.values()) == {DeliveryStatus.SENT}


# -- Feishu --------------------------------------------------------------------------------


async def test_feishu_post_is_signed_under_20kb_and_links_are_elements(
    feishu: FeishuRobotServer, tmp_path: Path
) -> None:
    robot = feishu.add_robot("team", secret="feishu-secret")
    core = make_core(
        tmp_path,
        '[feishu]\nper_minute = 6000\n[[feishu.robots]]\nname = "team"\n',
        {
            "BRIEFBOT_FEISHU_WEBHOOK_TEAM": robot.webhook_url,
            "BRIEFBOT_FEISHU_SECRET_TEAM": "feishu-secret",
        },
        long_items(count=20, paragraphs=5),
    )
    await send_all(core, "feishu")
    received = feishu.messages_to("team")
    assert len(received) >= 2
    assert all(m.msgtype == "post" and m.body_bytes <= 20 * 1024 for m in received)
    elements = [
        element
        for m in received
        for paragraph in m.payload["content"]["post"]["zh_cn"]["content"]
        for element in paragraph
    ]
    links = [e for e in elements if e["tag"] == "a"]
    assert len(links) == 40 and all(e["href"].startswith("https://") for e in links)
    # content is literal text: the escapes are undone, nothing became markup
    assert any("*重要* [内部]" in e.get("text", "") for e in elements)
    assert all(e["tag"] in ("text", "a") for e in elements)
    statuses = [r.status for r in core.store.deliveries(DAY, "feishu")]
    assert statuses == [DeliveryStatus.SENT]


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (11232, RetryLater),
        (19021, TargetAuthRejected),
        (19024, TargetAuthRejected),
        (19001, TargetGone),
        (9499, PermanentFailure),
    ],
)
async def test_feishu_codes_become_neutral_outcomes(
    feishu: FeishuRobotServer, code: int, outcome: type[Exception]
) -> None:
    robot = feishu.add_robot("team")
    platform = _adapter("feishu", {"BRIEFBOT_FEISHU_WEBHOOK_TEAM": robot.webhook_url}, ["team"])
    feishu.fail("errcode", errcode=code)
    await platform.start()
    try:
        with pytest.raises(outcome):
            await platform.send(Target("feishu", "team", TargetKind.GROUP), OutgoingMessage("x"))
    finally:
        await platform.stop()


async def test_feishu_keyword_robot_gets_its_keyword(feishu: FeishuRobotServer) -> None:
    robot = feishu.add_robot("team", keywords=("简报",))
    platform = _adapter(
        "feishu",
        {"BRIEFBOT_FEISHU_WEBHOOK_TEAM": robot.webhook_url},
        ["team"],
        entry='keyword = "简报"\n',
    )
    await platform.start()
    try:
        await platform.send(
            Target("feishu", "team", TargetKind.GROUP), OutgoingMessage("Daily AI news")
        )
    finally:
        await platform.stop()
    [message] = feishu.messages_to("team")
    assert "简报" in message.text


# -- the outbound webhook ------------------------------------------------------------------


async def test_webhook_posts_the_brief_as_signed_json_once_despite_a_5xx(
    tmp_path: Path,
) -> None:
    async with WebhookReceiver() as receiver:
        url = receiver.add_endpoint("cms", "whsec-1")
        receiver.fail("server_error", status=503)
        core = make_core(
            tmp_path,
            '[delivery]\nbackoff_base = 0.01\n[[webhook.endpoints]]\nname = "cms"\n',
            {"BRIEFBOT_WEBHOOK_URL_CMS": url, "BRIEFBOT_WEBHOOK_SECRET_CMS": "whsec-1"},
            long_items(count=3),
        )
        await send_all(core, "webhook")
        await send_all(core, "webhook")  # the ledger: nothing more
        [delivery] = receiver.deliveries_to("cms")
    document = delivery.payload
    assert document["schema"] == "briefbot.brief/1" and document["date"] == DAY.isoformat()
    assert [i["title"] for i in document["items"]] == [i.title for i in long_items(count=3)]
    assert document["items"][0]["links"][0] == {
        "label": "原文",
        "url": "https://example.com/news/0?utm=1&x=(y)",
    }
    timestamp = delivery.headers["X-Briefbot-Timestamp"]
    expected = hmac.new(b"whsec-1", timestamp.encode() + b"." + delivery.body, hashlib.sha256)
    assert delivery.headers["X-Briefbot-Signature"] == f"sha256={expected.hexdigest()}"
    assert receiver.duplicates == 0


async def test_webhook_gone_and_rejected_signature(tmp_path: Path) -> None:
    async with WebhookReceiver() as receiver:
        gone = receiver.add_endpoint("gone", "s1")
        wrong = receiver.add_endpoint("wrong", "s2")
        receiver.fail("gone", endpoint="gone")
        core = make_core(
            tmp_path,
            '[[webhook.endpoints]]\nname = "gone"\n[[webhook.endpoints]]\nname = "wrong"\n',
            {
                "BRIEFBOT_WEBHOOK_URL_GONE": gone,
                "BRIEFBOT_WEBHOOK_SECRET_GONE": "s1",
                "BRIEFBOT_WEBHOOK_URL_WRONG": wrong,
                "BRIEFBOT_WEBHOOK_SECRET_WRONG": "not-s2",
            },
            long_items(count=1),
        )
        await send_all(core, "webhook")
    rows = {r.chat_id: r for r in core.store.deliveries(DAY, "webhook")}
    assert rows["gone"].status is DeliveryStatus.GONE
    assert rows["wrong"].status is DeliveryStatus.FAILED
    assert "signature" in (rows["wrong"].last_error or "")


# -- settings ------------------------------------------------------------------------------


def test_a_webhook_in_the_config_file_is_refused_with_the_variable_to_use(
    tmp_path: Path,
) -> None:
    config = tmp_path / "b.toml"
    config.write_text(
        '[[wecom.robots]]\nname = "ops"\nwebhook = "https://qyapi.weixin.qq.com/x?key=1"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="BRIEFBOT_WECOM_WEBHOOK_<NAME>"):
        load_settings(config, environ={})


def test_robot_names_must_be_usable_in_a_variable(tmp_path: Path) -> None:
    config = tmp_path / "b.toml"
    config.write_text('[[feishu.robots]]\nname = "AI 群"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[\[feishu.robots\]\] entry 1: name"):
        load_settings(config, environ={})
    config.write_text(
        '[[feishu.robots]]\nname = "a-b"\n[[feishu.robots]]\nname = "A_B"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="used twice"):
        load_settings(config, environ={})


def test_a_bare_key_becomes_the_platform_url_and_the_key_is_a_secret() -> None:
    from bot.logs import scrub

    settings = load_settings(
        _write('[[wecom.robots]]\nname = "ops-cn"\n'),
        environ={"BRIEFBOT_WECOM_WEBHOOK_OPS_CN": "693a91f6-7xxx-4bc4"},
    )
    assert "693a91f6-7xxx-4bc4" in settings.all_secrets()
    platform = _adapter(
        "wecom", {"BRIEFBOT_WECOM_WEBHOOK_OPS_CN": "693a91f6-7xxx-4bc4"}, ["ops-cn"]
    )
    assert platform._webhooks["ops-cn"] == (
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4"
    )
    assert "693a91f6" not in repr(platform)
    from bot.logs import register_secrets

    register_secrets(settings.all_secrets())
    assert "693a91f6-7xxx-4bc4" not in scrub(f"failed: {platform._webhooks['ops-cn']}")


def test_plain_text_of_markdown_undoes_escapes_and_links() -> None:
    assert plain_text("**1. 标题 \\*重要\\*** [原文](https://a.b/c)") == "1. 标题 *重要* 原文"
    assert json.dumps(plain_text("\\[x\\]"), ensure_ascii=False) == '"[x]"'


async def test_a_robot_without_its_webhook_is_reported_by_the_variable_to_set(
    wecom: WecomRobotServer, tmp_path: Path
) -> None:
    robot = wecom.add_robot("ops")
    core = make_core(
        tmp_path,
        '[wecom]\nper_minute = 6000\n[[wecom.robots]]\nname = "ops"\n'
        '[[wecom.robots]]\nname = "sales-cn"\n',
        {"BRIEFBOT_WECOM_WEBHOOK_OPS": robot.webhook_url},
        long_items(count=1),
    )
    service = build_service(core, platforms=["wecom"], receive=False)
    try:
        result = await service.send(DAY, platform="wecom")
    finally:
        await service.stop(grace=1)
    assert result.unresolved == [
        "wecom robot 'sales-cn' has no webhook: set BRIEFBOT_WECOM_WEBHOOK_SALES_CN"
    ]
    assert result.summary()["sent"] == 1 and len(wecom.messages_to("ops")) == 1


def test_robots_are_scheduled_by_their_entries_and_have_no_subscriber_job() -> None:
    from bot.scheduler import schedule_entries

    settings = load_settings(
        _write(
            '[schedule]\ndefault = "08:00"\n[[wecom.robots]]\nname = "a"\nschedule = "07:45"\n'
            '[[wecom.robots]]\nname = "b"\n'
        ),
        environ={},
    )
    jobs = {entry.job_id: entry.only for entry in schedule_entries(settings, ["wecom"])}
    assert jobs == {"brief:wecom:channels:07:45": ("a",), "brief:wecom:channels:08:00": ("b",)}


def test_a_webhook_429_without_a_usable_retry_after_waits_the_default() -> None:
    from bot.platforms.robot import RobotEntry
    from bot.platforms.webhook import DEFAULT_RETRY_AFTER, MAX_RETRY_AFTER, WebhookApi

    api, endpoint = WebhookApi(), RobotEntry("cms")
    for header, expected in (
        ("nan", DEFAULT_RETRY_AFTER),
        ("-5", DEFAULT_RETRY_AFTER),
        ("Wed, 21 Oct 2026 07:28:00 GMT", DEFAULT_RETRY_AFTER),
        ("1e9", MAX_RETRY_AFTER),
        ("30", 30.0),
    ):
        with pytest.raises(RetryLater) as raised:
            api.outcome(endpoint, 429, b"", {"Retry-After": header})
        assert raised.value.retry_after == expected and raised.value.chat_only


@pytest.mark.parametrize("platform", ["dingtalk", "feishu"])
def test_a_message_over_the_services_body_limit_is_refused_before_sending(platform: str) -> None:
    from bot.platforms.robot import RobotEntry, RobotSpec

    entry = spec(platform)
    assert isinstance(entry, RobotSpec)
    api = entry.api(entry.settings_type())
    huge = OutgoingMessage("标题\n" + "很长的正文。" * 1500, "markdown")  # about 27 KB
    with pytest.raises(PermanentFailure, match="shorten the longest item"):
        api.request(RobotEntry("ops"), "https://robot.example/hook", "", huge, 0.0)
