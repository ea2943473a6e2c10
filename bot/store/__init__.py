"""The store: SQLAlchemy over SQLite by default or PostgreSQL by URL, schema migrated on open."""

from bot.store.store import (
    DeliveryRecord,
    IngestCounts,
    Store,
    Subscriber,
    item_identity,
)

__all__ = ["DeliveryRecord", "IngestCounts", "Store", "Subscriber", "item_identity"]
