"""The whale-alert part of `SqliteStore` (see `bot.storage.whales`)."""

from __future__ import annotations

import json

from bot.storage.base import DeliveryKind
from bot.storage.sqlite_db import SqliteDatabase
from bot.storage.whales import (
    HOUR_S,
    WhaleAlert,
    WhaleAlertChat,
    whale_alert_from_json,
    whale_alert_to_json,
)

__all__ = ["SqliteWhaleAlerts"]


class SqliteWhaleAlerts:
    """`WhaleAlertStore` on the shared database."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def set_whale_alerts(self, chat: WhaleAlertChat, on: bool) -> bool:
        async with self._db.write() as conn:
            async with conn.execute(
                "SELECT disabled_reason FROM whale_alert_chats WHERE transport = ? AND chat_id = ?",
                (chat.transport, chat.chat_id),
            ) as cursor:
                row = await cursor.fetchone()
            if not on:
                await conn.execute(
                    "DELETE FROM whale_alert_chats WHERE transport = ? AND chat_id = ?",
                    (chat.transport, chat.chat_id),
                )
                return row is not None
            await conn.execute(
                "INSERT INTO whale_alert_chats (transport, chat_id, kind, user_id, created_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET disabled_reason = NULL,"
                " kind = excluded.kind, user_id = excluded.user_id",
                (chat.transport, chat.chat_id, chat.kind.value, chat.user_id, self._db.now_s()),
            )
            return row is None or row[0] is not None

    async def whale_alerts_on(self, transport: str, chat_id: str) -> bool:
        row = await self._db.fetch_one(
            "SELECT 1 FROM whale_alert_chats WHERE transport = ? AND chat_id = ?"
            " AND disabled_reason IS NULL",
            (transport, chat_id),
        )
        return row is not None

    async def queue_whale_alert(self, alert: WhaleAlert, max_per_chat_h: int) -> int | None:
        now_s = self._db.now_s()
        payload = json.dumps(whale_alert_to_json(alert))
        async with self._db.write() as conn:
            async with conn.execute(
                "INSERT INTO whale_alerts (txid, payload, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (txid) DO NOTHING RETURNING id",
                (alert.transfer.txid, payload, now_s),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            async with conn.execute(
                "INSERT INTO outbox (whale_alert_id, transport, chat_id, kind, intro, user_id,"
                " created_at, next_attempt_at)"
                " SELECT ?, c.transport, c.chat_id, c.kind, '', c.user_id, ?, ?"
                " FROM whale_alert_chats c WHERE c.disabled_reason IS NULL AND ("
                "  SELECT count(*) FROM outbox o WHERE o.whale_alert_id IS NOT NULL"
                "  AND o.transport = c.transport AND o.chat_id = c.chat_id"
                "  AND o.created_at > ?) < ?"
                " ORDER BY c.transport, c.chat_id",
                (row[0], now_s, now_s, now_s - HOUR_S, max_per_chat_h),
            ) as cursor:
                return cursor.rowcount

    async def load_whale_alert(self, alert_id: int) -> WhaleAlert | None:
        row = await self._db.fetch_one("SELECT payload FROM whale_alerts WHERE id = ?", (alert_id,))
        return None if row is None else whale_alert_from_json(json.loads(row[0]))

    async def whale_alert_chats(self) -> dict[DeliveryKind, int]:
        rows = await self._db.fetch_all(
            "SELECT kind, count(*) FROM whale_alert_chats WHERE disabled_reason IS NULL"
            " GROUP BY kind"
        )
        return {DeliveryKind(kind): int(count) for kind, count in rows}

    async def prune_whale_alerts(self, keep_s: float) -> int:
        old = (
            "SELECT a.id FROM whale_alerts a WHERE a.created_at < ? AND NOT EXISTS ("
            " SELECT 1 FROM outbox o WHERE o.whale_alert_id = a.id AND o.status = 'pending')"
        )
        before_s = self._db.now_s() - keep_s
        async with self._db.write() as conn:
            # The rows first: each points at its alert (a foreign key).
            await conn.execute(f"DELETE FROM outbox WHERE whale_alert_id IN ({old})", (before_s,))
            async with conn.execute(
                f"DELETE FROM whale_alerts WHERE id IN ({old})", (before_s,)
            ) as cursor:
                return cursor.rowcount
