"""A loopback Feishu (飞书) custom-bot webhook that answers like open.feishu.cn.

Impersonates ``POST https://open.feishu.cn/open-apis/bot/v2/hook/{TOKEN}`` as documented in
自定义机器人使用指南, https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot (English
mirror: https://open.larksuite.com/document/client-docs/bot-v3/use-custom-bots-in-a-group).
Answers are ``{"code": N, "data": {}, "msg": "..."}``; success carries the legacy
``StatusCode``/``StatusMessage`` too.  Every error seen in real answers came with HTTP 200
(``error_status`` switches that for a test).

Security settings modelled: signature (``secret``; ``timestamp`` in seconds and ``sign`` in the
JSON body) and custom keywords; the IP whitelist is not.  Run ``python -m
bot.sandbox.feishu_robot --robot NAME[:SECRET]`` to try one by hand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from typing import Any, ClassVar

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
)

__all__ = [
    "ERR_BAD_REQUEST",
    "ERR_INVALID_TOKEN",
    "ERR_IP",
    "ERR_KEYWORDS",
    "ERR_MSG_TYPE",
    "ERR_RATE_LIMITED",
    "ERR_SIGNATURE",
    "MAX_BODY_BYTES",
    "PER_MINUTE",
    "PER_SECOND",
    "SIGN_SKEW_SECONDS",
    "FeishuRobotServer",
    "feishu_sign",
    "main",
]

JSONDict = dict[str, Any]

# add-custom-bot 注意事项: "for each single-tenant, single bot, the limit is 100 requests per
# minute and 5 requests per second" — beyond, code 11232.
PER_MINUTE = 100
PER_SECOND = 5
# add-custom-bot: "the request body data size cannot exceed 20 KB" (20K; read as 20 * 1024).
MAX_BODY_BYTES = 20 * 1024
# add-custom-bot 签名校验: "timestamp ... no more than 1 hour (3600 seconds) from the current
# time, time unit: s".
SIGN_SKEW_SECONDS = 3600.0

# Codes and msgs from add-custom-bot unless noted.
ERR_BAD_REQUEST = 9499  # "Bad Request": body malformed or over 20 KB
ERR_SIGNATURE = 19021  # "sign match fail or timestamp is not within one hour from current time"
ERR_KEYWORDS = 19024  # "Key Words Not Found"
ERR_IP = 19022  # "Ip Not Allowed" (not modelled; usable with fail("errcode", errcode=19022))
# 19001: unknown or removed hook — real answers in many public reports (e.g.
# github.com/sansan0/TrendRadar/issues/278); not on the doc page.
ERR_INVALID_TOKEN = 19001
# 19002: msg_type missing ("params error, msg_type need", github.com/cliii-one/FnDepot/issues/22)
# or unknown ("param invalid: msg_type", quoted in a client's test).
ERR_MSG_TYPE = 19002
# 11232: rate limited; the doc names the code, the msg is from a real answer logged with HTTP
# 200 ("frequency limited psm[lark.oapi.app_platform_runtime]appID[1500]").
ERR_RATE_LIMITED = 11232

_POST_TAGS = frozenset({"text", "a", "at", "img", "media", "emotion", "hr", "code_block", "md"})


def feishu_sign(secret: str, timestamp_s: int | str) -> str:
    """``base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))`` — note the key is the
    string to sign and the message is empty (unlike DingTalk)."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


class FeishuRobotServer(RobotServer):
    """Loopback Feishu custom-bot webhook.

    Args:
        per_second / second: at most ``per_second`` messages in any ``second`` seconds (5 / 1).
        per_minute / window: at most ``per_minute`` messages in any ``window`` seconds
            (100 / 60).  Beyond either: 11232.
        max_body_bytes: request body limit (9499 beyond).
        sign_skew_seconds: how far a signed ``timestamp`` may be from the server's clock.
        error_status: HTTP status of error answers (200, as observed).
        host, port, clock, wall_clock: see :class:`~bot.sandbox.robot_base.LoopbackServer`.
    """

    platform: ClassVar[str] = "feishu"
    invalid_token_code: ClassVar[int] = ERR_INVALID_TOKEN
    known_errmsgs: ClassVar[dict[int, str]] = {
        ERR_BAD_REQUEST: "Bad Request",
        ERR_SIGNATURE: "sign match fail or timestamp is not within one hour from current time",
        ERR_KEYWORDS: "Key Words Not Found",
        ERR_IP: "Ip Not Allowed",
        ERR_INVALID_TOKEN: "param invalid: incoming webhook access token invalid",
        ERR_MSG_TYPE: "params error, msg_type need",
        ERR_RATE_LIMITED: "frequency limited psm[lark.oapi.app_platform_runtime]appID[1500]",
    }

    def __init__(
        self,
        *,
        per_second: int = PER_SECOND,
        second: float = 1.0,
        per_minute: int = PER_MINUTE,
        window: float = 60.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        sign_skew_seconds: float = SIGN_SKEW_SECONDS,
        error_status: int = 200,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        super().__init__(host=host, port=port, clock=clock, wall_clock=wall_clock)
        self.per_second = per_second
        self.second = second
        self.per_minute = per_minute
        self.window = window
        self.max_body_bytes = max_body_bytes
        self.sign_skew_seconds = sign_skew_seconds
        self.error_status = error_status
        self._seconds: dict[str, SlidingWindow] = {}
        self._minutes: dict[str, SlidingWindow] = {}

    def webhook_url_for(self, robot: Robot) -> str:
        return f"{self.base_url}/open-apis/bot/v2/hook/{robot.token}"

    def signature_fields(self, robot: Robot, timestamp_s: int | None = None) -> dict[str, str]:
        """``{"timestamp": ..., "sign": ...}`` as a correct client adds them to the body
        (``timestamp_s`` defaults to the server's wall clock, without ``skew``)."""
        if robot.secret is None:
            raise ValueError(f"robot {robot.name!r} has no secret")
        ts = int(self.wall_clock()) if timestamp_s is None else timestamp_s
        return {"timestamp": str(ts), "sign": feishu_sign(robot.secret, ts)}

    # ── platform rules ───────────────────────────────────────────────────────────────────

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/open-apis/bot/v2/hook/{token}", self._handle)

    def _new_token(self) -> str:
        return str(uuid.uuid4())

    def _success_body(self) -> JSONDict:
        return {
            "StatusCode": 0,
            "StatusMessage": "success",
            "code": 0,
            "data": {},
            "msg": "success",
        }

    def _error_body(self, code: int, errmsg: str, request: web.Request | None) -> JSONDict:
        return {"code": code, "data": {}, "msg": errmsg}

    def _error_status(self, code: int) -> int:
        return self.error_status

    def _is_throttle_code(self, code: int) -> bool:
        return code == ERR_RATE_LIMITED

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = self.clock()
        body = await request.read()
        robot = self._robot_of_token(request.match_info["token"])
        payload = parse_json_object(body)
        msg_type = payload.get("msg_type") if payload is not None else None
        method = msg_type if isinstance(msg_type, str) and msg_type else "send"
        return await self._serve(
            request,
            arrived=arrived,
            target=robot.name if robot is not None else None,
            method=method,
            evaluate=lambda: self._answer(self._evaluate(robot, body, payload, arrived), request),
        )

    def _evaluate(
        self, robot: Robot | None, body: bytes, payload: JSONDict | None, arrived: float
    ) -> Verdict:
        if robot is None or robot.revoked:
            return self._reject(ERR_INVALID_TOKEN)
        if len(body) > self.max_body_bytes or payload is None:
            return self._reject(ERR_BAD_REQUEST)
        if robot.secret is not None and not self._signed(robot.secret, payload):
            return self._reject(ERR_SIGNATURE)
        msg_type = payload.get("msg_type")
        if not isinstance(msg_type, str) or not msg_type:
            return self._reject(ERR_MSG_TYPE)
        if msg_type not in ("text", "post", "interactive", "image", "share_chat"):
            return self._reject(ERR_MSG_TYPE, "param invalid: msg_type")
        content = _content_of(msg_type, payload)
        if content is None:
            return self._reject(ERR_BAD_REQUEST)
        title, text = content
        if robot.keywords and not any(k in f"{title}\n{text}" for k in robot.keywords):
            return self._reject(ERR_KEYWORDS)
        now = self.clock()
        second = self._seconds.setdefault(robot.name, SlidingWindow())
        minute = self._minutes.setdefault(robot.name, SlidingWindow())
        if not (
            second.admits(now, self.per_second, self.second)
            and minute.admits(now, self.per_minute, self.window)
        ):
            return self._reject(ERR_RATE_LIMITED, throttled=True)
        second.record(now)
        minute.record(now)
        return Verdict(
            message=RobotMessage(
                robot=robot.name,
                msgtype=msg_type,
                payload=payload,
                text=text,
                body_bytes=len(body),
                t=arrived,
                title=title,
            )
        )

    def _signed(self, secret: str, payload: JSONDict) -> bool:
        raw_ts = payload.get("timestamp")
        sign = payload.get("sign")
        if (
            isinstance(raw_ts, bool)
            or not isinstance(raw_ts, int | str)
            or not isinstance(sign, str)
        ):
            return False
        ts = str(raw_ts)
        if not ts.isdigit():
            return False
        if abs(self._signing_now() - int(ts)) > self.sign_skew_seconds:
            return False
        return hmac.compare_digest(sign.encode(), feishu_sign(secret, ts).encode())


def _content_of(msg_type: str, payload: JSONDict) -> tuple[str, str] | None:
    """(title, text) of a well-formed message; ``None`` if its structure is wrong (9499)."""
    if msg_type == "interactive":
        card = payload.get("card")
        if not isinstance(card, dict) or not card:
            return None
        return _card_title(card), "\n".join(_card_texts(card))
    content = payload.get("content")
    if not isinstance(content, dict):
        return None
    if msg_type == "text":
        text = content.get("text")
        return ("", text) if isinstance(text, str) and text else None
    if msg_type == "post":
        return _post_of(content)
    if msg_type == "image":
        key = content.get("image_key")
        return ("", "[image]") if isinstance(key, str) and key else None
    chat = content.get("share_chat_id")
    return ("", f"[share_chat {chat}]") if isinstance(chat, str) and chat else None


def _post_of(content: JSONDict) -> tuple[str, str] | None:
    """A rich-text post: ``content.post.<lang>.content`` is a list of paragraphs, each a list of
    elements with a known ``tag`` (text and a carry ``text``; a carries ``href``; at carries
    ``user_id``).  The first language (zh_cn first) is flattened."""
    post = content.get("post")
    if not isinstance(post, dict) or not post:
        return None
    langs = sorted(post, key=lambda lang: (lang != "zh_cn", lang))
    body = post[langs[0]]
    if not isinstance(body, dict):
        return None
    title = body.get("title", "")
    paragraphs = body.get("content")
    if not isinstance(title, str) or not isinstance(paragraphs, list) or not paragraphs:
        return None
    lines: list[str] = []
    for paragraph in paragraphs:
        if not isinstance(paragraph, list):
            return None
        parts: list[str] = []
        for element in paragraph:
            part = _post_element(element)
            if part is None:
                return None
            parts.append(part)
        lines.append("".join(parts))
    return title, "\n".join(lines)


def _post_element(element: object) -> str | None:
    if not isinstance(element, dict) or element.get("tag") not in _POST_TAGS:
        return None
    tag = element["tag"]
    if tag in ("text", "a", "md"):
        text = element.get("text")
        if not isinstance(text, str):
            return None
        if tag == "a" and not isinstance(element.get("href"), str):
            return None
        return text
    if tag == "at":
        user = element.get("user_id")
        if not isinstance(user, str) or not user:
            return None
        name = element.get("user_name")
        return f"@{name if isinstance(name, str) and name else user}"
    return ""


def _card_title(card: JSONDict) -> str:
    header = card.get("header")
    title = header.get("title") if isinstance(header, dict) else None
    text = title.get("content") if isinstance(title, dict) else None
    return text if isinstance(text, str) else ""


def _card_texts(value: object) -> list[str]:
    """Every string under a ``content`` key inside the card's body (the header excluded)."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "header":
                continue
            if key == "content" and isinstance(item, str):
                found.append(item)
            else:
                found.extend(_card_texts(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_card_texts(item))
    return found


main = robot_cli(
    "python -m bot.sandbox.feishu_robot",
    "Loopback Feishu custom-bot webhook (open.feishu.cn/open-apis/bot/v2/hook/...).",
    lambda args: FeishuRobotServer(port=args.port),
)

if __name__ == "__main__":
    main(None)
