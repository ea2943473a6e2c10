"""WeCom (企业微信) group robots: the registry entry and the robot API's wire format.

Push-only: a robot posts into its group and receives nothing. Documented at
https://developer.work.weixin.qq.com/document/path/91770 (the robot) and .../path/90313
(global error codes). Every business error is HTTP 200 with ``errcode`` in the body; decide by
the code, never by ``errmsg`` (90313: "errmsg可能会调整").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.domain import OutgoingMessage
from bot.errors import PermanentFailure, RetryLater, TargetGone, TransientFailure
from bot.platforms.base import LengthUnit, Limits, Markup
from bot.platforms.robot import (
    RobotApi,
    RobotEntry,
    RobotRequest,
    RobotSettings,
    RobotSpec,
    answer_code,
    json_body,
)

# 91770: "markdown内容，最长不超过4096个字节，必须是utf8编码" (errcode 40058 beyond: "markdown.content
# exceed max length 4096"); text is 2048 bytes. "每个机器人发送的消息不能超过20条/分钟".
# No documented limit across robots: the global rate ([wecom] global_rate) only keeps us polite.
LIMITS = Limits(
    max_length=4096,
    length_unit=LengthUnit.BYTES,
    markup=Markup.MARKDOWN,
    global_rate=50.0,
    # a robot is paced by per_group_per_minute alone ([<platform>] per_minute)
    per_chat_interval=0.0,
    per_group_per_minute=20,
)

INVALID_WEBHOOK = 93000  # "invalid webhook url": the key is wrong or the robot was removed
RATE_LIMITED = 45009  # "api freq out of limit"
# -1 "system busy" (90313: retry), 45033 "api concurrent out of limit": worth a retry
BUSY = frozenset({-1, 45033})
TOO_LONG = 40058  # "markdown.content exceed max length 4096"
# 45009 does not say for how long; the limit is per minute.
RATE_LIMIT_PAUSE = 60.0


@dataclass(frozen=True)
class WecomSettings(RobotSettings):
    robots: tuple[RobotEntry, ...] = ()


class WecomApi(RobotApi):
    def request(
        self, robot: RobotEntry, url: str, secret: str, message: OutgoingMessage, now: float
    ) -> RobotRequest:
        payload = {"msgtype": "markdown", "markdown": {"content": message.text}}
        return RobotRequest(url, json_body(payload), {"Content-Type": "application/json"})

    def outcome(
        self, robot: RobotEntry, status: int, body: bytes, headers: Mapping[str, str]
    ) -> None:
        where = f"wecom robot {robot.name!r}"
        code, data = answer_code(where, status, body, "errcode")
        if code == 0:
            return
        if code == RATE_LIMITED:
            raise RetryLater(
                RATE_LIMIT_PAUSE, f"{where}: over 20 messages a minute", chat_only=True
            )
        if code in BUSY:
            raise TransientFailure(f"{where}: errcode {code}: the service is busy")
        if code == INVALID_WEBHOOK:
            raise TargetGone(f"{where}: the webhook key is invalid or the robot was removed")
        # errmsg carries the caller's IP and a hint id: keep only the reason before them
        reason = str(data.get("errmsg", "")).split(", hint:")[0]
        raise PermanentFailure(f"{where}: errcode {code}: {reason}")


class WecomSpec(RobotSpec):
    name = "wecom"
    title = "WeCom"
    order = 30
    settings_type = WecomSettings
    default_limits = LIMITS
    default_url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key="
    secret_prefixes = ("BRIEFBOT_WECOM_WEBHOOK_",)

    def api(self, settings: RobotSettings) -> RobotApi:
        return WecomApi()


SPEC = WecomSpec()
