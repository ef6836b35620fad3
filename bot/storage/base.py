"""The store interface: chats, subscriptions, watchlists, thresholds, signals and the outbox.

One backend today (SQLite through aiosqlite); another SQL backend implements this same Protocol
and runs the same contract tests. Every method is atomic, even when its caller is cancelled.
`record_signal` writes a signal, its chart, the alert state and all the deliveries it causes in
ONE transaction, so that a crash can neither lose an alert nor announce one twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from intel.models import Action, Signal

__all__ = [
    "Delivery",
    "DeliveryKind",
    "DmState",
    "OutboxItem",
    "SignalOrigin",
    "Store",
    "StoredSignal",
    "Subscription",
    "Watcher",
]


class DeliveryKind(StrEnum):
    CHANNEL = "channel"  # a subscribed channel or group
    DM = "dm"  # a direct message to a watching user


class SignalOrigin(StrEnum):
    CYCLE = "cycle"  # the scheduled cycle: drives the alert state and the outbox
    ON_DEMAND = "on_demand"  # asked for in chat: kept for the history, never alerts


@dataclass(frozen=True, slots=True)
class Subscription:
    transport: str
    chat_id: str
    symbols: tuple[str, ...]  # empty: every symbol the bot covers
    active: bool = True
    disabled_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Watcher:
    """A user who watches a symbol; `threshold` None means alerts are off for them."""

    transport: str
    user_id: str
    dm_chat_id: str
    threshold: int | None


@dataclass(frozen=True, slots=True)
class DmState:
    """What a user was last DM'd about a symbol (the per-user alert memory)."""

    action: Action
    confidence: int
    signal_id: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to send because of a signal; `intro` says why (what changed, which threshold)."""

    transport: str
    chat_id: str
    kind: DeliveryKind
    intro: str
    user_id: str | None = None  # set for DMs: the store updates that user's DmState


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    signal_id: int
    transport: str
    chat_id: str
    kind: DeliveryKind
    intro: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StoredSignal:
    id: int
    signal: Signal
    chart_png: bytes | None
    alerted: bool  # this signal changed the channel alert state
    origin: str = SignalOrigin.CYCLE


class Store(Protocol):
    async def open(self) -> None: ...
    async def close(self) -> None: ...

    # Channel subscriptions (channel admins only; checked by the command layer).
    async def subscribe(
        self, transport: str, chat_id: str, symbols: Sequence[str]
    ) -> Subscription: ...
    async def unsubscribe(self, transport: str, chat_id: str) -> bool: ...
    async def subscription(self, transport: str, chat_id: str) -> Subscription | None: ...
    async def subscriptions_for(self, symbol: str) -> list[Subscription]: ...
    async def disable_chat(self, transport: str, chat_id: str, reason: str) -> None: ...

    # Watchlists and alert thresholds.
    async def watch_add(
        self, transport: str, user_id: str, dm_chat_id: str, symbol: str
    ) -> bool: ...
    async def watch_remove(self, transport: str, user_id: str, symbol: str) -> bool: ...
    async def watchlist(self, transport: str, user_id: str) -> list[str]: ...
    async def set_threshold(
        self, transport: str, user_id: str, dm_chat_id: str, threshold: int | None
    ) -> None: ...
    async def threshold(self, transport: str, user_id: str) -> int | None: ...
    async def watchers(self, symbol: str) -> list[Watcher]: ...
    async def dm_states(self, symbol: str) -> dict[tuple[str, str], DmState]: ...

    async def followed_symbols(self) -> set[str]:
        """Symbols in any active subscription or watchlist (all-symbol subscriptions excluded)."""
        ...

    # Signals, alert state and the outbox.
    async def record_signal(
        self,
        signal: Signal,
        chart_png: bytes | None,
        deliveries: Sequence[Delivery],
        alerted: bool,
        origin: str = SignalOrigin.CYCLE,
    ) -> int:
        """Every signal produced is recorded. A cycle signal may alert and deliver; an
        on-demand one (origin "on_demand") may not: ValueError with deliveries or alerted."""
        ...

    async def last_signal(self, symbol: str) -> StoredSignal | None:
        """The last cycle signal (on-demand ones never count)."""
        ...

    async def last_alerted(self, symbol: str) -> StoredSignal | None: ...
    async def load_signal(self, signal_id: int) -> StoredSignal | None: ...

    async def signals(
        self, symbol: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[StoredSignal]:
        """The history, oldest first: cycle and on-demand signals alike (see `origin`)."""
        ...

    async def pending_deliveries(self, limit: int) -> list[OutboxItem]: ...
    async def mark_sent(self, item_id: int) -> None: ...
    async def mark_failed(self, item_id: int, reason: str, permanent: bool) -> None: ...
    async def outbox_counts(self) -> dict[str, int]: ...

    # Small key/value state (the last cycle's market and wall-clock times).
    async def get_meta(self, key: str) -> str | None: ...
    async def set_meta(self, key: str, value: str) -> None: ...
