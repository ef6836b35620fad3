"""Persistence behind the `Store` protocol; `SqliteStore` is the backend today."""

from bot.storage.base import (
    Delivery,
    DeliveryKind,
    DmState,
    OutboxItem,
    Store,
    StoredSignal,
    Subscription,
    Watcher,
)
from bot.storage.sqlite import SqliteStore

__all__ = [
    "Delivery",
    "DeliveryKind",
    "DmState",
    "OutboxItem",
    "SqliteStore",
    "Store",
    "StoredSignal",
    "Subscription",
    "Watcher",
]
