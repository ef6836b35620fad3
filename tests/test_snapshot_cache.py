"""The snapshot builder's per-modality cache and maximum ages, seen through recording fake sources.

Each fake answers "what was known at `now`" with data that speaks for exactly `now` and records
every call, so a test sees both whether the source was asked again and which moment a snapshot's
data speaks for. The guard under test: a cached answer is never served to an earlier moment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pytest

from intel.config import Config
from intel.models import (
    CandleSeries,
    FearGreedReading,
    MarketSnapshot,
    Modality,
    OrderBook,
    OrderBookHistory,
    SocialPost,
    Unavailable,
    WhaleFlows,
)
from intel.snapshot import SnapshotBuilder, Sources
from intel.timeutil import parse_time, to_ms

T = parse_time("2025-10-06T16:00Z")
MODALITIES = [m.value for m in Modality]


@dataclass
class RecordingSource:
    """All five source interfaces in one; each call records (modality, symbol, now). `lag` makes
    the data speak for `now − lag` instead of `now`."""

    calls: list[tuple[str, str, datetime]] = field(default_factory=list)
    lag: timedelta = timedelta(0)

    def asked(self, modality: str) -> list[datetime]:
        return [now for kind, _, now in self.calls if kind == modality]

    async def candles(self, symbol: str, now: datetime, count: int) -> CandleSeries:
        self.calls.append(("candles", symbol, now))
        close_ms = to_ms(now - self.lag)
        opened = np.array([close_ms - 3_600_000], dtype=np.int64)
        price = np.array([100.0])
        return CandleSeries(symbol, 3600, opened, price, price, price, price, price)

    async def books(self, symbol: str, now: datetime, window_s: float) -> OrderBookHistory:
        self.calls.append(("orderbook", symbol, now))
        book = OrderBook(now - self.lag, ((99.0, 1.0),), ((101.0, 1.0),))
        return OrderBookHistory("binance", symbol, (book,))

    async def flows(self, symbol: str, now: datetime, window_h: int) -> WhaleFlows:
        self.calls.append(("whales", symbol, now))
        as_of = now - self.lag
        return WhaleFlows("BTC", as_of - timedelta(hours=window_h), as_of, (), "test")

    async def posts(self, symbol: str, now: datetime, window_h: int) -> Sequence[SocialPost]:
        self.calls.append(("posts", symbol, now))
        return [SocialPost("p1", "bitcoin", now - self.lag, "title", "")]

    async def latest(self, now: datetime) -> FearGreedReading:
        self.calls.append(("fear_greed", "", now))
        return FearGreedReading(now - self.lag, 50, "Neutral")


def builder(source: RecordingSource, config: Config | None = None) -> SnapshotBuilder:
    sources = Sources(
        candles=source, orderbook=source, whales=source, posts=source, fear_greed=source
    )
    return SnapshotBuilder(sources, config or Config())


def speaks_for(snapshot: MarketSnapshot, modality: str) -> datetime:
    """The market moment the snapshot's data of `modality` speaks for."""
    value = getattr(snapshot, modality)
    assert not isinstance(value, Unavailable), value
    if isinstance(value, CandleSeries):
        return value.last_close_time
    if isinstance(value, OrderBookHistory):
        return value.books[-1].timestamp
    if isinstance(value, WhaleFlows):
        return value.as_of
    if isinstance(value, FearGreedReading):
        return value.timestamp
    return max(post.created for post in value)


def ttl_s(modality: str, config: Config | None = None) -> float:
    ttl: float = getattr((config or Config()).cache_ttl_s, modality)
    assert ttl > 0, f"{modality} is cached by default"
    return ttl


# --- the no-look-ahead guard -----------------------------------------------------------------


@pytest.mark.parametrize("modality", MODALITIES)
@pytest.mark.parametrize("back_fraction", [0.5, 0.01], ids=["half-ttl", "one-hundredth-ttl"])
async def test_an_earlier_moment_within_the_ttl_is_never_served_later_data(
    modality: str, back_fraction: float
) -> None:
    """E.g. whale flows fetched for 16:00 must not answer a request for 15:58."""
    source = RecordingSource()
    shared = builder(source)
    await shared.build("BTC/USDT", T)
    earlier = T - timedelta(seconds=ttl_s(modality) * back_fraction)

    snapshot = await shared.build("BTC/USDT", earlier)

    assert speaks_for(snapshot, modality) == earlier
    assert source.asked(modality) == [T, earlier]


@pytest.mark.parametrize("modality", MODALITIES)
async def test_a_later_moment_within_the_ttl_reuses_the_earlier_answer(modality: str) -> None:
    source = RecordingSource()
    shared = builder(source)
    await shared.build("BTC/USDT", T)
    later = T + timedelta(seconds=ttl_s(modality) / 2)

    snapshot = await shared.build("BTC/USDT", later)

    assert source.asked(modality) == [T]
    assert speaks_for(snapshot, modality) == T  # older data, never newer than asked
    assert snapshot.as_of == later


@pytest.mark.parametrize("modality", MODALITIES)
async def test_the_same_moment_and_the_ttl_edge_reuse_and_past_it_refetches(
    modality: str,
) -> None:
    source = RecordingSource()
    shared = builder(source)
    ttl = timedelta(seconds=ttl_s(modality))
    await shared.build("BTC/USDT", T)
    await shared.build("BTC/USDT", T)
    await shared.build("BTC/USDT", T + ttl)
    assert source.asked(modality) == [T]

    beyond = T + ttl + timedelta(seconds=1)
    snapshot = await shared.build("BTC/USDT", beyond)

    assert source.asked(modality) == [T, beyond]
    assert speaks_for(snapshot, modality) == beyond


async def test_each_symbol_has_its_own_cache_entry() -> None:
    source = RecordingSource()
    shared = builder(source)
    await shared.build("BTC/USDT", T)
    snapshot = await shared.build("ETH/USDT", T)
    for modality in ("candles", "orderbook", "whales", "posts"):
        assert [symbol for kind, symbol, _ in source.calls if kind == modality] == [
            "BTC/USDT",
            "ETH/USDT",
        ]
    assert isinstance(snapshot.candles, CandleSeries)
    assert snapshot.candles.symbol == "ETH/USDT"


async def test_fear_and_greed_is_fetched_once_for_all_symbols() -> None:
    source = RecordingSource()
    shared = builder(source)
    await shared.build("BTC/USDT", T)
    await shared.build("ETH/USDT", T)
    assert source.asked("fear_greed") == [T]  # market-wide: one cache entry
    assert [name for name in shared.source_health() if name.startswith("fear_greed")] == [
        "fear_greed"
    ]


async def test_symbols_built_concurrently_share_one_call_for_market_wide_data() -> None:
    source = RecordingSource()
    config = Config().model_copy(
        update={"cache_ttl_s": Config().cache_ttl_s.model_copy(update={"fear_greed": 0})}
    )
    shared = builder(source, config)  # no cache: only the shared call in flight can join
    await asyncio.gather(shared.build("BTC/USDT", T), shared.build("ETH/USDT", T))
    assert source.asked("fear_greed") == [T]
    assert len(source.asked("candles")) == 2


@pytest.mark.parametrize("modality", MODALITIES)
async def test_a_ttl_of_zero_never_reuses(modality: str) -> None:
    config = Config().model_copy(
        update={"cache_ttl_s": Config().cache_ttl_s.model_copy(update={modality: 0})}
    )
    source = RecordingSource()
    shared = builder(source, config)
    await shared.build("BTC/USDT", T)
    await shared.build("BTC/USDT", T)
    assert source.asked(modality) == [T, T]


# --- maximum age per modality ----------------------------------------------------------------


def with_max_age(modality: str, max_age_s: float) -> Config:
    max_age = Config().max_age_s.model_copy(update={modality: max_age_s})
    return Config().model_copy(update={"max_age_s": max_age})


@pytest.mark.parametrize("modality", MODALITIES)
async def test_data_exactly_max_age_old_is_kept(modality: str) -> None:
    max_age_s = getattr(Config().max_age_s, modality)
    source = RecordingSource(lag=timedelta(seconds=max_age_s))
    snapshot = await builder(source).build("BTC/USDT", T)
    assert speaks_for(snapshot, modality) == T - timedelta(seconds=max_age_s)


@pytest.mark.parametrize("modality", MODALITIES)
async def test_data_older_than_max_age_is_unavailable_with_its_age(modality: str) -> None:
    max_age_s = getattr(Config().max_age_s, modality)
    lag = timedelta(seconds=max_age_s + 1)
    snapshot = await builder(RecordingSource(lag=lag)).build("BTC/USDT", T)
    missing = getattr(snapshot, modality)
    assert isinstance(missing, Unavailable)
    assert missing.last_seen == T - lag
    assert "newer than" in missing.reason


@pytest.mark.parametrize("modality", MODALITIES)
async def test_each_modality_has_its_own_max_age(modality: str) -> None:
    """Ten minutes old: fine by default, too old once this modality alone allows five."""
    source = RecordingSource(lag=timedelta(minutes=10))
    strict = await builder(source, with_max_age(modality, 300)).build("BTC/USDT", T)
    for other in MODALITIES:
        value = getattr(strict, other)
        if other == modality:
            assert isinstance(value, Unavailable)
            assert value.reason.startswith("no ")
            assert "newer than 5 min (newest is 10 min old)" in value.reason
        else:
            assert speaks_for(strict, other) == T - timedelta(minutes=10)
