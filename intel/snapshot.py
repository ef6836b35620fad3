"""Gathers every modality for one symbol and moment, concurrently, into a MarketSnapshot.

Each source call has a timeout and the whole gathering one overall deadline; a source that fails,
times out or returns data older than its modality's maximum age becomes `Unavailable` with the
reason and age, never an exception. Market-wide data (Fear & Greed) is cached once for all
symbols, and concurrent fetches of the same data at the same moment share one call.
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
from intel.errors import CircuitOpenError, NotConfiguredError, NotRecordedError, SourceError
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
NOT_RECORDED = "not recorded"  # an outcome, not a state: shown as "ok" with recorded=False

MODALITY_NAMES = {
    Modality.CANDLES: "price candles",
    Modality.ORDERBOOK: "order book",
    Modality.WHALES: "whale flows",
    Modality.POSTS: "Reddit posts",
    Modality.FEAR_GREED: "Fear & Greed reading",
}
# Modalities that do not depend on the symbol: one cache entry and one health line for all.
MARKET_WIDE = frozenset({Modality.FEAR_GREED})
# The order data credits are listed in (market-wide first, as the footer always read).
CREDIT_ORDER = ("fear_greed", "whales", "candles", "orderbook", "posts")


@dataclass(frozen=True, slots=True)
class Sources:
    candles: CandleSource
    orderbook: OrderBookSource
    whales: WhaleSource
    posts: PostSource
    fear_greed: FearGreedSource

    def credits(self, snapshot: MarketSnapshot | None = None) -> tuple[str, ...]:
        """What the sources ask to be credited for (their `credit` attribute), each once; with a
        `snapshot`, only the sources whose data it holds (an unavailable modality used none)."""
        used = [
            name
            for name in CREDIT_ORDER
            if snapshot is None or not isinstance(getattr(snapshot, name), Unavailable)
        ]
        found = (getattr(getattr(self, name), "credit", None) for name in used)
        return tuple(dict.fromkeys(c for c in found if isinstance(c, str) and c))


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
    # "ok" | "failing" | "open" (its circuit breaker rests) | "not_configured", as in the status
    # JSON contract.
    state: str
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
        self._in_flight: dict[tuple[Modality, str, datetime], asyncio.Future[Any]] = {}
        ttl = config.cache_ttl_s
        # Per modality: (symbol) -> (moment fetched for, value). Reused only for a later or equal
        # moment within the TTL, so a cached answer can never leak data from after `now`.
        self._caches: dict[Modality, TTLCache[str, tuple[datetime, Any]]] = {
            modality: TTLCache(maxsize=64, ttl=getattr(ttl, modality.value))
            for modality in Modality
            if getattr(ttl, modality.value) > 0
        }

    async def build(
        self, symbol: str, now: datetime, *, deadline: float | None = None
    ) -> MarketSnapshot:
        """Every modality at `now`, gathered within `pipeline.overall_deadline_s` or by
        `deadline` (event-loop time), whichever comes first."""
        cfg = self._config
        src = self._sources
        windows = cfg.agents
        spoof_window = windows.orderbook.spoof_window_s
        own_deadline = asyncio.get_running_loop().time() + cfg.pipeline.overall_deadline_s
        deadline = own_deadline if deadline is None else min(deadline, own_deadline)
        results = await asyncio.gather(
            self._fetch(
                Modality.CANDLES,
                symbol,
                now,
                deadline,
                lambda: src.candles.candles(symbol, now, cfg.pipeline.candle_lookback),
            ),
            self._fetch(
                Modality.ORDERBOOK,
                symbol,
                now,
                deadline,
                lambda: src.orderbook.books(symbol, now, spoof_window),
            ),
            self._fetch(
                Modality.WHALES,
                symbol,
                now,
                deadline,
                lambda: src.whales.flows(symbol, now, windows.whales.window_h),
            ),
            self._fetch(
                Modality.POSTS,
                symbol,
                now,
                deadline,
                lambda: _as_tuple(src.posts.posts(symbol, now, windows.sentiment.window_h)),
            ),
            self._fetch(
                Modality.FEAR_GREED, symbol, now, deadline, lambda: src.fear_greed.latest(now)
            ),
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

    def credits(self, snapshot: MarketSnapshot | None = None) -> tuple[str, ...]:
        return self._sources.credits(snapshot)

    def source_health(self) -> dict[str, SourceState]:
        """The last outcome of each source (per symbol where it matters), for `status`."""
        return dict(sorted(self._health.items()))

    def _record_health(self, modality: Modality, symbol: str, result: object, state: str) -> None:
        key = modality.value if modality in MARKET_WIDE else f"{modality.value} {symbol}"
        recorded = state != NOT_RECORDED
        if isinstance(result, Unavailable) and not recorded:
            state, detail = "ok", f"not recorded: {result.reason}"
        elif isinstance(result, Unavailable):
            detail = result.reason
        else:
            moment = data_moment(result)
            detail = f"data as of {iso(moment)}" if moment else "ok"
        source = getattr(self._sources, modality.value)
        if isinstance(source, SkipsRecords):
            detail = "; ".join((detail, *source.skipped_records(symbol)))
        previous = self._health.get(key)
        unchanged = previous is not None and (previous.state, previous.recorded) == (
            state,
            recorded,
        )
        since = previous.since if previous is not None and unchanged else utcnow()
        self._health[key] = SourceState(state, detail, since, recorded)

    async def _fetch(
        self,
        modality: Modality,
        symbol: str,
        now: datetime,
        deadline: float,
        call: Callable[[], Awaitable[T]],
    ) -> T | Unavailable:
        result, state = await self._outcome(modality, symbol, now, deadline, call)
        self._record_health(modality, symbol, result, state)
        return result

    async def _outcome(
        self,
        modality: Modality,
        symbol: str,
        now: datetime,
        deadline: float,
        call: Callable[[], Awaitable[T]],
    ) -> tuple[T | Unavailable, str]:
        """The value or why it is unavailable, and the source's state for `status`
        ("ok", "failing", "open", "not_configured", or NOT_RECORDED: the recording's gap)."""
        name = MODALITY_NAMES[modality]
        try:
            async with asyncio.timeout_at(deadline):
                value = await self._cached(modality, symbol, now, call)
        except TimeoutError:
            return Unavailable(self._timeout_reason(name, deadline)), "failing"
        except NotRecordedError as exc:
            return Unavailable(str(exc)), NOT_RECORDED
        except NotConfiguredError as exc:
            return Unavailable(str(exc)), "not_configured"
        except CircuitOpenError as exc:
            return Unavailable(str(exc)), "open"
        except SourceError as exc:
            return Unavailable(str(exc)), "failing"
        except Exception as exc:  # a source bug must not take the whole signal down
            log.exception("source_failed", modality=modality.value, symbol=symbol)
            return Unavailable(f"{name} source failed: {type(exc).__name__}"), "failing"
        checked = self._check_age(modality, value, now)
        if not isinstance(checked, Unavailable):
            return checked, "ok"
        # Replayed data older than its maximum age is a gap in the recording, not a stalled feed.
        return checked, NOT_RECORDED if self._config.data.mode == "replay" else "failing"

    def _timeout_reason(self, name: str, deadline: float) -> str:
        pipeline = self._config.pipeline
        if asyncio.get_running_loop().time() >= deadline:
            return (
                f"{name} source did not answer within the overall deadline of "
                f"{pipeline.overall_deadline_s:g} s"
            )
        return f"{name} source timed out after {pipeline.source_timeout_s:g} s"

    async def _cached(
        self, modality: Modality, symbol: str, now: datetime, call: Callable[[], Awaitable[T]]
    ) -> T:
        key = "market" if modality in MARKET_WIDE else symbol
        cache = self._caches.get(modality)
        hit = cache.get(key) if cache is not None else None
        if hit is not None and cache is not None:
            market_s = (now - hit[0]).total_seconds()
            if 0 <= market_s <= cache.ttl:
                return hit[1]  # type: ignore[no-any-return]
        # Symbols computed concurrently at one moment share one call for the same data; shielded
        # so one caller's deadline does not cancel it for the others (it has its own timeout).
        flight = (modality, key, now)
        shared = self._in_flight.get(flight)
        if shared is None:
            shared = asyncio.ensure_future(self._load(modality, key, now, call))
            self._in_flight[flight] = shared
            shared.add_done_callback(lambda done: self._landed(flight, done))
        return await asyncio.shield(shared)

    def _landed(self, flight: tuple[Modality, str, datetime], done: asyncio.Future[Any]) -> None:
        self._in_flight.pop(flight, None)
        if not done.cancelled():
            done.exception()  # retrieved here too, in case every caller gave up waiting

    async def _load(
        self, modality: Modality, key: str, now: datetime, call: Callable[[], Awaitable[T]]
    ) -> T:
        value = await asyncio.wait_for(call(), timeout=self._config.pipeline.source_timeout_s)
        cache = self._caches.get(modality)
        if cache is not None:
            cache[key] = (now, value)
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
