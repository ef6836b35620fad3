"""The source interfaces: small async protocols returning domain types or raising SourceError.

A source answers "what was known at `now`": it never returns data published after `now`. It does
not judge freshness; the snapshot builder applies each modality's maximum age, in replay and live
mode alike. Every source has the `Lifecycle` of `intel.lifecycle`: the composition root starts it
before the first call (a live source opens its client there) and closes it at shutdown.

Bad records. One malformed record (a CSV row, an order-book snapshot line, later one item of an API
response) must cost that record only, never the modality: the source skips it and counts it in an
`intel.sources.replay_files.BadRecords` (how many, and the first one's line and error), logs one
`replay_records_skipped` warning per file, and goes on with the rest. A loader builds its table in
locals and assigns it in one step once complete, so a read that fails for any reason leaves nothing
half-built behind and the next call simply tries again. A source that skips records says so through
`SkipsRecords.skipped_records`; the snapshot builder appends those notes to the source's health
(shown by `status`), whether the call succeeded or not. Only when nothing usable is left does the
call raise `SourceError`, and the modality becomes unavailable with that reason.

Live sources. A live source makes one try per call and says how it failed; retries, rate limits,
timeouts and the circuit breaker are the resilience layer's (`intel.sources.resilience`), which
live mode puts around every source. It raises `SourceError` for what may pass (with
`retry_after_s` when the API sent `Retry-After`), `PermanentSourceError` for what will not (HTTP
451) and `NotConfiguredError` when it is not set up (no credentials), from `start` or any call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

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
    "FollowsBooks",
    "OrderBookSource",
    "PostSource",
    "SkipsRecords",
    "WhaleSource",
    "retry_after_s",
]

# Longer than this is not a wait a retry within a call's deadline could honour anyway.
MAX_RETRY_AFTER_S = 3600.0


def retry_after_s(header: str | None) -> float | None:
    """Seconds to wait from an HTTP `Retry-After` header in its delta-seconds form (RFC 9110,
    10.2.3), for `SourceError.retry_after_s`; None when absent, an HTTP date, negative or longer
    than an hour (the resilience layer then backs off on its own schedule)."""
    try:
        seconds = float(header) if header is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds <= MAX_RETRY_AFTER_S else None


@runtime_checkable
class SkipsRecords(Protocol):
    """Optional part of any source: what it skipped as unreadable (see the module docstring)."""

    def skipped_records(self, symbol: str) -> tuple[str, ...]:
        """One note per file or response read for `symbol` that had bad records; () if none."""
        ...


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


class FollowsBooks(Protocol):
    """Optional part of an order-book source that streams live books (the exchange source)."""

    def follow(self, symbols: Iterable[str]) -> tuple[str, ...]:
        """Stream the books of `symbols` (as many as configured), stop the others'; returns
        those streamed. Synchronous: it starts and stops background streams, no request."""
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
