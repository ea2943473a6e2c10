"""Logging set-up, and the one redaction rule: secrets never, personal ids masked.

:func:`scrub` is what every error text bound for the ledger, stderr or a chat goes through,
and the log filter applies the same function to every record, so there is one list of
secrets (:func:`register_secrets`, filled from the settings at start) and one masking rule.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable

# Libraries that log request URLs or chatter at INFO; platforms add their own (a bot token is
# part of every Bot API URL).
NOISY = ("httpx", "httpcore", "apscheduler", "aiohttp.access", "alembic")
# Shorter values are not secrets worth replacing (and would garble ordinary text).
_MIN_SECRET = 6
_secrets: set[str] = set()
_id_patterns: list[re.Pattern[str]] = []
_PREFIX = re.compile(r"^[a-z]{2,8}_")  # a kind of id, such as wxid_
_SUFFIX = re.compile(r"@[a-z]{2,16}$")  # a kind of id, such as @chatroom


def register_secrets(secrets: Iterable[str]) -> None:
    """Values :func:`scrub` replaces with *** from now on (tokens, webhook keys)."""
    _secrets.update(s for s in secrets if len(s) >= _MIN_SECRET)


def _load_id_patterns() -> list[re.Pattern[str]]:
    if not _id_patterns:
        from bot.platforms import specs

        _id_patterns.extend(re.compile(p) for s in specs().values() for p in s.personal_ids)
    return _id_patterns


def scrub(text: str) -> str:
    """``text`` without any registered secret and with personal ids (as the platforms
    describe them) masked: for error text bound for the ledger, stderr, a chat or a log
    (libraries put tokens and ids in their messages)."""
    for secret in _secrets:
        text = text.replace(secret, "***")
    for pattern in _load_id_patterns():
        text = pattern.sub(lambda m: mask(m.group(0)), text)
    return text


def mask(value: str | None) -> str:
    """Shorten an id for logs: ``wxid_abcdef123yz`` → ``wxid_ab…yz``.

    A short lowercase prefix ending in ``_`` and an ``@kind`` suffix are kept (they say what
    kind of id it is); of the rest only the first and last two characters are shown,
    nothing of short values.
    """
    if not value:
        return "-"
    prefix, core, suffix = "", value, ""
    if found := _PREFIX.match(core):
        prefix, core = found.group(0), core[found.end() :]
    if found := _SUFFIX.search(core):
        core, suffix = core[: found.start()], found.group(0)
    if len(core) <= 6:
        return f"{prefix}…{suffix}"
    return f"{prefix}{core[:2]}…{core[-2:]}{suffix}"


def log_id(platform: str, chat_id: str) -> str:
    """An id as logs may show it: masked where the platform's ids are personal data (its
    registry entry says so), kept elsewhere for the audit trail (Telegram user ids)."""
    from bot.platforms import specs

    spec = specs().get(platform)
    return mask(chat_id) if spec is None or spec.masks_ids else chat_id


def log_target(platform: str, chat_id: str) -> str:
    return f"{platform}:{log_id(platform, chat_id)}"


class Redact(logging.Filter):
    """Applies :func:`scrub` to a record's final message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = scrub(record.getMessage())
        record.msg, record.args = message, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def setup_logging(level: str = "INFO", *, secrets: Iterable[str] = ()) -> None:
    register_secrets(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S")
    )
    handler.addFilter(Redact())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    from bot.platforms import specs

    noisy = [*NOISY, *(name for s in specs().values() for name in s.noisy_loggers)]
    for name in noisy:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
