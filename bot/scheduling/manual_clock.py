"""`ManualClock`: the fake beside `MarketClock`, moved only by hand, for tests and benchmarks.

One object serves every clock the bot takes: the market clock (`now()`), the wall clock that
stores and the scheduler call (`clock()`, a datetime), the monotonic clock of cooldowns and the
demo clock (`monotonic()`), and an async `sleep` that advances them all instead of waiting.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from bot.scheduling.clock import MarketClock
from intel.timeutil import iso

__all__ = ["ManualClock"]


class ManualClock(MarketClock):
    """Stands still until `advance` (or `sleep`) moves wall, market and monotonic time together."""

    def __init__(self, start: datetime, *, monotonic_s: float = 1000.0) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime (UTC)")
        self._now = start
        self._monotonic_s = monotonic_s

    def __call__(self) -> datetime:
        """The wall clock, as `Callable[[], datetime]` (a store's or the scheduler's `clock`)."""
        return self._now

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        """Seconds on a monotonic scale, as `time.monotonic` (cooldowns, the demo clock)."""
        return self._monotonic_s

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock never goes back")
        self._now += timedelta(seconds=seconds)
        self._monotonic_s += seconds

    async def sleep(self, seconds: float) -> None:
        """An injectable `asyncio.sleep`: moves the clock instead of waiting, then yields once."""
        self.advance(max(seconds, 0.0))
        await asyncio.sleep(0)

    def describe(self) -> str:
        return f"manual clock at {iso(self._now)}"
