"""Replay Fear & Greed: Alternative.me's daily index, each value visible from its publication."""

from __future__ import annotations

import bisect
from datetime import datetime
from pathlib import Path

from intel.errors import NotRecordedError
from intel.lifecycle import NoResources
from intel.models import FearGreedReading
from intel.sources.replay_files import read_csv_rows
from intel.timeutil import from_ms, iso, to_ms

__all__ = ["ReplayFearGreedSource"]


class ReplayFearGreedSource(NoResources):
    def __init__(self, replay_dir: Path) -> None:
        self._path = replay_dir / "fear_greed.csv"
        self._times_ms: list[int] = []
        self._readings: list[FearGreedReading] = []

    async def latest(self, now: datetime) -> FearGreedReading:
        if not self._readings:
            self._load()
        index = bisect.bisect_right(self._times_ms, to_ms(now))
        if index == 0:
            raise NotRecordedError(f"no Fear & Greed reading published by {iso(now)}")
        return self._readings[index - 1]

    def _load(self) -> None:
        rows = sorted(read_csv_rows(self._path), key=lambda row: int(row["timestamp"]))
        for row in rows:
            ms = int(row["timestamp"]) * 1000
            self._times_ms.append(ms)
            self._readings.append(
                FearGreedReading(
                    timestamp=from_ms(ms),
                    value=int(float(row["value"])),
                    classification=row["classification"],
                )
            )
