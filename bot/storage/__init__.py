"""Persistence behind the `Store` protocol and its per-consumer parts; `SqliteStore` is the
backend, `MemoryStore` its in-memory twin for tests."""

from bot.storage.base import (
    AlertStateStore,
    Call,
    CallState,
    Delivery,
    DeliveryKind,
    DmState,
    MetaStore,
    OutboxItem,
    OutboxStore,
    SignalLog,
    SignalOrigin,
    Store,
    StoredSignal,
    Subscription,
    SubscriptionStore,
    Watcher,
    WatchlistStore,
)
from bot.storage.memory import MemoryStore, MemoryTables
from bot.storage.sqlite import ReadOnlyStoreError, SqliteStore

__all__ = [
    "AlertStateStore",
    "Call",
    "CallState",
    "Delivery",
    "DeliveryKind",
    "DmState",
    "MemoryStore",
    "MemoryTables",
    "MetaStore",
    "OutboxItem",
    "OutboxStore",
    "ReadOnlyStoreError",
    "SignalLog",
    "SignalOrigin",
    "SqliteStore",
    "Store",
    "StoredSignal",
    "Subscription",
    "SubscriptionStore",
    "Watcher",
    "WatchlistStore",
]
