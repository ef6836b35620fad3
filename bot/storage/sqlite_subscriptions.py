"""The subscription part of `SqliteStore`: channel subscriptions, and disabling a failed chat."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import aiosqlite

from bot.storage.base import Subscription
from bot.storage.sqlite_db import SqliteDatabase
from intel.timeutil import iso

__all__ = ["SqliteSubscriptions", "disable_chat"]


class SqliteSubscriptions:
    """`SubscriptionStore` on the shared database."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def subscribe(self, transport: str, chat_id: str, symbols: Sequence[str]) -> Subscription:
        async with self._db.write() as conn:
            await conn.execute(
                "INSERT INTO subscriptions (transport, chat_id, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT DO UPDATE SET active = 1, disabled_reason = NULL",
                (transport, chat_id, iso(self._db.clock())),
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
        deleted = await self._db.write_one(  # its symbols go with it (ON DELETE CASCADE)
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
        rows = await self._db.fetch_all(
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
        async with self._db.write() as conn:
            await disable_chat(conn, transport, chat_id, reason)

    async def followed_symbols(self) -> set[str]:
        """Symbols in any active subscription or watchlist (all-symbol subscriptions excluded)."""
        rows = await self._db.fetch_all(
            "SELECT x.symbol FROM subscription_symbols x JOIN subscriptions s"
            " ON s.transport = x.transport AND s.chat_id = x.chat_id WHERE s.active = 1"
            " UNION SELECT symbol FROM watchlist"
        )
        return {row[0] for row in rows}


async def disable_chat(
    conn: aiosqlite.Connection, transport: str, chat_id: str, reason: str
) -> None:
    """Inside a write transaction: stop the chat's subscription and DMs to it."""
    await conn.execute(
        "UPDATE subscriptions SET active = 0, disabled_reason = ?"
        " WHERE transport = ? AND chat_id = ?",
        (reason, transport, chat_id),
    )
    await conn.execute(
        "UPDATE users SET dm_disabled_reason = ? WHERE transport = ? AND dm_chat_id = ?",
        (reason, transport, chat_id),
    )
