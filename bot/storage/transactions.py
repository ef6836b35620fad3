"""A cancellation-safe write transaction on an aiosqlite connection: all of it commits, or none.

aiosqlite runs every statement on its own thread and keeps running a statement whose awaiting
coroutine was cancelled. So BEGIN, the body and COMMIT must all sit inside the one `try` whose
handler rolls back, and the rollback must finish before the caller lets go of the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosqlite

__all__ = ["immediate_transaction"]


@asynccontextmanager
async def immediate_transaction(conn: aiosqlite.Connection) -> AsyncIterator[None]:
    """BEGIN IMMEDIATE ... COMMIT; on any exception, cancellation included, roll back and re-raise.

    The caller must hold the connection exclusively (no other coroutine's statements between).
    """
    try:
        await conn.execute("BEGIN IMMEDIATE")
        yield
        await conn.execute("COMMIT")
    except BaseException:
        await _roll_back(conn)
        raise


async def _roll_back(conn: aiosqlite.Connection) -> None:
    """Roll back and wait until it has run, even through further cancellations of this task.

    A no-op where no transaction is open (BEGIN never ran, or COMMIT already did). Another
    cancellation that arrives meanwhile is raised once the rollback is done.
    """
    rollback = asyncio.ensure_future(conn.rollback())
    cancelled = False
    while not rollback.done():
        try:
            await asyncio.shield(rollback)
        except asyncio.CancelledError:
            cancelled = True
    rollback.result()  # a failed rollback leaves the connection unusable: say so
    if cancelled:
        raise asyncio.CancelledError
