"""The one error hierarchy of briefbot: each message says what to fix and where."""

from __future__ import annotations


class BriefbotError(Exception):
    """Base of every error briefbot raises on purpose."""


class ConfigError(BriefbotError):
    """A setting is missing or invalid; the message names the setting and its source."""


class ContentError(BriefbotError):
    """A content file cannot be read; carries the file and, where known, the line."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = message
        where = path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class StoreError(BriefbotError):
    """The database cannot be opened, migrated or queried."""


class RenderError(BriefbotError):
    """A template is missing or fails to render."""


class DeliveryError(BriefbotError):
    """Base of the platform-neutral outcomes a platform adapter raises from a send."""


class RetryLater(DeliveryError):
    """The platform asked us to slow down (Telegram 429); retry after ``retry_after`` seconds."""

    def __init__(
        self, retry_after: float, message: str = "rate limited", *, chat_only: bool = False
    ) -> None:
        self.retry_after = retry_after
        # the pause is one chat's (a work-chat robot throttled alone), not the platform's
        self.chat_only = chat_only
        super().__init__(f"{message} (retry after {retry_after:g}s)")


class TransientFailure(DeliveryError):
    """Network error, timeout or a 5xx: worth a bounded number of retries with backoff."""


class TargetGone(DeliveryError):
    """The bot was blocked, kicked or the chat no longer exists (Telegram 403): do not retry."""


class TargetMigrated(DeliveryError):
    """The chat moved to a new id (a Telegram group became a supergroup): resend there."""

    def __init__(self, new_chat_id: str) -> None:
        self.new_chat_id = new_chat_id
        super().__init__(f"chat migrated to {new_chat_id}")


class PermanentFailure(DeliveryError):
    """The platform rejected the message itself (Telegram 400): record the reason, do not retry."""


class TargetAuthRejected(PermanentFailure):
    """One target's own credential was refused (a work-chat robot's signature, IP allow-list
    or keyword setting; a webhook endpoint's 401): that target fails, the others go on."""


class AuthRejected(DeliveryError):
    """The platform rejected our credential (Telegram 401, gRPC UNAUTHENTICATED): no send to
    any chat can succeed, so the whole fan-out stops and its rows stay pending."""


class OverDailyCap(DeliveryError):
    """The account's daily message cap is used up: the message waits for tomorrow's run."""


class NothingToSend(BriefbotError):
    """The day has no items."""


class BriefChanged(BriefbotError):
    """The brief differs from what an editor approved (or what was published): the schedule
    does not send it."""


class UsageError(BriefbotError):
    """A command cannot do what was asked (a missing store, a bad combination of options)."""
