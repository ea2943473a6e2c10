"""Outbound messages: the pacer, one outbox per platform, and the engine that fans a brief out
through the ledger. Every message that leaves briefbot goes through an :class:`Outbox`."""

from bot.delivery.claims import PROCESS_NONCE, claim_is_stale, default_worker_id
from bot.delivery.engine import DeliveryEngine, DeliveryReport, Outcome, ProgressCallback
from bot.delivery.outbox import Outbox, build_outbox
from bot.delivery.pacer import Pacer

__all__ = [
    "PROCESS_NONCE",
    "DeliveryEngine",
    "DeliveryReport",
    "Outbox",
    "Outcome",
    "Pacer",
    "ProgressCallback",
    "build_outbox",
    "claim_is_stale",
    "default_worker_id",
]
