"""The Store contract, run over every backend; then what only the SQLite backend promises."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiosqlite
import pytest

from bot.storage.base import (
    Delivery,
    DeliveryKind,
    DmState,
    SignalOrigin,
    Store,
    Subscription,
    Watcher,
)
from bot.storage.migrations import MIGRATIONS, SchemaTooNewError, SchemaTooOldError, migrate
from bot.storage.sqlite import ReadOnlyStoreError, SqliteStore
from intel.errors import ConfigError
from intel.models import Action
from intel.serialize import signal_to_json
from tests.factories import DEFAULT_AS_OF, make_signal

BTC, ETH, SOL = "BTC/USDT", "ETH/USDT", "SOL/USDT"
PNG = b"\x89PNG\r\n\x1a\nfake chart"


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2025, 10, 10, 20, 0, 5, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Backend:
    """How to build one backend on a directory; `integrity_error` is what a bad row raises."""

    build: Callable[[Path, FakeClock], Store]
    integrity_error: type[Exception]


BACKENDS = [
    pytest.param(
        Backend(
            lambda where, clock: SqliteStore(
                where / "store.db", backoff_base_s=2.0, backoff_max_s=10.0, clock=clock
            ),
            sqlite3.IntegrityError,
        ),
        id="sqlite",
    ),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return request.param


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_store(backend: Backend, tmp_path: Path, clock: FakeClock) -> Callable[[], Store]:
    """A new store object on the same storage each call (to test reopening)."""
    return lambda: backend.build(tmp_path, clock)


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


async def test_subscribe_replaces_symbols_and_unsubscribe_removes(store: Store) -> None:
    assert await store.subscription("telegram", "c1") is None
    sub = await store.subscribe("telegram", "c1", [ETH, BTC, BTC])
    assert sub == Subscription("telegram", "c1", (BTC, ETH))
    assert await store.subscription("telegram", "c1") == sub
    assert await store.subscribe("telegram", "c1", [SOL]) == Subscription("telegram", "c1", (SOL,))
    assert await store.subscription("telegram", "c1") == Subscription("telegram", "c1", (SOL,))
    assert await store.subscription("discord", "c1") is None
    assert await store.unsubscribe("telegram", "c1") is True
    assert await store.unsubscribe("telegram", "c1") is False
    assert await store.subscription("telegram", "c1") is None


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
        PNG,
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


async def test_transient_failure_backs_off_exponentially(store: Store, clock: FakeClock) -> None:
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


# -- SQLite only ----------------------------------------------------------------------------


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", busy_timeout_ms=4321)
    await store.open()
    try:
        conn = store._conn  # the connection's own settings: synchronous is per connection
        assert conn is not None
        pragmas = {}
        for name in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys"):
            async with conn.execute(f"PRAGMA {name}") as cursor:
                row = await cursor.fetchone()
                assert row is not None
                pragmas[name] = row[0]
        assert pragmas == {
            "journal_mode": "wal",
            "synchronous": 2,
            "busy_timeout": 4321,
            "foreign_keys": 1,
        }
    finally:
        await store.close()


async def test_sqlite_migrations_apply_once(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    for _ in range(3):
        store = SqliteStore(path)
        await store.open()
        await store.close()
    with sqlite3.connect(path) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version")]
    assert versions == [m.version for m in MIGRATIONS]
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        assert await migrate(conn) == []


async def test_sqlite_refuses_a_newer_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_version VALUES (999, 'from the future', 'now')")
    for read_only in (False, True):
        with pytest.raises(ConfigError, match=r"storage\.db_path") as raised:
            await SqliteStore(path, read_only=read_only).open()
        assert isinstance(raised.value, SchemaTooNewError)
        assert str(path) in str(raised.value)


async def test_sqlite_two_stores_on_one_file_wait_for_each_other(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    a, b = SqliteStore(path), SqliteStore(path)
    await a.open()
    await b.open()
    try:
        await asyncio.gather(
            *(a.watch_add("telegram", f"a{i}", "dm", BTC) for i in range(40)),
            *(b.watch_add("telegram", f"b{i}", "dm", BTC) for i in range(40)),
        )
        assert len(await a.watchers(BTC)) == 80
    finally:
        await a.close()
        await b.close()


@pytest.mark.parametrize("where", ["directory", "under-a-file", "under-proc"])
async def test_sqlite_open_on_a_bad_path_is_a_config_error(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("not a folder")
    path = {
        "directory": tmp_path,
        "under-a-file": tmp_path / "file" / "s.db",
        "under-proc": Path("/proc/nope/s.db"),
    }[where]
    for read_only in (False, True):
        with pytest.raises(ConfigError, match=r"storage\.db_path") as raised:
            await SqliteStore(path, read_only=read_only).open()
        assert str(path) in str(raised.value)


async def test_sqlite_open_on_a_file_that_is_no_database_is_a_config_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the pages of a database\n" * 200)
    for read_only in (False, True):
        with pytest.raises(ConfigError, match=re.escape(f"storage.db_path {path}")):
            await SqliteStore(path, read_only=read_only).open()
    assert path.read_bytes().startswith(b"these are not")


# -- SQLite: migrations from an older version -------------------------------------------------


async def create_database(path: Path, version: int) -> None:
    """A database as the code of schema `version` left it: rollback journal, no WAL."""
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await migrate(conn, tuple(m for m in MIGRATIONS if m.version <= version))


def insert_v1_signal(path: Path, confidence: int, alerted: bool) -> int:
    """A signal row as schema v1 stored it (no origin column), and its alert state."""
    signal = make_signal(confidence=confidence)
    with sqlite3.connect(path) as conn:
        cursor = conn.execute(
            "INSERT INTO signals (symbol, as_of_ms, action, confidence, alerted, payload)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                BTC,
                int(signal.as_of.timestamp() * 1000),
                signal.action.value,
                confidence,
                int(alerted),
                json.dumps(signal_to_json(signal)),
            ),
        )
        assert cursor.lastrowid is not None
        if alerted:
            conn.execute(
                "INSERT OR REPLACE INTO last_alerts VALUES (?, ?)", (BTC, cursor.lastrowid)
            )
    return cursor.lastrowid


def schema_versions(path: Path) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY 1")]


async def test_sqlite_migrates_a_v1_database_to_v2(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    await create_database(path, version=1)
    alerted = insert_v1_signal(path, 70, alerted=True)
    newest = insert_v1_signal(path, 72, alerted=False)
    assert schema_versions(path) == [1]
    store = SqliteStore(path)
    await store.open()
    try:
        assert schema_versions(path) == [1, 2]
        history = await store.signals(BTC)
        assert [(s.id, s.origin, s.alerted) for s in history] == [
            (alerted, "cycle", True),
            (newest, "cycle", False),
        ]
        last, last_alerted = await store.last_signal(BTC), await store.last_alerted(BTC)
        assert (last and last.id, last_alerted and last_alerted.id) == (newest, alerted)
        await store.record_signal(make_signal(), None, [], False, origin="on_demand")
        last = await store.last_signal(BTC)
        assert last is not None
        assert last.id == newest
    finally:
        await store.close()


# -- SQLite: read-only ----------------------------------------------------------------------


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


async def test_sqlite_read_only_reads_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    await create_database(path, version=max(m.version for m in MIGRATIONS))
    signal_id = insert_v1_signal(path, 70, alerted=True)
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO meta VALUES ('k', 'v')")
    before = digest(path)
    store = SqliteStore(path, read_only=True)
    await store.open()
    try:
        assert await store.get_meta("k") == "v"
        last = await store.last_alerted(BTC)
        assert last is not None
        assert last.id == signal_id
        assert await store.outbox_counts() == {"pending": 0, "sent": 0, "failed": 0}
        writes: list[Callable[[], Awaitable[object]]] = [
            lambda: store.set_meta("k", "changed"),
            lambda: store.subscribe("telegram", "c1", [BTC]),
            lambda: store.record_signal(make_signal(), None, [], False),
            lambda: store.mark_sent(1),
            lambda: store.mark_failed(1, "x", permanent=True),
        ]
        for write in writes:
            with pytest.raises(ReadOnlyStoreError):
                await write()
    finally:
        await store.close()
    assert digest(path) == before
    assert journal_mode(path) == "delete"  # never switched to WAL
    assert files_in(tmp_path) == ["bot.db"]  # no -wal or -shm left behind


async def test_sqlite_read_only_never_migrates_nor_creates(tmp_path: Path) -> None:
    old = tmp_path / "v1.db"
    await create_database(old, version=1)
    before = digest(old)
    with pytest.raises(SchemaTooOldError, match="run the bot once to migrate"):
        await SqliteStore(old, read_only=True).open()
    assert digest(old) == before
    assert schema_versions(old) == [1]
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(SchemaTooOldError):
        await SqliteStore(empty, read_only=True).open()
    assert empty.read_bytes() == b""
    missing = tmp_path / "missing.db"
    with pytest.raises(ConfigError, match=r"storage\.db_path"):
        await SqliteStore(missing, read_only=True).open()
    assert not missing.exists()


# -- SQLite: cancellation -------------------------------------------------------------------


@contextmanager
def cancelling_at(conn: aiosqlite.Connection, nth: int) -> Iterator[list[str]]:
    """Cancel the task that sends the `nth` statement (1-based) on `conn`, as it starts waiting
    for it: the statement still runs, as aiosqlite runs it for a cancelled caller."""
    sent: list[str] = []

    def wrap(real: Callable[..., object]) -> Callable[..., object]:
        def call(sql: str, *args: object, **kwargs: object) -> object:
            sent.append(sql)
            result = real(sql, *args, **kwargs)
            if len(sent) == nth:
                task = asyncio.current_task()
                assert task is not None
                task.cancel()
            return result

        return call

    conn.execute = wrap(conn.execute)  # type: ignore[method-assign]
    conn.executemany = wrap(conn.executemany)  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        del conn.execute, conn.executemany  # back to the class's methods


async def completes(conn: aiosqlite.Connection, nth: int, operation: Awaitable[object]) -> bool:
    """Run `operation` cancelled at its `nth` statement; True when it had fewer statements."""
    with cancelling_at(conn, nth):
        task = asyncio.ensure_future(operation)
        await asyncio.wait([task])
    if task.cancelled():
        return False
    task.result()
    return True


async def open_store(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    await store.open()
    return store


def connection(store: SqliteStore) -> aiosqlite.Connection:
    assert store._conn is not None
    return store._conn


async def check_signals_whole(store: SqliteStore, recipients: int) -> list[int]:
    """Every stored signal has its chart and all its outbox rows; returns the confidences."""
    history = await store.signals(BTC)
    for stored in history:
        loaded = await store.load_signal(stored.id)
        assert loaded is not None
        assert loaded.chart_png == PNG
    pending = await store.pending_deliveries(10_000)
    assert len(pending) == recipients * len(history)
    alerted = await store.last_alerted(BTC)
    assert (alerted is None) == (not history)
    return [s.signal.confidence for s in history]


async def test_sqlite_record_signal_cancelled_at_any_statement(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "s.db")
    deliveries = [channel("c1"), dm("u1"), dm("u2")]
    nth = 1
    try:
        while not await completes(
            connection(store),
            nth,
            store.record_signal(make_signal(confidence=nth), PNG, deliveries, alerted=True),
        ):
            # Later writes, a transaction and a single statement, work and are kept.
            assert await store.watch_add("telegram", f"after{nth}", "dm", ETH)
            await store.set_meta(f"after{nth}", "yes")
            nth += 1
        assert nth > 3  # BEGIN, the body and COMMIT were each a cancellation point
    finally:
        await store.close()
    reopened = await open_store(tmp_path / "s.db")
    try:
        # A cancellation at COMMIT (the last statement) comes after the commit itself.
        assert await check_signals_whole(reopened, len(deliveries)) == [nth - 1, nth]
        assert len(await reopened.watchers(ETH)) == nth - 1
        assert [await reopened.get_meta(f"after{i}") for i in range(1, nth)] == ["yes"] * (nth - 1)
    finally:
        await reopened.close()


@pytest.mark.parametrize("write", ["subscribe", "mark_failed_permanent", "set_meta"])
async def test_sqlite_other_writes_cancelled_at_any_statement(tmp_path: Path, write: str) -> None:
    store = await open_store(tmp_path / "s.db")
    chats = [f"c{i}" for i in range(40)]
    for chat in chats:
        await store.subscribe("telegram", chat, [SOL])
    await store.record_signal(make_signal(), None, [channel(chat) for chat in chats], True)
    rows = await store.pending_deliveries(100)
    operations: dict[str, Callable[[int], Awaitable[object]]] = {
        "subscribe": lambda n: store.subscribe("telegram", f"c{n}", [BTC, ETH]),
        "mark_failed_permanent": lambda n: store.mark_failed(rows[n].id, "kicked", True),
        "set_meta": lambda n: store.set_meta("k", str(n)),
    }
    nth = 1
    try:
        while not await completes(connection(store), nth, operations[write](nth)):
            await store.watch_add("telegram", f"after{nth}", "dm", ETH)
            nth += 1
    finally:
        await store.close()
    reopened = await open_store(tmp_path / "s.db")
    try:
        assert len(await reopened.watchers(ETH)) == nth - 1
        subs = [await reopened.subscription("telegram", chat) for chat in chats]
        # All or nothing: never a subscription left without symbols (that is: all of them).
        assert {sub.symbols for sub in subs if sub} <= {(SOL,), (BTC, ETH)}
        # A row failed for good if and only if its chat was disabled with it.
        pending = {row.chat_id for row in await reopened.pending_deliveries(100)}
        assert pending == {sub.chat_id for sub in subs if sub and sub.active}
        if write == "set_meta":
            assert await reopened.get_meta("k") == str(nth)
    finally:
        await reopened.close()


async def test_sqlite_cancelled_after_some_loop_turns_or_by_timeout(tmp_path: Path) -> None:
    """Cancellations from outside, at whatever await the write has reached."""
    store = await open_store(tmp_path / "s.db")
    deliveries = [channel("c1"), dm("u1")]
    completed = 0
    try:
        for turns in range(40):
            signal = make_signal(confidence=turns)
            task = asyncio.create_task(store.record_signal(signal, PNG, deliveries, True))
            for _ in range(turns):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.wait([task])
            completed += not task.cancelled()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(store.set_meta("k", "v"), timeout=0)
            with suppress(TimeoutError):
                await asyncio.wait_for(
                    store.record_signal(signal, PNG, deliveries, True), timeout=turns * 1e-4
                )
            assert await store.watch_add("telegram", f"after{turns}", "dm", ETH)
        confidences = await check_signals_whole(store, len(deliveries))
        assert len(confidences) >= completed
    finally:
        await store.close()
    reopened = await open_store(tmp_path / "s.db")
    try:
        assert len(await reopened.watchers(ETH)) == 40
        await check_signals_whole(reopened, len(deliveries))
    finally:
        await reopened.close()


async def test_sqlite_rollback_runs_through_a_second_cancellation(tmp_path: Path) -> None:
    store = await open_store(tmp_path / "s.db")
    conn = connection(store)
    real_rollback = conn.rollback
    rollbacks: list[asyncio.Task[object]] = []

    async def rollback_cancelled_again() -> None:
        task = asyncio.current_task()
        assert task is not None
        rollbacks.append(task)
        for waiting in asyncio.all_tasks():  # the writer, waiting on this rollback
            if waiting.get_coro().__qualname__.startswith("SqliteStore.record_signal"):
                waiting.cancel()
        await real_rollback()

    conn.rollback = rollback_cancelled_again  # type: ignore[method-assign]
    try:
        assert not await completes(
            conn, 4, store.record_signal(make_signal(), PNG, [dm("u1")], alerted=True)
        )
        assert len(rollbacks) == 1
        assert conn.in_transaction is False
        await store.record_signal(make_signal(confidence=90), PNG, [dm("u1")], alerted=True)
        assert await check_signals_whole(store, 1) == [90]
    finally:
        del conn.rollback
        await store.close()


async def test_sqlite_migration_cancelled_at_any_statement(tmp_path: Path) -> None:
    nth = 1
    while True:
        path = tmp_path / f"m{nth}.db"
        async with aiosqlite.connect(path, isolation_level=None) as conn:
            done = await completes(conn, nth, migrate(conn))
            assert not conn.in_transaction
            await migrate(conn)  # the same connection finishes the job
        assert schema_versions(path) == [m.version for m in MIGRATIONS]
        if done:
            break
        nth += 1
    assert nth > 2 * len(MIGRATIONS)
