"""The Store on SQLite through aiosqlite: one shared connection, its parts, one facade.

The connection, its lock and its transactions live in `sqlite_db`; each protocol of
`bot.storage.base` has its part (`sqlite_subscriptions`, `sqlite_watchlists`, `sqlite_signals`,
`sqlite_outbox`, and `SqliteMeta` here); `SqliteStore` joins them behind the `Store` protocol.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from bot.storage.facade import StoreFacade
from bot.storage.sqlite_db import ReadOnlyStoreError, SqliteDatabase
from bot.storage.sqlite_flows import SqliteFlowWindow
from bot.storage.sqlite_outbox import SqliteOutbox
from bot.storage.sqlite_signals import SqliteSignalLog
from bot.storage.sqlite_subscriptions import SqliteSubscriptions
from bot.storage.sqlite_watchlists import SqliteWatchlists
from bot.storage.sqlite_whales import SqliteWhaleAlerts
from intel.timeutil import utcnow

__all__ = ["ReadOnlyStoreError", "SqliteMeta", "SqliteStore"]


class SqliteMeta:
    """`MetaStore` on the shared database."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def get_meta(self, key: str) -> str | None:
        row = await self._db.fetch_one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else row[0]

    async def set_meta(self, key: str, value: str) -> None:
        await self._db.write_one(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT DO UPDATE SET value = excluded.value",
            (key, value),
        )


class SqliteStore(StoreFacade):
    """`Store` on one SQLite file. `SqliteStore(path, read_only=True)` reads a database without
    migrating or changing it (for reports); its writes raise `ReadOnlyStoreError`."""

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 300.0,
        busy_timeout_ms: int = 5000,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        db = SqliteDatabase(path, read_only=read_only, busy_timeout_ms=busy_timeout_ms, clock=clock)
        signal_log = SqliteSignalLog(db)
        super().__init__(
            SqliteSubscriptions(db),
            SqliteWatchlists(db),
            signal_log,
            SqliteOutbox(db, backoff_base_s=backoff_base_s, backoff_max_s=backoff_max_s),
            SqliteMeta(db),
            alert_states=signal_log,
        )
        self.database = db
        self.flow_window = SqliteFlowWindow(db)
        self.whale_alert_store = SqliteWhaleAlerts(db)

    @property
    def path(self) -> Path:
        return self.database.path

    @property
    def read_only(self) -> bool:
        return self.database.read_only

    async def open(self) -> None:
        """Connect (and, read-write, migrate); see `SqliteDatabase.open`."""
        await self.database.open()

    async def close(self) -> None:
        await self.database.close()
