"""`FlowWindowStore` (intel's whale-flow window persistence) in memory, as SQLite keeps it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from intel.models import ExchangeFlow
from intel.sources.onchain.window import StoredFlowHour
from intel.timeutil import from_ms, to_ms

__all__ = ["FlowTables", "MemoryFlowWindow"]


@dataclass
class FlowTables:
    # (provider, asset, hour start ms) -> the hour; (provider, txid) -> its hour start ms
    hours: dict[tuple[str, str, int], tuple[ExchangeFlow, bool]] = field(default_factory=dict)
    txids: dict[tuple[str, str], int] = field(default_factory=dict)


class MemoryFlowWindow:
    """`tables` shares the data with another store object (a reopen, a restart in a test)."""

    def __init__(self, tables: FlowTables | None = None) -> None:
        self.tables = tables if tables is not None else FlowTables()

    async def flow_hours(self, provider: str, since: datetime) -> list[StoredFlowHour]:
        since_ms = to_ms(since)
        found = sorted(
            (hour, asset, row)
            for (owner, asset, hour), row in self.tables.hours.items()
            if owner == provider and hour >= since_ms
        )
        return [StoredFlowHour(asset, *row) for _, asset, row in found]

    async def counted_txids(self, provider: str, since: datetime) -> dict[str, datetime]:
        since_ms = to_ms(since)
        return {
            txid: from_ms(hour)
            for (owner, txid), hour in self.tables.txids.items()
            if owner == provider and hour >= since_ms
        }

    async def save_flow_hour(
        self, provider: str, asset: str, flow: ExchangeFlow, txid: str | None, watched: bool
    ) -> bool:
        hour_ms = to_ms(flow.hour_start)
        if txid is not None:
            if (provider, txid) in self.tables.txids:
                return False
            self.tables.txids[provider, txid] = hour_ms
        self.tables.hours[provider, asset, hour_ms] = (flow, watched)
        return True

    async def prune_flow_window(self, provider: str, before: datetime) -> int:
        cutoff_ms = to_ms(before)
        old = [k for k in self.tables.hours if k[0] == provider and k[2] < cutoff_ms]
        for key in old:
            del self.tables.hours[key]
        txids = self.tables.txids
        stale = [key for key, hour in txids.items() if key[0] == provider and hour < cutoff_ms]
        for txid_key in stale:
            del self.tables.txids[txid_key]
        return len(old)
