"""What only the SQLite store promises: pragmas, migrations, read-only files, cancellation at any
statement, two stores on one file. The contract both backends keep is in test_store.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import aiosqlite
import pytest

from bot.storage.base import DmState, Subscription
from bot.storage.migrations import MIGRATIONS, SchemaTooNewError, SchemaTooOldError, migrate
from bot.storage.sqlite import ReadOnlyStoreError, SqliteStore
from intel.errors import ConfigError
from intel.models import Action
from intel.serialize import signal_to_json
from intel.timeutil import to_ms
from tests.factories import make_signal
from tests.test_store import BTC, ETH, PNG, SOL, WHALE_CHANNEL, channel, dm, whale_alert


async def test_sqlite_pragmas(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db", busy_timeout_ms=4321)
    await store.open()
    try:
        conn = store.database._conn  # the connection's own settings: synchronous is per connection
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
        assert schema_versions(path) == [m.version for m in MIGRATIONS]
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


async def test_sqlite_a_v4_subscription_upgrades_to_posting_in_the_chat(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    await create_database(path, version=4)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO subscriptions (transport, chat_id, created_at) VALUES (?, ?, ?)",
            ("telegram", "-100", "2026-01-01T00:00:00Z"),
        )
        conn.execute("INSERT INTO subscription_symbols VALUES ('telegram', '-100', ?)", (BTC,))
    store = SqliteStore(path)
    await store.open()
    try:
        assert 6 in schema_versions(path)
        kept = await store.subscription("telegram", "-100")
        assert kept == Subscription("telegram", "-100", (BTC,), thread_id=None)
        moved = await store.subscribe("telegram", "-100", [], thread_id="12")
        assert moved.thread_id == "12"
    finally:
        await store.close()


async def test_sqlite_migrates_a_v5_outbox_keeping_every_row(tmp_path: Path) -> None:
    """Migration 7 rebuilds the outbox: ids, statuses, attempts, charts and the chart trigger
    survive; the sequence goes on after the old ids."""
    path = tmp_path / "v5.db"
    await create_database(path, version=5)
    signal_id = insert_v1_signal(path, 70, alerted=True)
    with sqlite3.connect(path) as conn:  # the rows as v5 code wrote them
        conn.execute("INSERT INTO charts VALUES (?, ?)", (signal_id, PNG))
        for chat_id, status, attempts in (("c1", "sent", 0), ("c2", "pending", 1)):
            conn.execute(
                "INSERT INTO outbox (signal_id, transport, chat_id, kind, intro, status,"
                " attempts, created_at, next_attempt_at) VALUES (?, 'telegram', ?, 'channel',"
                " 'BTC turned BUY', ?, ?, 0, 0)",
                (signal_id, chat_id, status, attempts),
            )
        first, second = (r[0] for r in conn.execute("SELECT id FROM outbox ORDER BY id"))
    assert schema_versions(path) == [1, 2, 3, 4, 5]
    store = SqliteStore(path)
    await store.open()
    try:
        assert schema_versions(path) == [m.version for m in MIGRATIONS]
        assert await store.outbox_counts() == {"pending": 1, "sent": 1, "failed": 0}
        stored = await store.load_signal(signal_id)
        assert stored is not None
        assert stored.chart_png == PNG  # a row is still pending
        await store.set_whale_alerts(WHALE_CHANNEL, True)
        assert await store.queue_whale_alert(whale_alert(), max_per_chat_h=5) == 1
        with sqlite3.connect(path) as conn:
            rows = conn.execute("SELECT id, status, attempts, signal_id FROM outbox ORDER BY id")
            assert [tuple(r) for r in rows] == [
                (first, "sent", 0, signal_id),
                (second, "pending", 1, signal_id),
                (second + 1, "pending", 0, None),
            ]
        await store.mark_sent(second)  # the trigger, made again, drops the chart
        stored = await store.load_signal(signal_id)
        assert stored is not None
        assert stored.chart_png is None
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
    assert store.database._conn is not None
    return store.database._conn


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
        assert {sub.symbols for sub in subs if sub} <= {(SOL,), (BTC, ETH, SOL)}
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
            if waiting.get_coro().__qualname__.endswith(".record_signal"):
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


def insert_v2_channel_alert(path: Path, chat_id: str, action: str, confidence: int) -> int:
    """A cycle signal as schema v2 stored it, alerted to `chat_id` through the outbox."""
    signal = make_signal(action=Action(action), confidence=confidence)
    with sqlite3.connect(path) as conn:
        cursor = conn.execute(
            "INSERT INTO signals (symbol, as_of_ms, action, confidence, alerted, payload, origin)"
            " VALUES (?, ?, ?, ?, 1, ?, 'cycle')",
            (BTC, to_ms(signal.as_of), action, confidence, json.dumps(signal_to_json(signal))),
        )
        signal_id = cursor.lastrowid
        assert signal_id is not None
        conn.execute(
            "INSERT INTO outbox (signal_id, transport, chat_id, kind, intro, status, created_at,"
            " next_attempt_at) VALUES (?, 'telegram', ?, 'channel', 'x', 'sent', 0, 0)",
            (signal_id, chat_id),
        )
        conn.execute("INSERT OR REPLACE INTO last_alerts VALUES (?, ?)", (BTC, signal_id))
    return signal_id


async def test_sqlite_upgrades_a_v2_database_to_the_alert_state(tmp_path: Path) -> None:
    """Subscriptions and watchlists survive; each chat's state is what it was last told."""
    path = tmp_path / "v2.db"
    await create_database(path, version=2)
    with sqlite3.connect(path) as conn:  # the v2 schema's own rows, as the v2 code wrote them
        conn.executemany(
            "INSERT INTO subscriptions (transport, chat_id, created_at)"
            " VALUES ('telegram', ?, 'x')",
            [("c1",), ("c2",), ("c3",)],
        )
        conn.execute("INSERT INTO subscription_symbols VALUES ('telegram', 'c2', ?)", (BTC,))
        conn.execute("INSERT INTO users VALUES ('telegram', 'u1', 'dm-u1', 60, NULL)")
        conn.executemany("INSERT INTO watchlist VALUES ('telegram', 'u1', ?)", [(BTC,), (ETH,)])
    sell = insert_v2_channel_alert(path, "c1", "SELL", 62)
    insert_v2_channel_alert(path, "c2", "SELL", 62)
    hold = insert_v2_channel_alert(path, "c2", "HOLD", 41)  # c2's latest alert
    insert_v2_channel_alert(path, "gone", "BUY", 70)  # a chat no longer subscribed
    store = SqliteStore(path)
    await store.open()
    try:
        assert schema_versions(path) == [m.version for m in MIGRATIONS]
        assert {(s.chat_id, s.symbols) for s in await store.subscriptions_for(BTC)} == {
            ("c1", ()),
            ("c2", (BTC,)),
            ("c3", ()),
        }
        assert await store.watchlist("telegram", "u1") == [BTC, ETH]
        assert await store.threshold("telegram", "u1") == 60
        assert await store.chat_states(BTC) == {
            ("telegram", "c1"): DmState(Action.SELL, 62, sell),
            ("telegram", "c2"): DmState(Action.HOLD, 41, hold),
        }
        assert await store.call_state(BTC) is None  # rebuilt by the next cycles
    finally:
        await store.close()
