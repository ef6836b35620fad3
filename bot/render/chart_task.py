"""The chart as the bot needs it: drawn off the event loop, a failure costing the picture only.

Built once by the composition root from `config.chart` and shared by the signal cycle and the
`signal` command, so both draw the same chart. The drawing itself stays in the pure
`bot.render.chart.render_chart`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from bot.render.chart import render_chart
from intel.config import ChartConfig
from intel.models import MarketSnapshot, Signal
from intel.timeutil import iso

__all__ = ["ChartFn", "ChartRenderer", "DrawFn"]

log = structlog.get_logger(__name__)

ChartFn = Callable[[Signal, MarketSnapshot], Awaitable[bytes | None]]
"""What the cycle and the commands call: the PNG, or None when it could not be drawn."""
DrawFn = Callable[..., bytes]


@dataclass(frozen=True, slots=True)
class ChartRenderer:
    """A `ChartFn`: `render_chart` with the configured sizes, in a worker thread, never raising."""

    candles: int = 72
    flow_hours: int = 48
    draw: DrawFn = render_chart  # swapped in tests to make drawing fail

    @classmethod
    def from_config(cls, config: ChartConfig) -> ChartRenderer:
        return cls(candles=config.candles, flow_hours=config.flow_hours)

    async def __call__(self, signal: Signal, snapshot: MarketSnapshot) -> bytes | None:
        try:
            # A chart takes a few hundred ms of CPU: the event loop must keep serving meanwhile.
            return await asyncio.to_thread(
                self.draw, signal, snapshot, candles=self.candles, flow_hours=self.flow_hours
            )
        except Exception:  # a chart failure costs the picture, never the signal or its alerts
            log.exception("chart_failed", symbol=signal.symbol, as_of=iso(signal.as_of))
            return None
