"""The Store on SQLite through aiosqlite: one connection, WAL, synchronous=FULL, serialised access.

Every public method takes one lock, so statements of concurrent callers never interleave inside a
transaction on the shared connection; writes start with BEGIN IMMEDIATE so that a second process
on the same file waits for the write lock (busy_timeout) instead of failing halfway.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bot.storage.base import (
    Delivery,
    DeliveryKind,
    DmState,
    OutboxItem,
    StoredSignal,
    Subscription,
    Watcher,
)
from bot.storage.migrations import migrate
from intel.models import Action, Signal
from intel.serialize import signal_from_json, signal_to_json
from intel.timeutil import iso, to_ms, utcnow

__all__ = ["SqliteStore"]

_SIGNAL_COLUMNS = "s.id, s.payload, s.alerted"
_OUTBOX_COLUMNS = "id, signal_id, transport, chat_id, kind, intro, attempts, created_at"


class SqliteStore:
    """`Store` on one SQLite file; `backoff_*` schedule retries after transient failures."""

    def __init__(
        self, path: Path, *, backoff_base_s: float = 1.0, backoff_max_s: float = 300.0,
        busy_timeout_ms: int = 5000, clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.path = path
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._busy_timeout_ms = busy_timeout_ms
        self._clock = clock
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()
        # Rows sent since the last commit of sent marks, and the future of that next commit.
        self._sent_batch: tuple[list[int], asyncio.Future[None]] | None = None
        self._flushers: set[asyncio.Task[None]] = set()

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        if self._conn is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, never the sqlite3 module.
        conn = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA synchronous = FULL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await migrate(conn)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        async with self._lock:  # after every queued operation
            if self._conn is not None:
                conn, self._conn = self._conn, None
                await conn.close()

    @asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            if self._conn is None:
                raise RuntimeError("SqliteStore is not open")
            yield self._conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._exclusive() as conn:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            await conn.execute("COMMIT")

    async def _write_one(self, sql: str, params: Iterable[Any]) -> int:
        """One statement is its own write transaction in SQLite: one round trip, not three
        (the outbox's hot path). Returns the number of rows changed."""
        async with self._exclusive() as conn:
            cursor = await conn.execute(sql, tuple(params))
            return cursor.rowcount

    async def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        async with self._exclusive() as conn, conn.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    async def _one(self, sql: str, params: Iterable[Any] = ()) -> Any | None:
        rows = await self._all(sql, params)
        return rows[0] if rows else None

    def _now_s(self) -> float:
        return self._clock().timestamp()

    # -- channel subscriptions -------------------------------------------------------------

    async def subscribe(
        self, transport: str, chat_id: str, symbols: Sequence[str]
    ) -> Subscription:
        async with self._write() as conn:
            await conn.execute(
                "INSERT INTO subscriptions (transport, chat_id, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO UPDATE SET active = 1, disabled_reason = NULL",
                (transport, chat_id, iso(self._clock())),
            )
            await conn.execute(
                "DELETE FROM subscription_symbols WHERE transport = ? AND chat_id = ?",
                (transport, chat_id),
            )
            await conn.executemany(
                "INSERT INTO subscription_symbols (transport, chat_id, symbol) VALUES (?, ?, ?)",
                [(transport, chat_id, symbol) for symbol in sorted(set(symbols))],
            )
        return Subscription(transport, chat_id, tuple(sorted(set(symbols))))

    async def unsubscribe(self, transport: str, chat_id: str) -> bool:
        deleted = await self._write_one(  # its symbols go with it (ON DELETE CASCADE)
            "DELETE FROM subscriptions WHERE transport = ? AND chat_id = ?", (transport, chat_id)
        )
        return deleted > 0

    async def subscription(self, transport: str, chat_id: str) -> Subscription | None:
        where = "WHERE s.transport = ? AND s.chat_id = ?"
        return next(iter(await self._subscriptions(where, (transport, chat_id))), None)

    async def subscriptions_for(self, symbol: str) -> list[Subscription]:
        """Active subscriptions that follow `symbol`, including every all-symbol one."""
        return await self._subscriptions(
            "WHERE s.active = 1 AND (NOT EXISTS (SELECT 1 FROM subscription_symbols x"
            " WHERE x.transport = s.transport AND x.chat_id = s.chat_id)"
            " OR EXISTS (SELECT 1 FROM subscription_symbols x WHERE x.transport = s.transport"
            " AND x.chat_id = s.chat_id AND x.symbol = ?))",
            (symbol,),
        )

    async def _subscriptions(self, where: str, params: Sequence[Any]) -> list[Subscription]:
        rows = await self._all(
            "SELECT s.transport, s.chat_id, s.active, s.disabled_reason,"
            " (SELECT json_group_array(x.symbol) FROM subscription_symbols x"
            "  WHERE x.transport = s.transport AND x.chat_id = s.chat_id)"
            f" FROM subscriptions s {where} ORDER BY s.transport, s.chat_id",
            params,
        )
        return [Subscription(r[0], r[1], tuple(sorted(json.loads(r[4]))), bool(r[2]), r[3])
                for r in rows]

    async def disable_chat(self, transport: str, chat_id: str, reason: str) -> None:
        """Stop sending to this chat: its subscription and DMs to it, until re-enabled by use."""
        async with self._write() as conn:
            await _disable_chat(conn, transport, chat_id, reason)

    # -- watchlists and thresholds ---------------------------------------------------------

    async def watch_add(self, transport: str, user_id: str, dm_chat_id: str, symbol: str) -> bool:
        async with self._write() as conn:
            await _upsert_user(conn, transport, user_id, dm_chat_id)
            cursor = await conn.execute(
                "INSERT OR IGNORE INTO watchlist (transport, user_id, symbol) VALUES (?, ?, ?)",
                (transport, user_id, symbol),
            )
            return cursor.rowcount > 0

    async def watch_remove(self, transport: str, user_id: str, symbol: str) -> bool:
        deleted = await self._write_one(
            "DELETE FROM watchlist WHERE transport = ? AND user_id = ? AND symbol = ?",
            (transport, user_id, symbol),
        )
        return deleted > 0

    async def watchlist(self, transport: str, user_id: str) -> list[str]:
        rows = await self._all(
            "SELECT symbol FROM watchlist WHERE transport = ? AND user_id = ? ORDER BY symbol",
            (transport, user_id),
        )
        return [row[0] for row in rows]

    async def set_threshold(
        self, transport: str, user_id: str, dm_chat_id: str, threshold: int | None
    ) -> None:
        async with self._write() as conn:
            await _upsert_user(conn, transport, user_id, dm_chat_id)
            await conn.execute(
                "UPDATE users SET threshold = ? WHERE transport = ? AND user_id = ?",
                (threshold, transport, user_id),
            )

    async def threshold(self, transport: str, user_id: str) -> int | None:
        sql = "SELECT threshold FROM users WHERE transport = ? AND user_id = ?"
        row = await self._one(sql, (transport, user_id))
        return None if row is None else row[0]

    async def watchers(self, symbol: str) -> list[Watcher]:
        """Users watching `symbol` whose DMs are not disabled (threshold None: alerts off)."""
        rows = await self._all(
            "SELECT u.transport, u.user_id, u.dm_chat_id, u.threshold FROM watchlist w"
            " JOIN users u ON u.transport = w.transport AND u.user_id = w.user_id"
            " WHERE w.symbol = ? AND u.dm_disabled_reason IS NULL"
            " ORDER BY u.transport, u.user_id",
            (symbol,),
        )
        return [Watcher(*row) for row in rows]

    async def dm_states(self, symbol: str) -> dict[tuple[str, str], DmState]:
        rows = await self._all(
            "SELECT transport, user_id, action, confidence, signal_id FROM dm_states"
            " WHERE symbol = ?",
            (symbol,),
        )
        return {(r[0], r[1]): DmState(Action(r[2]), r[3], r[4]) for r in rows}

    async def followed_symbols(self) -> set[str]:
        """Symbols in any active subscription or watchlist (all-symbol subscriptions excluded)."""
        rows = await self._all(
            "SELECT x.symbol FROM subscription_symbols x JOIN subscriptions s"
            " ON s.transport = x.transport AND s.chat_id = x.chat_id WHERE s.active = 1"
            " UNION SELECT symbol FROM watchlist"
        )
        return {row[0] for row in rows}

    # -- signals and alert state -----------------------------------------------------------

    async def record_signal(
        self, signal: Signal, chart_png: bytes | None, deliveries: Sequence[Delivery],
        alerted: bool,
    ) -> int:
        """Write the signal, its chart, its outbox rows and the alert state in one transaction."""
        now_s = self._now_s()
        async with self._write() as conn:
            cursor = await conn.execute(
                "INSERT INTO signals (symbol, as_of_ms, action, confidence, alerted, payload)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (signal.symbol, to_ms(signal.as_of), signal.action.value, signal.confidence,
                 int(alerted), json.dumps(signal_to_json(signal))),
            )
            signal_id = cursor.lastrowid
            assert signal_id is not None  # an INTEGER PRIMARY KEY insert always sets it
            if chart_png is not None:
                await conn.execute(
                    "INSERT INTO charts (signal_id, png) VALUES (?, ?)", (signal_id, chart_png)
                )
            await conn.executemany(
                "INSERT INTO outbox (signal_id, transport, chat_id, kind, intro, user_id,"
                " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(signal_id, d.transport, d.chat_id, str(d.kind), d.intro, d.user_id,
                  now_s, now_s) for d in deliveries],
            )
            await conn.executemany(
                "INSERT INTO dm_states (transport, user_id, symbol, action, confidence,"
                " signal_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET"
                " action = excluded.action, confidence = excluded.confidence,"
                " signal_id = excluded.signal_id",
                [(d.transport, d.user_id, signal.symbol, signal.action.value,
                  signal.confidence, signal_id) for d in deliveries if d.user_id is not None],
            )
            if alerted:
                await conn.execute(
                    "INSERT INTO last_alerts (symbol, signal_id) VALUES (?, ?)"
                    " ON CONFLICT DO UPDATE SET signal_id = excluded.signal_id",
                    (signal.symbol, signal_id),
                )
        return signal_id

    async def last_signal(self, symbol: str) -> StoredSignal | None:
        """The signal recorded last for `symbol` (by recording order)."""
        return await self._signal_with_chart("WHERE s.symbol = ? ORDER BY s.id DESC LIMIT 1",
                                             (symbol,))

    async def last_alerted(self, symbol: str) -> StoredSignal | None:
        return await self._signal_with_chart(
            "JOIN last_alerts a ON a.signal_id = s.id WHERE a.symbol = ?", (symbol,)
        )

    async def load_signal(self, signal_id: int) -> StoredSignal | None:
        return await self._signal_with_chart("WHERE s.id = ?", (signal_id,))

    async def signals(
        self, symbol: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[StoredSignal]:
        """History of `symbol` with since <= as_of < until, oldest first; without charts
        (a long history would otherwise load every PNG; `load_signal` has the chart)."""
        since_ms = to_ms(since) if since is not None else -(2**62)
        until_ms = to_ms(until) if until is not None else 2**62
        rows = await self._all(
            f"SELECT {_SIGNAL_COLUMNS}, NULL FROM signals s WHERE s.symbol = ?"
            " AND s.as_of_ms >= ? AND s.as_of_ms < ? ORDER BY s.as_of_ms, s.id",
            (symbol, since_ms, until_ms),
        )
        return [_stored_signal(row) for row in rows]

    async def _signal_with_chart(self, clause: str, params: Sequence[Any]) -> StoredSignal | None:
        row = await self._one(
            f"SELECT {_SIGNAL_COLUMNS}, c.png FROM signals s"
            f" LEFT JOIN charts c ON c.signal_id = s.id {clause}",
            params,
        )
        return None if row is None else _stored_signal(row)

    # -- the outbox --------------------------------------------------------------------------

    async def pending_deliveries(self, limit: int) -> list[OutboxItem]:
        """Unsent, unfailed rows due now, oldest first."""
        rows = await self._all(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending'"
            " AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (self._now_s(), limit),
        )
        return [OutboxItem(id=r[0], signal_id=r[1], transport=r[2], chat_id=r[3],
                           kind=DeliveryKind(r[4]), intro=r[5], attempts=r[6],
                           created_at=datetime.fromtimestamp(r[7], UTC)) for r in rows]

    async def mark_sent(self, item_id: int) -> None:
        """Returns once the mark is committed. Marks made while the connection is busy share
        one commit (group commit): a fan-out would otherwise wait on one fsync per row."""
        if self._sent_batch is None:
            self._sent_batch = ([], asyncio.get_running_loop().create_future())
            flusher = asyncio.create_task(self._flush_sent(*self._sent_batch))
            self._flushers.add(flusher)
            flusher.add_done_callback(self._flushers.discard)
        item_ids, committed = self._sent_batch
        item_ids.append(item_id)
        await asyncio.shield(committed)  # a cancelled caller's mark is still written

    async def _flush_sent(self, item_ids: list[int], committed: asyncio.Future[None]) -> None:
        try:
            async with self._exclusive() as conn:
                self._sent_batch = None  # marks from now on go to the next commit
                await conn.execute(  # one statement: one implicit transaction
                    "UPDATE outbox SET status = 'sent', finished_at = ?"
                    " WHERE id IN (SELECT value FROM json_each(?))",
                    (self._now_s(), json.dumps(item_ids)),
                )
        except BaseException as exc:
            if self._sent_batch is not None and self._sent_batch[1] is committed:
                self._sent_batch = None
            if not isinstance(exc, Exception):
                committed.cancel()
                raise
            committed.set_exception(exc)
            committed.exception()  # retrieved here: every caller may have been cancelled
        else:
            committed.set_result(None)

    async def mark_failed(self, item_id: int, reason: str, permanent: bool) -> None:
        """Permanent: fail the row and disable its chat. Transient: retry later, with backoff."""
        now_s = self._now_s()
        if not permanent:
            await self._write_one(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?,"
                " next_attempt_at = ? + min(?, ? * (1 << min(attempts, 30)))"
                " WHERE id = ? AND status = 'pending'",
                (reason, now_s, self._backoff_max_s, self._backoff_base_s, item_id),
            )
            return
        async with self._write() as conn:
            async with conn.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?,"
                " finished_at = ? WHERE id = ? AND status = 'pending'"
                " RETURNING transport, chat_id",
                (reason, now_s, item_id),
            ) as cursor:
                row = await cursor.fetchone()
            if row is not None:
                await _disable_chat(conn, row[0], row[1], reason)

    async def outbox_counts(self) -> dict[str, int]:
        rows = await self._all("SELECT status, count(*) FROM outbox GROUP BY status")
        return {"pending": 0, "sent": 0, "failed": 0} | {row[0]: row[1] for row in rows}

    # -- key/value state ---------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        row = await self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else row[0]

    async def set_meta(self, key: str, value: str) -> None:
        await self._write_one(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT DO UPDATE SET value = excluded.value",
            (key, value),
        )


async def _upsert_user(
    conn: aiosqlite.Connection, transport: str, user_id: str, dm_chat_id: str
) -> None:
    # A user who talks to the bot again re-enables DMs that a failure had disabled.
    await conn.execute(
        "INSERT INTO users (transport, user_id, dm_chat_id) VALUES (?, ?, ?)"
        " ON CONFLICT DO UPDATE SET dm_chat_id = excluded.dm_chat_id, dm_disabled_reason = NULL",
        (transport, user_id, dm_chat_id),
    )


async def _disable_chat(
    conn: aiosqlite.Connection, transport: str, chat_id: str, reason: str
) -> None:
    await conn.execute(
        "UPDATE subscriptions SET active = 0, disabled_reason = ?"
        " WHERE transport = ? AND chat_id = ?",
        (reason, transport, chat_id),
    )
    await conn.execute(
        "UPDATE users SET dm_disabled_reason = ? WHERE transport = ? AND dm_chat_id = ?",
        (reason, transport, chat_id),
    )


def _stored_signal(row: Sequence[Any]) -> StoredSignal:
    return StoredSignal(row[0], signal_from_json(json.loads(row[1])), row[3], bool(row[2]))
