"""The loopback group-robot servers (WeCom, DingTalk, Feishu) and the outbound-webhook receiver,
driven over real HTTP: their limits, signatures, error bodies, faults and holds."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest

from bot.sandbox import dingtalk_robot as dt
from bot.sandbox import feishu_robot as fs
from bot.sandbox import wecom_robot as wc
from bot.sandbox.dingtalk_robot import DingtalkRobotServer, dingtalk_sign
from bot.sandbox.feishu_robot import FeishuRobotServer, feishu_sign
from bot.sandbox.robot_base import utf8_len
from bot.sandbox.webhook_receiver import WebhookReceiver, sign_webhook
from bot.sandbox.wecom_robot import WecomRobotServer

JSONDict = dict[str, Any]
WALL_START = 1_750_000_000.0


class FakeClock:
    """A clock the test moves by hand (monotonic or wall seconds)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def wall() -> FakeClock:
    return FakeClock(WALL_START)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=5.0) as client:
        yield client


@pytest.fixture
async def wecom(clock: FakeClock, wall: FakeClock) -> AsyncIterator[WecomRobotServer]:
    async with WecomRobotServer(clock=clock, wall_clock=wall) as server:
        yield server


@pytest.fixture
async def dingtalk(clock: FakeClock, wall: FakeClock) -> AsyncIterator[DingtalkRobotServer]:
    async with DingtalkRobotServer(clock=clock, wall_clock=wall) as server:
        yield server


@pytest.fixture
async def feishu(clock: FakeClock, wall: FakeClock) -> AsyncIterator[FeishuRobotServer]:
    async with FeishuRobotServer(clock=clock, wall_clock=wall) as server:
        yield server


@pytest.fixture
async def receiver(clock: FakeClock, wall: FakeClock) -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver(clock=clock, wall_clock=wall) as server:
        yield server


def wecom_md(content: str) -> JSONDict:
    return {"msgtype": "markdown", "markdown": {"content": content}}


def wecom_text(content: str) -> JSONDict:
    return {"msgtype": "text", "text": {"content": content}}


def ding_md(text: str, title: str = "AI 简报") -> JSONDict:
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}


def feishu_text(text: str) -> JSONDict:
    return {"msg_type": "text", "content": {"text": text}}


async def post(http: httpx.AsyncClient, url: str, payload: JSONDict) -> httpx.Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return await http.post(url, content=body, headers={"Content-Type": "application/json"})


def cjk(nbytes: int) -> str:
    """A Chinese string of exactly ``nbytes`` UTF-8 bytes (3 per character, ASCII pad)."""
    return "简" * (nbytes // 3) + "a" * (nbytes % 3)


# ── WeCom ────────────────────────────────────────────────────────────────────────────────


async def test_wecom_accepts_text_and_markdown(
    wecom: WecomRobotServer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    robot = wecom.add_robot("ops")
    assert robot.webhook_url == f"{wecom.base_url}/cgi-bin/webhook/send?key={robot.token}"
    first = await post(http, robot.webhook_url, wecom_text("早上好"))
    second = await post(http, robot.webhook_url, wecom_md('**简报** <font color="info">3</font>'))
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json() == {"errcode": 0, "errmsg": "ok"}
    texts = [(m.msgtype, m.text) for m in wecom.messages_to("ops")]
    assert texts == [("text", "早上好"), ("markdown", '**简报** <font color="info">3</font>')]
    message = wecom.messages[0]
    assert message.body_bytes == len(json.dumps(wecom_text("早上好"), ensure_ascii=False).encode())
    assert message.payload == wecom_text("早上好") and message.t == clock.now
    assert [(a.method, a.chat_id) for a in wecom.arrivals] == [("text", "ops"), ("markdown", "ops")]
    assert (wecom.stats.requests, wecom.stats.accepted, wecom.stats.errors) == (2, 2, 0)


@pytest.mark.parametrize(
    ("make", "limit", "field"),
    [(wecom_md, wc.MARKDOWN_MAX_BYTES, "markdown"), (wecom_text, wc.TEXT_MAX_BYTES, "text")],
)
async def test_wecom_byte_limits_count_utf8_bytes(
    wecom: WecomRobotServer,
    http: httpx.AsyncClient,
    make: Any,
    limit: int,
    field: str,
) -> None:
    url = wecom.add_robot("ops").webhook_url
    at_limit, over = cjk(limit), cjk(limit + 1)
    assert (utf8_len(at_limit), utf8_len(over)) == (limit, limit + 1)
    assert len(at_limit) < limit  # characters are not what counts
    assert (await post(http, url, make(at_limit))).json()["errcode"] == 0
    refused = await post(http, url, make(over))
    assert refused.status_code == 200
    body = refused.json()
    assert body["errcode"] == wc.ERR_TOO_LONG
    assert body["errmsg"].startswith(
        f"{field}.content exceed max length {limit}. invalid Request Parameter, hint: ["
    )
    assert "from ip: 127.0.0.1" in body["errmsg"]
    assert body["errmsg"].endswith(
        "more info at https://open.work.weixin.qq.com/devtool/query?e=40058"
    )
    assert [m.text for m in wecom.messages] == [at_limit]
    assert wecom.stats.errors_by_code == {wc.ERR_TOO_LONG: 1}


async def test_wecom_refuses_bad_keys_types_and_content(
    wecom: WecomRobotServer, http: httpx.AsyncClient
) -> None:
    robot = wecom.add_robot("ops")
    base = f"{wecom.base_url}/cgi-bin/webhook/send"

    async def errcode(url: str, payload: JSONDict | bytes) -> int:
        if isinstance(payload, bytes):
            answer = await http.post(url, content=payload)
        else:
            answer = await post(http, url, payload)
        assert answer.status_code == 200
        return int(answer.json()["errcode"])

    assert await errcode(f"{base}?key=not-a-key", wecom_text("x")) == wc.ERR_INVALID_KEY
    assert await errcode(base, wecom_text("x")) == wc.ERR_INVALID_KEY
    assert await errcode(robot.webhook_url, {"msgtype": "card"}) == wc.ERR_INVALID_MSGTYPE
    v2 = {"msgtype": "markdown_v2", "markdown_v2": {"content": "| a | b |"}}
    assert await errcode(robot.webhook_url, v2) == wc.ERR_INVALID_MSGTYPE
    assert await errcode(robot.webhook_url, b"{not json") == wc.ERR_INVALID_MSGTYPE
    assert await errcode(robot.webhook_url, wecom_md("")) == wc.ERR_EMPTY_CONTENT
    assert await errcode(robot.webhook_url, {"msgtype": "text"}) == wc.ERR_EMPTY_CONTENT
    bad_json = await http.post(robot.webhook_url, content=b"{not json")
    assert "Warning: wrong json format." in bad_json.json()["errmsg"]
    assert wecom.messages == []
    # Arrivals are recorded before any check, unknown keys included (they have no robot).
    assert [a.chat_id for a in wecom.arrivals][:2] == [None, None]
    assert len(wecom.arrivals) == 8
    wecom.accept_markdown_v2 = True
    assert await errcode(robot.webhook_url, v2) == 0
    assert wecom.messages[0].msgtype == "markdown_v2"


async def test_wecom_revoked_key_is_refused(
    wecom: WecomRobotServer, http: httpx.AsyncClient
) -> None:
    robot = wecom.add_robot("ops")
    assert (await post(http, robot.webhook_url, wecom_text("before"))).json()["errcode"] == 0
    wecom.revoke("ops")
    answer = (await post(http, robot.webhook_url, wecom_text("after"))).json()
    assert answer["errcode"] == wc.ERR_INVALID_KEY
    assert answer["errmsg"].startswith("invalid webhook url, hint: [")
    assert [m.text for m in wecom.messages] == ["before"]


async def test_wecom_sliding_window_answers_45009(
    wecom: WecomRobotServer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    ops, other = wecom.add_robot("ops"), wecom.add_robot("other")
    for i in range(wc.PER_MINUTE):
        assert (await post(http, ops.webhook_url, wecom_text(f"m{i}"))).json()["errcode"] == 0
        clock.advance(1.0)  # 20 messages over t=0..19
    refused = (await post(http, ops.webhook_url, wecom_text("21st"))).json()
    assert refused["errcode"] == wc.ERR_RATE_LIMITED
    assert refused["errmsg"].startswith("api freq out of limit, hint: [")
    # Each robot has its own window.
    assert (await post(http, other.webhook_url, wecom_text("other"))).json()["errcode"] == 0
    clock.advance(40.5)  # t=60.5: the message of t=0 has left the window, t=1 has not
    assert (await post(http, ops.webhook_url, wecom_text("again"))).json()["errcode"] == 0
    again = await post(http, ops.webhook_url, wecom_text("too soon"))
    assert again.json()["errcode"] == wc.ERR_RATE_LIMITED
    assert wecom.stats.throttled == 2
    assert len(wecom.messages_to("ops")) == 21
    assert wecom.max_in_window(60.0, "ops") == 22  # arrivals, refused ones included
    assert wecom.max_in_window(60.0, "other") == 1


async def test_wecom_rate_window_is_configurable(clock: FakeClock, http: httpx.AsyncClient) -> None:
    async with WecomRobotServer(per_minute=2, window=0.5, clock=clock) as server:
        url = server.add_robot("ops").webhook_url
        codes = [(await post(http, url, wecom_text(str(i)))).json()["errcode"] for i in range(3)]
        assert codes == [0, 0, wc.ERR_RATE_LIMITED]
        clock.advance(0.5)
        assert (await post(http, url, wecom_text("later"))).json()["errcode"] == 0


def test_wecom_robots_have_no_secret_or_keywords() -> None:
    server = WecomRobotServer()
    with pytest.raises(ValueError, match="no secret or keyword"):
        server.add_robot("ops", secret="SEC1")
    with pytest.raises(ValueError, match="no secret or keyword"):
        server.add_robot("ops", keywords=("简报",))
    robot = server.add_robot("ops")
    with pytest.raises(ValueError, match="already exists"):
        server.add_robot("ops")
    with pytest.raises(RuntimeError, match="start"):
        _ = robot.webhook_url


# ── DingTalk ─────────────────────────────────────────────────────────────────────────────


def ding_url(server: DingtalkRobotServer, name: str, wall: FakeClock, offset: float = 0) -> str:
    robot = server.robot(name)
    assert robot.secret is not None
    ts = int((wall() + offset) * 1000)
    return f"{robot.webhook_url}&timestamp={ts}&sign={quote_plus(dingtalk_sign(robot.secret, ts))}"


async def test_dingtalk_signed_markdown_is_accepted(
    dingtalk: DingtalkRobotServer, http: httpx.AsyncClient, wall: FakeClock
) -> None:
    robot = dingtalk.add_robot("ops", secret="SECabc123")
    assert robot.webhook_url == f"{dingtalk.base_url}/robot/send?access_token={robot.token}"
    answer = await post(http, ding_url(dingtalk, "ops", wall), ding_md("### 今日 AI 简报\n- 一"))
    assert (answer.status_code, answer.json()) == (200, {"errcode": 0, "errmsg": "ok"})
    message = dingtalk.messages_to("ops")[0]
    assert (message.msgtype, message.title, message.text) == (
        "markdown",
        "AI 简报",
        "### 今日 AI 简报\n- 一",
    )
    assert dingtalk.signed_url(robot, int(wall() * 1000)) == ding_url(dingtalk, "ops", wall)


async def test_dingtalk_refuses_a_wrong_or_missing_sign(
    dingtalk: DingtalkRobotServer, http: httpx.AsyncClient, wall: FakeClock
) -> None:
    robot = dingtalk.add_robot("ops", secret="SECabc123")
    ts = int(wall() * 1000)
    wrong = quote_plus(dingtalk_sign("SECother", ts))
    answer = await post(http, f"{robot.webhook_url}&timestamp={ts}&sign={wrong}", ding_md("x"))
    assert answer.json() == {"errcode": dt.ERR_SECURITY, "errmsg": dt.SIGN_ERRMSG}
    unsigned = (await post(http, robot.webhook_url, ding_md("x"))).json()
    assert unsigned == {"errcode": dt.ERR_SECURITY, "errmsg": dt.TIMESTAMP_ERRMSG}
    # The sign must be URL-encoded: an unencoded "+" arrives as a space and fails.
    raw = dingtalk_sign(robot.secret or "", ts)
    encoded_ok = (
        await post(http, f"{robot.webhook_url}&timestamp={ts}&sign={quote_plus(raw)}", ding_md("x"))
    ).json()
    assert encoded_ok["errcode"] == 0
    assert dingtalk.stats.errors_by_code == {dt.ERR_SECURITY: 2}


@pytest.mark.parametrize(
    ("client_offset", "server_skew", "accepted"),
    [
        (-3599.0, 0.0, True),  # the client's clock is 59:59 behind
        (3599.0, 0.0, True),
        (-3601.0, 0.0, False),
        (3601.0, 0.0, False),
        (0.0, 3599.0, True),  # the server's clock runs ahead
        (0.0, 3601.0, False),
        (0.0, -3601.0, False),
    ],
)
async def test_dingtalk_clock_skew_window_is_one_hour(
    dingtalk: DingtalkRobotServer,
    http: httpx.AsyncClient,
    wall: FakeClock,
    client_offset: float,
    server_skew: float,
    accepted: bool,
) -> None:
    dingtalk.add_robot("ops", secret="SECabc123")
    dingtalk.skew = server_skew
    answer = (await post(http, ding_url(dingtalk, "ops", wall, client_offset), ding_md("x"))).json()
    expected = {"errcode": 0, "errmsg": "ok"}
    if not accepted:
        expected = {"errcode": dt.ERR_SECURITY, "errmsg": dt.TIMESTAMP_ERRMSG}
    assert answer == expected


async def test_dingtalk_keywords(dingtalk: DingtalkRobotServer, http: httpx.AsyncClient) -> None:
    url = dingtalk.add_robot("ops", keywords=("简报", "brief")).webhook_url
    missing = (await post(http, url, ding_md("今日新闻", title="早报"))).json()
    assert missing == {"errcode": dt.ERR_SECURITY, "errmsg": dt.KEYWORD_ERRMSG}
    assert (await post(http, url, ding_md("今日 AI 简报", title="早报"))).json()["errcode"] == 0
    in_title = ding_md("正文", title="daily brief")
    assert (await post(http, url, in_title)).json()["errcode"] == 0
    text = {"msgtype": "text", "text": {"content": "AI 简报：三条"}}
    assert (await post(http, url, text)).json()["errcode"] == 0
    assert [m.msgtype for m in dingtalk.messages] == ["markdown", "markdown", "text"]


async def test_dingtalk_body_limit_counts_the_whole_body(
    dingtalk: DingtalkRobotServer, http: httpx.AsyncClient
) -> None:
    url = dingtalk.add_robot("ops").webhook_url
    envelope = len(json.dumps(ding_md(""), ensure_ascii=False).encode())
    fits = ding_md(cjk(dt.MAX_BODY_BYTES - envelope))
    assert len(json.dumps(fits, ensure_ascii=False).encode()) == dt.MAX_BODY_BYTES
    assert (await post(http, url, fits)).json()["errcode"] == 0
    over = ding_md(cjk(dt.MAX_BODY_BYTES - envelope + 1))
    answer = (await post(http, url, over)).json()
    assert answer == {"errcode": dt.ERR_TOO_LONG, "errmsg": "message too long, exceed 20000 bytes"}
    # 12000 bytes of Chinese fit as UTF-8 but not escaped as \\uXXXX (json.dumps' default).
    assert (await post(http, url, ding_md(cjk(12000)))).json()["errcode"] == 0
    escaped = json.dumps(ding_md(cjk(12000))).encode()
    assert len(escaped) > dt.MAX_BODY_BYTES
    answer2 = await http.post(url, content=escaped, headers={"Content-Type": "application/json"})
    assert answer2.json()["errcode"] == dt.ERR_TOO_LONG


async def test_dingtalk_twenty_a_minute_then_ten_minutes_of_throttle(
    dingtalk: DingtalkRobotServer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    url = dingtalk.add_robot("ops").webhook_url
    for i in range(dt.PER_MINUTE):
        assert (await post(http, url, ding_md(f"m{i}"))).json()["errcode"] == 0
        clock.advance(0.5)
    excess = (await post(http, url, ding_md("21st"))).json()
    assert excess == {"errcode": dt.ERR_THROTTLED, "errmsg": "发送速度太快而限流"}
    assert dingtalk.throttled("ops")
    clock.advance(120.0)  # the minute window is long empty, but the robot is throttled
    assert (await post(http, url, ding_md("still"))).json()["errcode"] == dt.ERR_THROTTLED
    clock.advance(dt.THROTTLE_SECONDS - 120.0 - 0.01)
    assert (await post(http, url, ding_md("almost"))).json()["errcode"] == dt.ERR_THROTTLED
    clock.advance(0.02)
    assert not dingtalk.throttled("ops")
    assert (await post(http, url, ding_md("free again"))).json()["errcode"] == 0
    assert dingtalk.stats.throttled == 3
    assert len(dingtalk.messages) == dt.PER_MINUTE + 1


async def test_dingtalk_legacy_throttle_code(clock: FakeClock, http: httpx.AsyncClient) -> None:
    server = DingtalkRobotServer(
        per_minute=1,
        window=1.0,
        throttle_seconds=5.0,
        throttle_errcode=dt.ERR_SEND_TOO_FAST,
        clock=clock,
    )
    async with server:
        url = server.add_robot("ops").webhook_url
        assert (await post(http, url, ding_md("one"))).json()["errcode"] == 0
        answer = (await post(http, url, ding_md("two"))).json()
        assert answer == {
            "errcode": 130101,
            "errmsg": "send too fast, exceed 20 times per minute",
        }
        clock.advance(5.0)
        assert (await post(http, url, ding_md("three"))).json()["errcode"] == 0


async def test_dingtalk_tokens_and_message_checks(
    dingtalk: DingtalkRobotServer, http: httpx.AsyncClient
) -> None:
    robot = dingtalk.add_robot("ops")
    base = f"{dingtalk.base_url}/robot/send"
    no_token = (await post(http, base, ding_md("x"))).json()
    assert no_token == {"errcode": dt.ERR_BAD_PARAM, "errmsg": "缺少参数 access_token"}
    unknown = (await post(http, f"{base}?access_token=abc", ding_md("x"))).json()
    assert unknown["errcode"] == dt.ERR_INVALID_TOKEN
    assert (await post(http, robot.webhook_url, {"msgtype": "image"})).json()["errcode"] == (
        dt.ERR_UNSUPPORTED_MSGTYPE
    )
    no_title = {"msgtype": "markdown", "markdown": {"text": "x"}}
    assert (await post(http, robot.webhook_url, no_title)).json() == {
        "errcode": dt.ERR_BAD_PARAM,
        "errmsg": "缺少参数 markdown.title",
    }
    dingtalk.revoke("ops")
    revoked = (await post(http, robot.webhook_url, ding_md("x"))).json()
    assert revoked == {
        "errcode": dt.ERR_INVALID_TOKEN,
        "errmsg": "description: robot 不存在；solution:请确认 token 是否正确；",
    }
    assert dingtalk.messages == []


# ── Feishu ───────────────────────────────────────────────────────────────────────────────

FEISHU_OK = {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}


async def test_feishu_accepts_text_post_and_card(
    feishu: FeishuRobotServer, http: httpx.AsyncClient
) -> None:
    robot = feishu.add_robot("ops")
    assert robot.webhook_url == f"{feishu.base_url}/open-apis/bot/v2/hook/{robot.token}"
    post_msg = {
        "msg_type": "post",
        "content": {
            "post": {
                "zh_cn": {
                    "title": "今日 AI 简报",
                    "content": [
                        [
                            {"tag": "text", "text": "一、"},
                            {"tag": "a", "text": "模型", "href": "https://e.x"},
                        ],
                        [{"tag": "at", "user_id": "all", "user_name": "所有人"}],
                    ],
                }
            }
        },
    }
    card = {
        "msg_type": "interactive",
        "card": {
            "header": {"title": {"tag": "plain_text", "content": "简报"}},
            "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "**一** 条"}}],
        },
    }
    for payload in (feishu_text("你好"), post_msg, card):
        answer = await post(http, robot.webhook_url, payload)
        assert (answer.status_code, answer.json()) == (200, FEISHU_OK)
    got = [(m.msgtype, m.title, m.text) for m in feishu.messages_to("ops")]
    assert got == [
        ("text", "", "你好"),
        ("post", "今日 AI 简报", "一、模型\n@所有人"),
        ("interactive", "简报", "**一** 条"),
    ]


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"content": {"text": "x"}}, fs.ERR_MSG_TYPE),
        ({"msg_type": "audio", "content": {}}, fs.ERR_MSG_TYPE),
        ({"msg_type": "text", "content": {}}, fs.ERR_BAD_REQUEST),
        ({"msg_type": "post", "content": {"zh_cn": {"content": [[]]}}}, fs.ERR_BAD_REQUEST),
        (
            {"msg_type": "post", "content": {"post": {"zh_cn": {"content": [{"tag": "text"}]}}}},
            fs.ERR_BAD_REQUEST,
        ),
        (
            {
                "msg_type": "post",
                "content": {"post": {"zh_cn": {"content": [[{"tag": "bold", "text": "x"}]]}}},
            },
            fs.ERR_BAD_REQUEST,
        ),
        ({"msg_type": "interactive", "content": {"elements": []}}, fs.ERR_BAD_REQUEST),
    ],
)
async def test_feishu_refuses_malformed_messages(
    feishu: FeishuRobotServer, http: httpx.AsyncClient, payload: JSONDict, code: int
) -> None:
    answer = await post(http, feishu.add_robot("ops").webhook_url, payload)
    assert answer.status_code == 200
    assert answer.json()["code"] == code and answer.json()["data"] == {}
    assert feishu.messages == []


async def test_feishu_signature_in_the_body(
    feishu: FeishuRobotServer, http: httpx.AsyncClient, wall: FakeClock
) -> None:
    robot = feishu.add_robot("ops", secret="demo")
    ts = int(wall())
    good = {"timestamp": str(ts), "sign": feishu_sign("demo", ts), **feishu_text("签了")}
    assert (await post(http, robot.webhook_url, good)).json() == FEISHU_OK
    assert feishu.signature_fields(robot, ts) == {"timestamp": str(ts), "sign": good["sign"]}
    as_int = {"timestamp": ts, "sign": feishu_sign("demo", ts), **feishu_text("int ts")}
    assert (await post(http, robot.webhook_url, as_int)).json()["code"] == 0
    # DingTalk's recipe (key=secret, msg=string) is not Feishu's.
    ding_style = {"timestamp": str(ts), "sign": dingtalk_sign("demo", ts), **feishu_text("x")}
    refused = (await post(http, robot.webhook_url, ding_style)).json()
    assert refused == {
        "code": fs.ERR_SIGNATURE,
        "data": {},
        "msg": "sign match fail or timestamp is not within one hour from current time",
    }
    assert (await post(http, robot.webhook_url, feishu_text("unsigned"))).json()["code"] == (
        fs.ERR_SIGNATURE
    )
    stale = {
        "timestamp": str(ts - 3601),
        "sign": feishu_sign("demo", ts - 3601),
        **feishu_text("x"),
    }
    assert (await post(http, robot.webhook_url, stale)).json()["code"] == fs.ERR_SIGNATURE
    feishu.skew = -3600.0  # the server's clock is an hour behind: the fresh one still passes
    assert (await post(http, robot.webhook_url, good)).json()["code"] == 0
    feishu.skew = -3602.0
    assert (await post(http, robot.webhook_url, good)).json()["code"] == fs.ERR_SIGNATURE


async def test_feishu_keywords_and_body_limit(
    feishu: FeishuRobotServer, http: httpx.AsyncClient
) -> None:
    url = feishu.add_robot("ops", keywords=("简报",)).webhook_url
    assert (await post(http, url, feishu_text("新闻"))).json() == {
        "code": fs.ERR_KEYWORDS,
        "data": {},
        "msg": "Key Words Not Found",
    }
    envelope = len(json.dumps(feishu_text("简报"), ensure_ascii=False).encode())
    fits = feishu_text("简报" + cjk(fs.MAX_BODY_BYTES - envelope))
    assert len(json.dumps(fits, ensure_ascii=False).encode()) == 20 * 1024
    assert (await post(http, url, fits)).json()["code"] == 0
    over = feishu_text("简报" + cjk(fs.MAX_BODY_BYTES - envelope + 1))
    assert (await post(http, url, over)).json() == {"code": 9499, "data": {}, "msg": "Bad Request"}


async def test_feishu_five_a_second_and_a_hundred_a_minute(
    feishu: FeishuRobotServer, http: httpx.AsyncClient, clock: FakeClock
) -> None:
    url = feishu.add_robot("ops").webhook_url
    codes = [(await post(http, url, feishu_text(str(i)))).json()["code"] for i in range(6)]
    assert codes == [0] * fs.PER_SECOND + [fs.ERR_RATE_LIMITED]
    clock.advance(1.0)
    for second in range(1, 20):  # 5 more each second: 100 by t=19
        for i in range(fs.PER_SECOND):
            answer = (await post(http, url, feishu_text(f"{second}.{i}"))).json()
            assert answer["code"] == 0
        clock.advance(1.0)
    assert len(feishu.messages) == fs.PER_MINUTE
    over = (await post(http, url, feishu_text("101st"))).json()
    assert over["code"] == fs.ERR_RATE_LIMITED and over["msg"].startswith("frequency limited")
    clock.advance(40.5)  # t=60.5: the first second's five have left the minute window
    assert (await post(http, url, feishu_text("again"))).json()["code"] == 0
    assert feishu.stats.throttled == 2


async def test_feishu_revoked_and_unknown_hooks(
    feishu: FeishuRobotServer, http: httpx.AsyncClient
) -> None:
    robot = feishu.add_robot("ops")
    invalid = {
        "code": 19001,
        "data": {},
        "msg": "param invalid: incoming webhook access token invalid",
    }
    unknown = await post(http, f"{feishu.base_url}/open-apis/bot/v2/hook/nope", feishu_text("x"))
    assert unknown.json() == invalid
    feishu.revoke("ops")
    assert (await post(http, robot.webhook_url, feishu_text("x"))).json() == invalid
    feishu.error_status = 400
    assert (await post(http, robot.webhook_url, feishu_text("x"))).status_code == 400


# ── faults ───────────────────────────────────────────────────────────────────────────────


async def test_errcode_faults_use_the_real_texts(
    wecom: WecomRobotServer,
    dingtalk: DingtalkRobotServer,
    feishu: FeishuRobotServer,
    http: httpx.AsyncClient,
) -> None:
    w, d, f = wecom.add_robot("w"), dingtalk.add_robot("d"), feishu.add_robot("f")
    wecom.fail("errcode", errcode=45009)
    dingtalk.fail("errcode", errcode=130101)
    feishu.fail("errcode", errcode=11232)
    wbody = (await post(http, w.webhook_url, wecom_text("x"))).json()
    assert wbody["errcode"] == 45009 and wbody["errmsg"].startswith("api freq out of limit, hint")
    dbody = (await post(http, d.webhook_url, ding_md("x"))).json()
    assert dbody == {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
    fbody = (await post(http, f.webhook_url, feishu_text("x"))).json()
    assert fbody["code"] == 11232
    for server in (wecom, dingtalk, feishu):
        assert server.messages == []
        assert (server.stats.throttled, server.stats.faults_injected) == (1, 1)
    dingtalk.fail("errcode", errcode=400102, errmsg="机器人已停用")
    assert (await post(http, d.webhook_url, ding_md("x"))).json() == {
        "errcode": 400102,
        "errmsg": "机器人已停用",
    }
    assert (await post(http, d.webhook_url, ding_md("ok now"))).json()["errcode"] == 0


async def test_server_error_and_persistent_faults(
    wecom: WecomRobotServer, http: httpx.AsyncClient
) -> None:
    ops, other = wecom.add_robot("ops"), wecom.add_robot("other")
    fault = wecom.fail("server_error", robot="ops", status=502, count=None)
    for _ in range(2):
        answer = await post(http, ops.webhook_url, wecom_text("x"))
        assert answer.status_code == 502 and "502 Bad Gateway" in answer.text
    assert (await post(http, other.webhook_url, wecom_text("y"))).json()["errcode"] == 0
    assert fault.hits == 2
    wecom.clear_faults()
    assert (await post(http, ops.webhook_url, wecom_text("z"))).json()["errcode"] == 0
    assert [m.text for m in wecom.messages] == ["y", "z"]
    assert wecom.stats.errors_by_status == {502: 2}
    with pytest.raises(ValueError, match="count"):
        wecom.fail("drop", count=0)
    with pytest.raises(ValueError, match="errcode"):
        wecom.fail("errcode")
    with pytest.raises(ValueError, match="unknown fault"):
        wecom.fail("gone")
    with pytest.raises(KeyError):
        wecom.fail("drop", robot="nobody")


@pytest.mark.parametrize("deliver", [False, True])
async def test_timeout_fault(
    feishu: FeishuRobotServer, http: httpx.AsyncClient, deliver: bool
) -> None:
    url = feishu.add_robot("ops").webhook_url
    feishu.fail("timeout", delay=0.05, deliver=deliver)
    answer = await post(http, url, feishu_text("slow"))
    if deliver:  # delivered; the client hears the real answer only after the delay
        assert answer.json() == FEISHU_OK
        assert [m.text for m in feishu.messages] == ["slow"]
    else:
        assert answer.status_code == 504 and "Gateway Time-out" in answer.text
        assert feishu.messages == []


async def test_timeout_fault_outlasting_the_client(
    dingtalk: DingtalkRobotServer, http: httpx.AsyncClient
) -> None:
    url = dingtalk.add_robot("ops").webhook_url
    dingtalk.fail("timeout", delay=30.0, deliver=True)
    with pytest.raises(httpx.ReadTimeout):
        await http.post(url, json=ding_md("delivered, unheard"), timeout=0.2)
    assert [m.text for m in dingtalk.messages] == ["delivered, unheard"]


@pytest.mark.parametrize("kind", ["drop", "reset"])
@pytest.mark.parametrize("deliver", [False, True])
async def test_drop_and_reset_faults(
    dingtalk: DingtalkRobotServer, http: httpx.AsyncClient, kind: Any, deliver: bool
) -> None:
    url = dingtalk.add_robot("ops").webhook_url
    dingtalk.fail(kind, robot="ops", deliver=deliver)
    with pytest.raises(httpx.TransportError):
        await post(http, url, ding_md("lost"))
    assert [m.text for m in dingtalk.messages] == (["lost"] if deliver else [])
    assert dingtalk.stats.dropped == 1
    assert (await post(http, url, ding_md("next"))).json()["errcode"] == 0


# ── holds ────────────────────────────────────────────────────────────────────────────────


async def test_held_request_is_not_applied_until_release(
    wecom: WecomRobotServer, http: httpx.AsyncClient
) -> None:
    url = wecom.add_robot("ops").webhook_url
    hold = wecom.hold_requests("ops", after=1)
    assert (await post(http, url, wecom_text("first passes"))).json()["errcode"] == 0
    sending = asyncio.create_task(post(http, url, wecom_text("held")))
    await hold.wait_held()
    assert [m.text for m in wecom.messages] == ["first passes"]
    assert len(wecom.arrivals) == 2  # seen, not applied
    hold.release()
    assert (await sending).json()["errcode"] == 0
    assert [m.text for m in wecom.messages] == ["first passes", "held"]
    assert (hold.held_total, hold.abandoned) == (1, 0)


async def test_cancelled_client_abandons_its_held_request(
    feishu: FeishuRobotServer, http: httpx.AsyncClient
) -> None:
    url = feishu.add_robot("ops").webhook_url
    hold = feishu.hold_requests(msgtype="text")
    sending = asyncio.create_task(post(http, url, feishu_text("never delivered")))
    await hold.wait_held()
    sending.cancel()
    await hold.wait_abandoned()
    hold.release()
    assert (await post(http, url, feishu_text("after the crash"))).json()["code"] == 0
    assert [m.text for m in feishu.messages] == ["after the crash"]
    assert sending.cancelled()


async def test_deliver_first_hold_delivers_and_holds_the_answer(
    dingtalk: DingtalkRobotServer, http: httpx.AsyncClient
) -> None:
    url = dingtalk.add_robot("ops").webhook_url
    hold = dingtalk.hold_requests("ops", deliver_first=True)
    sending = asyncio.create_task(post(http, url, ding_md("delivered, unheard")))
    await hold.wait_held()
    assert [m.text for m in dingtalk.messages] == ["delivered, unheard"]
    sending.cancel()
    await hold.wait_abandoned()
    hold.release()
    assert len(dingtalk.messages) == 1


async def test_stop_aborts_held_requests(http: httpx.AsyncClient) -> None:
    server = WecomRobotServer()
    await server.start()
    url = server.add_robot("ops").webhook_url
    hold = server.hold_requests()
    sending = asyncio.create_task(post(http, url, wecom_text("held at shutdown")))
    await hold.wait_held()
    await server.stop()
    with pytest.raises(httpx.TransportError):
        await sending
    assert hold.aborted and server.messages == []


# ── the outbound webhook receiver ────────────────────────────────────────────────────────


def signed(
    secret: str,
    payload: object,
    *,
    ts: int,
    delivery: str = "d-1",
    event: str = "brief",
    body: bytes | None = None,
) -> tuple[bytes, dict[str, str]]:
    raw = body if body is not None else json.dumps(payload, ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Briefbot-Event": event,
        "X-Briefbot-Delivery": delivery,
        "X-Briefbot-Timestamp": str(ts),
        "X-Briefbot-Signature": sign_webhook(secret, ts, raw),
    }
    return raw, headers


async def test_receiver_records_signed_deliveries_and_duplicates(
    receiver: WebhookReceiver, http: httpx.AsyncClient, wall: FakeClock
) -> None:
    url = receiver.add_endpoint("crm", "s3cret")
    assert url == f"{receiver.base_url}/hooks/crm"
    payload = {"date": "2025-06-15", "items": [{"title": "新模型"}]}
    raw, headers = signed("s3cret", payload, ts=int(wall()))
    first = await http.post(url, content=raw, headers=headers)
    again = await http.post(url, content=raw, headers=headers)  # a retry of the same delivery
    assert (first.status_code, again.status_code) == (204, 204)
    got = receiver.deliveries_to("crm")
    assert [(d.delivery_id, d.duplicate) for d in got] == [("d-1", False), ("d-1", True)]
    assert got[0].payload == payload and got[0].body == raw and got[0].event == "brief"
    assert got[0].headers["x-briefbot-delivery"] == "d-1"  # case-insensitive
    assert receiver.duplicates == 1
    assert len(receiver.deliveries_to("crm", duplicates=False)) == 1
    assert [(a.method, a.chat_id) for a in receiver.arrivals] == [("brief", "crm")] * 2


async def test_receiver_refusals(
    receiver: WebhookReceiver, http: httpx.AsyncClient, wall: FakeClock
) -> None:
    url = receiver.add_endpoint("crm", "s3cret")
    now = int(wall())

    async def status(raw: bytes, headers: dict[str, str], to: str = url) -> int:
        return (await http.post(to, content=raw, headers=headers)).status_code

    raw, headers = signed("wrong", {"a": 1}, ts=now)
    assert await status(raw, headers) == 401
    raw, headers = signed("s3cret", {"a": 1}, ts=now - 301)
    assert await status(raw, headers) == 401
    raw, headers = signed("s3cret", {"a": 1}, ts=now + 299)
    assert await status(raw, headers) == 204
    raw, headers = signed("s3cret", None, ts=now, body=b"{oops")
    assert await status(raw, headers) == 400
    raw, headers = signed("s3cret", {"a": 1}, ts=now, delivery="")
    assert await status(raw, headers) == 400
    raw, headers = signed("s3cret", {"a": 1}, ts=now)
    assert await status(raw, headers | {"Content-Type": "text/plain"}) == 415
    assert await status(raw, {"Content-Type": "application/json"}) == 401
    assert await status(raw, headers, f"{receiver.base_url}/hooks/nobody") == 404
    tampered = raw.replace(b"1", b"2")
    assert await status(tampered, headers) == 401
    receiver.remove_endpoint("crm")
    assert await status(raw, headers) == 410
    assert receiver.rejected == {401: 4, 400: 2, 415: 1, 404: 1, 410: 1}
    assert len(receiver.deliveries) == 1


async def test_receiver_faults_and_holds(
    receiver: WebhookReceiver, http: httpx.AsyncClient, wall: FakeClock
) -> None:
    url = receiver.add_endpoint("crm", "s3cret")
    raw, headers = signed("s3cret", {"a": 1}, ts=int(wall()))
    receiver.fail("gone", endpoint="crm")
    assert (await http.post(url, content=raw, headers=headers)).status_code == 410
    receiver.fail("server_error", status=503)
    assert (await http.post(url, content=raw, headers=headers)).status_code == 503
    receiver.fail("drop", deliver=True)
    with pytest.raises(httpx.TransportError):
        await http.post(url, content=raw, headers=headers)
    assert len(receiver.deliveries) == 1  # delivered, the client never heard
    hold = receiver.hold_requests("crm")
    sending = asyncio.create_task(http.post(url, content=raw, headers=headers))
    await hold.wait_held()
    assert len(receiver.deliveries) == 1
    hold.release()
    assert (await sending).status_code == 204
    assert receiver.duplicates == 1  # the retry after the drop carried the same delivery id
    await receiver.wait_for_deliveries(2, "crm")


async def test_receiver_success_status_200(http: httpx.AsyncClient) -> None:
    async with WebhookReceiver(success_status=200) as server:
        url = server.add_endpoint("crm", "k")
        raw, headers = signed("k", {"a": 1}, ts=int(server.wall_clock()))
        answer = await http.post(url, content=raw, headers=headers)
        assert (answer.status_code, answer.json()) == (200, {"ok": True})


async def test_waiting_for_traffic_and_measuring_it(
    feishu: FeishuRobotServer,
    receiver: WebhookReceiver,
    http: httpx.AsyncClient,
    clock: FakeClock,
    wall: FakeClock,
) -> None:
    url = feishu.add_robot("ops").webhook_url
    waiting = asyncio.create_task(feishu.wait_for_messages(2, "ops"))
    for text in ("a", "b"):
        await post(http, url, feishu_text(text))
        clock.advance(10.0)
    assert [m.text for m in await waiting] == ["a", "b"]
    assert (feishu.max_in_window(10.0, "ops"), feishu.max_in_window(9.0, "ops")) == (2, 1)
    assert feishu.max_in_window(60.0, msgtype="post") == 0
    with pytest.raises(TimeoutError, match="3 message"):
        await feishu.wait_for_messages(3, timeout=0.01)
    hook = receiver.add_endpoint("crm", "k")
    raw, headers = signed("k", {"a": 1}, ts=int(wall()))
    await http.post(hook, content=raw, headers=headers)
    assert receiver.max_in_window(1.0, "crm", event="brief") == 1


@pytest.mark.integration
async def test_killed_client_process_abandons_its_held_request(
    wecom: WecomRobotServer,
) -> None:
    url = wecom.add_robot("ops").webhook_url
    hold = wecom.hold_requests("ops")
    body = json.dumps(wecom_text("from a process that dies"), ensure_ascii=False)
    script = (
        "import sys, httpx\n"
        "httpx.post(sys.argv[1], content=sys.argv[2].encode(), "
        "headers={'content-type': 'application/json'}, timeout=60, trust_env=False)\n"
    )
    process = await asyncio.create_subprocess_exec(sys.executable, "-c", script, url, body)
    try:
        await hold.wait_held(timeout=30)  # the child imports httpx first
        process.kill()
        await process.wait()
        await hold.wait_abandoned()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    hold.release()
    assert wecom.messages == []
    assert [a.chat_id for a in wecom.arrivals] == ["ops"]
