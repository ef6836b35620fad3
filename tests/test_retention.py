"""Storage that stays bounded: the database grows by the signals' figures, not their charts; an
upgraded database gives its delivered charts' space back; the console keeps its newest charts."""

from __future__ import annotations

import io
import json
import random
import sqlite3
from datetime import timedelta
from pathlib import Path

from bot.commands.base import Reply
from bot.config import TransportLimits
from bot.delivery.sender import OutboxSender
from bot.scheduling.manual_clock import ManualClock
from bot.storage.base import DeliveryKind, OutboxItem, StoredSignal
from bot.storage.migrations import MIGRATIONS
from bot.storage.sqlite import SqliteStore
from bot.transports.base import OutMessage, TransientDeliveryError
from bot.transports.console import ConsoleTransport
from bot.transports.memory import MemoryTransport
from intel.serialize import signal_to_json
from tests.factories import DEFAULT_AS_OF, make_signal
from tests.test_store import BTC, ETH, channel, dm
from tests.test_store_sqlite import create_database, schema_versions

PAGE_BYTES = 4096  # SQLite's default page size, which the store keeps
CHART_BYTES = 90_000  # an alert chart as the soak measured it (about 91 KB of PNG)
SYMBOLS = (BTC, ETH)
# A stored row's bytes besides the signal's JSON: an outbox row (ids, chat, intro, status, four
# numbers) or the signal's own columns with its three index entries; each is well under this.
ROW_BYTES = 256


def chart(seed: int) -> bytes:
    """Incompressible bytes the size of a chart (a PNG is compressed already), one per seed."""
    return random.Random(seed).randbytes(CHART_BYTES)


def btrees(path: Path) -> set[str]:
    """The tables and indexes that own pages (a b-tree each)."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE rootpage > 0").fetchall()
    return {name for (name,) in rows}


def database_bytes(path: Path) -> tuple[int, int]:
    """(pages × page size after a full checkpoint, free pages)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages, page_size, free = (
            conn.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("page_count", "page_size", "freelist_count")
        )
    return pages * page_size, free


async def test_database_grows_by_the_figures_not_the_charts(
    tmp_path: Path, clock: ManualClock
) -> None:
    """500 cycle signals, two symbols a cycle, each with a chart, one channel alert and two DMs
    that are sent before the next cycle, as the bot does. Bound per signal: its JSON and its
    rows, doubled because a B-tree page may be only half full, plus the one cycle's charts whose
    pages are free for the next cycle, spread over the 500."""
    path, signals = tmp_path / "soak.db", 500
    store = SqliteStore(path, clock=clock)
    await store.open()
    await store.close()
    empty_bytes, _ = database_bytes(path)
    await store.open()
    json_bytes = []
    try:
        for n in range(signals):
            signal = make_signal(SYMBOLS[n % 2], as_of=DEFAULT_AS_OF + timedelta(hours=n // 2))
            json_bytes.append(len(json.dumps(signal_to_json(signal))))
            deliveries = [channel("c1"), dm("u1"), dm("u2")]
            await store.record_signal(signal, chart(n), deliveries, alerted=True)
            if n % 2 == 1:  # the cycle is recorded: the sender drains it
                for item in await store.pending_deliveries(100):
                    await store.mark_sent(item.id)
        assert await store.outbox_counts() == {"pending": 0, "sent": 3 * signals, "failed": 0}
    finally:
        await store.close()
    total_bytes, free_pages = database_bytes(path)
    per_signal = (total_bytes - empty_bytes) / signals
    rows = len(deliveries) + 1
    bound = 2 * (max(json_bytes) + rows * ROW_BYTES) + len(SYMBOLS) * CHART_BYTES / signals
    assert per_signal < bound, (per_signal, bound, free_pages)


def insert_v2_history(path: Path, delivered: int) -> tuple[list[int], int]:
    """What an older bot left: a subscription, a watcher with a threshold, `delivered` signals
    whose chart went out and one whose alert is still pending. Returns (delivered ids, pending)."""
    ids = []
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO subscriptions VALUES ('telegram', 'c1', 1, NULL, 'then')")
        conn.execute("INSERT INTO subscription_symbols VALUES ('telegram', 'c1', ?)", (BTC,))
        conn.execute("INSERT INTO users VALUES ('telegram', 'u1', 'dm-u1', 65, NULL)")
        conn.execute("INSERT INTO watchlist VALUES ('telegram', 'u1', ?)", (ETH,))
        for n in range(delivered + 1):
            signal = make_signal(confidence=n, as_of=DEFAULT_AS_OF + timedelta(hours=n))
            cursor = conn.execute(
                "INSERT INTO signals (symbol, as_of_ms, action, confidence, alerted, payload)"
                " VALUES (?, ?, ?, ?, 1, ?)",
                (BTC, n, signal.action.value, n, json.dumps(signal_to_json(signal))),
            )
            signal_id = cursor.lastrowid
            assert signal_id is not None
            conn.execute("INSERT INTO charts VALUES (?, ?)", (signal_id, chart(n)))
            status = "sent" if n < delivered else "pending"
            conn.execute(
                "INSERT INTO outbox (signal_id, transport, chat_id, kind, intro, status,"
                " created_at, next_attempt_at) VALUES (?, 'telegram', 'c1', 'channel', 'x', ?,"
                " 0, 0)",
                (signal_id, status),
            )
            ids.append(signal_id)
    return ids[:-1], ids[-1]


async def test_an_old_database_drops_delivered_charts_and_gives_the_space_back(
    tmp_path: Path,
) -> None:
    path, delivered = tmp_path / "v2.db", 40
    await create_database(path, version=2)
    delivered_ids, pending_id = insert_v2_history(path, delivered)
    before_bytes, _ = database_bytes(path)
    v2_trees = btrees(path)
    store = SqliteStore(path)
    await store.open()
    try:
        assert schema_versions(path) == [m.version for m in MIGRATIONS]
        subscription = await store.subscription("telegram", "c1")
        assert subscription is not None
        assert subscription.symbols == (BTC,)
        assert [(w.user_id, w.threshold) for w in await store.watchers(ETH)] == [("u1", 65)]
        history = await store.signals(BTC)
        assert [s.signal.confidence for s in history] == list(range(delivered + 1))
        pending = await store.load_signal(pending_id)
        assert pending is not None
        assert pending.chart_png == chart(delivered)
        for signal_id in delivered_ids:
            stored = await store.load_signal(signal_id)
            assert stored is not None
            assert stored.chart_png is None
        wal = path.with_name(f"{path.name}-wal")
        assert wal.stat().st_size < CHART_BYTES  # the VACUUM's copy did not stay in the WAL
    finally:
        await store.close()
    after_bytes, free_pages = database_bytes(path)
    assert free_pages == 0  # compacted once, not left for later reuse
    # Tables and indexes that later migrations add take a page each, charts or not.
    new_tree_bytes = len(btrees(path) - v2_trees) * PAGE_BYTES
    assert after_bytes < before_bytes - delivered * CHART_BYTES + new_tree_bytes


def message_with_chart(item: OutboxItem, stored: StoredSignal) -> OutMessage:
    reply = Reply(text=stored.signal.thesis, chart_png=stored.chart_png, signal=stored.signal)
    return OutMessage(intro=item.intro, reply=reply, is_group=item.kind is DeliveryKind.CHANNEL)


def sender(store: SqliteStore, transport: MemoryTransport) -> OutboxSender:
    fast = TransportLimits(overall_per_s=1000, per_chat_per_s=1000, per_group_per_min=60000)
    return OutboxSender(
        store,
        {transport.name: transport},
        {transport.name: fast},
        concurrency=2,
        build_message=message_with_chart,
        poll_interval_s=0.05,
    )


async def test_a_row_retried_after_a_restart_still_carries_its_chart(
    tmp_path: Path, clock: ManualClock
) -> None:
    path, png = tmp_path / "bot.db", chart(7)
    first = MemoryTransport("telegram", failures={"dm-u1": [TransientDeliveryError("HTTP 502")]})
    store = SqliteStore(path, clock=clock, backoff_base_s=30.0)
    await store.open()
    await store.record_signal(make_signal(), png, [channel("c1"), dm("u1")], alerted=True)
    assert await sender(store, first).drain_once() == 1  # c1 sent; u1 to retry after 30 s
    await store.close()

    clock.advance(31)
    second = MemoryTransport("telegram")
    store = SqliteStore(path, clock=clock, backoff_base_s=30.0)
    await store.open()
    try:
        assert await sender(store, second).drain_once() == 1
        assert await store.outbox_counts() == {"pending": 0, "sent": 2, "failed": 0}
        assert [s.message.reply.chart_png for s in first.accepted + second.accepted] == [png, png]
    finally:
        await store.close()


def show_alert(console: ConsoleTransport, hour: int, symbol: str = BTC) -> OutMessage:
    signal = make_signal(symbol, as_of=DEFAULT_AS_OF + timedelta(hours=hour))
    reply = Reply(text="alert", chart_png=b"\x89PNG" + bytes([hour]), signal=signal)
    return OutMessage(intro="BTC turned BUY", reply=reply, is_group=True)


async def test_the_console_keeps_only_its_newest_charts(tmp_path: Path) -> None:
    chart_dir, output = tmp_path / "charts", io.StringIO()
    chart_dir.mkdir()
    (chart_dir / "my_notes.png").write_bytes(b"the user's own file")
    console = ConsoleTransport(io.StringIO(), output, chart_dir, max_chart_files=3)
    for hour in range(8):
        await console.send("console", show_alert(console, hour, SYMBOLS[hour % 2]))
        ours = sorted(p.name for p in chart_dir.iterdir() if p.name != "my_notes.png")
        assert len(ours) == min(hour + 1, 3)
    saved = [line.removeprefix("Chart saved to ") for line in output.getvalue().splitlines()]
    newest = [Path(line).name for line in saved if line.endswith(".png")][-3:]
    assert ours == sorted(newest)
    assert (chart_dir / "my_notes.png").read_bytes() == b"the user's own file"
