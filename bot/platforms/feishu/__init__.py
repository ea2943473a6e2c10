"""Feishu (飞书) custom group bots: the registry entry and the bot API's wire format.

Push-only. Documented at https://open.feishu.cn/document/client-docs/bot-v3/add-custom-bot
(Lark: open.larksuite.com/document/client-docs/bot-v3/use-custom-bots-in-a-group). The brief
goes out as a ``post`` (rich text): its elements are literal text and links, so nothing in
the content is read as markup. Errors are HTTP 200 with ``code`` in the body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.domain import OutgoingMessage
from bot.errors import (
    PermanentFailure,
    RetryLater,
    TargetGone,
)
from bot.platforms.base import LengthUnit, Limits, Markup
from bot.platforms.robot import (
    RobotApi,
    RobotEntry,
    RobotRequest,
    RobotSettings,
    RobotSpec,
    answer_code,
    first_line,
    markdown_segments,
    security_refused,
    sized_body,
)

# add-custom-bot: "the request body data size cannot exceed 20 KB"; "100 requests per minute
# and 5 requests per second" per bot. The body is the post's JSON: each line and link costs
# some 30 bytes of it, so the rendered text is held well below.
MAX_BODY_BYTES = 20 * 1024
LIMITS = Limits(
    max_length=12_000,
    length_unit=LengthUnit.BYTES,
    markup=Markup.MARKDOWN,
    global_rate=50.0,
    # 5 a second at most; per minute as [feishu] per_minute says
    per_chat_interval=0.2,
    per_group_per_minute=100,
)

RATE_LIMITED = 11232  # "frequency limited …"
INVALID_TOKEN = 19001  # "param invalid: incoming webhook access token invalid"
# 19021 signature or timestamp (over an hour of skew), 19022 IP not allowed, 19024 keyword
SECURITY = frozenset({19021, 19022, 19024})
RATE_LIMIT_PAUSE = 60.0


@dataclass(frozen=True)
class FeishuSettings(RobotSettings):
    robots: tuple[RobotEntry, ...] = ()
    per_minute: int = 100


def sign(secret: str, timestamp: str) -> str:
    """base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b"")): the key is the string to
    sign and the message is empty (unlike DingTalk)."""
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def post_content(markdown: str) -> tuple[str, list[list[dict[str, str]]]]:
    """The post's title (the first line) and paragraphs (one per later line) of a message."""
    lines = markdown.split("\n")
    title = first_line(markdown, limit=100)
    start = next((i + 1 for i, line in enumerate(lines) if line.strip()), len(lines))
    paragraphs: list[list[dict[str, str]]] = []
    for line in lines[start:]:
        elements: list[dict[str, str]] = []
        for text, url in markdown_segments(line):
            if url and url.startswith(("http://", "https://")):
                elements.append({"tag": "a", "text": text, "href": url})
            else:
                elements.append({"tag": "text", "text": text})
        paragraphs.append(elements or [{"tag": "text", "text": ""}])
    while paragraphs and paragraphs[0] == [{"tag": "text", "text": ""}]:
        paragraphs.pop(0)
    return title, paragraphs


class FeishuApi(RobotApi):
    def request(
        self, robot: RobotEntry, url: str, secret: str, message: OutgoingMessage, now: float
    ) -> RobotRequest:
        text = message.text
        if robot.keyword and robot.keyword not in text:
            text = f"{text}\n\n{robot.keyword}"
        title, paragraphs = post_content(text)
        payload: dict[str, Any] = {}
        if secret:
            timestamp = str(int(now))
            payload.update(timestamp=timestamp, sign=sign(secret, timestamp))
        payload["msg_type"] = "post"
        payload["content"] = {"post": {"zh_cn": {"title": title, "content": paragraphs}}}
        body = sized_body(f"feishu robot {robot.name!r}", payload, MAX_BODY_BYTES, "Feishu")
        return RobotRequest(url, body, {"Content-Type": "application/json"})

    def outcome(
        self, robot: RobotEntry, status: int, body: bytes, headers: Mapping[str, str]
    ) -> None:
        where = f"feishu robot {robot.name!r}"
        code, data = answer_code(where, status, body, "code", "StatusCode")
        if code == 0:
            return
        text = str(data.get("msg", ""))
        if code == RATE_LIMITED:
            raise RetryLater(RATE_LIMIT_PAUSE, f"{where}: frequency limited", chat_only=True)
        if code in SECURITY:
            raise security_refused(where, "feishu", text)
        if code == INVALID_TOKEN:
            raise TargetGone(f"{where}: the webhook token is invalid or the bot was removed")
        raise PermanentFailure(f"{where}: code {code}: {text}")


class FeishuSpec(RobotSpec):
    name = "feishu"
    title = "Feishu"
    order = 50
    settings_type = FeishuSettings
    default_limits = LIMITS
    default_url = "https://open.feishu.cn/open-apis/bot/v2/hook/"
    secret_prefixes = ("BRIEFBOT_FEISHU_WEBHOOK_", "BRIEFBOT_FEISHU_SECRET_")

    def api(self, settings: RobotSettings) -> RobotApi:
        return FeishuApi()


SPEC = FeishuSpec()
