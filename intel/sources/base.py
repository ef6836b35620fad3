"""The source interfaces: small async protocols returning domain types or raising SourceError.

A source answers "what was known at `now`": it never returns data published after `now`. It does
not judge freshness; the snapshot builder applies each modality's maximum age, in replay and live
mode alike. Every source has the `Lifecycle` of `intel.lifecycle`: the composition root starts it
before the first call (a live source opens its client there) and closes it at shutdown.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from intel.lifecycle import Lifecycle
from intel.models import (
    CandleSeries,
    FearGreedReading,
    OrderBookHistory,
    SocialPost,
    WhaleFlows,
)

__all__ = [
    "CandleSource",
    "FearGreedSource",
    "OrderBookSource",
    "PostSource",
    "WhaleSource",
]


class CandleSource(Lifecycle, Protocol):
    async def coverage(self, symbol: str) -> tuple[datetime, datetime]:
        """First and last moment `candles` can answer for (replay: the recorded range; live: the
        listing up to now). SourceError when the symbol has no candles at all."""
        ...

    async def candles(self, symbol: str, now: datetime, count: int) -> CandleSeries:
        """The newest `count` hourly candles that had closed by `now`."""
        ...


class OrderBookSource(Lifecycle, Protocol):
    async def books(self, symbol: str, now: datetime, window_s: float) -> OrderBookHistory:
        """Snapshots taken in (now − window_s, now]; at least the newest one taken by `now`."""
        ...


class WhaleSource(Lifecycle, Protocol):
    async def flows(self, symbol: str, now: datetime, window_h: int) -> WhaleFlows:
        """Hourly exchange flows of completed hours in the `window_h` hours before `now`."""
        ...


class PostSource(Lifecycle, Protocol):
    async def posts(self, symbol: str, now: datetime, window_h: int) -> Sequence[SocialPost]:
        """Posts about the symbol's asset created in the `window_h` hours before `now`."""
        ...


class FearGreedSource(Lifecycle, Protocol):
    async def latest(self, now: datetime) -> FearGreedReading:
        """The newest Fear & Greed reading published by `now`."""
        ...
