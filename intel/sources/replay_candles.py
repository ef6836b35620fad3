"""Replay candles: recorded Binance hourly OHLCV, revealed only once each candle has closed."""

from __future__ import annotations

import gzip
from datetime import datetime
from pathlib import Path

import numpy as np

from intel.errors import NotRecordedError, SourceError
from intel.lifecycle import NoResources
from intel.models import CandleSeries
from intel.sources.replay_files import BadRecords, read_csv_records, skipped_notes
from intel.timeutil import from_ms, iso, to_ms

__all__ = ["ReplayCandleSource"]

HOUR_S = 3600
COLUMNS = ("open_time_ms", "open", "high", "low", "close", "volume")


class ReplayCandleSource(NoResources):
    """Serves `candles/<BASE><QUOTE>_1h.csv.gz`; the whole file is loaded once per symbol."""

    def __init__(self, replay_dir: Path) -> None:
        self._dir = replay_dir / "candles"
        self._loaded: dict[str, CandleSeries] = {}
        self._bad: dict[str, BadRecords] = {}

    def skipped_records(self, symbol: str) -> tuple[str, ...]:
        return skipped_notes(self._bad.get(symbol))

    def history(self, symbol: str) -> CandleSeries:
        """The full recorded series (for backtests and range checks)."""
        series = self._loaded.get(symbol)
        if series is None:
            series, bad = self._load(symbol)
            self._loaded[symbol], self._bad[symbol] = series, bad
        return series

    async def coverage(self, symbol: str) -> tuple[datetime, datetime]:
        """First and last moment at which at least one recorded candle had closed."""
        series = self.history(symbol)
        interval_ms = series.interval_s * 1000
        return (from_ms(int(series.open_time_ms[0]) + interval_ms), series.last_close_time)

    async def candles(self, symbol: str, now: datetime, count: int) -> CandleSeries:
        series = self.history(symbol)
        # A candle is visible once open_time + interval <= now: no look-ahead.
        cutoff = to_ms(now) - series.interval_s * 1000
        stop = int(np.searchsorted(series.open_time_ms, cutoff, side="right"))
        if stop == 0:
            raise NotRecordedError(f"no {symbol} candle had closed by {iso(now)}")
        return series.window(max(0, stop - count), stop)

    def _load(self, symbol: str) -> tuple[CandleSeries, BadRecords]:
        path = self._dir / f"{symbol.replace('/', '')}_1h.csv.gz"
        if not path.is_file():
            raise NotRecordedError(f"no recorded candles for {symbol}")
        bad = BadRecords(path.name)
        try:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                next(handle)  # header: open_time_ms,open,high,low,close,volume
                table = np.loadtxt(handle, delimiter=",", dtype=np.float64, ndmin=2)
        except ValueError:  # a malformed row: read again row by row (4x slower), skipping it
            rows, bad = read_csv_records(path, _parse_row)
            table = np.array(rows, dtype=np.float64).reshape(-1, len(COLUMNS))
        if not len(table):
            raise SourceError(f"no readable candles for {symbol} in {path.name}")
        return CandleSeries(
            symbol=symbol,
            interval_s=HOUR_S,
            open_time_ms=table[:, 0].astype(np.int64),
            open=table[:, 1].copy(),
            high=table[:, 2].copy(),
            low=table[:, 3].copy(),
            close=table[:, 4].copy(),
            volume=table[:, 5].copy(),
        ), bad


def _parse_row(row: dict[str, str]) -> tuple[float, ...]:
    """The row's numbers as `np.loadtxt` reads them, so both paths accept the same rows."""
    return tuple(float(row[column]) for column in COLUMNS)
