"""The Store on SQLite through aiosqlite: subscriptions, watchlists, signals and key/value state.

The connection, its lock and its transactions live in `sqlite_db`, the outbox in `sqlite_outbox`;
`SqliteStore` is the one class that joins them behind the `Store` protocol.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from bot.storage.base import (
    Delivery,
    DmState,
    SignalOrigin,
    StoredSignal,
    Subscription,
    Watcher,
)
from bot.storage.sqlite_db import ReadOnlyStoreError
from bot.storage.sqlite_outbox import SqliteOutbox, disable_chat
from intel.models import Action, Signal
from intel.serialize import signal_from_json, signal_to_json
from intel.timeutil import iso, to_ms

__all__ = ["ReadOnlyStoreError", "SqliteStore"]

_SIGNAL_COLUMNS = "s.id, s.payload, s.alerted, s.origin"


class SqliteStore(SqliteOutbox):
    """`Store` on one SQLite file. `SqliteStore(path, read_only=True)` reads a database without
    migrating or changing it (for reports); its writes raise `ReadOnlyStoreError`."""

    # -- channel subscriptions -------------------------------------------------------------

    async def subscribe(self, transport: str, chat_id: str, symbols: Sequence[str]) -> Subscription:
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
        return [
            Subscription(r[0], r[1], tuple(sorted(json.loads(r[4]))), bool(r[2]), r[3])
            for r in rows
        ]

    async def disable_chat(self, transport: str, chat_id: str, reason: str) -> None:
        """Stop sending to this chat: its subscription and DMs to it, until re-enabled by use."""
        async with self._write() as conn:
            await disable_chat(conn, transport, chat_id, reason)

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
        self,
        signal: Signal,
        chart_png: bytes | None,
        deliveries: Sequence[Delivery],
        alerted: bool,
        origin: str = SignalOrigin.CYCLE,
    ) -> int:
        """Write the signal, its chart, its outbox rows and the alert state in one transaction.
        An on-demand signal joins the history only: it may neither alert nor deliver."""
        origin = SignalOrigin(origin)  # ValueError for anything else
        if origin is SignalOrigin.ON_DEMAND and (alerted or deliveries):
            raise ValueError("an on-demand signal never alerts: no deliveries, alerted=False")
        now_s = self._now_s()
        async with self._write() as conn:
            cursor = await conn.execute(
                "INSERT INTO signals (symbol, as_of_ms, action, confidence, alerted, payload,"
                " origin) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    signal.symbol,
                    to_ms(signal.as_of),
                    signal.action.value,
                    signal.confidence,
                    int(alerted),
                    json.dumps(signal_to_json(signal)),
                    origin.value,
                ),
            )
            signal_id = cursor.lastrowid
            assert signal_id is not None  # an INTEGER PRIMARY KEY insert always sets it
            if chart_png is not None:
                await conn.execute(
                    "INSERT INTO charts (signal_id, png) VALUES (?, ?)", (signal_id, chart_png)
                )
            await _insert_deliveries(conn, signal, signal_id, deliveries, now_s)
            if alerted:
                await conn.execute(
                    "INSERT INTO last_alerts (symbol, signal_id) VALUES (?, ?)"
                    " ON CONFLICT DO UPDATE SET signal_id = excluded.signal_id",
                    (signal.symbol, signal_id),
                )
        return signal_id

    async def last_signal(self, symbol: str) -> StoredSignal | None:
        """The cycle's signal recorded last for `symbol` (by recording order); on-demand
        signals never count, so they cannot make the cycle skip a moment."""
        return await self._signal_with_chart(
            "WHERE s.symbol = ? AND s.origin = 'cycle' ORDER BY s.id DESC LIMIT 1", (symbol,)
        )

    async def last_alerted(self, symbol: str) -> StoredSignal | None:
        return await self._signal_with_chart(
            "JOIN last_alerts a ON a.signal_id = s.id WHERE a.symbol = ? AND s.origin = 'cycle'",
            (symbol,),
        )

    async def load_signal(self, signal_id: int) -> StoredSignal | None:
        return await self._signal_with_chart("WHERE s.id = ?", (signal_id,))

    async def signals(
        self, symbol: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[StoredSignal]:
        """History of `symbol` with since <= as_of < until, oldest first, cycle and on-demand
        signals alike (see `origin`); without charts (a long history would otherwise load
        every PNG; `load_signal` has the chart)."""
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


async def _insert_deliveries(
    conn: aiosqlite.Connection,
    signal: Signal,
    signal_id: int,
    deliveries: Sequence[Delivery],
    now_s: float,
) -> None:
    """The outbox rows of a signal, and each DM'd user's new alert memory."""
    await conn.executemany(
        "INSERT INTO outbox (signal_id, transport, chat_id, kind, intro, user_id,"
        " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (signal_id, d.transport, d.chat_id, str(d.kind), d.intro, d.user_id, now_s, now_s)
            for d in deliveries
        ],
    )
    await conn.executemany(
        "INSERT INTO dm_states (transport, user_id, symbol, action, confidence,"
        " signal_id) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET"
        " action = excluded.action, confidence = excluded.confidence,"
        " signal_id = excluded.signal_id",
        [
            (
                d.transport,
                d.user_id,
                signal.symbol,
                signal.action.value,
                signal.confidence,
                signal_id,
            )
            for d in deliveries
            if d.user_id is not None
        ],
    )


def _stored_signal(row: Sequence[Any]) -> StoredSignal:
    """(id, payload, alerted, origin, chart) -> StoredSignal."""
    return StoredSignal(
        row[0], signal_from_json(json.loads(row[1])), row[4], bool(row[2]), SignalOrigin(row[3])
    )
