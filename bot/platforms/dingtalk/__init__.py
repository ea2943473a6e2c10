"""DingTalk (钉钉) custom group robots: the registry entry and the robot API's wire format.

Push-only. Documented at https://open.dingtalk.com/document/robots/custom-robot-access and
https://open.dingtalk.com/document/robots/customize-robot-security-settings (加签, keywords,
IP allow-list). Every business error is HTTP 200 with ``errcode`` in the body; DingTalk has
reworded ``errmsg`` several times, so only the code decides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

from bot.domain import OutgoingMessage
from bot.errors import (
    PermanentFailure,
    RetryLater,
    TargetGone,
    TransientFailure,
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
    security_refused,
    sized_body,
    timestamp_ms,
)

# custom-robot-access: "每个机器人每分钟最多发送20条消息到群里，如果超过20条，会限流10分钟". The size limit is
# not in the pages we could reach: integrators quote 20,000 bytes, for the message or for the
# whole request. We hold the request under it: the text is kept to 16,000 bytes, which leaves
# room for a robot's keyword line, the title and JSON's escapes, and the body is checked.
MAX_BODY_BYTES = 20_000
LIMITS = Limits(
    max_length=16_000,
    length_unit=LengthUnit.BYTES,
    markup=Markup.MARKDOWN,
    global_rate=50.0,
    # a robot is paced by per_group_per_minute alone ([<platform>] per_minute)
    per_chat_interval=0.0,
    per_group_per_minute=20,
)

# 130101 "send too fast, exceed 20 times per minute" (seen 2019-2022); 410100 "发送速度太快而限流"
# (the current error table). Either way the robot is blocked for ten minutes.
THROTTLED = frozenset({130101, 410100})
# 310000: a security setting failed: the signature ("sign not match", "invalid timestamp":
# over an hour of clock skew), the keyword ("keywords not in content") or the IP allow-list.
SECURITY = 310000
# the token does not exist (300001, also 300005 and 400101) or the robot was disabled (400102)
GONE = frozenset({300001, 300005, 400101, 400102})


@dataclass(frozen=True)
class DingtalkSettings(RobotSettings):
    robots: tuple[RobotEntry, ...] = ()
    # seconds DingTalk blocks a robot that went over 20 messages a minute
    throttle_pause: float = 600.0


def sign(secret: str, timestamp: str) -> str:
    """加签: base64(HMAC-SHA256(key=secret, msg=f"{timestamp}\\n{secret}")), URL-encoded."""
    digest = hmac.new(
        secret.encode("utf-8"), f"{timestamp}\n{secret}".encode(), hashlib.sha256
    ).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


class DingtalkApi(RobotApi):
    def __init__(self, throttle_pause: float = 600.0) -> None:
        self.throttle_pause = throttle_pause

    def request(
        self, robot: RobotEntry, url: str, secret: str, message: OutgoingMessage, now: float
    ) -> RobotRequest:
        text = message.text
        if robot.keyword and robot.keyword not in text:
            text = f"{text}\n\n{robot.keyword}"
        if secret:
            timestamp = timestamp_ms(now)
            separator = "&" if "?" in url else "?"
            url = f"{url}{separator}timestamp={timestamp}&sign={sign(secret, timestamp)}"
        payload = {
            "msgtype": "markdown",
            # the title is what the notification shows
            "markdown": {"title": first_line(text) or "简报", "text": text},
        }
        body = sized_body(f"dingtalk robot {robot.name!r}", payload, MAX_BODY_BYTES, "DingTalk")
        return RobotRequest(url, body, {"Content-Type": "application/json"})

    def outcome(
        self, robot: RobotEntry, status: int, body: bytes, headers: Mapping[str, str]
    ) -> None:
        where = f"dingtalk robot {robot.name!r}"
        code, data = answer_code(where, status, body, "errcode")
        if code == 0:
            return
        text = str(data.get("errmsg", ""))
        if code == -1:  # "系统繁忙" (system busy): worth a retry
            raise TransientFailure(f"{where}: errcode -1: the service is busy")
        if code in THROTTLED:
            raise RetryLater(
                self.throttle_pause, f"{where}: throttled for sending too fast", chat_only=True
            )
        if code == SECURITY:
            raise security_refused(where, "dingtalk", text)
        if code in GONE:
            raise TargetGone(f"{where}: the access token does not exist or the robot is disabled")
        raise PermanentFailure(f"{where}: errcode {code}: {text}")


class DingtalkSpec(RobotSpec):
    name = "dingtalk"
    title = "DingTalk"
    order = 40
    settings_type = DingtalkSettings
    default_limits = LIMITS
    default_url = "https://oapi.dingtalk.com/robot/send?access_token="
    secret_prefixes = ("BRIEFBOT_DINGTALK_WEBHOOK_", "BRIEFBOT_DINGTALK_SECRET_")
    ranges = (*RobotSpec.ranges, ("throttle_pause", 0, True))

    def api(self, settings: RobotSettings) -> RobotApi:
        pause = settings.throttle_pause if isinstance(settings, DingtalkSettings) else 600.0
        return DingtalkApi(pause)


SPEC = DingtalkSpec()
