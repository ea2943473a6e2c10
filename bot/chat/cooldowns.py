"""Per-person and per-group cooldowns, so a flood of queries does not become a flood of replies."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bot.domain import ChatKind, IncomingMessage

log = logging.getLogger("briefbot.chat")


class Cooldowns:
    """Remembers when each person and group was last answered, per scope.

    Only what is recorded starts a cooldown; a hint counts in a scope of its own, so that
    following a hint at once is answered.
    """

    def __init__(
        self,
        user_cooldown: float,
        group_cooldown: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.user_cooldown = user_cooldown
        self.group_cooldown = group_cooldown
        self._clock = clock
        self._last: dict[str, float] = {}

    def cooling(
        self,
        message: IncomingMessage,
        *,
        record: bool = True,
        scope: str = "answer",
        seconds: float | None = None,
        per_user: bool = True,
    ) -> bool:
        """True if ``message`` came too soon after the last answer in ``scope``; otherwise,
        with ``record``, this answer's time is remembered. ``seconds`` replaces the group's
        cooldown in this scope; ``per_user=False`` counts only the group."""
        now = self._clock()
        keys: list[tuple[str, float]] = []
        if per_user:
            keys.append((f"{scope}:user:{message.user_id}", self.user_cooldown))
        if message.chat_kind is not ChatKind.PRIVATE:
            group = self.group_cooldown if seconds is None else seconds
            keys.append((f"{scope}:chat:{message.chat_id}", group))
        for key, cooldown in keys:
            if cooldown and now - self._last.get(key, -cooldown - 1) < cooldown:
                log.info("cooldown platform=%s scope=%s", message.platform, scope)
                return True
        if record:
            for key, _ in keys:
                self._last[key] = now
        return False
