"""The store interface, split by consumer: subscriptions, watchlists, signal log, alert state,
outbox, meta.

`Store` is their composition. Backends: SQLite (`bot.storage.sqlite`) and in memory
(`bot.storage.memory`, for tests); both run one contract suite. Every method is atomic, even when
its caller is cancelled. `record_signal` writes a signal, its chart, the alert state and all the
deliveries it causes in ONE transaction, so that a crash can neither lose an alert nor announce
one twice. Each consumer asks for the narrowest protocol it uses.

Retention: every signal's figures are kept for good (the history and the scorecard); its chart
only while one of its outbox rows is pending, since delivery is the chart's only reader. The
store drops the chart as the last row is marked sent or failed, in that same write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from bot.storage.whales import WhaleAlertStore
from intel.models import Action, Signal
from intel.sources.onchain.window import FlowWindowStore

__all__ = [
    "AlertStateStore",
    "Call",
    "CallState",
    "Delivery",
    "DeliveryKind",
    "DmState",
    "MetaStore",
    "OutboxItem",
    "OutboxStore",
    "SignalLog",
    "SignalOrigin",
    "Store",
    "StoredSignal",
    "Subscription",
    "SubscriptionStore",
    "Watcher",
    "WatchlistStore",
    "recording_origin",
    "symbols_after_subscribe",
    "symbols_after_unsubscribe",
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
    # Where in the chat alerts go: a forum topic's id (Telegram's message_thread_id), set by
    # the latest `subscribe`; None: the chat itself (a forum's General topic).
    thread_id: str | None = None


@dataclass(frozen=True, slots=True)
class Watcher:
    """A user who watches a symbol; `threshold` None means alerts are off for them."""

    transport: str
    user_id: str
    dm_chat_id: str
    threshold: int | None


@dataclass(frozen=True, slots=True)
class DmState:
    """What a user (by DM) or a chat (by channel alert) was last told about a symbol: the
    per-recipient alert memory."""

    action: Action
    confidence: int
    signal_id: int


@dataclass(frozen=True, slots=True)
class Call:
    """A call as the alert policy follows it: its action, a confidence, and the market time the
    action was first computed (the start of its run of cycles)."""

    action: Action
    confidence: int
    first_seen: datetime


@dataclass(frozen=True, slots=True)
class CallState:
    """A symbol's alert memory, updated by every cycle signal (see `bot.alerts.calls`).

    `latest` is the run of the action computed last (`run_cycles` cycles in a row, with the latest
    confidence); `steady` is the call the alerts announce, which changes only once a run lasted
    the dwell, and `steady_since` the market time it became steady. `moved_cycles` counts the
    cycles in a row whose confidence stood at least a step above (+) or below (-) the steady one.
    """

    latest: Call
    run_cycles: int
    steady: Call | None = None
    steady_since: datetime | None = None
    moved_cycles: int = 0


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to send because of a signal; `intro` says why (what changed, which threshold)."""

    transport: str
    chat_id: str
    kind: DeliveryKind
    intro: str
    user_id: str | None = None  # set for DMs: the store updates that user's DmState
    # A channel delivery updates the chat's DmState (what it was told) in the same way.


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One delivery: of a signal, or (`signal_id` None) of a whale alert."""

    id: int
    signal_id: int | None
    transport: str
    chat_id: str
    kind: DeliveryKind
    intro: str
    attempts: int
    created_at: datetime
    whale_alert_id: int | None = None  # set exactly when signal_id is None


@dataclass(frozen=True, slots=True)
class StoredSignal:
    id: int
    signal: Signal
    chart_png: bytes | None  # None once no pending outbox row needs it (see the module doc)
    alerted: bool  # this signal changed the symbol's steady call (its alert state)
    origin: str = SignalOrigin.CYCLE


def recording_origin(
    origin: str, deliveries: Sequence[Delivery], alerted: bool, call_state: CallState | None
) -> SignalOrigin:
    """`record_signal`'s origin, checked as every store checks it before writing anything:
    ValueError for an unknown origin, or for an on-demand signal that would alert."""
    checked = SignalOrigin(origin)
    if checked is SignalOrigin.ON_DEMAND and (alerted or deliveries or call_state):
        raise ValueError(
            "an on-demand signal never alerts: no deliveries, alerted=False, no call state"
        )
    return checked


def symbols_after_subscribe(
    current: tuple[str, ...] | None, added: Sequence[str]
) -> tuple[str, ...]:
    """The list after `subscribe`: `current` None is no subscription, () every symbol."""
    if not added or current == ():
        return ()
    return tuple(sorted({*(current or ()), *added}))


def symbols_after_unsubscribe(
    current: tuple[str, ...], removed: Sequence[str], every_symbol: Sequence[str]
) -> tuple[str, ...] | None:
    """The list after `unsubscribe`; None: the subscription ends (nothing, or nothing left)."""
    if not removed:
        return None
    if current == () and not every_symbol:
        return ()  # every symbol, and no list of them to take any away from
    rest = tuple(sorted(set(current or every_symbol) - set(removed)))
    return rest or None


class SubscriptionStore(Protocol):
    """Channel subscriptions (channel admins only; checked by the command layer)."""

    async def subscribe(
        self,
        transport: str,
        chat_id: str,
        symbols: Sequence[str],
        thread_id: str | None = None,
    ) -> Subscription:
        """Add `symbols` to the chat's subscription (made if none); none named: every symbol.

        An every-symbol subscription stays one (it covers them already). Re-enables a disabled
        subscription. Alerts go to `thread_id` (a forum topic; None: the chat) from now on.
        Returns the subscription as it now is."""
        ...

    async def unsubscribe(
        self,
        transport: str,
        chat_id: str,
        symbols: Sequence[str] = (),
        every_symbol: Sequence[str] = (),
    ) -> Subscription | None:
        """Remove `symbols` from the chat's subscription; none named: remove it altogether.

        Removing from an every-symbol subscription leaves the rest of `every_symbol` (the bot's
        symbols) as a list; removing the last symbol ends the subscription (an empty list would
        mean every symbol). Returns the subscription as it now is, None when there is none."""
        ...

    async def subscription(self, transport: str, chat_id: str) -> Subscription | None: ...

    async def subscriptions_for(self, symbol: str) -> list[Subscription]:
        """Active subscriptions that follow `symbol`, including every all-symbol one."""
        ...

    async def disable_chat(self, transport: str, chat_id: str, reason: str) -> None:
        """Stop sending to this chat: its subscription and DMs to it, until re-enabled by use."""
        ...

    async def followed_symbols(self) -> set[str]:
        """Symbols in any active subscription or watchlist (all-symbol subscriptions excluded)."""
        ...


class WatchlistStore(Protocol):
    """Users' watchlists, their alert thresholds and what each was last DM'd (DM state)."""

    async def watch_add(
        self, transport: str, user_id: str, dm_chat_id: str, symbol: str
    ) -> bool: ...
    async def watch_remove(self, transport: str, user_id: str, symbol: str) -> bool: ...
    async def watchlist(self, transport: str, user_id: str) -> list[str]: ...
    async def set_threshold(
        self, transport: str, user_id: str, dm_chat_id: str, threshold: int | None
    ) -> None: ...
    async def threshold(self, transport: str, user_id: str) -> int | None: ...

    async def watchers(self, symbol: str) -> list[Watcher]:
        """Users watching `symbol` whose DMs are not disabled (threshold None: alerts off)."""
        ...

    async def dm_states(self, symbol: str) -> dict[tuple[str, str], DmState]: ...


class SignalLog(Protocol):
    """Every signal produced, its chart and the channel alert state."""

    async def record_signal(
        self,
        signal: Signal,
        chart_png: bytes | None,
        deliveries: Sequence[Delivery],
        alerted: bool,
        origin: str = SignalOrigin.CYCLE,
        call_state: CallState | None = None,
    ) -> int:
        """Every signal produced is recorded, with its outbox rows, each told user's or chat's
        new DM state and the symbol's new `call_state` (when given), in one transaction. A cycle
        signal may alert and deliver; an on-demand one (origin "on_demand") may not: ValueError
        with deliveries, alerted or call_state. The chart is kept only with deliveries, until the
        last of them is sent or failed."""
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


class AlertStateStore(Protocol):
    """The alert policy's memory: each symbol's call state and what each chat was told.
    Written only by `SignalLog.record_signal`, with the signal that changed it."""

    async def call_state(self, symbol: str) -> CallState | None: ...

    async def chat_states(self, symbol: str) -> dict[tuple[str, str], DmState]:
        """What each chat, keyed (transport, chat_id), was last told about `symbol`."""
        ...


class OutboxStore(Protocol):
    """The deliveries `record_signal` queued: due rows, sent marks, failures with backoff."""

    async def pending_deliveries(self, limit: int) -> list[OutboxItem]:
        """Unsent, unfailed rows due now, oldest first."""
        ...

    async def mark_sent(self, item_id: int) -> None:
        """The row is sent; the last row of its signal to finish drops the signal's chart."""
        ...

    async def mark_failed(self, item_id: int, reason: str, permanent: bool) -> None:
        """Permanent: fail the row and disable its chat (and drop the chart, as mark_sent).
        Transient: retry later, with backoff; the chart stays."""
        ...

    async def outbox_counts(self) -> dict[str, int]: ...


class MetaStore(Protocol):
    """Small key/value state (the last cycle's market and wall-clock times)."""

    async def get_meta(self, key: str) -> str | None: ...
    async def set_meta(self, key: str, value: str) -> None: ...


class Store(
    SubscriptionStore,
    WatchlistStore,
    SignalLog,
    AlertStateStore,
    OutboxStore,
    MetaStore,
    WhaleAlertStore,
    Protocol,
):
    """The whole store, opened once by the composition root and closed last."""

    @property
    def flow_window(self) -> FlowWindowStore:
        """Where live whale flows keep their hourly window over restarts (intel's protocol)."""
        ...

    async def open(self) -> None: ...
    async def close(self) -> None: ...
