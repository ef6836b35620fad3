"""The market clock: wall-clock time when live; a demo clock over recorded data when replaying.

The demo clock starts at `data.default_at` (or where the last run stopped, when later, so that a
restart continues instead of repeating), advances `demo.speed` market seconds per real second, and
stops at the end of the data: `demo.until` or the end of any configured symbol's candles, whichever
comes first. There it stays, and says so once; nothing is re-dated or wrapped around.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.config import BotConfig
from intel.errors import ConfigError
from intel.timeutil import iso, utcnow

__all__ = ["DemoClock", "FixedClock", "MarketClock", "WallClock", "build_market_clock"]


class MarketClock:
    """What every clock offers: the current market moment and, when it stops, where."""

    speed: float = 1.0  # market seconds per real second
    end: datetime | None = None

    def now(self) -> datetime:
        raise NotImplementedError

    def real_seconds_to_end(self) -> float | None:
        """Real seconds until the clock stops; None when it never does."""
        return None

    def describe(self) -> str:
        raise NotImplementedError


class WallClock(MarketClock):
    """Live mode: the market moment is now."""

    def now(self) -> datetime:
        return utcnow()

    def describe(self) -> str:
        return "live market time"


class FixedClock(MarketClock):
    """Replay with the demo clock off: one recorded moment, for as long as the bot runs."""

    speed = 0.0

    def __init__(self, moment: datetime) -> None:
        self._moment = moment

    def now(self) -> datetime:
        return self._moment

    def describe(self) -> str:
        return f"recorded market time fixed at {iso(self._moment)}"


class DemoClock(MarketClock):
    """Replayed market time running `speed` times faster than real time, up to `end`."""

    def __init__(
        self,
        start: datetime,
        end: datetime,
        speed: float,
        on_end: Callable[[datetime], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ConfigError(f"demo.speed must be positive, got {speed:g}")
        self.start, self.speed = start, speed
        self._stop_at = max(start, end)
        self.end = self._stop_at
        self._on_end = on_end
        self._monotonic = monotonic
        self._started_at = monotonic()
        self._ended = False

    @property
    def ended(self) -> bool:
        return self._ended

    def now(self) -> datetime:
        elapsed_s = max(0.0, self._monotonic() - self._started_at)
        moment = self.start + timedelta(seconds=elapsed_s * self.speed)
        if moment < self._stop_at:
            return moment
        if not self._ended:
            self._ended = True
            if self._on_end is not None:
                self._on_end(self._stop_at)
        return self._stop_at

    def real_seconds_to_end(self) -> float:
        elapsed_s = self._monotonic() - self._started_at
        return max(0.0, (self._stop_at - self.start).total_seconds() / self.speed - elapsed_s)

    def describe(self) -> str:
        return (
            f"demo clock at {self.speed:g}× real time, recorded data "
            f"{iso(self.start)} → {iso(self._stop_at)}"
        )


def build_market_clock(
    config: BotConfig,
    data_end: datetime,
    resume_from: datetime | None = None,
    on_end: Callable[[datetime], None] | None = None,
) -> MarketClock:
    """The clock `config` asks for; `resume_from` is the last cycle's market moment, if any.

    `data_end` is the last moment with recorded candles for every configured symbol.
    """
    if config.data.mode != "replay":
        return WallClock()
    start = config.data.default_at
    if resume_from is not None and resume_from > start:
        start = resume_from
    if not config.demo.enabled:
        return FixedClock(start)
    if config.demo.until <= config.data.default_at:
        raise ConfigError(
            f"demo.until ({iso(config.demo.until)}) must be after "
            f"data.default_at ({iso(config.data.default_at)})"
        )
    return DemoClock(start, min(config.demo.until, data_end), config.demo.speed, on_end)
