"""The signal-log part of `SqliteStore`: signals, charts, alert state (`AlertStateStore` too), and
the outbox rows and told states a signal causes, all written in the signal's one transaction. A
chart is kept only while an outbox row of its signal is pending (migration 4's trigger drops it
after the last one)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from bot.storage.base import (
    Call,
    CallState,
    Delivery,
    DeliveryKind,
    DmState,
    SignalOrigin,
    StoredSignal,
    recording_origin,
)
from bot.storage.sqlite_db import SqliteDatabase
from intel.models import Action, Signal
from intel.serialize import signal_from_json, signal_to_json
from intel.timeutil import from_ms, to_ms

__all__ = ["SqliteSignalLog"]

_SIGNAL_COLUMNS = "s.id, s.payload, s.alerted, s.origin"


class SqliteSignalLog:
    """`SignalLog` and `AlertStateStore` on the shared database."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def record_signal(
        self,
        signal: Signal,
        chart_png: bytes | None,
        deliveries: Sequence[Delivery],
        alerted: bool,
        origin: str = SignalOrigin.CYCLE,
        call_state: CallState | None = None,
    ) -> int:
        """Write the signal, its chart, its outbox rows and the alert state in one transaction.
        An on-demand signal joins the history only: it may neither alert nor deliver."""
        origin = recording_origin(origin, deliveries, alerted, call_state)
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
            if call_state is not None:
                await _upsert_call_state(conn, signal.symbol, call_state)
        return signal_id

    async def call_state(self, symbol: str) -> CallState | None:
        row = await self._db.fetch_one(
            "SELECT latest_action, latest_confidence, latest_first_seen_ms, run_cycles,"
            " steady_action, steady_confidence, steady_first_seen_ms, steady_since_ms,"
            " moved_cycles FROM call_states WHERE symbol = ?",
            (symbol,),
        )
        return None if row is None else _call_state(row)

    async def chat_states(self, symbol: str) -> dict[tuple[str, str], DmState]:
        rows = await self._db.fetch_all(
            "SELECT transport, chat_id, action, confidence, signal_id FROM chat_states"
            " WHERE symbol = ?",
            (symbol,),
        )
        return {(r[0], r[1]): DmState(Action(r[2]), r[3], r[4]) for r in rows}

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
    """The outbox rows of a signal, and each told user's and chat's new alert memory."""
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
    await conn.executemany(
        "INSERT INTO chat_states (transport, chat_id, symbol, action, confidence, signal_id)"
        " SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM subscriptions"
        " WHERE transport = ? AND chat_id = ?) ON CONFLICT DO UPDATE SET"
        " action = excluded.action, confidence = excluded.confidence,"
        " signal_id = excluded.signal_id",
        [
            (
                *(d.transport, d.chat_id, signal.symbol, signal.action.value),
                *(signal.confidence, signal_id, d.transport, d.chat_id),
            )
            for d in deliveries
            if d.user_id is None and d.kind == DeliveryKind.CHANNEL
        ],
    )


async def _upsert_call_state(conn: aiosqlite.Connection, symbol: str, state: CallState) -> None:
    steady = state.steady
    await conn.execute(
        "INSERT OR REPLACE INTO call_states (symbol, latest_action, latest_confidence,"
        " latest_first_seen_ms, run_cycles, steady_action, steady_confidence,"
        " steady_first_seen_ms, steady_since_ms, moved_cycles)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            symbol,
            state.latest.action.value,
            state.latest.confidence,
            to_ms(state.latest.first_seen),
            state.run_cycles,
            None if steady is None else steady.action.value,
            None if steady is None else steady.confidence,
            None if steady is None else to_ms(steady.first_seen),
            None if state.steady_since is None else to_ms(state.steady_since),
            state.moved_cycles,
        ),
    )


def _call_state(row: Sequence[Any]) -> CallState:
    steady = None if row[4] is None else Call(Action(row[4]), row[5], from_ms(row[6]))
    return CallState(
        latest=Call(Action(row[0]), row[1], from_ms(row[2])),
        run_cycles=row[3],
        steady=steady,
        steady_since=None if row[7] is None else from_ms(row[7]),
        moved_cycles=row[8],
    )


def _stored_signal(row: Sequence[Any]) -> StoredSignal:
    """(id, payload, alerted, origin, chart) -> StoredSignal."""
    return StoredSignal(
        row[0], signal_from_json(json.loads(row[1])), row[4], bool(row[2]), SignalOrigin(row[3])
    )
