"""Replay order books: recorded level-2 snapshots (Binance 1 s top-20; Kraken ETH/USD ~10 min).

Each file holds one `<timestamp_ms>\\t<json>` line per snapshot, sorted, so a lookup bisects on the
timestamps and parses only the snapshots it returns.
"""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from intel.errors import NotRecordedError
from intel.lifecycle import NoResources
from intel.models import OrderBook, OrderBookHistory
from intel.sources.replay_files import open_text
from intel.timeutil import from_ms, iso, to_ms

__all__ = ["ReplayOrderBookSource"]


@dataclass(slots=True)
class _Venue:
    path: Path
    exchange: str
    venue_symbol: str
    for_symbol: str
    note: str | None
    times_ms: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    parsed: dict[int, OrderBook] = field(default_factory=dict)

    def load(self) -> None:
        if self.times_ms:
            return
        with open_text(self.path) as handle:
            for line in handle:
                stamp, _, payload = line.partition("\t")
                self.times_ms.append(int(stamp))
                self.lines.append(payload)

    def book(self, index: int) -> OrderBook:
        cached = self.parsed.get(index)
        if cached is None:
            raw = json.loads(self.lines[index])
            cached = OrderBook(
                timestamp=from_ms(self.times_ms[index]),
                bids=tuple((float(p), float(q)) for p, q in raw["bids"]),
                asks=tuple((float(p), float(q)) for p, q in raw["asks"]),
            )
            self.parsed[index] = cached
        return cached


class ReplayOrderBookSource(NoResources):
    def __init__(self, replay_dir: Path) -> None:
        self._dir = replay_dir / "orderbook"
        self._venues: list[_Venue] | None = None

    async def books(self, symbol: str, now: datetime, window_s: float) -> OrderBookHistory:
        now_ms = to_ms(now)
        best: tuple[_Venue, int] | None = None
        for venue in self._venues_for(symbol):
            venue.load()
            stop = bisect.bisect_right(venue.times_ms, now_ms)
            if stop and (best is None or venue.times_ms[stop - 1] > best[0].times_ms[best[1] - 1]):
                best = (venue, stop)
        if best is None:
            raise NotRecordedError(f"no {symbol} order book recorded before {iso(now)}")
        venue, stop = best
        start = bisect.bisect_right(venue.times_ms, now_ms - int(window_s * 1000), 0, stop)
        start = min(start, stop - 1)  # always include the newest snapshot known at `now`
        return OrderBookHistory(
            exchange=venue.exchange,
            venue_symbol=venue.venue_symbol,
            books=tuple(venue.book(i) for i in range(start, stop)),
            note=venue.note,
        )

    def _venues_for(self, symbol: str) -> list[_Venue]:
        if self._venues is None:
            described = json.loads((self._dir / "venues.json").read_text(encoding="utf-8"))
            self._venues = [
                _Venue(
                    path=self._dir / item["file"],
                    exchange=item["exchange"],
                    venue_symbol=item["symbol"],
                    for_symbol=item["for_symbol"],
                    note=item.get("note"),
                )
                for item in described
            ]
        venues = [v for v in self._venues if v.for_symbol == symbol]
        if not venues:
            raise NotRecordedError(f"no order book recorded for {symbol}")
        return venues
