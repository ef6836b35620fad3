"""The Store contract, one suite run over every backend (memory and SQLite), as APScheduler runs
one suite over every data store. What only SQLite promises is in test_store_sqlite.py."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.scheduling.manual_clock import ManualClock
from bot.storage.base import (
    Call,
    CallState,
    Delivery,
    DeliveryKind,
    DmState,
    SignalOrigin,
    Store,
    Subscription,
    Watcher,
)
from bot.storage.memory import MemoryStore, MemoryTables
from bot.storage.sqlite import SqliteStore
from bot.storage.whales import CurrentCall, WhaleAlert, WhaleAlertChat
from intel.models import Action, ExchangeFlow
from intel.sources.onchain.large import LargeTransfer
from tests.factories import DEFAULT_AS_OF, make_signal

BTC, ETH, SOL = "BTC/USDT", "ETH/USDT", "SOL/USDT"
PNG = b"\x89PNG\r\n\x1a\nfake chart"


BACKOFF = {"backoff_base_s": 2.0, "backoff_max_s": 10.0}


@dataclass(frozen=True)
class Backend:
    """How to make a backend's storage (a file, tables in memory) and a store object on it;
    `integrity_error` is what a bad row raises."""

    storage: Callable[[Path], object]
    build: Callable[[object, ManualClock], Store]
    integrity_error: type[Exception]


def sqlite_store(path: object, clock: ManualClock) -> Store:
    assert isinstance(path, Path)
    return SqliteStore(path, clock=clock, **BACKOFF)


def memory_store(tables: object, clock: ManualClock) -> Store:
    assert isinstance(tables, MemoryTables)
    return MemoryStore(tables, clock=clock, **BACKOFF)


BACKENDS = [
    pytest.param(
        Backend(lambda where: where / "store.db", sqlite_store, sqlite3.IntegrityError),
        id="sqlite",
    ),
    # A delivery kind outside the enumeration is SQLite's CHECK error and the memory's ValueError.
    pytest.param(Backend(lambda _: MemoryTables(), memory_store, ValueError), id="memory"),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param


@pytest.fixture
def make_store(backend: Backend, tmp_path: Path, clock: ManualClock) -> Callable[[], Store]:
    """A new store object on the same storage each call (to test reopening)."""
    storage = backend.storage(tmp_path)
    return lambda: backend.build(storage, clock)


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    opened = make_store()
    await opened.open()
    yield opened
    await opened.close()


def channel(chat_id: str, transport: str = "telegram") -> Delivery:
    return Delivery(transport, chat_id, DeliveryKind.CHANNEL, "BTC turned BUY")


def dm(user_id: str, transport: str = "telegram") -> Delivery:
    return Delivery(transport, f"dm-{user_id}", DeliveryKind.DM, "above your 60", user_id)


# -- subscriptions --------------------------------------------------------------------------


async def test_subscribe_adds_symbols_and_unsubscribe_removes_them(store: Store) -> None:
    assert await store.subscription("telegram", "c1") is None
    sub = await store.subscribe("telegram", "c1", [ETH, BTC, BTC])
    assert sub == Subscription("telegram", "c1", (BTC, ETH))
    assert await store.subscription("telegram", "c1") == sub
    both = Subscription("telegram", "c1", (BTC, ETH, SOL))
    assert await store.subscribe("telegram", "c1", [SOL]) == both  # added, BTC kept
    assert await store.subscription("telegram", "c1") == both
    assert await store.subscription("discord", "c1") is None
    rest = Subscription("telegram", "c1", (BTC, SOL))
    assert await store.unsubscribe("telegram", "c1", [ETH]) == rest
    assert await store.unsubscribe("telegram", "c1", [ETH]) == rest  # not followed: no change
    assert await store.subscription("telegram", "c1") == rest
    assert [s.chat_id for s in await store.subscriptions_for(ETH)] == []


async def test_a_subscription_keeps_the_topic_of_its_latest_subscribe(store: Store) -> None:
    assert (await store.subscribe("telegram", "c1", [BTC], thread_id="7")).thread_id == "7"
    assert (await store.subscription("telegram", "c1")) == Subscription(
        "telegram", "c1", (BTC,), thread_id="7"
    )
    await store.subscribe("telegram", "c1", [ETH], thread_id="9")  # moved to another topic
    moved = await store.subscription("telegram", "c1")
    assert moved is not None
    assert (moved.symbols, moved.thread_id) == ((BTC, ETH), "9")
    rest = await store.unsubscribe("telegram", "c1", [ETH])
    assert rest is not None
    assert rest.thread_id == "9"  # unsubscribing symbols leaves the topic alone
    assert [s.thread_id for s in await store.subscriptions_for(BTC)] == ["9"]
    await store.subscribe("telegram", "c1", [])  # subscribed from the General topic
    general = await store.subscription("telegram", "c1")
    assert general is not None
    assert general.thread_id is None


async def test_removing_the_last_symbol_ends_the_subscription(store: Store) -> None:
    await store.subscribe("telegram", "c1", [BTC, ETH])
    assert await store.unsubscribe("telegram", "c1", [ETH, BTC]) is None
    # Not an empty list, which would mean every symbol.
    assert await store.subscription("telegram", "c1") is None
    assert await store.subscriptions_for(SOL) == []
    assert await store.unsubscribe("telegram", "c1", [BTC]) is None


async def test_bare_unsubscribe_removes_the_subscription(store: Store) -> None:
    await store.subscribe("telegram", "c1", [BTC, ETH])
    assert await store.unsubscribe("telegram", "c1") is None
    assert await store.subscription("telegram", "c1") is None
    assert await store.unsubscribe("telegram", "c1") is None


async def test_an_every_symbol_subscription_stays_one_until_symbols_are_removed(
    store: Store,
) -> None:
    everything = Subscription("telegram", "c1", ())
    assert await store.subscribe("telegram", "c1", []) == everything
    assert await store.subscribe("telegram", "c1", [BTC]) == everything  # covered already
    assert await store.unsubscribe("telegram", "c1", [BTC]) == everything  # no list to cut
    rest = await store.unsubscribe("telegram", "c1", [BTC], every_symbol=[BTC, ETH, SOL])
    assert rest == Subscription("telegram", "c1", (ETH, SOL))
    assert await store.subscription("telegram", "c1") == rest
    assert await store.subscribe("telegram", "c1", []) == everything  # bare: every symbol again
    assert await store.subscription("telegram", "c1") == everything


async def test_unsubscribing_some_symbols_keeps_a_disabled_chat_disabled(store: Store) -> None:
    await store.subscribe("telegram", "c1", [BTC, ETH])
    await store.disable_chat("telegram", "c1", "chat not found")
    expected = Subscription(
        "telegram", "c1", (ETH,), active=False, disabled_reason="chat not found"
    )
    assert await store.unsubscribe("telegram", "c1", [BTC]) == expected
    assert await store.subscription("telegram", "c1") == expected


async def test_subscriptions_for_includes_all_symbol_and_skips_inactive(store: Store) -> None:
    await store.subscribe("telegram", "btc-only", [BTC])
    await store.subscribe("discord", "everything", [])
    await store.subscribe("telegram", "eth-only", [ETH])
    await store.subscribe("telegram", "gone", [BTC])
    await store.disable_chat("telegram", "gone", "chat not found")
    chats = {(s.transport, s.chat_id) for s in await store.subscriptions_for(BTC)}
    assert chats == {("telegram", "btc-only"), ("discord", "everything")}
    assert [s.chat_id for s in await store.subscriptions_for(SOL)] == ["everything"]


async def test_disable_chat_stops_subscription_and_dms_until_used_again(store: Store) -> None:
    await store.subscribe("telegram", "dm-u1", [BTC])
    await store.watch_add("telegram", "u1", "dm-u1", BTC)
    await store.set_threshold("telegram", "u1", "dm-u1", 60)
    await store.disable_chat("telegram", "dm-u1", "bot was blocked by the user")
    assert await store.subscription("telegram", "dm-u1") == Subscription(
        "telegram", "dm-u1", (BTC,), active=False, disabled_reason="bot was blocked by the user"
    )
    assert await store.watchers(BTC) == []
    assert await store.watchlist("telegram", "u1") == [BTC]  # the list itself is kept
    await store.watch_add("telegram", "u1", "dm-u1", ETH)
    assert await store.watchers(BTC) == [Watcher("telegram", "u1", "dm-u1", 60)]
    assert (await store.subscribe("telegram", "dm-u1", [BTC])).active


# -- watchlists and thresholds --------------------------------------------------------------


async def test_watchlist_add_remove(store: Store) -> None:
    assert await store.watch_add("telegram", "u1", "dm-u1", ETH) is True
    assert await store.watch_add("telegram", "u1", "dm-u1", BTC) is True
    assert await store.watch_add("telegram", "u1", "dm-u1", BTC) is False
    assert await store.watchlist("telegram", "u1") == [BTC, ETH]
    assert await store.watchlist("discord", "u1") == []
    assert await store.watch_remove("telegram", "u1", BTC) is True
    assert await store.watch_remove("telegram", "u1", BTC) is False
    assert await store.watchlist("telegram", "u1") == [ETH]


async def test_thresholds_and_watchers(store: Store) -> None:
    assert await store.threshold("telegram", "u1") is None
    await store.watch_add("telegram", "u1", "dm-u1", BTC)
    assert await store.threshold("telegram", "u1") is None
    await store.set_threshold("telegram", "u1", "dm-u1", 75)
    await store.set_threshold("discord", "u2", "dm-u2", 50)
    await store.watch_add("discord", "u2", "dm-u2", BTC)
    assert await store.threshold("telegram", "u1") == 75
    assert await store.watchers(BTC) == [
        Watcher("discord", "u2", "dm-u2", 50),
        Watcher("telegram", "u1", "dm-u1", 75),
    ]
    await store.set_threshold("telegram", "u1", "dm-u1", None)
    assert await store.threshold("telegram", "u1") is None
    assert Watcher("telegram", "u1", "dm-u1", None) in await store.watchers(BTC)
    assert await store.watchers(ETH) == []


async def test_followed_symbols(store: Store) -> None:
    assert await store.followed_symbols() == set()
    await store.subscribe("telegram", "c1", [BTC])
    await store.subscribe("telegram", "all", [])
    await store.subscribe("telegram", "off", [SOL])
    await store.disable_chat("telegram", "off", "kicked")
    await store.watch_add("discord", "u1", "dm-u1", ETH)
    assert await store.followed_symbols() == {BTC, ETH}


# -- signals ---------------------------------------------------------------------------------


async def test_record_and_load_signal_round_trip(store: Store) -> None:
    signal = make_signal(BTC, Action.BUY, 70)
    signal_id = await store.record_signal(signal, PNG, [channel("c1")], alerted=True)
    stored = await store.load_signal(signal_id)
    assert stored is not None
    assert (stored.id, stored.signal, stored.chart_png, stored.alerted) == (
        signal_id,
        signal,
        PNG,
        True,
    )
    assert await store.load_signal(signal_id + 1000) is None
    assert await store.last_signal(BTC) == stored
    assert await store.last_alerted(BTC) == stored
    assert await store.last_signal(ETH) is None


async def test_last_alerted_moves_only_with_alerted_signals(store: Store) -> None:
    first = await store.record_signal(make_signal(confidence=70), None, [], alerted=True)
    later = make_signal(confidence=72, as_of=DEFAULT_AS_OF + timedelta(hours=1))
    second = await store.record_signal(later, None, [], alerted=False)
    last = await store.last_signal(BTC)
    alerted = await store.last_alerted(BTC)
    assert last is not None
    assert last.id == second
    assert not last.alerted
    assert last.chart_png is None
    assert alerted is not None
    assert alerted.id == first
    assert await store.last_alerted(ETH) is None


async def test_record_signal_updates_dm_states_for_dms_only(store: Store) -> None:
    deliveries = [channel("c1"), dm("u1"), dm("u2", transport="discord")]
    signal_id = await store.record_signal(make_signal(confidence=80), None, deliveries, True)
    assert await store.dm_states(BTC) == {
        ("telegram", "u1"): DmState(Action.BUY, 80, signal_id),
        ("discord", "u2"): DmState(Action.BUY, 80, signal_id),
    }
    sell = make_signal(action=Action.SELL, confidence=65)
    sell_id = await store.record_signal(sell, None, [dm("u1")], alerted=True)
    states = await store.dm_states(BTC)
    assert states[("telegram", "u1")] == DmState(Action.SELL, 65, sell_id)
    assert states[("discord", "u2")] == DmState(Action.BUY, 80, signal_id)
    assert await store.dm_states(ETH) == {}


async def test_record_signal_is_atomic(store: Store, backend: Backend) -> None:
    kept = await store.record_signal(make_signal(confidence=60), None, [dm("u1")], True)
    bad = Delivery("telegram", "c2", "carrier-pigeon", "x")  # type: ignore[arg-type]
    deliveries = [channel("c1"), dm("u2"), bad]
    with pytest.raises(backend.integrity_error):
        await store.record_signal(make_signal(confidence=90), PNG, deliveries, alerted=True)
    last = await store.last_signal(BTC)
    assert last is not None
    assert last.id == kept
    alerted = await store.last_alerted(BTC)
    assert alerted is not None
    assert alerted.id == kept
    assert list(await store.dm_states(BTC)) == [("telegram", "u1")]
    assert await store.outbox_counts() == {"pending": 1, "sent": 0, "failed": 0}
    assert len(await store.signals(BTC)) == 1
    assert await store.load_signal(kept + 1) is None  # nor its chart
    # The store is still usable after the rollback.
    assert await store.record_signal(make_signal(), None, [channel("c1")], True) > kept


async def test_signal_history_by_time_range(store: Store) -> None:
    hours = [DEFAULT_AS_OF + timedelta(hours=h) for h in (0, 1, 2, 3)]
    for moment in reversed(hours):
        await store.record_signal(make_signal(as_of=moment), PNG, [], alerted=False)
    await store.record_signal(make_signal(ETH, as_of=hours[1]), None, [], alerted=False)
    history = await store.signals(BTC)
    assert [s.signal.as_of for s in history] == hours
    assert all(s.signal.symbol == BTC for s in history)
    window = await store.signals(BTC, since=hours[1], until=hours[3])
    assert [s.signal.as_of for s in window] == hours[1:3]
    assert [s.signal.as_of for s in await store.signals(BTC, since=hours[3])] == hours[3:]
    assert [s.signal.as_of for s in await store.signals(BTC, until=hours[1])] == hours[:1]
    assert await store.signals(SOL) == []


async def test_on_demand_signals_join_the_history_but_never_the_alert_state(
    store: Store,
) -> None:
    cycle = await store.record_signal(make_signal(confidence=70), None, [dm("u1")], True)
    later = DEFAULT_AS_OF + timedelta(hours=1)
    asked = make_signal(action=Action.SELL, confidence=40, as_of=later)
    on_demand = await store.record_signal(asked, PNG, (), alerted=False, origin="on_demand")
    last, alerted = await store.last_signal(BTC), await store.last_alerted(BTC)
    assert last is not None
    assert alerted is not None
    assert (last.id, last.origin, alerted.id) == (cycle, "cycle", cycle)
    assert [(s.id, s.origin) for s in await store.signals(BTC)] == [
        (cycle, SignalOrigin.CYCLE),
        (on_demand, SignalOrigin.ON_DEMAND),
    ]
    stored = await store.load_signal(on_demand)
    assert stored is not None
    assert (stored.signal, stored.chart_png, stored.alerted, stored.origin) == (
        asked,
        None,  # no delivery to carry it: the chart is not kept (test_chart_retention...)
        False,
        "on_demand",
    )
    assert await store.dm_states(BTC) == {("telegram", "u1"): DmState(Action.BUY, 70, cycle)}
    assert await store.outbox_counts() == {"pending": 1, "sent": 0, "failed": 0}


async def test_only_on_demand_signals_leave_no_last_signal(store: Store) -> None:
    await store.record_signal(make_signal(), None, [], False, origin=SignalOrigin.ON_DEMAND)
    assert await store.last_signal(BTC) is None
    assert await store.last_alerted(BTC) is None
    assert len(await store.signals(BTC)) == 1


@pytest.mark.parametrize(
    ("deliveries", "alerted", "origin"),
    [([channel("c1")], False, "on_demand"), ([], True, "on_demand"), ([], False, "chat")],
    ids=["on-demand-delivers", "on-demand-alerts", "unknown-origin"],
)
async def test_record_signal_refuses_an_alerting_on_demand_signal(
    store: Store, deliveries: list[Delivery], alerted: bool, origin: str
) -> None:
    with pytest.raises(ValueError, match=r"on-demand|SignalOrigin"):
        await store.record_signal(make_signal(), None, deliveries, alerted, origin=origin)
    assert await store.signals(BTC) == []
    assert await store.outbox_counts() == {"pending": 0, "sent": 0, "failed": 0}


# -- the outbox -----------------------------------------------------------------------------


async def test_pending_deliveries_oldest_first_and_mark_sent(store: Store) -> None:
    first = await store.record_signal(make_signal(), None, [channel("c1"), dm("u1")], True)
    second = await store.record_signal(make_signal(ETH), None, [channel("c2")], True)
    pending = await store.pending_deliveries(limit=10)
    assert [(p.signal_id, p.chat_id, p.kind) for p in pending] == [
        (first, "c1", DeliveryKind.CHANNEL),
        (first, "dm-u1", DeliveryKind.DM),
        (second, "c2", DeliveryKind.CHANNEL),
    ]
    assert [p.id for p in pending] == sorted(p.id for p in pending)
    assert pending[1].intro == "above your 60"
    assert pending[1].attempts == 0
    assert pending[0].created_at.tzinfo is not None
    assert [p.id for p in await store.pending_deliveries(limit=2)] == [p.id for p in pending[:2]]
    await store.mark_sent(pending[0].id)
    assert [p.id for p in await store.pending_deliveries(10)] == [p.id for p in pending[1:]]
    assert await store.outbox_counts() == {"pending": 2, "sent": 1, "failed": 0}


async def test_transient_failure_backs_off_exponentially(store: Store, clock: ManualClock) -> None:
    await store.record_signal(make_signal(), None, [channel("c1"), channel("c2")], True)
    row, other = await store.pending_deliveries(10)
    waits = []
    for _ in range(5):
        await store.mark_failed(row.id, "HTTP 502", permanent=False)
        assert [p.id for p in await store.pending_deliveries(10)] == [other.id]
        waited = 0.0
        while not any(p.id == row.id for p in await store.pending_deliveries(10)):
            clock.advance(0.5)
            waited += 0.5
        waits.append(waited)
    assert waits == [2.0, 4.0, 8.0, 10.0, 10.0]  # base 2 s, doubled, capped at 10 s
    again = next(p for p in await store.pending_deliveries(10) if p.id == row.id)
    assert again.attempts == 5
    assert await store.outbox_counts() == {"pending": 2, "sent": 0, "failed": 0}


async def test_permanent_failure_fails_row_and_disables_chat(store: Store) -> None:
    await store.subscribe("telegram", "c1", [BTC])
    await store.subscribe("telegram", "c2", [BTC])
    await store.watch_add("telegram", "u1", "dm-u1", BTC)
    await store.watch_add("telegram", "u2", "dm-u2", BTC)
    deliveries = [channel("c1"), channel("c2"), dm("u1"), dm("u2")]
    await store.record_signal(make_signal(), None, deliveries, True)
    rows = {p.chat_id: p for p in await store.pending_deliveries(10)}
    await store.mark_failed(rows["c1"].id, "Forbidden: bot was kicked", permanent=True)
    await store.mark_failed(rows["dm-u1"].id, "Forbidden: bot was blocked", permanent=True)
    assert {p.chat_id for p in await store.pending_deliveries(10)} == {"c2", "dm-u2"}
    assert await store.outbox_counts() == {"pending": 2, "sent": 0, "failed": 2}
    sub = await store.subscription("telegram", "c1")
    assert sub is not None
    assert not sub.active
    assert sub.disabled_reason == "Forbidden: bot was kicked"
    assert [s.chat_id for s in await store.subscriptions_for(BTC)] == ["c2"]
    assert [w.user_id for w in await store.watchers(BTC)] == ["u2"]


async def test_failure_after_sent_changes_nothing(store: Store) -> None:
    await store.subscribe("telegram", "c1", [BTC])
    await store.record_signal(make_signal(), None, [channel("c1")], True)
    (row,) = await store.pending_deliveries(10)
    await store.mark_sent(row.id)
    await store.mark_failed(row.id, "late error", permanent=True)
    assert await store.outbox_counts() == {"pending": 0, "sent": 1, "failed": 0}
    sub = await store.subscription("telegram", "c1")
    assert sub is not None
    assert sub.active


async def test_chart_kept_while_a_row_is_pending_across_restarts_then_dropped(
    make_store: Callable[[], Store],
) -> None:
    """Delivery is a chart's only reader: it survives while any row of its signal is pending
    (a transient failure included, and a restart), and goes with the last sent or failed row;
    the signal's figures stay."""
    first = make_store()
    await first.open()
    signal = make_signal()
    signal_id = await first.record_signal(signal, PNG, [channel("c1"), dm("u1"), dm("u2")], True)
    other_png = PNG + b" of ETH"
    other_id = await first.record_signal(make_signal(ETH), other_png, [channel("c1")], True)
    to_c1, to_u1, to_u2, _ = await first.pending_deliveries(10)
    await first.mark_sent(to_c1.id)
    await first.mark_failed(to_u1.id, "HTTP 502", permanent=False)
    await first.close()

    store = make_store()
    await store.open()
    try:
        assert await chart_of(store, signal_id) == PNG  # u1 (retrying) and u2 pending
        await store.mark_sent(to_u1.id)
        assert await chart_of(store, signal_id) == PNG  # u2 pending
        await store.mark_failed(to_u2.id, "blocked", permanent=True)
        stored = await store.load_signal(signal_id)
        assert stored is not None
        assert (stored.signal, stored.chart_png) == (signal, None)
        other = await store.load_signal(other_id)
        assert other is not None
        assert other.chart_png == other_png  # another signal's pending chart is untouched
    finally:
        await store.close()
    reopened = make_store()
    await reopened.open()
    try:
        stored = await reopened.load_signal(signal_id)
        assert stored is not None
        assert (stored.signal, stored.chart_png) == (signal, None)
        assert [s.signal for s in await reopened.signals(BTC)] == [signal]
    finally:
        await reopened.close()


async def chart_of(store: Store, signal_id: int) -> bytes | None:
    stored = await store.load_signal(signal_id)
    assert stored is not None
    return stored.chart_png


async def test_a_chart_without_deliveries_is_not_kept(store: Store) -> None:
    signal_id = await store.record_signal(make_signal(), PNG, [], alerted=False)
    stored = await store.load_signal(signal_id)
    assert stored is not None
    assert stored.chart_png is None
    last = await store.last_signal(BTC)
    assert last is not None
    assert (last.id, last.signal) == (signal_id, make_signal())


async def test_concurrent_writers_do_not_collide(store: Store) -> None:
    await store.record_signal(make_signal(), None, [channel(f"c{i}") for i in range(50)], True)
    rows = await store.pending_deliveries(100)
    await asyncio.gather(
        *(store.mark_sent(r.id) for r in rows),
        *(store.watch_add("telegram", f"u{i}", f"dm-u{i}", BTC) for i in range(50)),
    )
    assert await store.outbox_counts() == {"pending": 0, "sent": 50, "failed": 0}
    assert len(await store.watchers(BTC)) == 50


# -- key/value state and durability ---------------------------------------------------------


async def test_meta(store: Store) -> None:
    assert await store.get_meta("last_cycle") is None
    await store.set_meta("last_cycle", "2025-10-10T20:00:00Z")
    await store.set_meta("last_cycle", "2025-10-10T21:00:00Z")
    assert await store.get_meta("last_cycle") == "2025-10-10T21:00:00Z"


async def test_everything_survives_close_and_reopen(make_store: Callable[[], Store]) -> None:
    first = make_store()
    await first.open()
    await first.subscribe("telegram", "c1", [BTC])
    await first.watch_add("telegram", "u1", "dm-u1", ETH)
    await first.set_threshold("telegram", "u1", "dm-u1", 65)
    signal_id = await first.record_signal(make_signal(), PNG, [channel("c1"), dm("u1")], True)
    await first.record_signal(make_signal(ETH), None, [], False, origin="on_demand")
    (sent, _) = await first.pending_deliveries(10)
    await first.mark_sent(sent.id)
    await first.set_meta("k", "v")
    await first.close()

    reopened = make_store()
    await reopened.open()
    try:
        sub = await reopened.subscription("telegram", "c1")
        assert sub == Subscription("telegram", "c1", (BTC,))
        assert await reopened.watchers(ETH) == [Watcher("telegram", "u1", "dm-u1", 65)]
        stored = await reopened.load_signal(signal_id)
        assert stored is not None
        assert stored.chart_png == PNG
        assert [p.chat_id for p in await reopened.pending_deliveries(10)] == ["dm-u1"]
        assert await reopened.outbox_counts() == {"pending": 1, "sent": 1, "failed": 0}
        assert await reopened.get_meta("k") == "v"
        assert [s.origin for s in await reopened.signals(ETH)] == ["on_demand"]
    finally:
        await reopened.close()


async def test_a_store_that_is_not_open_refuses_calls(make_store: Callable[[], Store]) -> None:
    store = make_store()
    with pytest.raises(RuntimeError, match="not open"):
        await store.get_meta("k")
    await store.open()
    await store.set_meta("k", "v")
    await store.close()
    with pytest.raises(RuntimeError, match="not open"):
        await store.pending_deliveries(10)


# -- the alert policy's memory: call states and what each chat was told ---------------------


def call_state(action: Action, confidence: int, cycles: int, steady: bool) -> CallState:
    call = Call(action, confidence, DEFAULT_AS_OF)
    since = DEFAULT_AS_OF + timedelta(hours=2) if steady else None
    return CallState(call, cycles, call if steady else None, since, moved_cycles=-1)


async def test_record_signal_keeps_the_call_state(make_store: Callable[[], Store]) -> None:
    store = make_store()
    await store.open()
    assert await store.call_state(BTC) is None
    pending = call_state(Action.SELL, 61, cycles=1, steady=False)
    await store.record_signal(make_signal(action=Action.SELL), None, [], False, call_state=pending)
    assert await store.call_state(BTC) == pending
    steady = call_state(Action.SELL, 64, cycles=3, steady=True)
    await store.record_signal(make_signal(action=Action.SELL), None, [], True, call_state=steady)
    await store.record_signal(make_signal(ETH), None, [], False)  # no state given: none kept
    await store.close()
    store = make_store()  # a restart keeps it
    await store.open()
    try:
        assert await store.call_state(BTC) == steady
        assert await store.call_state(ETH) is None
        with pytest.raises(ValueError, match="on-demand"):
            await store.record_signal(
                make_signal(), None, [], False, origin="on_demand", call_state=steady
            )
    finally:
        await store.close()


async def test_call_state_is_written_with_its_signal_or_not_at_all(
    store: Store, backend: Backend
) -> None:
    kept = call_state(Action.BUY, 70, cycles=2, steady=False)
    await store.record_signal(make_signal(), None, [], False, call_state=kept)
    bad = Delivery("telegram", "c2", "carrier-pigeon", "x")  # type: ignore[arg-type]
    turned = call_state(Action.BUY, 75, cycles=3, steady=True)
    with pytest.raises(backend.integrity_error):
        await store.record_signal(make_signal(), None, [bad], True, call_state=turned)
    assert await store.call_state(BTC) == kept


async def test_channel_deliveries_remember_what_each_chat_was_told(store: Store) -> None:
    await store.subscribe("telegram", "c1", ())
    await store.subscribe("telegram", "c2", (BTC,))
    sell = make_signal(action=Action.SELL, confidence=62)
    first = await store.record_signal(sell, None, [channel("c1"), dm("u1")], True)
    assert await store.chat_states(BTC) == {("telegram", "c1"): DmState(Action.SELL, 62, first)}
    hold = make_signal(action=Action.HOLD, confidence=45)
    second = await store.record_signal(hold, None, [channel("c2")], True)
    assert await store.chat_states(BTC) == {
        ("telegram", "c1"): DmState(Action.SELL, 62, first),  # per chat: c1 was not told
        ("telegram", "c2"): DmState(Action.HOLD, 45, second),
    }
    assert await store.chat_states(ETH) == {}
    assert list(await store.dm_states(BTC)) == [("telegram", "u1")]  # a DM is no chat's state
    # An unsubscribed chat starts afresh: its next alert states the call again.
    assert await store.unsubscribe("telegram", "c1") is None
    assert await store.subscription("telegram", "c1") is None
    await store.subscribe("telegram", "c1", ())
    assert list(await store.chat_states(BTC)) == [("telegram", "c2")]


async def test_unsubscribing_a_symbol_forgets_only_what_the_chat_was_told_of_it(
    store: Store,
) -> None:
    await store.subscribe("telegram", "c1", (BTC, ETH))
    btc = await store.record_signal(make_signal(BTC, Action.SELL, 62), None, [channel("c1")], True)
    eth = await store.record_signal(make_signal(ETH, Action.BUY, 71), None, [channel("c1")], True)
    remaining = await store.unsubscribe("telegram", "c1", (BTC,))
    assert remaining is not None
    assert remaining.symbols == (ETH,)
    assert await store.chat_states(BTC) == {}
    assert await store.chat_states(ETH) == {("telegram", "c1"): DmState(Action.BUY, 71, eth)}
    # Following BTC again starts from its current call, not from what was told before.
    await store.subscribe("telegram", "c1", (BTC,))
    assert await store.chat_states(BTC) == {}
    assert btc != eth


# -- the whale-flow window (live whale flows) ------------------------------------------------


def flow_hour(hour: int, inflow_usd: float, count: int) -> ExchangeFlow:
    return ExchangeFlow(
        hour_start=datetime(2025, 12, 19, hour, tzinfo=UTC),
        inflow_usd=inflow_usd,
        outflow_usd=0.0,
        inflow_coins=inflow_usd / 100_000,
        outflow_coins=None,
        transfer_count=count,
    )


async def test_flow_window_keeps_hours_and_txids_across_a_reopen(
    make_store: Callable[[], Store],
) -> None:
    first = make_store()
    await first.open()
    assert await first.flow_window.save_flow_hour("p", "BTC", flow_hour(3, 5e6, 1), "tx-a", False)
    assert await first.flow_window.save_flow_hour("p", "BTC", flow_hour(3, 9e6, 2), "tx-b", False)
    assert await first.flow_window.save_flow_hour("p", "BTC", flow_hour(4, 0.0, 0), None, True)
    await first.close()
    second = make_store()
    await second.open()
    since = datetime(2025, 12, 19, tzinfo=UTC)
    hours = await second.flow_window.flow_hours("p", since)
    assert [(h.asset, h.flow, h.watched) for h in hours] == [
        ("BTC", flow_hour(3, 9e6, 2), False),
        ("BTC", flow_hour(4, 0.0, 0), True),
    ]
    hour_3 = datetime(2025, 12, 19, 3, tzinfo=UTC)
    assert await second.flow_window.counted_txids("p", since) == {"tx-a": hour_3, "tx-b": hour_3}
    assert await second.flow_window.flow_hours("other provider", since) == []
    await second.close()


async def test_a_txid_counted_once_writes_nothing_the_second_time(store: Store) -> None:
    window = store.flow_window
    assert await window.save_flow_hour("p", "BTC", flow_hour(3, 5e6, 1), "tx-a", True)
    assert not await window.save_flow_hour("p", "BTC", flow_hour(3, 10e6, 2), "tx-a", True)
    hours = await store.flow_window.flow_hours("p", datetime(2025, 12, 19, tzinfo=UTC))
    assert [h.flow for h in hours] == [flow_hour(3, 5e6, 1)]


async def test_pruning_drops_hours_and_txids_before_the_cutoff(store: Store) -> None:
    for hour in (1, 2, 3):
        await store.flow_window.save_flow_hour(
            "p", "BTC", flow_hour(hour, 1e6, 1), f"tx-{hour}", True
        )
    await store.flow_window.save_flow_hour("q", "BTC", flow_hour(1, 1e6, 1), "tx-q", True)
    dropped = await store.flow_window.prune_flow_window("p", datetime(2025, 12, 19, 3, tzinfo=UTC))
    assert dropped == 2
    since = datetime(2025, 12, 19, tzinfo=UTC)
    assert [h.flow.hour_start.hour for h in await store.flow_window.flow_hours("p", since)] == [3]
    assert set(await store.flow_window.counted_txids("p", since)) == {"tx-3"}
    assert set(await store.flow_window.counted_txids("q", since)) == {"tx-q"}


# -- whale alerts ---------------------------------------------------------------------------


def whale_alert(txid: str = "tx-a", usd: float = 150e6) -> WhaleAlert:
    transfer = LargeTransfer(
        "blockchain_com", txid, "BTC", True, 1500.5, usd, "Binance", DEFAULT_AS_OF
    )
    call = CurrentCall(BTC, Action.BUY, 72, DEFAULT_AS_OF)
    return WhaleAlert(transfer, call)


WHALE_CHANNEL = WhaleAlertChat("telegram", "c1", DeliveryKind.CHANNEL)
WHALE_DM = WhaleAlertChat("telegram", "dm-u1", DeliveryKind.DM, user_id="u1")


async def test_a_whale_alert_is_queued_once_by_txid_for_the_chats_that_asked(
    make_store: Callable[[], Store],
) -> None:
    store = make_store()
    await store.open()
    assert await store.set_whale_alerts(WHALE_CHANNEL, True)
    assert await store.set_whale_alerts(WHALE_DM, True)
    assert not await store.set_whale_alerts(WHALE_DM, True)  # on already
    await store.subscribe("telegram", "c2", [BTC])  # signal alerts only: no whale alert
    assert await store.queue_whale_alert(whale_alert(), max_per_chat_h=5) == 2
    assert await store.queue_whale_alert(whale_alert(), max_per_chat_h=5) is None
    await store.close()
    reopened = make_store()  # a restart: the txid is still known
    await reopened.open()
    assert await reopened.queue_whale_alert(whale_alert(), max_per_chat_h=5) is None
    rows = await reopened.pending_deliveries(10)
    assert [(r.chat_id, r.kind, r.signal_id) for r in rows] == [
        ("c1", DeliveryKind.CHANNEL, None),
        ("dm-u1", DeliveryKind.DM, None),
    ]
    assert rows[0].whale_alert_id == rows[1].whale_alert_id
    assert rows[0].whale_alert_id is not None
    assert await reopened.load_whale_alert(rows[0].whale_alert_id) == whale_alert()
    await reopened.mark_sent(rows[0].id)
    assert await reopened.outbox_counts() == {"pending": 1, "sent": 1, "failed": 0}
    assert await reopened.chat_states(BTC) == {}  # signal alert memory untouched
    await reopened.close()


async def test_whale_alerts_are_limited_per_chat_and_hour(store: Store, clock: ManualClock) -> None:
    await store.set_whale_alerts(WHALE_CHANNEL, True)
    assert await store.queue_whale_alert(whale_alert("t1"), max_per_chat_h=2) == 1
    assert await store.queue_whale_alert(whale_alert("t2"), max_per_chat_h=2) == 1
    assert await store.queue_whale_alert(whale_alert("t3"), max_per_chat_h=2) == 0
    await store.set_whale_alerts(WHALE_DM, True)  # another chat has its own budget
    assert await store.queue_whale_alert(whale_alert("t4"), max_per_chat_h=2) == 1
    clock.advance(61 * 60)
    assert await store.queue_whale_alert(whale_alert("t5"), max_per_chat_h=2) == 2
    chats = [r.chat_id for r in await store.pending_deliveries(10)]
    assert chats == ["c1", "c1", "dm-u1", "c1", "dm-u1"]


async def test_whale_alerts_off_and_a_failed_chat_get_none(store: Store) -> None:
    await store.set_whale_alerts(WHALE_CHANNEL, True)
    await store.set_whale_alerts(WHALE_DM, True)
    assert await store.set_whale_alerts(WHALE_DM, False)
    assert not await store.set_whale_alerts(WHALE_DM, False)
    assert not await store.whale_alerts_on("telegram", "dm-u1")
    assert await store.queue_whale_alert(whale_alert("t1"), max_per_chat_h=5) == 1
    (row,) = await store.pending_deliveries(10)
    await store.mark_failed(row.id, "Forbidden: bot was kicked", permanent=True)
    assert not await store.whale_alerts_on("telegram", "c1")
    assert await store.queue_whale_alert(whale_alert("t2"), max_per_chat_h=5) == 0
    assert await store.set_whale_alerts(WHALE_CHANNEL, True)  # asked again: re-enabled
    assert await store.queue_whale_alert(whale_alert("t3"), max_per_chat_h=5) == 1


async def test_whale_alerts_are_pruned_once_delivered_and_old(
    make_store: Callable[[], Store], clock: ManualClock
) -> None:
    store = make_store()
    await store.open()
    await store.set_whale_alerts(WHALE_CHANNEL, True)
    await store.set_whale_alerts(WHALE_DM, True)
    assert await store.queue_whale_alert(whale_alert("t1"), max_per_chat_h=5) == 2
    for row in await store.pending_deliveries(10):
        await store.mark_sent(row.id)
    assert await store.queue_whale_alert(whale_alert("t2"), max_per_chat_h=5) == 2
    t2_first, t2_second = await store.pending_deliveries(10)
    await store.mark_sent(t2_first.id)
    assert t2_second.whale_alert_id is not None
    assert await store.prune_whale_alerts(keep_s=3600) == 0  # delivered, but not old yet
    clock.advance(3601)
    assert await store.queue_whale_alert(whale_alert("t3"), max_per_chat_h=5) == 2
    assert await store.prune_whale_alerts(keep_s=3600) == 1  # t1: t2 waits for a delivery
    await store.close()
    store = make_store()  # what was pruned stays pruned
    await store.open()
    assert await store.outbox_counts() == {"pending": 3, "sent": 1, "failed": 0}
    assert await store.load_whale_alert(t2_second.whale_alert_id) == whale_alert("t2")
    assert await store.queue_whale_alert(whale_alert("t2"), max_per_chat_h=5) is None
    assert await store.queue_whale_alert(whale_alert("t1"), max_per_chat_h=5) == 2  # forgotten
    await store.mark_sent(t2_second.id)
    assert await store.prune_whale_alerts(keep_s=3600) == 1  # t2 now
    assert await store.load_whale_alert(t2_second.whale_alert_id) is None
    assert await store.outbox_counts() == {"pending": 4, "sent": 0, "failed": 0}
    await store.close()


async def test_whale_alert_chats_are_counted_by_kind(store: Store) -> None:
    assert await store.whale_alert_chats() == {}
    await store.set_whale_alerts(WHALE_CHANNEL, True)
    await store.set_whale_alerts(WhaleAlertChat("discord", "c9", DeliveryKind.CHANNEL), True)
    await store.set_whale_alerts(WHALE_DM, True)
    assert await store.whale_alert_chats() == {DeliveryKind.CHANNEL: 2, DeliveryKind.DM: 1}
    assert await store.queue_whale_alert(whale_alert("t1"), max_per_chat_h=5) == 3
    rows = await store.pending_deliveries(10)
    (kicked,) = [row for row in rows if row.chat_id == "c9"]
    await store.mark_failed(kicked.id, "Missing Access", permanent=True)  # disabled
    await store.set_whale_alerts(WHALE_DM, False)
    assert await store.whale_alert_chats() == {DeliveryKind.CHANNEL: 1}
