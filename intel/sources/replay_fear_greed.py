"""Replay Fear & Greed: Alternative.me's daily index, each value visible from its publication."""

from __future__ import annotations

import bisect
from datetime import datetime
from pathlib import Path

from intel.errors import NotRecordedError
from intel.lifecycle import NoResources
from intel.models import FearGreedReading
from intel.sources.replay_files import BadRecords, read_csv_records, skipped_notes
from intel.timeutil import from_ms, iso, to_ms

__all__ = ["ReplayFearGreedSource"]


class ReplayFearGreedSource(NoResources):
    credit = "Fear & Greed: Alternative.me"  # the signal footer's data credit

    def __init__(self, replay_dir: Path) -> None:
        self._path = replay_dir / "fear_greed.csv"
        self._times_ms: list[int] = []
        self._readings: list[FearGreedReading] = []
        self._bad: BadRecords | None = None

    def skipped_records(self, symbol: str) -> tuple[str, ...]:
        return skipped_notes(self._bad)

    async def latest(self, now: datetime) -> FearGreedReading:
        if self._bad is None:
            self._load()
        index = bisect.bisect_right(self._times_ms, to_ms(now))
        if index == 0:
            raise NotRecordedError(f"no Fear & Greed reading published by {iso(now)}")
        return self._readings[index - 1]

    def _load(self) -> None:
        readings, bad = read_csv_records(self._path, _parse)
        readings.sort(key=lambda reading: reading.timestamp)
        # Assigned together, once complete: a failed read leaves nothing half-built behind.
        times_ms = [to_ms(reading.timestamp) for reading in readings]
        self._times_ms, self._readings, self._bad = times_ms, readings, bad


def _parse(row: dict[str, str]) -> FearGreedReading:
    return FearGreedReading(
        timestamp=from_ms(int(row["timestamp"]) * 1000),
        value=int(float(row["value"])),
        classification=row["classification"],
    )
