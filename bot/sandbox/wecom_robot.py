"""A loopback WeCom (企业微信) group-robot webhook that answers like qyapi.weixin.qq.com.

Impersonates ``POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`` as documented in
群机器人配置说明, https://developer.work.weixin.qq.com/document/path/91770 (global error codes:
https://developer.work.weixin.qq.com/document/path/90313).  Every business error is HTTP 200
with ``{"errcode": N, "errmsg": "..., hint: [...], from ip: ..., more info at ...?e=N"}``, the
shape the real service answers with (quoted from public issue reports, see the comments).

A robot has no secret and no keywords on WeCom: the key in the URL is the only credential.
Run ``python -m bot.sandbox.wecom_robot --robot NAME`` to try one by hand.
"""

from __future__ import annotations

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
    utf8_len,
)

__all__ = [
    "ERR_EMPTY_CONTENT",
    "ERR_INVALID_KEY",
    "ERR_INVALID_MSGTYPE",
    "ERR_RATE_LIMITED",
    "ERR_TOO_LONG",
    "MARKDOWN_MAX_BYTES",
    "PER_MINUTE",
    "TEXT_MAX_BYTES",
    "WecomRobotServer",
    "main",
]

JSONDict = dict[str, Any]

# 91770 "文本内容，最长不超过2048个字节，必须是utf8编码".
TEXT_MAX_BYTES = 2048
# 91770 "markdown内容，最长不超过4096个字节，必须是utf8编码" (markdown_v2: the same, per SDKs).
MARKDOWN_MAX_BYTES = 4096
# 91770 消息发送频率限制: "每个机器人发送的消息不能超过20条/分钟".
PER_MINUTE = 20

# Error codes (90313) with the errmsg heads the real service sends; each is followed by
# ", hint: [...], from ip: ..., more info at https://open.work.weixin.qq.com/devtool/query?e=N".
# 93000: unknown, removed or empty key — github.com/wes-lin/Cloud189Checkin/issues/175.
ERR_INVALID_KEY = 93000
# 40058: a content over its byte limit — github.com/dromara/domain-admin/issues/82 quotes
# "markdown.content exceed max length 4096. invalid Request Parameter"; text reads the same
# with "text.content" (github.com/zero205/JD_tencent_scf/issues/278).
ERR_TOO_LONG = 40058
# 40008: unknown msgtype — quoted in many client tests ("invalid message type").
ERR_INVALID_MSGTYPE = 40008
# 44004: missing or empty content ("empty content").
ERR_EMPTY_CONTENT = 44004
# 45009: over 20/min — github.com/WecomTeam/wecom-openclaw-plugin/issues/48 ("api freq out of
# limit").
ERR_RATE_LIMITED = 45009

_QUERY_URL = "https://open.work.weixin.qq.com/devtool/query?e="
# 90313: a body that is not valid JSON makes errmsg carry "Warning: wrong json format."; which
# errcode comes with it is not documented — 40008 here (unconfirmed).
_WRONG_JSON = "invalid message type, Warning: wrong json format."


class WecomRobotServer(RobotServer):
    """Loopback WeCom group-robot webhook.

    Args:
        per_minute: messages a robot may post in any ``window`` seconds (45009 beyond).
        window: the rate window in seconds (60; scale it down with a fake clock in tests).
        text_max_bytes / markdown_max_bytes: UTF-8 byte limits of ``content`` (40058 beyond).
        accept_markdown_v2: accept ``msgtype: "markdown_v2"`` (not on the stored 91770 page;
            off by default, so it answers 40008 like an unknown type).
        host, port, clock, wall_clock: see :class:`~bot.sandbox.robot_base.LoopbackServer`.
    """

    platform: ClassVar[str] = "wecom"
    invalid_token_code: ClassVar[int] = ERR_INVALID_KEY
    known_errmsgs: ClassVar[dict[int, str]] = {
        ERR_INVALID_KEY: "invalid webhook url",
        ERR_INVALID_MSGTYPE: "invalid message type",
        ERR_EMPTY_CONTENT: "empty content",
        ERR_TOO_LONG: "invalid Request Parameter",
        ERR_RATE_LIMITED: "api freq out of limit",
        -1: "system busy",  # 90313: -1 系统繁忙 (the English text is unconfirmed)
    }

    def __init__(
        self,
        *,
        per_minute: int = PER_MINUTE,
        window: float = 60.0,
        text_max_bytes: int = TEXT_MAX_BYTES,
        markdown_max_bytes: int = MARKDOWN_MAX_BYTES,
        accept_markdown_v2: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock = time.monotonic,
        wall_clock: Clock = time.time,
    ) -> None:
        super().__init__(host=host, port=port, clock=clock, wall_clock=wall_clock)
        self.per_minute = per_minute
        self.window = window
        self.text_max_bytes = text_max_bytes
        self.markdown_max_bytes = markdown_max_bytes
        self.accept_markdown_v2 = accept_markdown_v2
        self._windows: dict[str, SlidingWindow] = {}

    def webhook_url_for(self, robot: Robot) -> str:
        return f"{self.base_url}/cgi-bin/webhook/send?key={robot.token}"

    # ── platform rules ───────────────────────────────────────────────────────────────────

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/cgi-bin/webhook/send", self._handle)

    def _new_token(self) -> str:
        return str(uuid.uuid4())  # keys look like 693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa

    def _check_security(self, secret: str | None, keywords: tuple[str, ...]) -> None:
        if secret is not None or keywords:
            raise ValueError("WeCom group robots have no secret or keyword security settings")

    def _success_body(self) -> JSONDict:
        return {"errcode": 0, "errmsg": "ok"}

    def _error_body(self, code: int, errmsg: str, request: web.Request | None) -> JSONDict:
        ip = (request.remote if request is not None else None) or "127.0.0.1"
        hint = f"{int(self.wall_clock() * 1000)}{self._next_serial():012d}"
        return {
            "errcode": code,
            "errmsg": f"{errmsg}, hint: [{hint}], from ip: {ip}, more info at {_QUERY_URL}{code}",
        }

    def _is_throttle_code(self, code: int) -> bool:
        return code == ERR_RATE_LIMITED

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = self.clock()
        body = await request.read()
        robot = self._robot_of_token(request.query.get("key"))
        payload = parse_json_object(body)
        msgtype = payload.get("msgtype") if payload is not None else None
        method = msgtype if isinstance(msgtype, str) and msgtype else "send"
        return await self._serve(
            request,
            arrived=arrived,
            target=robot.name if robot is not None else None,
            method=method,
            evaluate=lambda: self._answer(
                self._evaluate(robot, payload, len(body), arrived), request
            ),
        )

    def _evaluate(
        self, robot: Robot | None, payload: JSONDict | None, size: int, arrived: float
    ) -> Verdict:
        if robot is None or robot.revoked:
            return self._reject(ERR_INVALID_KEY)
        if payload is None:
            return self._reject(ERR_INVALID_MSGTYPE, _WRONG_JSON)
        msgtype = payload.get("msgtype")
        kinds = {"text": self.text_max_bytes, "markdown": self.markdown_max_bytes}
        if self.accept_markdown_v2:
            kinds["markdown_v2"] = self.markdown_max_bytes
        if not isinstance(msgtype, str) or msgtype not in kinds:
            return self._reject(ERR_INVALID_MSGTYPE)
        section = payload.get(msgtype)
        content = section.get("content") if isinstance(section, dict) else None
        if not isinstance(content, str) or not content:
            return self._reject(ERR_EMPTY_CONTENT)
        limit = kinds[msgtype]
        if utf8_len(content) > limit:
            return self._reject(
                ERR_TOO_LONG,
                f"{msgtype}.content exceed max length {limit}. invalid Request Parameter",
            )
        window = self._windows.setdefault(robot.name, SlidingWindow())
        now = self.clock()
        if not window.admits(now, self.per_minute, self.window):
            return self._reject(ERR_RATE_LIMITED, throttled=True)
        window.record(now)
        return Verdict(
            message=RobotMessage(
                robot=robot.name,
                msgtype=msgtype,
                payload=payload,
                text=content,
                body_bytes=size,
                t=arrived,
            )
        )


main = robot_cli(
    "python -m bot.sandbox.wecom_robot",
    "Loopback WeCom group-robot webhook (qyapi.weixin.qq.com/cgi-bin/webhook/send).",
    lambda args: WecomRobotServer(port=args.port),
)

if __name__ == "__main__":
    main(None)
