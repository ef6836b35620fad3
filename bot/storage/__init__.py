"""Persistence behind the `Store` protocol; `SqliteStore` is the backend today."""

from bot.storage.base import (
    Delivery,
    DeliveryKind,
    DmState,
    OutboxItem,
    SignalOrigin,
    Store,
    StoredSignal,
    Subscription,
    Watcher,
)
from bot.storage.sqlite import ReadOnlyStoreError, SqliteStore

__all__ = [
    "Delivery",
    "DeliveryKind",
    "DmState",
    "OutboxItem",
    "ReadOnlyStoreError",
    "SignalOrigin",
    "SqliteStore",
    "Store",
    "StoredSignal",
    "Subscription",
    "Watcher",
]
