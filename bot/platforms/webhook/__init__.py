"""The outbound webhook: the day's brief POSTed as JSON to integrators' URLs.

Push-only, through the same ledger as every platform: each endpoint gets each brief once,
retried on 5xx and timeouts. The body is ``templates/webhook/brief.j2`` (by default the
``briefbot.brief/1`` document of :func:`bot.reports.brief_json`); the contract, headers and
signature are in the README ("Outbound webhook"):

- ``X-Briefbot-Event: brief``
- ``X-Briefbot-Delivery``: the same id on every retry of one body to one endpoint, so a
  receiver can drop a repeat
- ``X-Briefbot-Timestamp``: Unix seconds
- ``X-Briefbot-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>`` when
  ``BRIEFBOT_WEBHOOK_SECRET_<NAME>`` is set

2xx is delivered; 410 means the endpoint is gone for good; 401 and 403 reject our signature;
429 waits ``Retry-After``; other 4xx are permanent; 5xx and timeouts are retried.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from bot.domain import OutgoingMessage
from bot.errors import PermanentFailure, RetryLater, TargetAuthRejected, TargetGone
from bot.platforms.base import LengthUnit, Limits, Markup
from bot.platforms.robot import RobotApi, RobotEntry, RobotRequest, RobotSettings, RobotSpec

# Our own contract: a brief of any realistic size is one document.
LIMITS = Limits(
    max_length=1_000_000,
    length_unit=LengthUnit.BYTES,
    markup=Markup.JSON,
    global_rate=50.0,
    # a robot is paced by per_group_per_minute alone ([<platform>] per_minute)
    per_chat_interval=0.0,
    per_group_per_minute=60,
)
SIGNATURE_HEADER = "X-Briefbot-Signature"
DEFAULT_RETRY_AFTER = 60.0
MAX_RETRY_AFTER = 3600.0


@dataclass(frozen=True)
class WebhookSettings(RobotSettings):
    endpoints: tuple[RobotEntry, ...] = ()
    per_minute: int = 60


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=`` and the hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` under ``secret``."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


class WebhookApi(RobotApi):
    def request(
        self, robot: RobotEntry, url: str, secret: str, message: OutgoingMessage, now: float
    ) -> RobotRequest:
        body = message.text.encode("utf-8")
        timestamp = str(int(now))
        delivery = hashlib.sha256(robot.name.encode() + b"\0" + body).hexdigest()[:32]
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "briefbot-webhook/1",
            "X-Briefbot-Event": "brief",
            "X-Briefbot-Delivery": delivery,
            "X-Briefbot-Timestamp": timestamp,
        }
        if secret:
            headers[SIGNATURE_HEADER] = signature(secret, timestamp, body)
        return RobotRequest(url, body, headers)

    def outcome(
        self, robot: RobotEntry, status: int, body: bytes, headers: Mapping[str, str]
    ) -> None:
        where = f"webhook {robot.name!r}"
        if 200 <= status < 300:
            return
        if status == 410:
            raise TargetGone(f"{where}: the endpoint answered 410 Gone")
        if status in (401, 403):
            raise TargetAuthRejected(
                f"{where}: HTTP {status}: the endpoint refused our signature "
                "(BRIEFBOT_WEBHOOK_SECRET_<NAME>)"
            )
        if status == 429:
            try:
                wait = float(headers.get("Retry-After", DEFAULT_RETRY_AFTER))
            except ValueError:  # an HTTP date: wait the default
                wait = DEFAULT_RETRY_AFTER
            if not math.isfinite(wait) or wait < 0:  # "nan" parses as a float
                wait = DEFAULT_RETRY_AFTER
            raise RetryLater(min(wait, MAX_RETRY_AFTER), f"{where}: HTTP 429", chat_only=True)
        raise PermanentFailure(f"{where}: HTTP {status}")


class WebhookSpec(RobotSpec):
    name = "webhook"
    title = "Webhook"
    order = 90
    settings_type = WebhookSettings
    table_lists: ClassVar[Mapping[str, type]] = {"endpoints": RobotEntry}
    targets_key = "endpoints"
    target_noun = "endpoint"
    default_limits = LIMITS
    secret_prefixes = ("BRIEFBOT_WEBHOOK_URL_", "BRIEFBOT_WEBHOOK_SECRET_")

    @property
    def webhook_prefix(self) -> str:
        return "BRIEFBOT_WEBHOOK_URL_"

    def api(self, settings: RobotSettings) -> RobotApi:
        return WebhookApi()


SPEC = WebhookSpec()
