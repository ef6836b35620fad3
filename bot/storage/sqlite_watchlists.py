"""The watchlist part of `SqliteStore`: users' watchlists, thresholds and DM state."""

from __future__ import annotations

import aiosqlite

from bot.storage.base import DmState, Watcher
from bot.storage.sqlite_db import SqliteDatabase
from intel.models import Action

__all__ = ["SqliteWatchlists"]


class SqliteWatchlists:
    """`WatchlistStore` on the shared database (DM states are written by `record_signal`)."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def watch_add(self, transport: str, user_id: str, dm_chat_id: str, symbol: str) -> bool:
        async with self._db.write() as conn:
            await _upsert_user(conn, transport, user_id, dm_chat_id)
            cursor = await conn.execute(
                "INSERT OR IGNORE INTO watchlist (transport, user_id, symbol) VALUES (?, ?, ?)",
                (transport, user_id, symbol),
            )
            return cursor.rowcount > 0

    async def watch_remove(self, transport: str, user_id: str, symbol: str) -> bool:
        deleted = await self._db.write_one(
            "DELETE FROM watchlist WHERE transport = ? AND user_id = ? AND symbol = ?",
            (transport, user_id, symbol),
        )
        return deleted > 0

    async def watchlist(self, transport: str, user_id: str) -> list[str]:
        rows = await self._db.fetch_all(
            "SELECT symbol FROM watchlist WHERE transport = ? AND user_id = ? ORDER BY symbol",
            (transport, user_id),
        )
        return [row[0] for row in rows]

    async def set_threshold(
        self, transport: str, user_id: str, dm_chat_id: str, threshold: int | None
    ) -> None:
        async with self._db.write() as conn:
            await _upsert_user(conn, transport, user_id, dm_chat_id)
            await conn.execute(
                "UPDATE users SET threshold = ? WHERE transport = ? AND user_id = ?",
                (threshold, transport, user_id),
            )

    async def threshold(self, transport: str, user_id: str) -> int | None:
        sql = "SELECT threshold FROM users WHERE transport = ? AND user_id = ?"
        row = await self._db.fetch_one(sql, (transport, user_id))
        return None if row is None else row[0]

    async def watchers(self, symbol: str) -> list[Watcher]:
        """Users watching `symbol` whose DMs are not disabled (threshold None: alerts off)."""
        rows = await self._db.fetch_all(
            "SELECT u.transport, u.user_id, u.dm_chat_id, u.threshold FROM watchlist w"
            " JOIN users u ON u.transport = w.transport AND u.user_id = w.user_id"
            " WHERE w.symbol = ? AND u.dm_disabled_reason IS NULL"
            " ORDER BY u.transport, u.user_id",
            (symbol,),
        )
        return [Watcher(*row) for row in rows]

    async def dm_states(self, symbol: str) -> dict[tuple[str, str], DmState]:
        rows = await self._db.fetch_all(
            "SELECT transport, user_id, action, confidence, signal_id FROM dm_states"
            " WHERE symbol = ?",
            (symbol,),
        )
        return {(r[0], r[1]): DmState(Action(r[2]), r[3], r[4]) for r in rows}


async def _upsert_user(
    conn: aiosqlite.Connection, transport: str, user_id: str, dm_chat_id: str
) -> None:
    # A user who talks to the bot again re-enables DMs that a failure had disabled.
    await conn.execute(
        "INSERT INTO users (transport, user_id, dm_chat_id) VALUES (?, ?, ?)"
        " ON CONFLICT DO UPDATE SET dm_chat_id = excluded.dm_chat_id, dm_disabled_reason = NULL",
        (transport, user_id, dm_chat_id),
    )
