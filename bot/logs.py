"""Logging set-up: one event per line, and secrets scrubbed from every record."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable

# Libraries that log request URLs (the Telegram token is part of every Bot API URL).
NOISY = (
    "httpx",
    "httpcore",
    "telegram",
    "apscheduler",
    "aiohttp.access",
    "grpclib",
    "wechaty",
    "alembic",
)


SECRET_ENV = ("BRIEFBOT_TELEGRAM_TOKEN", "BRIEFBOT_WECHAT_TOKEN")


def scrub(text: str) -> str:
    """Replace any secret in ``text`` with ***: for error text bound for the ledger, stderr
    or a chat (libraries put tokens in exception messages)."""
    for name in SECRET_ENV:
        secret = os.environ.get(name, "")
        if len(secret) >= 6:
            text = text.replace(secret, "***")
    return text


class RedactSecrets(logging.Filter):
    """Replace every secret value in a record's final message with ***."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        for secret in self.secrets:
            message = message.replace(secret, "***")
        record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            for secret in self.secrets:
                text = text.replace(secret, "***")
            record.exc_text, record.exc_info = text, None
        return True


def setup_logging(level: str = "INFO", *, secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in NOISY:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
