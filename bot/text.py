"""Text normalisation shared by storage and search, so both see Chinese and English alike."""

from __future__ import annotations

import re
import unicodedata

from bot.domain import Target

_SPACE = re.compile(r"[\s\u200b\u200c\u200d\ufeff]+")


def normalize(text: str) -> str:
    """NFKC (full-width → ASCII), case-folded, whitespace collapsed: the form search compares."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def mask(value: str | None) -> str:
    """Shorten an id for logs: ``wxid_abcdef123yz`` → ``wxid_ab…yz``.

    A ``wxid_`` prefix and an ``@chatroom`` suffix are kept (they say what kind of id it is);
    of the rest only the first and last two characters are shown, nothing of short values.
    """
    if not value:
        return "-"
    prefix, core, suffix = "", value, ""
    if core.startswith("wxid_"):
        prefix, core = "wxid_", core[5:]
    if core.endswith("@chatroom"):
        core, suffix = core[: -len("@chatroom")], "@chatroom"
    if len(core) <= 6:
        return f"{prefix}…{suffix}"
    return f"{prefix}{core[:2]}…{core[-2:]}{suffix}"


def log_id(platform: str, chat_id: str) -> str:
    """An id as logs may show it: WeChat ids are personal, so masked; Telegram ids are kept
    for the audit trail."""
    return mask(chat_id) if platform == "wechat" else chat_id


def log_target(target: Target) -> str:
    return f"{target.platform}:{log_id(target.platform, target.chat_id)}"
