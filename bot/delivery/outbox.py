"""One platform's outbox: every message to that platform leaves through here.

Brief parts, chat replies, admin notices and alerts alike take a turn from the platform's
pacer, an in-flight slot, the daily cap, and the retry rules: a 429 pauses every send of the
platform, a network error or 5xx is retried with backoff, a rejected credential stops the
outbox for good (no request after it can succeed).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.config import DeliverySettings
from bot.delivery.pacer import Clock, Pacer, Sleep
from bot.domain import OutgoingMessage, Target
from bot.errors import AuthRejected, DeliveryError, OverDailyCap, RetryLater, TransientFailure
from bot.logs import log_target, scrub
from bot.platforms.base import Limits, Platform
from bot.store import Store

log = logging.getLogger("briefbot.outbox")

# At most this many 429s in a row for one message before it is left for a later run.
MAX_RATE_LIMITED = 20
# After a rejected credential, sends are refused without a request for this long; then one
# is tried again (a WeChat gateway may accept the token again after a restart).
REJECTED_FOR = 60.0

BeforeSend = Callable[[], Awaitable[None]]
OnRetry = Callable[[DeliveryError], None]


@dataclass
class OutboxStats:
    sent: int = 0
    retries: int = 0
    rate_limited: int = 0


class Outbox:
    """Sends one message at a time, paced and retried; raises the final outcome."""

    def __init__(
        self,
        platform: Platform,
        settings: DeliverySettings,
        pacer: Pacer,
        *,
        sleep: Sleep = asyncio.sleep,
        count_urgent: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.platform = platform
        # the ledger counts brief parts; replies and notices are counted here (daily caps)
        self._count_urgent = count_urgent
        self.settings = settings
        self.pacer = pacer
        self.stats = OutboxStats()
        self.rejected: AuthRejected | None = None
        self._rejected_at = 0.0
        self._sleep = sleep
        self._in_flight = asyncio.Semaphore(settings.max_in_flight)

    @property
    def name(self) -> str:
        return self.platform.name

    @property
    def limits(self) -> Limits:
        return self.pacer.limits

    def cap_day(self) -> dt.date | None:
        """The day a message sent now counts for, if the platform has a daily cap."""
        return self.pacer.today() if self.limits.daily_cap is not None else None

    async def send(
        self,
        target: Target,
        message: OutgoingMessage,
        *,
        urgent: bool = False,
        before_send: BeforeSend | None = None,
        on_retry: OnRetry | None = None,
    ) -> str:
        """Deliver ``message`` to ``target``; returns the platform's message id.

        Raises :class:`OverDailyCap`, :class:`AuthRejected`, ``RetryLater`` (asked to wait
        longer than ``max_retry_after``, or too often), ``TransientFailure`` (after
        ``max_attempts``), or the platform's final answer (``TargetGone``,
        ``TargetMigrated``, ``PermanentFailure``).

        ``urgent`` messages (replies, notices) skip the broadcast's queue: no in-flight slot
        to wait for, the next free unit of the platform's window, the chat's own spacing
        kept. A broadcast never starves them, and they never break a limit.
        """
        transient = rate_limited = 0
        while True:
            self._check_may_send()
            if not self.pacer.reserve():
                raise OverDailyCap(
                    f"daily cap of {self.limits.daily_cap} messages reached on {self.name}"
                )
            try:
                async with self.pacer.chat_turn(target), contextlib.AsyncExitStack() as gates:
                    if not urgent:  # an urgent send does not queue for an in-flight slot
                        await gates.enter_async_context(self._in_flight)
                    await gates.enter_async_context(self.pacer.slot(urgent=urgent))
                    self._check_may_send()  # the wait may have been long
                    if before_send is not None:
                        await before_send()
                    message_id = await self.platform.send(target, message)
            except RetryLater as exc:
                self.pacer.refund()
                rate_limited += 1
                self.stats.rate_limited += 1
                # the platform's pause holds for every send, even one that gives up on it
                if exc.chat_only:
                    self.pacer.hold_chat(target, exc.retry_after)
                else:
                    self.pacer.hold(exc.retry_after)
                if (
                    exc.retry_after > self.settings.max_retry_after
                    or rate_limited > MAX_RATE_LIMITED
                ):
                    raise
                log.warning(
                    "rate limited chat=%s retry_after=%s", self._who(target), exc.retry_after
                )
                if on_retry is not None:
                    on_retry(exc)
                continue
            except TransientFailure as exc:
                self.pacer.refund()
                transient += 1
                self.stats.retries += 1
                if transient >= self.settings.max_attempts:
                    raise TransientFailure(f"gave up after {transient} attempts: {exc}") from exc
                delay = min(
                    self.settings.backoff_max, self.settings.backoff_base * 2 ** (transient - 1)
                )
                log.warning(
                    "transient failure chat=%s error=%s retry_in=%.1fs",
                    self._who(target),
                    scrub(str(exc)),
                    delay,
                )
                if on_retry is not None:
                    on_retry(exc)
                await self._sleep(delay)
                continue
            except AuthRejected as exc:
                self.pacer.refund()
                if self.rejected is None:
                    log.error("%s: %s", self.name, scrub(str(exc)))
                self.rejected, self._rejected_at = exc, self.pacer.now()
                raise
            except BaseException:
                self.pacer.refund()
                raise
            self.stats.sent += 1
            if urgent and self._count_urgent is not None:
                try:
                    await self._count_urgent()
                except Exception:
                    log.exception("could not count a message towards the daily cap")
            return message_id

    def _check_may_send(self) -> None:
        """Refuse without a request while the credential is known bad or the platform's
        pause is longer than we wait."""
        if self.rejected is not None:
            if self.pacer.now() - self._rejected_at < REJECTED_FOR:
                raise AuthRejected(str(self.rejected))
            self.rejected = None  # try once more: the credential may be good again
        held = self.pacer.held_for()
        if held > self.settings.max_retry_after:
            raise RetryLater(held, f"{self.name} asked to pause longer than max_retry_after")

    def _who(self, target: Target) -> str:
        return log_target(target.platform, target.chat_id)


def build_outbox(
    platform: Platform,
    store: Store,
    settings: DeliverySettings,
    *,
    today: Callable[[], dt.date],
    clock: Clock = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> Outbox:
    """An outbox whose daily cap counts, after a restart too, every message that went out
    on ``platform`` on ``today()`` (the brief's day): brief parts, replies and notices."""

    def sent_earlier(day: dt.date) -> int:
        return store.messages_counted(platform.name, day)

    async def count_reply() -> None:
        await asyncio.to_thread(store.count_message, platform.name, today())

    pacer = Pacer(
        platform.limits, clock=clock, sleep=sleep, rng=rng, today=today, already_sent=sent_earlier
    )
    # only a daily cap needs replies and notices counted across restarts
    counted = count_reply if platform.limits.daily_cap is not None else None
    return Outbox(platform, settings, pacer, sleep=sleep, count_urgent=counted)
