"""The subscription part of `SqliteStore`: channel subscriptions, and disabling a failed chat."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import aiosqlite

from bot.storage.base import Subscription, symbols_after_subscribe, symbols_after_unsubscribe
from bot.storage.sqlite_db import SqliteDatabase
from intel.timeutil import iso

__all__ = ["SqliteSubscriptions", "disable_chat"]

_SELECT = (
    "SELECT s.transport, s.chat_id, s.active, s.disabled_reason,"
    " (SELECT json_group_array(x.symbol) FROM subscription_symbols x"
    "  WHERE x.transport = s.transport AND x.chat_id = s.chat_id),"
    " s.thread_id"
    " FROM subscriptions s"
)


class SqliteSubscriptions:
    """`SubscriptionStore` on the shared database."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def subscribe(
        self,
        transport: str,
        chat_id: str,
        symbols: Sequence[str],
        thread_id: str | None = None,
    ) -> Subscription:
        async with self._db.write() as conn:
            current = await _current(conn, transport, chat_id)
            await conn.execute(
                "INSERT INTO subscriptions (transport, chat_id, created_at, thread_id)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE"
                " SET active = 1, disabled_reason = NULL, thread_id = excluded.thread_id",
                (transport, chat_id, iso(self._db.clock()), thread_id),
            )
            chosen = symbols_after_subscribe(None if current is None else current.symbols, symbols)
            await _set_symbols(conn, transport, chat_id, chosen)
        return Subscription(transport, chat_id, chosen, thread_id=thread_id)

    async def unsubscribe(
        self,
        transport: str,
        chat_id: str,
        symbols: Sequence[str] = (),
        every_symbol: Sequence[str] = (),
    ) -> Subscription | None:
        async with self._db.write() as conn:
            current = await _current(conn, transport, chat_id)
            if current is None:
                return None
            rest = symbols_after_unsubscribe(current.symbols, symbols, every_symbol)
            if rest is None:
                await conn.execute(  # its symbols go with it (ON DELETE CASCADE)
                    "DELETE FROM subscriptions WHERE transport = ? AND chat_id = ?",
                    (transport, chat_id),
                )
                return None
            await _set_symbols(conn, transport, chat_id, rest)
            # What the chat was told of a symbol it no longer follows is forgotten: following it
            # again starts from the current call, as a new subscription does.
            await conn.execute(
                "DELETE FROM chat_states WHERE transport = ? AND chat_id = ?"
                f" AND symbol NOT IN ({', '.join('?' * len(rest))})",
                (transport, chat_id, *rest),
            )
        return dataclasses.replace(current, symbols=rest)

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
            f"{_SELECT} {where} ORDER BY s.transport, s.chat_id", params
        )
        return [_row_subscription(row) for row in rows]

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


async def _current(conn: aiosqlite.Connection, transport: str, chat_id: str) -> Subscription | None:
    """Inside a transaction: the chat's subscription (symbols () for every symbol), if any."""
    async with conn.execute(
        f"{_SELECT} WHERE s.transport = ? AND s.chat_id = ?", (transport, chat_id)
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else _row_subscription(row)


def _row_subscription(row: Any) -> Subscription:
    return Subscription(
        row[0], row[1], tuple(sorted(json.loads(row[4]))), bool(row[2]), row[3], row[5]
    )


async def _set_symbols(
    conn: aiosqlite.Connection, transport: str, chat_id: str, symbols: Sequence[str]
) -> None:
    """Inside a transaction: replace the chat's symbol rows (none: every symbol)."""
    await conn.execute(
        "DELETE FROM subscription_symbols WHERE transport = ? AND chat_id = ?",
        (transport, chat_id),
    )
    await conn.executemany(
        "INSERT INTO subscription_symbols (transport, chat_id, symbol) VALUES (?, ?, ?)",
        [(transport, chat_id, symbol) for symbol in symbols],
    )


async def disable_chat(
    conn: aiosqlite.Connection, transport: str, chat_id: str, reason: str
) -> None:
    """Inside a write transaction: stop the chat's subscription, DMs and whale alerts to it."""
    await conn.execute(
        "UPDATE subscriptions SET active = 0, disabled_reason = ?"
        " WHERE transport = ? AND chat_id = ?",
        (reason, transport, chat_id),
    )
    await conn.execute(
        "UPDATE users SET dm_disabled_reason = ? WHERE transport = ? AND dm_chat_id = ?",
        (reason, transport, chat_id),
    )
    await conn.execute(
        "UPDATE whale_alert_chats SET disabled_reason = ? WHERE transport = ? AND chat_id = ?",
        (reason, transport, chat_id),
    )
