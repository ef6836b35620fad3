"""The SQLite connection shared by the parts of `SqliteStore`: open (read-write or read-only),
serialised access, cancellation-safe write transactions.

Every store method takes this one lock, so statements of concurrent callers never interleave
inside a transaction on the shared connection; writes start with BEGIN IMMEDIATE so that a second
process on the same file waits for the write lock (busy_timeout) instead of failing halfway.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import aiosqlite

from bot.storage.migrations import SchemaTooNewError, SchemaTooOldError, check_schema, migrate
from bot.storage.transactions import immediate_transaction
from intel.errors import ConfigError
from intel.timeutil import utcnow

__all__ = ["ReadOnlyStoreError", "SqliteDatabase"]

_WAL_LIMIT_BYTES = 4 * 1024 * 1024  # SQLite's default checkpoint: every 1000 pages of 4 KiB


class ReadOnlyStoreError(RuntimeError):
    """A write was attempted on a store opened with `read_only=True`."""


class SqliteDatabase:
    """One connection, WAL and synchronous=FULL; or, `read_only`, a `mode=ro` connection that
    never migrates, never changes a setting of the file, and refuses every write."""

    def __init__(
        self,
        path: Path,
        *,
        read_only: bool = False,
        busy_timeout_ms: int = 5000,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.path = path
        self.read_only = read_only
        self._busy_timeout_ms = busy_timeout_ms
        self.clock = clock  # wall time, for row timestamps and the outbox's backoff
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Connect (and, read-write, migrate). ConfigError naming storage.db_path when the path
        cannot hold the database or its schema does not fit this code."""
        if self._conn is not None:
            return
        try:
            self._conn = await self._connect()
        except (SchemaTooNewError, SchemaTooOldError) as exc:
            raise type(exc)(f"storage.db_path {self.path}: {exc}") from exc
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"storage.db_path {self.path}: cannot open the database ({exc})"
            ) from exc

    async def _connect(self) -> aiosqlite.Connection:
        if self.path.is_dir():
            raise IsADirectoryError(f"{self.path} is a directory, not a database file")
        if self.read_only:
            # mode=ro: never creates the file; query_only refuses writes on this connection too.
            target, uri = f"{self.path.resolve().as_uri()}?mode=ro", True
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            target, uri = str(self.path), False
        # aiosqlite reports a failed connect from its worker thread, which may only get to it
        # after the event loop has closed (a traceback on stderr): fail here first, cleanly.
        await asyncio.to_thread(_try_connect, target, uri)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, never the sqlite3 module.
        conn = await aiosqlite.connect(target, uri=uri, isolation_level=None)
        try:
            await conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout_ms)}")
            if self.read_only:
                await conn.execute("PRAGMA query_only = ON")
                await check_schema(conn)
            else:
                await conn.execute("PRAGMA journal_mode = WAL")
                # After a checkpoint the WAL shrinks back to this, not to its largest write.
                await conn.execute(f"PRAGMA journal_size_limit = {_WAL_LIMIT_BYTES}")
                await conn.execute("PRAGMA synchronous = FULL")
                await conn.execute("PRAGMA foreign_keys = ON")
                await migrate(conn)
        except BaseException:
            await conn.close()
            raise
        return conn

    async def close(self) -> None:
        async with self._lock:  # after every queued operation
            if self._conn is not None:
                conn, self._conn = self._conn, None
                await conn.close()

    @asynccontextmanager
    async def exclusive(self, *, write: bool = False) -> AsyncIterator[aiosqlite.Connection]:
        async with self._lock:
            if self._conn is None:
                raise RuntimeError("SqliteStore is not open")
            if write and self.read_only:
                raise ReadOnlyStoreError(f"{self.path} is open read-only")
            yield self._conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction: all of the body commits or none, even if the caller is
        cancelled at any await inside it."""
        async with self.exclusive(write=True) as conn, immediate_transaction(conn):
            yield conn

    async def write_one(self, sql: str, params: Iterable[Any]) -> int:
        """One statement is its own write transaction in SQLite: one round trip, not three
        (the outbox's hot path), and nothing left open if the caller is cancelled. Returns the
        number of rows changed."""
        async with self.exclusive(write=True) as conn:
            cursor = await conn.execute(sql, tuple(params))
            return cursor.rowcount

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        async with self.exclusive() as conn, conn.execute(sql, tuple(params)) as cursor:
            return list(await cursor.fetchall())

    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> Any | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    def now_s(self) -> float:
        return self.clock().timestamp()


def _try_connect(target: str, uri: bool) -> None:
    sqlite3.connect(target, uri=uri).close()
