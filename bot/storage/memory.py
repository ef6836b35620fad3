"""The Store in memory, with SQLite's semantics, for tests and benchmarks (as httpx ships
`MockTransport` beside its transports). It runs the same contract suite as `SqliteStore`.

Every method runs without an await between its reads and writes, so each is atomic on the event
loop, even when its caller is cancelled; `record_signal` checks every row before it writes any.
`MemoryTables` is the storage: two `MemoryStore`s on one `MemoryTables` see the same data, as
two `SqliteStore`s on one file do (a close and reopen keeps everything).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from bot.storage.base import (
    CallState,
    Delivery,
    DeliveryKind,
    DmState,
    OutboxItem,
    SignalOrigin,
    StoredSignal,
    Subscription,
    Watcher,
    recording_origin,
    symbols_after_subscribe,
    symbols_after_unsubscribe,
)
from bot.storage.facade import StoreFacade
from bot.storage.memory_flows import FlowTables, MemoryFlowWindow
from bot.storage.memory_whales import MemoryWhaleAlerts, WhaleTables
from intel.models import Signal
from intel.serialize import signal_from_json, signal_to_json
from intel.timeutil import iso, to_ms, utcnow

__all__ = ["MemoryStore", "MemoryTables"]

ChatKey = tuple[str, str]  # (transport, chat_id)
UserKey = tuple[str, str]  # (transport, user_id)


@dataclass(slots=True)
class _SubscriptionRow:
    symbols: tuple[str, ...]
    created_at: str
    active: bool = True
    disabled_reason: str | None = None
    thread_id: str | None = None


@dataclass(slots=True)
class _UserRow:
    dm_chat_id: str
    threshold: int | None = None
    dm_disabled_reason: str | None = None


@dataclass(frozen=True, slots=True)
class _SignalRow:
    symbol: str
    as_of_ms: int
    alerted: bool
    payload: str  # the JSON SQLite would store: a round trip as lossy as SQLite's
    origin: SignalOrigin


@dataclass(slots=True)
class _OutboxRow:
    item: OutboxItem
    user_id: str | None
    next_attempt_s: float
    status: str = "pending"  # "sent" | "failed"
    last_error: str | None = None
    finished_s: float | None = None


@dataclass(slots=True)
class MemoryTables:
    """The data of a memory store: the tables of the SQLite schema, as dicts."""

    subscriptions: dict[ChatKey, _SubscriptionRow] = field(default_factory=dict)
    users: dict[UserKey, _UserRow] = field(default_factory=dict)
    watchlist: set[tuple[str, str, str]] = field(default_factory=set)  # (transport, user, symbol)
    signals: dict[int, _SignalRow] = field(default_factory=dict)
    charts: dict[int, bytes] = field(default_factory=dict)  # signal id -> PNG, while pending
    last_alerts: dict[str, int] = field(default_factory=dict)  # symbol -> signal id
    dm_states: dict[tuple[str, str, str], DmState] = field(default_factory=dict)
    call_states: dict[str, CallState] = field(default_factory=dict)  # symbol -> its call state
    # (transport, chat_id, symbol) -> what the chat was last told
    chat_states: dict[tuple[str, str, str], DmState] = field(default_factory=dict)
    outbox: dict[int, _OutboxRow] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    flows: FlowTables = field(default_factory=FlowTables)  # the whale-flow window
    next_signal_id: int = 1
    next_outbox_id: int = 1
    whales: WhaleTables = field(default_factory=WhaleTables)  # whale alerts and their chats


class _Tables:
    """The shared tables of one open store, its clock, and the not-open check."""

    def __init__(self, tables: MemoryTables, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self._tables = tables
        self.is_open = False

    @property
    def t(self) -> MemoryTables:
        if not self.is_open:
            raise RuntimeError("MemoryStore is not open")
        return self._tables

    def now_s(self) -> float:
        return self.clock().timestamp()

    def disable_chat(self, transport: str, chat_id: str, reason: str) -> None:
        t = self.t
        if (row := t.subscriptions.get((transport, chat_id))) is not None:
            row.active, row.disabled_reason = False, reason
        for (user_transport, _), user in t.users.items():
            if user_transport == transport and user.dm_chat_id == chat_id:
                user.dm_disabled_reason = reason
        if (transport, chat_id) in t.whales.chats:
            t.whales.disabled[transport, chat_id] = reason

    def add_outbox_row(self, item: OutboxItem, user_id: str | None, now_s: float) -> None:
        """Append a pending row; `item.id` must be `next_outbox_id`."""
        t = self.t
        t.outbox[item.id] = _OutboxRow(item, user_id, now_s)
        t.next_outbox_id = item.id + 1

    def drop_chart_if_delivered(self, signal_id: int | None) -> None:
        """SQLite's trigger of migration 4: no pending row of the signal left, no chart."""
        if signal_id is None:  # a whale alert's row: no chart
            return
        t = self.t
        pending = (r for r in t.outbox.values() if r.status == "pending")
        if all(row.item.signal_id != signal_id for row in pending):
            t.charts.pop(signal_id, None)

    def upsert_user(self, transport: str, user_id: str, dm_chat_id: str) -> _UserRow:
        # A user who talks to the bot again re-enables DMs that a failure had disabled.
        user = self.t.users.setdefault((transport, user_id), _UserRow(dm_chat_id))
        user.dm_chat_id, user.dm_disabled_reason = dm_chat_id, None
        return user


class MemorySubscriptions:
    """`SubscriptionStore` in memory."""

    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    async def subscribe(
        self,
        transport: str,
        chat_id: str,
        symbols: Sequence[str],
        thread_id: str | None = None,
    ) -> Subscription:
        t, key = self._tables.t, (transport, chat_id)
        row = t.subscriptions.get(key)
        chosen = symbols_after_subscribe(None if row is None else row.symbols, symbols)
        if row is None:
            row = t.subscriptions[key] = _SubscriptionRow(chosen, iso(self._tables.clock()))
        row.symbols, row.active, row.disabled_reason = chosen, True, None
        row.thread_id = thread_id
        return _subscription(key, row)

    async def unsubscribe(
        self,
        transport: str,
        chat_id: str,
        symbols: Sequence[str] = (),
        every_symbol: Sequence[str] = (),
    ) -> Subscription | None:
        t, key = self._tables.t, (transport, chat_id)
        row = t.subscriptions.get(key)
        if row is None:
            return None
        rest = symbols_after_unsubscribe(row.symbols, symbols, every_symbol)
        for state in [k for k in t.chat_states if k[:2] == key]:
            if rest is None or state[2] not in rest:  # a new subscription starts from the call
                del t.chat_states[state]
        if rest is None:
            del t.subscriptions[key]
            return None
        row.symbols = rest
        return _subscription(key, row)

    async def subscription(self, transport: str, chat_id: str) -> Subscription | None:
        row = self._tables.t.subscriptions.get((transport, chat_id))
        return None if row is None else _subscription((transport, chat_id), row)

    async def subscriptions_for(self, symbol: str) -> list[Subscription]:
        return [
            _subscription(key, row)
            for key, row in sorted(self._tables.t.subscriptions.items())
            if row.active and (not row.symbols or symbol in row.symbols)
        ]

    async def disable_chat(self, transport: str, chat_id: str, reason: str) -> None:
        self._tables.disable_chat(transport, chat_id, reason)

    async def followed_symbols(self) -> set[str]:
        t = self._tables.t
        subscribed = {s for row in t.subscriptions.values() if row.active for s in row.symbols}
        return subscribed | {symbol for _, _, symbol in t.watchlist}


def _subscription(key: ChatKey, row: _SubscriptionRow) -> Subscription:
    return Subscription(key[0], key[1], row.symbols, row.active, row.disabled_reason, row.thread_id)


class MemoryWatchlists:
    """`WatchlistStore` in memory."""

    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    async def watch_add(self, transport: str, user_id: str, dm_chat_id: str, symbol: str) -> bool:
        self._tables.upsert_user(transport, user_id, dm_chat_id)
        watchlist = self._tables.t.watchlist
        added = (transport, user_id, symbol) not in watchlist
        watchlist.add((transport, user_id, symbol))
        return added

    async def watch_remove(self, transport: str, user_id: str, symbol: str) -> bool:
        watchlist = self._tables.t.watchlist
        removed = (transport, user_id, symbol) in watchlist
        watchlist.discard((transport, user_id, symbol))
        return removed

    async def watchlist(self, transport: str, user_id: str) -> list[str]:
        entries = self._tables.t.watchlist
        return sorted(s for t, u, s in entries if (t, u) == (transport, user_id))

    async def set_threshold(
        self, transport: str, user_id: str, dm_chat_id: str, threshold: int | None
    ) -> None:
        self._tables.upsert_user(transport, user_id, dm_chat_id).threshold = threshold

    async def threshold(self, transport: str, user_id: str) -> int | None:
        user = self._tables.t.users.get((transport, user_id))
        return None if user is None else user.threshold

    async def watchers(self, symbol: str) -> list[Watcher]:
        t = self._tables.t
        keys = sorted((tr, u) for tr, u, s in t.watchlist if s == symbol)
        return [
            Watcher(key[0], key[1], user.dm_chat_id, user.threshold)
            for key in keys
            if (user := t.users[key]).dm_disabled_reason is None
        ]

    async def dm_states(self, symbol: str) -> dict[tuple[str, str], DmState]:
        states = self._tables.t.dm_states
        return {(tr, u): state for (tr, u, s), state in states.items() if s == symbol}


class MemorySignalLog:
    """`SignalLog` and `AlertStateStore` in memory."""

    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    async def record_signal(
        self,
        signal: Signal,
        chart_png: bytes | None,
        deliveries: Sequence[Delivery],
        alerted: bool,
        origin: str = SignalOrigin.CYCLE,
        call_state: CallState | None = None,
    ) -> int:
        origin = recording_origin(origin, deliveries, alerted, call_state)
        # Everything that can fail comes before the first write: all of it, or none.
        kinds = [DeliveryKind(d.kind) for d in deliveries]  # SQLite's CHECK (kind IN ...)
        payload = json.dumps(signal_to_json(signal))
        t, now_s = self._tables.t, self._tables.now_s()
        signal_id = t.next_signal_id
        t.next_signal_id += 1
        t.signals[signal_id] = _SignalRow(
            signal.symbol, to_ms(signal.as_of), alerted, payload, origin
        )
        if chart_png is not None and deliveries:  # no row to deliver: nobody reads it
            t.charts[signal_id] = chart_png
        for delivery, kind in zip(deliveries, kinds, strict=True):
            item = OutboxItem(
                t.next_outbox_id,
                signal_id,
                delivery.transport,
                delivery.chat_id,
                kind,
                delivery.intro,
                attempts=0,
                created_at=datetime.fromtimestamp(now_s, UTC),
            )
            t.outbox[item.id] = _OutboxRow(item, delivery.user_id, now_s)
            t.next_outbox_id += 1
            told = DmState(signal.action, signal.confidence, signal_id)
            delivery_chat = (delivery.transport, delivery.chat_id)
            if delivery.user_id is not None:
                t.dm_states[delivery.transport, delivery.user_id, signal.symbol] = told
            elif kind is DeliveryKind.CHANNEL and delivery_chat in t.subscriptions:
                t.chat_states[delivery.transport, delivery.chat_id, signal.symbol] = told
        if alerted:
            t.last_alerts[signal.symbol] = signal_id
        if call_state is not None:
            t.call_states[signal.symbol] = call_state
        return signal_id

    async def call_state(self, symbol: str) -> CallState | None:
        return self._tables.t.call_states.get(symbol)

    async def chat_states(self, symbol: str) -> dict[tuple[str, str], DmState]:
        states = self._tables.t.chat_states
        return {(tr, chat): state for (tr, chat, s), state in states.items() if s == symbol}

    async def last_signal(self, symbol: str) -> StoredSignal | None:
        ids = [
            i
            for i, row in self._tables.t.signals.items()
            if row.symbol == symbol and row.origin is SignalOrigin.CYCLE
        ]
        return self._stored(max(ids), chart=True) if ids else None

    async def last_alerted(self, symbol: str) -> StoredSignal | None:
        t = self._tables.t
        signal_id = t.last_alerts.get(symbol)
        if signal_id is None or t.signals[signal_id].origin is not SignalOrigin.CYCLE:
            return None
        return self._stored(signal_id, chart=True)

    async def load_signal(self, signal_id: int) -> StoredSignal | None:
        if signal_id not in self._tables.t.signals:
            return None
        return self._stored(signal_id, chart=True)

    async def signals(
        self, symbol: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[StoredSignal]:
        since_ms = to_ms(since) if since is not None else -(2**62)
        until_ms = to_ms(until) if until is not None else 2**62
        rows = self._tables.t.signals.items()
        chosen = sorted(
            (row.as_of_ms, i)
            for i, row in rows
            if row.symbol == symbol and since_ms <= row.as_of_ms < until_ms
        )
        return [self._stored(i, chart=False) for _, i in chosen]  # no charts, as SQLite

    def _stored(self, signal_id: int, *, chart: bool) -> StoredSignal:
        t = self._tables.t
        row = t.signals[signal_id]
        signal = signal_from_json(json.loads(row.payload))
        png = t.charts.get(signal_id) if chart else None
        return StoredSignal(signal_id, signal, png, row.alerted, row.origin)


class MemoryOutbox:
    """`OutboxStore` in memory, with the SQLite backend's backoff."""

    def __init__(self, tables: _Tables, backoff_base_s: float, backoff_max_s: float) -> None:
        self._tables = tables
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s

    async def pending_deliveries(self, limit: int) -> list[OutboxItem]:
        now_s = self._tables.now_s()
        due = [
            row.item
            for _, row in sorted(self._tables.t.outbox.items())
            if row.status == "pending" and row.next_attempt_s <= now_s
        ]
        return due[:limit]

    async def mark_sent(self, item_id: int) -> None:
        row = self._tables.t.outbox.get(item_id)
        if row is not None:  # as SQLite's UPDATE: whatever the row's status was
            row.status, row.finished_s = "sent", self._tables.now_s()
            self._tables.drop_chart_if_delivered(row.item.signal_id)

    async def mark_failed(self, item_id: int, reason: str, permanent: bool) -> None:
        row = self._tables.t.outbox.get(item_id)
        if row is None or row.status != "pending":
            return
        now_s, attempts = self._tables.now_s(), row.item.attempts
        row.item = replace(row.item, attempts=attempts + 1)
        row.last_error = reason
        if not permanent:
            delay_s = self._backoff_base_s * (1 << min(attempts, 30))
            row.next_attempt_s = now_s + min(self._backoff_max_s, delay_s)
            return
        row.status, row.finished_s = "failed", now_s
        self._tables.disable_chat(row.item.transport, row.item.chat_id, reason)
        self._tables.drop_chart_if_delivered(row.item.signal_id)

    async def outbox_counts(self) -> dict[str, int]:
        counts = {"pending": 0, "sent": 0, "failed": 0}
        for row in self._tables.t.outbox.values():
            counts[row.status] += 1
        return counts


class MemoryMeta:
    """`MetaStore` in memory."""

    def __init__(self, tables: _Tables) -> None:
        self._tables = tables

    async def get_meta(self, key: str) -> str | None:
        return self._tables.t.meta.get(key)

    async def set_meta(self, key: str, value: str) -> None:
        self._tables.t.meta[key] = value


class MemoryStore(StoreFacade):
    """`Store` in memory; `tables` shares the data with another store object (a reopen)."""

    def __init__(
        self,
        tables: MemoryTables | None = None,
        *,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 300.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.tables = tables if tables is not None else MemoryTables()
        self._open = _Tables(self.tables, clock)
        signal_log = MemorySignalLog(self._open)
        super().__init__(
            MemorySubscriptions(self._open),
            MemoryWatchlists(self._open),
            signal_log,
            MemoryOutbox(self._open, backoff_base_s, backoff_max_s),
            MemoryMeta(self._open),
            alert_states=signal_log,
        )
        self.flow_window = MemoryFlowWindow(self.tables.flows)
        self.whale_alert_store = MemoryWhaleAlerts(self._open)

    async def open(self) -> None:
        self._open.is_open = True

    async def close(self) -> None:
        self._open.is_open = False
