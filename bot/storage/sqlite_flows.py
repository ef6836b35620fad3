"""`FlowWindowStore` (intel's whale-flow window persistence) on the shared SQLite database."""

from __future__ import annotations

from datetime import datetime

from bot.storage.sqlite_db import SqliteDatabase
from intel.models import ExchangeFlow
from intel.sources.onchain.window import StoredFlowHour
from intel.timeutil import from_ms, to_ms

__all__ = ["SqliteFlowWindow"]


class SqliteFlowWindow:
    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def flow_hours(self, provider: str, since: datetime) -> list[StoredFlowHour]:
        rows = await self._db.fetch_all(
            "SELECT asset, hour_start_ms, inflow_usd, outflow_usd, inflow_coins, outflow_coins,"
            " transfer_count, watched FROM whale_flow_hours"
            " WHERE provider = ? AND hour_start_ms >= ?"
            " ORDER BY hour_start_ms, asset",
            (provider, to_ms(since)),
        )
        return [
            StoredFlowHour(
                asset,
                ExchangeFlow(from_ms(hour), inflow, outflow, c_in, c_out, count),
                bool(watched),
            )
            for asset, hour, inflow, outflow, c_in, c_out, count, watched in rows
        ]

    async def counted_txids(self, provider: str, since: datetime) -> dict[str, datetime]:
        rows = await self._db.fetch_all(
            "SELECT txid, hour_start_ms FROM whale_counted_txs"
            " WHERE provider = ? AND hour_start_ms >= ?",
            (provider, to_ms(since)),
        )
        return {txid: from_ms(hour) for txid, hour in rows}

    async def save_flow_hour(
        self, provider: str, asset: str, flow: ExchangeFlow, txid: str | None, watched: bool
    ) -> bool:
        hour_ms = to_ms(flow.hour_start)
        async with self._db.write() as conn:
            if txid is not None:
                cursor = await conn.execute(
                    "INSERT INTO whale_counted_txs (provider, txid, hour_start_ms) VALUES (?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    (provider, txid, hour_ms),
                )
                if cursor.rowcount == 0:
                    return False
            await conn.execute(
                "INSERT INTO whale_flow_hours (provider, asset, hour_start_ms, inflow_usd,"
                " outflow_usd, inflow_coins, outflow_coins, transfer_count, watched)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET"
                " inflow_usd = excluded.inflow_usd, outflow_usd = excluded.outflow_usd,"
                " inflow_coins = excluded.inflow_coins, outflow_coins = excluded.outflow_coins,"
                " transfer_count = excluded.transfer_count, watched = excluded.watched",
                (
                    provider,
                    asset,
                    hour_ms,
                    flow.inflow_usd,
                    flow.outflow_usd,
                    flow.inflow_coins,
                    flow.outflow_coins,
                    flow.transfer_count,
                    watched,
                ),
            )
        return True

    async def prune_flow_window(self, provider: str, before: datetime) -> int:
        cutoff = (provider, to_ms(before))
        async with self._db.write() as conn:
            await conn.execute(
                "DELETE FROM whale_counted_txs WHERE provider = ? AND hour_start_ms < ?", cutoff
            )
            cursor = await conn.execute(
                "DELETE FROM whale_flow_hours WHERE provider = ? AND hour_start_ms < ?", cutoff
            )
            return cursor.rowcount
