"""Gathers every modality for one symbol and moment, concurrently, into a MarketSnapshot.

Each source call has a timeout; a source that fails, times out or returns data older than its
modality's maximum age becomes `Unavailable` with the reason and age, never an exception.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import structlog
from cachetools import TTLCache

from intel.config import Config
from intel.errors import NotRecordedError, SourceError
from intel.models import (
    CandleSeries,
    FearGreedReading,
    MarketSnapshot,
    Modality,
    OrderBookHistory,
    SocialPost,
    Unavailable,
    WhaleFlows,
)
from intel.sources.base import (
    CandleSource,
    FearGreedSource,
    OrderBookSource,
    PostSource,
    SkipsRecords,
    WhaleSource,
)
from intel.textfmt import format_age
from intel.timeutil import iso, utcnow

__all__ = ["SnapshotBuilder", "SourceState", "Sources", "data_moment"]

log = structlog.get_logger(__name__)
T = TypeVar("T")

MODALITY_NAMES = {
    Modality.CANDLES: "price candles",
    Modality.ORDERBOOK: "order book",
    Modality.WHALES: "whale flows",
    Modality.POSTS: "Reddit posts",
    Modality.FEAR_GREED: "Fear & Greed reading",
}


@dataclass(frozen=True, slots=True)
class Sources:
    candles: CandleSource
    orderbook: OrderBookSource
    whales: WhaleSource
    posts: PostSource
    fear_greed: FearGreedSource


def data_moment(value: object) -> datetime | None:
    """The market moment a piece of modality data speaks for."""
    if isinstance(value, CandleSeries):
        return value.last_close_time
    if isinstance(value, OrderBookHistory):
        return value.latest.timestamp
    if isinstance(value, WhaleFlows):
        return value.as_of
    if isinstance(value, FearGreedReading):
        return value.timestamp
    if isinstance(value, list | tuple) and value and isinstance(value[-1], SocialPost):
        return max(post.created for post in value if isinstance(post, SocialPost))
    return None


@dataclass(frozen=True, slots=True)
class SourceState:
    state: str  # "ok" | "failing", as in the status JSON contract
    detail: str
    since: datetime  # wall-clock time this state began
    # False for an expected absence: the recording has no data for this symbol or moment. The
    # state stays "ok" (nothing failed); the detail starts with "not recorded".
    recorded: bool = True


class SnapshotBuilder:
    def __init__(self, sources: Sources, config: Config) -> None:
        self._sources = sources
        self._config = config
        self._health: dict[str, SourceState] = {}
        ttl = config.cache_ttl_s
        # Per modality: (symbol) -> (moment fetched for, value). Reused only for a later or equal
        # moment within the TTL, so a cached answer can never leak data from after `now`.
        self._caches: dict[Modality, TTLCache[str, tuple[datetime, Any]]] = {
            modality: TTLCache(maxsize=64, ttl=getattr(ttl, modality.value))
            for modality in Modality
            if getattr(ttl, modality.value) > 0
        }

    async def build(self, symbol: str, now: datetime) -> MarketSnapshot:
        cfg = self._config
        src = self._sources
        windows = cfg.agents
        spoof_window = windows.orderbook.spoof_window_s
        results = await asyncio.gather(
            self._fetch(
                Modality.CANDLES,
                symbol,
                now,
                lambda: src.candles.candles(symbol, now, cfg.pipeline.candle_lookback),
            ),
            self._fetch(
                Modality.ORDERBOOK,
                symbol,
                now,
                lambda: src.orderbook.books(symbol, now, spoof_window),
            ),
            self._fetch(
                Modality.WHALES,
                symbol,
                now,
                lambda: src.whales.flows(symbol, now, windows.whales.window_h),
            ),
            self._fetch(
                Modality.POSTS,
                symbol,
                now,
                lambda: _as_tuple(src.posts.posts(symbol, now, windows.sentiment.window_h)),
            ),
            self._fetch(Modality.FEAR_GREED, symbol, now, lambda: src.fear_greed.latest(now)),
        )
        candles, orderbook, whales, posts, fear_greed = results
        return MarketSnapshot(
            symbol=symbol,
            as_of=now,
            candles=candles,
            orderbook=orderbook,
            whales=whales,
            posts=posts,
            fear_greed=fear_greed,
        )

    def source_health(self) -> dict[str, SourceState]:
        """The last outcome of each source (per symbol where it matters), for `status`."""
        return dict(sorted(self._health.items()))

    def _record_health(
        self, modality: Modality, symbol: str, result: object, not_recorded: bool
    ) -> None:
        key = modality.value if modality is Modality.FEAR_GREED else f"{modality.value} {symbol}"
        if isinstance(result, Unavailable) and not_recorded:
            state, detail = "ok", f"not recorded: {result.reason}"
        elif isinstance(result, Unavailable):
            state, detail = "failing", result.reason
        else:
            moment = data_moment(result)
            state, detail = "ok", f"data as of {iso(moment)}" if moment else "ok"
        source = getattr(self._sources, modality.value)
        if isinstance(source, SkipsRecords):
            detail = "; ".join((detail, *source.skipped_records(symbol)))
        recorded = not not_recorded
        previous = self._health.get(key)
        unchanged = previous is not None and (previous.state, previous.recorded) == (
            state,
            recorded,
        )
        since = previous.since if previous is not None and unchanged else utcnow()
        self._health[key] = SourceState(state, detail, since, recorded)

    async def _fetch(
        self, modality: Modality, symbol: str, now: datetime, call: Callable[[], Awaitable[T]]
    ) -> T | Unavailable:
        result, not_recorded = await self._outcome(modality, symbol, now, call)
        self._record_health(modality, symbol, result, not_recorded)
        return result

    async def _outcome(
        self, modality: Modality, symbol: str, now: datetime, call: Callable[[], Awaitable[T]]
    ) -> tuple[T | Unavailable, bool]:
        """The value or why it is unavailable, and whether that is only the recording's gap."""
        name = MODALITY_NAMES[modality]
        try:
            value = await self._cached(modality, symbol, now, call)
        except TimeoutError:
            timeout = self._config.pipeline.source_timeout_s
            return Unavailable(f"{name} source timed out after {timeout:g} s"), False
        except NotRecordedError as exc:
            return Unavailable(str(exc)), True
        except SourceError as exc:
            return Unavailable(str(exc)), False
        except Exception as exc:  # a source bug must not take the whole signal down
            log.exception("source_failed", modality=modality.value, symbol=symbol)
            return Unavailable(f"{name} source failed: {type(exc).__name__}"), False
        checked = self._check_age(modality, value, now)
        # Replayed data older than its maximum age is a gap in the recording, not a stalled feed.
        stale_replay = isinstance(checked, Unavailable) and self._config.data.mode == "replay"
        return checked, stale_replay

    async def _cached(
        self, modality: Modality, symbol: str, now: datetime, call: Callable[[], Awaitable[T]]
    ) -> T:
        cache = self._caches.get(modality)
        hit = cache.get(symbol) if cache is not None else None
        if hit is not None and cache is not None:
            market_s = (now - hit[0]).total_seconds()
            if 0 <= market_s <= cache.ttl:
                return hit[1]  # type: ignore[no-any-return]
        value = await asyncio.wait_for(call(), timeout=self._config.pipeline.source_timeout_s)
        if cache is not None:
            cache[symbol] = (now, value)
        return value

    def _check_age(self, modality: Modality, value: T, now: datetime) -> T | Unavailable:
        moment = data_moment(value)
        if moment is None:
            return value
        age_s = (now - moment).total_seconds()
        max_age = getattr(self._config.max_age_s, modality.value)
        if age_s > max_age:
            return Unavailable(
                f"no {MODALITY_NAMES[modality]} newer than {format_age(max_age)} "
                f"(newest is {format_age(age_s)} old)",
                last_seen=moment,
            )
        return value


async def _as_tuple(posts: Awaitable[Sequence[SocialPost]]) -> tuple[SocialPost, ...]:
    return tuple(await posts)
