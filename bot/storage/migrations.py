"""The SQLite schema as an ordered list of versioned migrations, applied once each at open.

Never edit a migration that has shipped: append a new one. Each runs in its own transaction
together with the row that records its version, so a crash leaves either all of it or none.
A migration that deletes bulk data asks for one VACUUM afterwards, to give the space back.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import aiosqlite
import structlog

from bot.storage.transactions import immediate_transaction
from intel.errors import ConfigError
from intel.timeutil import iso, utcnow

__all__ = [
    "MIGRATIONS",
    "Migration",
    "SchemaTooNewError",
    "SchemaTooOldError",
    "check_schema",
    "migrate",
    "schema_version",
]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]
    # VACUUM once after applying: for a migration that frees much of an old file. Outside any
    # transaction (SQLite requires it), so a crash just leaves the free pages for reuse.
    reclaim_space: bool = False


class SchemaTooNewError(ConfigError):
    """The database was written by a newer version of the bot; refuse to touch it."""


class SchemaTooOldError(ConfigError):
    """A connection that must not migrate (read-only) found an older schema than the code's."""


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "initial schema",
        (
            """CREATE TABLE subscriptions (
            transport TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
            disabled_reason TEXT,
            created_at TEXT NOT NULL,
            PRIMARY KEY (transport, chat_id)
        )""",
            # No rows for a subscription means it follows every symbol.
            """CREATE TABLE subscription_symbols (
            transport TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            PRIMARY KEY (transport, chat_id, symbol),
            FOREIGN KEY (transport, chat_id) REFERENCES subscriptions (transport, chat_id)
                ON DELETE CASCADE
        )""",
            "CREATE INDEX subscription_symbols_by_symbol ON subscription_symbols (symbol)",
            """CREATE TABLE users (
            transport TEXT NOT NULL,
            user_id TEXT NOT NULL,
            dm_chat_id TEXT NOT NULL,
            threshold INTEGER,
            dm_disabled_reason TEXT,
            PRIMARY KEY (transport, user_id)
        )""",
            """CREATE TABLE watchlist (
            transport TEXT NOT NULL,
            user_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            PRIMARY KEY (transport, user_id, symbol),
            FOREIGN KEY (transport, user_id) REFERENCES users (transport, user_id)
                ON DELETE CASCADE
        )""",
            "CREATE INDEX watchlist_by_symbol ON watchlist (symbol)",
            """CREATE TABLE signals (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            symbol TEXT NOT NULL,
            as_of_ms INTEGER NOT NULL,
            action TEXT NOT NULL,
            confidence INTEGER NOT NULL,
            alerted INTEGER NOT NULL CHECK (alerted IN (0, 1)),
            payload TEXT NOT NULL
        )""",
            "CREATE INDEX signals_by_symbol_time ON signals (symbol, as_of_ms)",
            "CREATE INDEX signals_by_symbol_action ON signals (symbol, action, confidence)",
            """CREATE TABLE charts (
            signal_id INTEGER PRIMARY KEY REFERENCES signals (id) ON DELETE CASCADE,
            png BLOB NOT NULL
        )""",
            """CREATE TABLE last_alerts (
            symbol TEXT PRIMARY KEY,
            signal_id INTEGER NOT NULL REFERENCES signals (id)
        )""",
            """CREATE TABLE dm_states (
            transport TEXT NOT NULL,
            user_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            action TEXT NOT NULL,
            confidence INTEGER NOT NULL,
            signal_id INTEGER NOT NULL REFERENCES signals (id),
            PRIMARY KEY (transport, user_id, symbol)
        )""",
            """CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            signal_id INTEGER NOT NULL REFERENCES signals (id),
            transport TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('channel', 'dm')),
            intro TEXT NOT NULL,
            user_id TEXT,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at REAL NOT NULL,
            next_attempt_at REAL NOT NULL,
            finished_at REAL
        )""",
            "CREATE INDEX outbox_by_status ON outbox (status, id)",
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        ),
    ),
    # On-demand signals (asked for in chat) join the history for the scorecard; alert state and
    # the cycle's "already computed" check read only the cycle's own rows.
    Migration(
        2,
        "signal origin",
        (
            "ALTER TABLE signals ADD COLUMN origin TEXT NOT NULL DEFAULT 'cycle'"
            " CHECK (origin IN ('cycle', 'on_demand'))",
            "CREATE INDEX signals_by_symbol_origin ON signals (symbol, origin)",
        ),
    ),
    # The alert policy's memory (bot.alerts): each symbol's call state (the run of the latest
    # call and the steady call alerts announce) and what each chat was last told. A chat's state
    # starts from the last channel alert queued for it, so an upgrade neither repeats a call
    # nor restates one as new; subscriptions and watchlists are untouched.
    Migration(
        3,
        "alert state",
        (
            """CREATE TABLE call_states (
            symbol TEXT PRIMARY KEY,
            latest_action TEXT NOT NULL,
            latest_confidence INTEGER NOT NULL,
            latest_first_seen_ms INTEGER NOT NULL,
            run_cycles INTEGER NOT NULL,
            steady_action TEXT,
            steady_confidence INTEGER,
            steady_first_seen_ms INTEGER,
            steady_since_ms INTEGER,
            moved_cycles INTEGER NOT NULL DEFAULT 0
        )""",
            """CREATE TABLE chat_states (
            transport TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            symbol TEXT NOT NULL,
            action TEXT NOT NULL,
            confidence INTEGER NOT NULL,
            signal_id INTEGER NOT NULL REFERENCES signals (id),
            PRIMARY KEY (transport, chat_id, symbol),
            FOREIGN KEY (transport, chat_id) REFERENCES subscriptions (transport, chat_id)
                ON DELETE CASCADE
        )""",
            """INSERT INTO chat_states (transport, chat_id, symbol, action, confidence, signal_id)
            SELECT o.transport, o.chat_id, s.symbol, s.action, s.confidence, max(s.id)
            FROM outbox o JOIN signals s ON s.id = o.signal_id
            JOIN subscriptions c ON c.transport = o.transport AND c.chat_id = o.chat_id
            WHERE o.kind = 'channel'
            GROUP BY o.transport, o.chat_id, s.symbol""",
        ),
    ),
    # A chart is only ever read to deliver its signal: keep it while an outbox row of its signal
    # is pending, and drop it in the statement that finishes the last one (sent or failed). The
    # figures stay in `signals.payload` for good. Built on migration 1's tables only.
    Migration(
        4,
        "chart retention",
        (
            # Only pending rows: the index stays as small as the backlog, not the history.
            "CREATE INDEX outbox_pending_by_signal ON outbox (signal_id) WHERE status = 'pending'",
            """CREATE TRIGGER charts_dropped_when_delivered AFTER UPDATE OF status ON outbox
            WHEN NEW.status <> 'pending'
            BEGIN
                DELETE FROM charts WHERE signal_id = NEW.signal_id AND NOT EXISTS (
                    SELECT 1 FROM outbox
                    WHERE signal_id = NEW.signal_id AND status = 'pending'
                );
            END""",
            # The charts an older version kept after delivery (about 91 KB each).
            """DELETE FROM charts WHERE NOT EXISTS (
                SELECT 1 FROM outbox
                WHERE outbox.signal_id = charts.signal_id AND outbox.status = 'pending'
            )""",
        ),
        reclaim_space=True,
    ),
    # Live whale flows: the hourly exchange-flow window (`watched`: the source saw the whole
    # hour; a watched hour with no transfer is a row with transfer_count 0) and the txids
    # counted in it, so a restart keeps the window and never counts a transaction twice.
    # Pruned to the window by the source.
    Migration(
        5,
        "whale flow window",
        (
            """CREATE TABLE whale_flow_hours (
            provider TEXT NOT NULL,
            asset TEXT NOT NULL,
            hour_start_ms INTEGER NOT NULL,
            inflow_usd REAL NOT NULL,
            outflow_usd REAL NOT NULL,
            inflow_coins REAL,
            outflow_coins REAL,
            transfer_count INTEGER NOT NULL CHECK (transfer_count >= 0),
            watched INTEGER NOT NULL CHECK (watched IN (0, 1)),
            PRIMARY KEY (provider, asset, hour_start_ms)
            ) WITHOUT ROWID""",
            """CREATE TABLE whale_counted_txs (
            provider TEXT NOT NULL,
            txid TEXT NOT NULL,
            hour_start_ms INTEGER NOT NULL,
            PRIMARY KEY (provider, txid)
            ) WITHOUT ROWID""",
            "CREATE INDEX whale_counted_txs_by_hour ON whale_counted_txs (provider, hour_start_ms)",
        ),
    ),
    # A subscription made in a forum topic posts its alerts to that topic (Telegram's
    # message_thread_id); existing subscriptions keep posting to the chat itself.
    Migration(
        6,
        "subscription thread",
        ("ALTER TABLE subscriptions ADD COLUMN thread_id TEXT",),
    ),
    # Instant whale alerts (bot.storage.whales): the chats that asked for them, each alerted
    # transfer once by txid, and outbox rows that carry a whale alert instead of a signal. SQLite
    # cannot drop a NOT NULL, so the outbox is rebuilt: every row keeps its id, status and
    # attempts; its indexes and migration 4's trigger are made again as they were.
    Migration(
        7,
        "whale alerts",
        (
            """CREATE TABLE whale_alerts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            txid TEXT NOT NULL UNIQUE,
            payload TEXT NOT NULL,
            created_at REAL NOT NULL
        )""",
            """CREATE TABLE whale_alert_chats (
            transport TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('channel', 'dm')),
            user_id TEXT,
            disabled_reason TEXT,
            created_at REAL NOT NULL,
            PRIMARY KEY (transport, chat_id)
        )""",
            """CREATE TABLE outbox_v7 (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            signal_id INTEGER REFERENCES signals (id),
            transport TEXT NOT NULL,
            chat_id TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('channel', 'dm')),
            intro TEXT NOT NULL,
            user_id TEXT,
            status TEXT NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at REAL NOT NULL,
            next_attempt_at REAL NOT NULL,
            finished_at REAL,
            whale_alert_id INTEGER REFERENCES whale_alerts (id),
            CHECK ((signal_id IS NULL) <> (whale_alert_id IS NULL))
        )""",
            """INSERT INTO outbox_v7 (id, signal_id, transport, chat_id, kind, intro, user_id,
                status, attempts, last_error, created_at, next_attempt_at, finished_at)
            SELECT id, signal_id, transport, chat_id, kind, intro, user_id,
                status, attempts, last_error, created_at, next_attempt_at, finished_at
            FROM outbox""",
            "DROP TABLE outbox",
            "ALTER TABLE outbox_v7 RENAME TO outbox",
            "CREATE INDEX outbox_by_status ON outbox (status, id)",
            "CREATE INDEX outbox_pending_by_signal ON outbox (signal_id) WHERE status = 'pending'",
            """CREATE TRIGGER charts_dropped_when_delivered AFTER UPDATE OF status ON outbox
            WHEN NEW.status <> 'pending' AND NEW.signal_id IS NOT NULL
            BEGIN
                DELETE FROM charts WHERE signal_id = NEW.signal_id AND NOT EXISTS (
                    SELECT 1 FROM outbox
                    WHERE signal_id = NEW.signal_id AND status = 'pending'
                );
            END""",
            # The per-chat hourly limit counts a chat's recent whale rows.
            "CREATE INDEX outbox_whales_by_chat ON outbox (transport, chat_id, created_at)"
            " WHERE whale_alert_id IS NOT NULL",
        ),
    ),
)


async def schema_version(conn: aiosqlite.Connection) -> int:
    """The highest version applied; 0 for a database without a schema_version table."""
    async with conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ) as cursor:
        if await cursor.fetchone() is None:
            return 0
    async with conn.execute("SELECT coalesce(max(version), 0) FROM schema_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def check_schema(
    conn: aiosqlite.Connection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> None:
    """For a connection that must not write: raise unless the schema is exactly the code's."""
    current, latest = await schema_version(conn), _latest(migrations)
    _refuse_newer(current, latest)
    if current < latest:
        raise SchemaTooOldError(
            f"database schema is version {current}, older than this version ({latest});"
            " run the bot once to migrate"
        )


async def migrate(
    conn: aiosqlite.Connection, migrations: tuple[Migration, ...] = MIGRATIONS
) -> list[int]:
    """Bring the schema up to date; return the versions applied now (empty when current)."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    current = await schema_version(conn)
    _refuse_newer(current, _latest(migrations))
    applied: list[Migration] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if migration.version > current and await _apply(conn, migration):
            applied.append(migration)
    if any(m.reclaim_space for m in applied):
        await _reclaim_space(conn)
    return [m.version for m in applied]


def _latest(migrations: tuple[Migration, ...]) -> int:
    return max((m.version for m in migrations), default=0)


def _refuse_newer(current: int, latest: int) -> None:
    if current > latest:
        raise SchemaTooNewError(
            f"database schema is version {current}; this code knows up to {latest}"
        )


async def _reclaim_space(conn: aiosqlite.Connection) -> None:
    """VACUUM when pages are free. Best effort: it needs the file's size again on disk and no
    other connection reading; without it the free pages are reused by later writes."""
    async with conn.execute("PRAGMA freelist_count") as cursor:
        row = await cursor.fetchone()
    free_pages = int(row[0]) if row else 0
    if free_pages == 0:
        return
    try:
        await conn.execute("VACUUM")
        # In WAL mode VACUUM rewrote the whole file into the WAL: empty it now, not at close.
        await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except sqlite3.Error as exc:
        log.warning("database_vacuum_skipped", free_pages=free_pages, reason=str(exc))
    else:
        log.info("database_vacuumed", free_pages=free_pages)


async def _apply(conn: aiosqlite.Connection, migration: Migration) -> bool:
    async with immediate_transaction(conn):
        # Another process may have migrated while we waited for the write lock.
        if await schema_version(conn) >= migration.version:
            return False
        for statement in migration.statements:
            await conn.execute(statement)
        await conn.execute(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, iso(utcnow())),
        )
    return True
