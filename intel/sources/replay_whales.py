"""Replay whale flows: hourly exchange inflow/outflow aggregated from Whale Alert's public channel.

An hour's aggregate is visible once the hour has ended. Hours with no transfer are absent from the
file, so the recorded coverage (not the last row) tells how current the data is.
"""

from __future__ import annotations

import bisect
import json
from datetime import datetime
from pathlib import Path

from intel.errors import NotRecordedError
from intel.lifecycle import NoResources
from intel.models import ExchangeFlow, WhaleFlows
from intel.sources.replay_files import BadRecords, read_csv_records, skipped_notes
from intel.symbols import base_asset
from intel.timeutil import from_ms, iso, to_ms

__all__ = ["ReplayWhaleSource"]

HOUR_MS = 3_600_000
CREDIT = "via Whale Alert's public channel"


class ReplayWhaleSource(NoResources):
    credit = "whale flows: Whale Alert"  # the signal footer's data credit

    def __init__(self, replay_dir: Path) -> None:
        self._dir = replay_dir / "whales"
        self._coverage: dict[str, tuple[int, int]] | None = None
        self._hours: dict[str, tuple[list[int], list[ExchangeFlow]]] = {}
        self._bad: dict[str, BadRecords] = {}

    def skipped_records(self, symbol: str) -> tuple[str, ...]:
        return skipped_notes(self._bad.get(base_asset(symbol)))

    async def flows(self, symbol: str, now: datetime, window_h: int) -> WhaleFlows:
        asset = base_asset(symbol)
        start_ms, end_ms = self._asset_coverage(asset)
        now_ms = to_ms(now)
        if now_ms < start_ms + HOUR_MS:
            raise NotRecordedError(
                f"no {asset} whale flows recorded before {iso(from_ms(start_ms))}"
            )
        # The newest moment the data speaks for: the last completed hour, capped by the coverage.
        as_of_ms = min(now_ms - now_ms % HOUR_MS, end_ms)
        window_start_ms = as_of_ms - window_h * HOUR_MS
        starts, hours = self._asset_hours(asset)
        lo = bisect.bisect_left(starts, window_start_ms)
        hi = bisect.bisect_right(starts, as_of_ms - HOUR_MS)
        return WhaleFlows(
            asset=asset,
            window_start=from_ms(window_start_ms),
            as_of=from_ms(as_of_ms),
            hours=tuple(hours[lo:hi]),
            credit=CREDIT,
        )

    def _asset_coverage(self, asset: str) -> tuple[int, int]:
        if self._coverage is None:
            raw = json.loads((self._dir / "coverage.json").read_text(encoding="utf-8"))
            self._coverage = {k: (int(v["start_ms"]), int(v["end_ms"])) for k, v in raw.items()}
        if asset not in self._coverage:
            raise NotRecordedError(f"no whale flows recorded for {asset}")
        return self._coverage[asset]

    def _asset_hours(self, asset: str) -> tuple[list[int], list[ExchangeFlow]]:
        if asset not in self._hours:
            flows, bad = read_csv_records(self._dir / f"{asset}_exchange_flows_1h.csv", _parse)
            flows.sort(key=lambda flow: flow.hour_start)
            self._hours[asset] = ([to_ms(f.hour_start) for f in flows], flows)
            self._bad[asset] = bad
        return self._hours[asset]


def _parse(row: dict[str, str]) -> ExchangeFlow:
    def coins(text: str) -> float | None:
        return float(text) if text else None

    return ExchangeFlow(
        hour_start=from_ms(int(row["hour_start_ms"])),
        inflow_usd=float(row["inflow_usd"]),
        outflow_usd=float(row["outflow_usd"]),
        inflow_coins=coins(row["inflow_coins"]),
        outflow_coins=coins(row["outflow_coins"]),
        transfer_count=int(float(row["transfer_count"])),
    )
