"""The store: SQLAlchemy over SQLite by default or PostgreSQL by URL, schema migrated on open.

Its parts, one module each: :mod:`~bot.store.database` (open, migrate), :mod:`~bot.store.content`
(items, briefs), :mod:`~bot.store.search_index` (the full-text index),
:mod:`~bot.store.query_stats` (what readers search for), :mod:`~bot.store.subscribers`,
:mod:`~bot.store.ledger` (deliveries) and :mod:`~bot.store.editorial` (brief states, audit).
"""

from bot.store.content import ContentStore, IngestCounts, item_identity
from bot.store.editorial import EditorialStore
from bot.store.ledger import DeliveryRecord, Ledger, PartSent
from bot.store.query_stats import QueryStats
from bot.store.search_index import SearchIndex
from bot.store.subscribers import Subscriber, SubscriberStore


class Store(ContentStore, SearchIndex, QueryStats, SubscriberStore, Ledger, EditorialStore):
    """All persistent state. Methods are short blocking transactions: async code runs the
    heavy ones in a thread (see :mod:`bot.delivery.engine`)."""


__all__ = [
    "DeliveryRecord",
    "IngestCounts",
    "PartSent",
    "Store",
    "Subscriber",
    "item_identity",
]
