"""The hourly exchange-flow window of one asset, kept in memory and persisted as it is built.

Which hour a transfer counts in: the UTC hour in which this bot first saw it — its arrival on the
websocket for a mempool transaction, or its block's time for one first met in a block (backfill,
or a block whose transactions the socket missed). Confirmation never moves it, so an hour's
aggregate is final once the hour ends. Each transaction counts once, by txid, whichever way it
came first; the counted txids are persisted with the hour in one write, so a restart neither
loses nor repeats one.

Collected hours: an hour counts as collected when the source watched all of it (or reached back
over it by backfill); an hour watched in part (the one the bot started in) holds its transfers
but does not count. A watched hour is written even with no transfer (transfer_count 0, flagged
watched), so a restart knows which hours of the window it holds; until the window is full the
flows carry `collected_h` and the agent reports "warming up".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from intel.models import ExchangeFlow, WhaleFlows
from intel.timeutil import from_ms, to_ms

__all__ = ["HOUR_MS", "FlowWindow", "FlowWindowStore", "StoredFlowHour"]

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class StoredFlowHour:
    asset: str
    flow: ExchangeFlow
    watched: bool  # the source watched the whole hour (it counts as collected)


class FlowWindowStore(Protocol):
    """Where the window survives a restart (the bot's store implements it; intel never imports
    the bot). `provider` keeps two providers' windows apart. Every method is atomic."""

    async def flow_hours(self, provider: str, since: datetime) -> list[StoredFlowHour]:
        """Every stored hour starting at or after `since`, oldest first."""
        ...

    async def counted_txids(self, provider: str, since: datetime) -> dict[str, datetime]:
        """Txids counted in hours starting at or after `since`, each with its hour's start."""
        ...

    async def save_flow_hour(
        self, provider: str, asset: str, flow: ExchangeFlow, txid: str | None, watched: bool
    ) -> bool:
        """Write the hour (replacing it) and, with `txid`, record it as counted, in one write;
        False, writing nothing, when `txid` was counted already."""
        ...

    async def prune_flow_window(self, provider: str, before: datetime) -> int:
        """Drop hours and txids of hours starting before `before`; how many hours went."""
        ...


def hour_floor_ms(moment_ms: int) -> int:
    return moment_ms - moment_ms % HOUR_MS


class FlowWindow:
    """Hourly flows of one asset from one provider; memory is bounded by `keep_h` hours."""

    def __init__(
        self, provider: str, asset: str, keep_h: int, store: FlowWindowStore | None
    ) -> None:
        self.provider = provider
        self.asset = asset
        self._keep_ms = keep_h * HOUR_MS
        self._store = store
        self._hours: dict[int, ExchangeFlow] = {}  # hour start (ms) -> flows
        self._watched: set[int] = set()  # hour starts (ms) watched whole
        self._txids: dict[str, int] = {}  # counted txid -> its hour start (ms)

    async def load(self, now: datetime) -> None:
        """Read the stored window back (a restart); nothing when there is no store."""
        if self._store is None:
            return
        since = from_ms(hour_floor_ms(to_ms(now)) - self._keep_ms)
        stored = await self._store.flow_hours(self.provider, since)
        txids = await self._store.counted_txids(self.provider, since)
        mine = [s for s in stored if s.asset == self.asset]
        self._hours = {to_ms(s.flow.hour_start): s.flow for s in mine}
        self._watched = {to_ms(s.flow.hour_start) for s in mine if s.watched}
        self._txids = {txid: to_ms(hour) for txid, hour in txids.items()}

    def counted(self, txid: str) -> bool:
        return txid in self._txids

    async def add(
        self, txid: str, seen_at: datetime, coins: float, usd: float, inflow: bool
    ) -> bool:
        """Count one whale transfer into or out of exchanges; False when `txid` was counted."""
        if txid in self._txids:
            return False
        hour_ms = hour_floor_ms(to_ms(seen_at))
        old = self._hours.get(hour_ms) or _empty(hour_ms)
        new = ExchangeFlow(
            hour_start=old.hour_start,
            inflow_usd=old.inflow_usd + (usd if inflow else 0.0),
            outflow_usd=old.outflow_usd + (0.0 if inflow else usd),
            inflow_coins=(old.inflow_coins or 0.0) + (coins if inflow else 0.0),
            outflow_coins=(old.outflow_coins or 0.0) + (0.0 if inflow else coins),
            transfer_count=old.transfer_count + 1,
        )
        watched = hour_ms in self._watched
        if self._store is not None and not await self._store.save_flow_hour(
            self.provider, self.asset, new, txid, watched
        ):
            self._txids[txid] = hour_ms  # counted before a restart this process missed
            return False
        self._hours[hour_ms], self._txids[txid] = new, hour_ms
        return True

    async def mark_watched(self, covered_from: datetime, heard_at: datetime) -> None:
        """Record every whole hour inside [covered_from, heard_at] as collected."""
        first_ms = -(-to_ms(covered_from) // HOUR_MS) * HOUR_MS  # the first hour starting inside
        for hour_ms in range(first_ms, hour_floor_ms(to_ms(heard_at)), HOUR_MS):
            if hour_ms not in self._watched:
                flow = self._hours.get(hour_ms) or _empty(hour_ms)
                if self._store is not None:
                    await self._store.save_flow_hour(self.provider, self.asset, flow, None, True)
                self._hours[hour_ms] = flow
                self._watched.add(hour_ms)

    async def prune(self, now: datetime) -> None:
        cutoff_ms = hour_floor_ms(to_ms(now)) - self._keep_ms
        self._hours = {h: f for h, f in self._hours.items() if h >= cutoff_ms}
        self._watched = {h for h in self._watched if h >= cutoff_ms}
        self._txids = {t: h for t, h in self._txids.items() if h >= cutoff_ms}
        if self._store is not None:
            await self._store.prune_flow_window(self.provider, from_ms(cutoff_ms))

    def flows(
        self, as_of_ms: int, window_h: int, credit: str, notes: tuple[str, ...] = ()
    ) -> WhaleFlows:
        """The completed hours of the `window_h` hours before `as_of_ms` (an hour start)."""
        start_ms = as_of_ms - window_h * HOUR_MS
        inside = [f for h, f in sorted(self._hours.items()) if start_ms <= h < as_of_ms]
        return WhaleFlows(
            asset=self.asset,
            window_start=from_ms(start_ms),
            as_of=from_ms(as_of_ms),
            hours=tuple(f for f in inside if f.transfer_count > 0),
            credit=credit,
            collected_h=sum(1 for h in self._watched if start_ms <= h < as_of_ms),
            notes=notes,
        )

    def memory_items(self) -> int:
        """Hours plus txids held: the window's memory is proportional to this."""
        return len(self._hours) + len(self._watched) + len(self._txids)


def _empty(hour_ms: int) -> ExchangeFlow:
    return ExchangeFlow(from_ms(hour_ms), 0.0, 0.0, 0.0, 0.0, 0)
