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

from intel.errors import NotRecordedError, SourceError
from intel.lifecycle import NoResources
from intel.models import OrderBook, OrderBookHistory
from intel.sources.replay_files import RECORD_ERRORS, BadRecords, open_text, skipped_notes
from intel.timeutil import from_ms, iso, to_ms

__all__ = ["ReplayOrderBookSource"]


@dataclass(frozen=True, slots=True)
class _Snapshots:
    """One file's snapshot lines, indexed by timestamp; each line is parsed when first asked for."""

    times_ms: list[int]
    lines: list[str]
    line_numbers: list[int]


@dataclass(slots=True)
class _Venue:
    path: Path
    exchange: str
    venue_symbol: str
    for_symbol: str
    note: str | None
    snapshots: _Snapshots | None = None
    bad: BadRecords | None = None
    parsed: dict[int, OrderBook | None] = field(default_factory=dict)  # None: skipped as bad

    def load(self) -> _Snapshots:
        if self.snapshots is None:
            self.snapshots, self.bad = _read_snapshots(self.path)
        return self.snapshots

    def book(self, index: int) -> OrderBook | None:
        """The snapshot at `index`, or None (counted once) when its line cannot be read."""
        if index in self.parsed:
            return self.parsed[index]
        snapshots = self.load()
        try:
            raw = json.loads(snapshots.lines[index])
            book: OrderBook | None = OrderBook(
                timestamp=from_ms(snapshots.times_ms[index]),
                bids=tuple((float(p), float(q)) for p, q in raw["bids"]),
                asks=tuple((float(p), float(q)) for p, q in raw["asks"]),
            )
        except RECORD_ERRORS as exc:  # json.JSONDecodeError is a ValueError
            assert self.bad is not None  # set by load()
            self.bad.skip(snapshots.line_numbers[index], exc)
            self.bad.log()
            book = None
        self.parsed[index] = book
        return book


def _read_snapshots(path: Path) -> tuple[_Snapshots, BadRecords]:
    """Every line with a readable timestamp (the JSON is parsed later, on demand)."""
    times_ms: list[int] = []
    lines: list[str] = []
    line_numbers: list[int] = []
    bad = BadRecords(path.name)
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            stamp, tab, payload = line.partition("\t")
            try:
                if not tab:
                    raise ValueError("no tab between timestamp and snapshot")
                times_ms.append(int(stamp))
            except ValueError as exc:
                bad.skip(number, exc)
                continue
            lines.append(payload)
            line_numbers.append(number)
    bad.log()
    return _Snapshots(times_ms, lines, line_numbers), bad


class ReplayOrderBookSource(NoResources):
    def __init__(self, replay_dir: Path) -> None:
        self._dir = replay_dir / "orderbook"
        self._venues: list[_Venue] | None = None

    def skipped_records(self, symbol: str) -> tuple[str, ...]:
        venues = self._venues or []
        return skipped_notes(*(venue.bad for venue in venues if venue.for_symbol == symbol))

    async def books(self, symbol: str, now: datetime, window_s: float) -> OrderBookHistory:
        now_ms = to_ms(now)
        best: tuple[_Venue, int, int] | None = None  # venue, stop index, newest time
        for venue in self._venues_for(symbol):
            times_ms = venue.load().times_ms
            stop = bisect.bisect_right(times_ms, now_ms)
            if stop and (best is None or times_ms[stop - 1] > best[2]):
                best = (venue, stop, times_ms[stop - 1])
        if best is None:
            raise NotRecordedError(f"no {symbol} order book recorded before {iso(now)}")
        venue, stop, _ = best
        times_ms = venue.load().times_ms
        start = bisect.bisect_right(times_ms, now_ms - int(window_s * 1000), 0, stop)
        books = [book for i in range(start, stop) if (book := venue.book(i)) is not None]
        # Always include the newest readable snapshot known at `now`, however old.
        index = start - 1 if start < stop else stop - 1
        while not books and index >= 0:
            if (book := venue.book(index)) is not None:
                books.append(book)
            index -= 1
        if not books:
            raise SourceError(f"no readable {symbol} order book recorded before {iso(now)}")
        return OrderBookHistory(
            exchange=venue.exchange,
            venue_symbol=venue.venue_symbol,
            books=tuple(books),
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
