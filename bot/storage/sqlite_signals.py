"""The signal-log part of `SqliteStore`: signals, charts, alert state, and the outbox rows and DM
states a signal causes, all written in the signal's one transaction. A chart is kept only while
an outbox row of its signal is pending (migration 4's trigger drops it after the last one)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from bot.storage.base import Delivery, SignalOrigin, StoredSignal
from bot.storage.sqlite_db import SqliteDatabase
from intel.models import Signal
from intel.serialize import signal_from_json, signal_to_json
from intel.timeutil import to_ms

__all__ = ["SqliteSignalLog"]

_SIGNAL_COLUMNS = "s.id, s.payload, s.alerted, s.origin"


class SqliteSignalLog:
    """`SignalLog` on the shared database."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

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
        now_s = self._db.now_s()
        async with self._db.write() as conn:
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
            if chart_png is not None and deliveries:  # no row to deliver: nobody reads it
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
        rows = await self._db.fetch_all(
            f"SELECT {_SIGNAL_COLUMNS}, NULL FROM signals s WHERE s.symbol = ?"
            " AND s.as_of_ms >= ? AND s.as_of_ms < ? ORDER BY s.as_of_ms, s.id",
            (symbol, since_ms, until_ms),
        )
        return [_stored_signal(row) for row in rows]

    async def _signal_with_chart(self, clause: str, params: Sequence[Any]) -> StoredSignal | None:
        row = await self._db.fetch_one(
            f"SELECT {_SIGNAL_COLUMNS}, c.png FROM signals s"
            f" LEFT JOIN charts c ON c.signal_id = s.id {clause}",
            params,
        )
        return None if row is None else _stored_signal(row)


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
