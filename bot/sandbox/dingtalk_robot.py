"""A loopback DingTalk (钉钉) custom-robot webhook that answers like oapi.dingtalk.com.

Impersonates ``POST https://oapi.dingtalk.com/robot/send?access_token=T[&timestamp=MS&sign=S]``
as documented in 自定义机器人接入, https://open.dingtalk.com/document/robots/custom-robot-access,
and 安全设置, https://open.dingtalk.com/document/robots/customize-robot-security-settings.
Every business error is HTTP 200 with ``{"errcode": N, "errmsg": "..."}``.  DingTalk changed its
errmsg texts several times (English "keywords not in content", then "description:...;
solution:..." and "错误描述:...;解决方案:..."); the texts here are each quoted from a real answer
(see the comments), so a client must decide on ``errcode`` alone.

Security settings modelled: 加签 (``secret``) and 自定义关键词 (``keywords``); the IP whitelist is
not (everything comes from 127.0.0.1).  Run ``python -m bot.sandbox.dingtalk_robot --robot
NAME[:SECRET]`` to try one by hand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any, ClassVar
from urllib.parse import quote_plus

from aiohttp import web

from bot.sandbox.robot_base import (
    Clock,
    Robot,
    RobotMessage,
    RobotServer,
    SlidingWindow,
    Verdict,
    parse_json_object,
    robot_cli,
    string_leaves,
)

__all__ = [
    "ERR_BAD_PARAM",
    "ERR_INVALID_TOKEN",
    "ERR_SECURITY",
    "ERR_SEND_TOO_FAST",
    "ERR_THROTTLED",
    "ERR_TOO_LONG",
    "ERR_UNSUPPORTED_MSGTYPE",
    "KEYWORD_ERRMSG",
    "MAX_BODY_BYTES",
    "PER_MINUTE",
    "SIGN_ERRMSG",
    "SIGN_SKEW_SECONDS",
    "THROTTLE_SECONDS",
    "TIMESTAMP_ERRMSG",
    "DingtalkRobotServer",
    "dingtalk_sign",
    "main",
]

JSONDict = dict[str, Any]

# custom-robot-access 调用频率限制: "每个机器人每分钟最多发送20条消息到群里，如果超过20条，会限流
# 10分钟".
PER_MINUTE = 20
THROTTLE_SECONDS = 600.0
# customize-robot-security-settings 加签: timestamp "与请求调用时间误差不能超过1小时".
SIGN_SKEW_SECONDS = 3600.0
# Not on the doc pages; real answers "message too long, exceed 20000 bytes"
# (github.com/Le0nsec/SecCrawler/issues/12) and "body 大小不合法;解决方案:请保持大小在 20000bytes
# 以内" (github.com/ZhuLinsen/daily_stock_analysis/issues/61): the whole request body counts.
MAX_BODY_BYTES = 20000

# 310000: every security-setting failure (keyword, sign, timestamp, IP).
ERR_SECURITY = 310000
# 300001: unknown token — "token is not exist" (older), "description: robot 不存在；solution:请确认
# token 是否正确；" (newer, quoted in a public Go client).  The current error table is said to
# list 400101 "access_token不存在" instead (unconfirmed); pass invalid_token_errcode= to switch.
ERR_INVALID_TOKEN = 300001
# The throttle: 130101 "send too fast, exceed 20 times per minute" is what clients quoted from
# 2019 to 2022 (github.com/ccfos/nightingale/issues/369); the current error table lists
# 410100 "发送速度太快而限流" (its exact errmsg is unconfirmed).  Clients must accept both.
ERR_SEND_TOO_FAST = 130101
ERR_THROTTLED = 410100
# 460101: body over 20000 bytes (see MAX_BODY_BYTES).
ERR_TOO_LONG = 460101
# 40035: a missing parameter — "缺少参数 access_token", "缺少参数 json" (quoted in clients).
ERR_BAD_PARAM = 40035
# 400105: unsupported msgtype — "不支持的 msgtype" (seen only in a client's test; unconfirmed).
ERR_UNSUPPORTED_MSGTYPE = 400105

# Verbatim errmsgs of 310000 (github.com/veops/ops-tools/issues/20,
# github.com/RayWangQvQ/BiliBiliToolPro/issues/218, and an older "invalid timestamp").
KEYWORD_ERRMSG = "错误描述:关键词不匹配;解决方案:请联系群管理员查看此机器人的关键词，并在发送的信息中包含此关键词;"
SIGN_ERRMSG = (
    "description:机器人发送签名不匹配;solution:请确认签名和生成签名的时间戳必须都放在调用的网址中，"
    "请确认机器人的密钥加密和填写正确;link:请参考本接口对应文档获得具体要求，或者在"
    "https://open.dingtalk.com/document/  搜索相关文档;"
)
TIMESTAMP_ERRMSG = "invalid timestamp"

_MSGTYPES = ("text", "markdown", "link", "actionCard", "feedCard")


def dingtalk_sign(secret: str, timestamp_ms: int | str) -> str:
    """``base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}"))`` — not yet
    URL-encoded; the ``sign`` query parameter is ``urllib.parse.quote_plus`` of it."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode("ascii")


class DingtalkRobotServer(RobotServer):
    """Loopback DingTalk custom-robot webhook.

    Args:
        per_minute: messages a robot may post in any ``window`` seconds.
        window: the rate window in seconds (60).
        throttle_seconds: how long a robot that exceeded ``per_minute`` is refused (600):
            every request in that period gets ``throttle_errcode``.
        throttle_errcode: 410100 (current docs) or 130101 (what clients saw until 2022).
        invalid_token_errcode: answer for an unknown or revoked ``access_token`` (300001).
        sign_skew_seconds: how far a signed ``timestamp`` may be from the server's clock.
        max_body_bytes: request body limit (460101 beyond).
        host, port, clock, wall_clock: see :class:`~bot.sandbox.robot_base.LoopbackServer`.
    """

    platform: ClassVar[str] = "dingtalk"
    invalid_token_code: ClassVar[int] = ERR_INVALID_TOKEN
    known_errmsgs: ClassVar[dict[int, str]] = {
        ERR_SECURITY: KEYWORD_ERRMSG,
        ERR_INVALID_TOKEN: "description: robot 不存在；solution:请确认 token 是否正确；",
        400101: "access_token不存在",  # unconfirmed text
        400102: "机器人已停用",  # unconfirmed text
        ERR_SEND_TOO_FAST: "send too fast, exceed 20 times per minute",
        ERR_THROTTLED: "发送速度太快而限流",  # unconfirmed text
        ERR_TOO_LONG: "message too long, exceed 20000 bytes",
        ERR_BAD_PARAM: "缺少参数 json",
        ERR_UNSUPPORTED_MSGTYPE: "不支持的 msgtype",
        -1: "系统繁忙",  # global error code -1
    }

    def __init__(
        self,
        *,
        per_minute: int = PER_MINUTE,
        window: float = 60.0,
        throttle_seconds: float = THROTTLE_SECONDS,
        throttle_errcode: int = ERR_THROTTLED,
        invalid_token_errcode: int = ERR_INVALID_TOKEN,
        sign_skew_seconds: float = SIGN_SKEW_SECONDS,
        max_body_bytes: int = MAX_BODY_BYTES,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        super().__init__(host=host, port=port, clock=clock, wall_clock=wall_clock)
        self.per_minute = per_minute
        self.window = window
        self.throttle_seconds = throttle_seconds
        self.throttle_errcode = throttle_errcode
        self.invalid_token_errcode = invalid_token_errcode
        self.sign_skew_seconds = sign_skew_seconds
        self.max_body_bytes = max_body_bytes
        self._windows: dict[str, SlidingWindow] = {}
        self._throttled_until: dict[str, float] = {}

    def webhook_url_for(self, robot: Robot) -> str:
        return f"{self.base_url}/robot/send?access_token={robot.token}"

    def signed_url(self, robot: Robot, timestamp_ms: int | None = None) -> str:
        """``webhook_url`` with ``timestamp`` and ``sign`` as a correct client appends them
        (``timestamp_ms`` defaults to the server's wall clock, without ``skew``)."""
        if robot.secret is None:
            raise ValueError(f"robot {robot.name!r} has no secret")
        ts = int(self.wall_clock() * 1000) if timestamp_ms is None else timestamp_ms
        sign = quote_plus(dingtalk_sign(robot.secret, ts))
        return f"{self.webhook_url_for(robot)}&timestamp={ts}&sign={sign}"

    def throttled(self, name: str) -> bool:
        """Whether robot ``name`` is in its throttle period now."""
        return self.clock() < self._throttled_until.get(name, float("-inf"))

    # ── platform rules ───────────────────────────────────────────────────────────────────

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/robot/send", self._handle)

    def _new_token(self) -> str:
        return secrets.token_hex(32)  # access_tokens are 64 hex digits

    def _success_body(self) -> JSONDict:
        return {"errcode": 0, "errmsg": "ok"}

    def _error_body(self, code: int, errmsg: str, request: web.Request | None) -> JSONDict:
        return {"errcode": code, "errmsg": errmsg}

    def _is_throttle_code(self, code: int) -> bool:
        return code in (ERR_SEND_TOO_FAST, ERR_THROTTLED)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = self.clock()
        body = await request.read()
        token = request.query.get("access_token")
        robot = self._robot_of_token(token)
        payload = parse_json_object(body)
        msgtype = payload.get("msgtype") if payload is not None else None
        method = msgtype if isinstance(msgtype, str) and msgtype else "send"
        query = dict(request.query)
        return await self._serve(
            request,
            arrived=arrived,
            target=robot.name if robot is not None else None,
            method=method,
            evaluate=lambda: self._answer(
                self._evaluate(token, robot, query, body, payload, arrived), request
            ),
        )

    def _evaluate(
        self,
        token: str | None,
        robot: Robot | None,
        query: dict[str, str],
        body: bytes,
        payload: JSONDict | None,
        arrived: float,
    ) -> Verdict:
        if not token:
            return self._reject(ERR_BAD_PARAM, "缺少参数 access_token")
        if robot is None or robot.revoked:
            return self._reject(self.invalid_token_errcode)
        now = self.clock()
        if now < self._throttled_until.get(robot.name, float("-inf")):
            return self._reject(self.throttle_errcode, throttled=True)
        if robot.secret is not None:
            refused = self._check_sign(robot.secret, query)
            if refused is not None:
                return refused
        if len(body) > self.max_body_bytes:
            return self._reject(
                ERR_TOO_LONG, f"message too long, exceed {self.max_body_bytes} bytes"
            )
        if payload is None:
            return self._reject(ERR_BAD_PARAM, "缺少参数 json")
        msgtype = payload.get("msgtype")
        if not isinstance(msgtype, str) or msgtype not in _MSGTYPES:
            return self._reject(ERR_UNSUPPORTED_MSGTYPE)
        section = payload.get(msgtype)
        if not isinstance(section, dict):
            return self._reject(ERR_BAD_PARAM, f"缺少参数 {msgtype}")
        title, text, missing = _content_of(msgtype, section)
        if missing:
            return self._reject(ERR_BAD_PARAM, f"缺少参数 {msgtype}.{missing}")
        if robot.keywords and not any(
            keyword in leaf for leaf in string_leaves(section) for keyword in robot.keywords
        ):
            return self._reject(ERR_SECURITY, KEYWORD_ERRMSG)
        window = self._windows.setdefault(robot.name, SlidingWindow())
        if not window.admits(now, self.per_minute, self.window):
            # "如果超过20条，会限流10分钟": the excess message starts the throttle period.
            self._throttled_until[robot.name] = now + self.throttle_seconds
            return self._reject(self.throttle_errcode, throttled=True)
        window.record(now)
        return Verdict(
            message=RobotMessage(
                robot=robot.name,
                msgtype=msgtype,
                payload=payload,
                text=text,
                body_bytes=len(body),
                t=arrived,
                title=title,
            )
        )

    def _check_sign(self, secret: str, query: dict[str, str]) -> Verdict | None:
        raw_ts = query.get("timestamp", "")
        if not raw_ts.isdigit():
            return self._reject(ERR_SECURITY, TIMESTAMP_ERRMSG)
        skew_ms = abs(self._signing_now() * 1000 - int(raw_ts))
        if skew_ms > self.sign_skew_seconds * 1000:
            return self._reject(ERR_SECURITY, TIMESTAMP_ERRMSG)
        # request.query already undid the client's URL-encoding (an unencoded "+" became " ").
        given = query.get("sign", "")
        if not hmac.compare_digest(given.encode(), dingtalk_sign(secret, raw_ts).encode()):
            return self._reject(ERR_SECURITY, SIGN_ERRMSG)
        return None


def _content_of(msgtype: str, section: JSONDict) -> tuple[str, str, str]:
    """(title, main text, name of a missing required field or "") of one message section."""
    required = {
        "text": ("content",),
        "markdown": ("title", "text"),
        "link": ("title", "text", "messageUrl"),
        "actionCard": ("title", "text"),
        "feedCard": (),
    }[msgtype]
    for name in required:
        value = section.get(name)
        if not isinstance(value, str) or not value:
            return "", "", name
    if msgtype == "feedCard":
        links = section.get("links")
        if not isinstance(links, list) or not links:
            return "", "", "links"
        titles = [str(link.get("title", "")) for link in links if isinstance(link, dict)]
        return "", "\n".join(titles), ""
    if msgtype == "text":
        return "", str(section["content"]), ""
    return str(section["title"]), str(section["text"]), ""


main = robot_cli(
    "python -m bot.sandbox.dingtalk_robot",
    "Loopback DingTalk custom-robot webhook (oapi.dingtalk.com/robot/send).",
    lambda args: DingtalkRobotServer(port=args.port),
)

if __name__ == "__main__":
    main(None)
