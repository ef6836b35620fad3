"""The outbox part of `SqliteStore`: due rows, group-committed sent marks, failures with backoff.

Rows are written by `SqliteSignalLog.record_signal` in the signal's own transaction; this module
only reads them and moves them to 'sent' or 'failed'.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

from bot.storage.base import DeliveryKind, OutboxItem
from bot.storage.sqlite_db import SqliteDatabase
from bot.storage.sqlite_subscriptions import disable_chat

__all__ = ["SqliteOutbox"]

_OUTBOX_COLUMNS = (
    "id, signal_id, transport, chat_id, kind, intro, attempts, created_at, whale_alert_id"
)


class SqliteOutbox:
    """`OutboxStore` on the shared database; `backoff_*` schedule retries after transient
    failures."""

    def __init__(
        self, db: SqliteDatabase, *, backoff_base_s: float = 1.0, backoff_max_s: float = 300.0
    ) -> None:
        self._db = db
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        # Rows sent since the last commit of sent marks, and the future of that next commit.
        self._sent_batch: tuple[list[int], asyncio.Future[None]] | None = None
        self._flushers: set[asyncio.Task[None]] = set()

    async def pending_deliveries(self, limit: int) -> list[OutboxItem]:
        """Unsent, unfailed rows due now, oldest first."""
        rows = await self._db.fetch_all(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE status = 'pending'"
            " AND next_attempt_at <= ? ORDER BY id LIMIT ?",
            (self._db.now_s(), limit),
        )
        return [
            OutboxItem(
                id=r[0],
                signal_id=r[1],
                transport=r[2],
                chat_id=r[3],
                kind=DeliveryKind(r[4]),
                intro=r[5],
                attempts=r[6],
                created_at=datetime.fromtimestamp(r[7], UTC),
                whale_alert_id=r[8],
            )
            for r in rows
        ]

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
            async with self._db.exclusive(write=True) as conn:
                self._sent_batch = None  # marks from now on go to the next commit
                await conn.execute(  # one statement: one implicit transaction
                    "UPDATE outbox SET status = 'sent', finished_at = ?"
                    " WHERE id IN (SELECT value FROM json_each(?))",
                    (self._db.now_s(), json.dumps(item_ids)),
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
        now_s = self._db.now_s()
        if not permanent:
            await self._db.write_one(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?,"
                " next_attempt_at = ? + min(?, ? * (1 << min(attempts, 30)))"
                " WHERE id = ? AND status = 'pending'",
                (reason, now_s, self._backoff_max_s, self._backoff_base_s, item_id),
            )
            return
        async with self._db.write() as conn:
            async with conn.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ?,"
                " finished_at = ? WHERE id = ? AND status = 'pending'"
                " RETURNING transport, chat_id",
                (reason, now_s, item_id),
            ) as cursor:
                row = await cursor.fetchone()
            if row is not None:
                await disable_chat(conn, row[0], row[1], reason)

    async def outbox_counts(self) -> dict[str, int]:
        rows = await self._db.fetch_all("SELECT status, count(*) FROM outbox GROUP BY status")
        return {"pending": 0, "sent": 0, "failed": 0} | {row[0]: row[1] for row in rows}
