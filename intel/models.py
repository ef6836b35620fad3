"""Frozen domain types that flow from sources through agents to the coordinator.

Wire formats (exchange JSON, CSV rows) are parsed into these at the edge; nothing past a source
ever sees a dict from the outside world.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from intel.features import Features
from intel.timeutil import from_ms

__all__ = [
    "Action",
    "AgentReport",
    "CandleSeries",
    "ExchangeFlow",
    "FearGreedReading",
    "MarketSnapshot",
    "Modality",
    "OrderBook",
    "OrderBookHistory",
    "PositionSize",
    "ReportStatus",
    "Signal",
    "SocialPost",
    "Unavailable",
    "WhaleFlows",
]

FloatArray = npt.NDArray[np.float64]
FeaturesT = TypeVar("FeaturesT", bound=Features)


class Action(StrEnum):
    BUY = "BUY"
    SELL = "SELL"
    HOLD = "HOLD"


class PositionSize(StrEnum):
    CONSERVATIVE = "conservative"
    MODERATE = "moderate"
    AGGRESSIVE = "aggressive"


class ReportStatus(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    UNAVAILABLE = "unavailable"


class Modality(StrEnum):
    CANDLES = "candles"
    ORDERBOOK = "orderbook"
    WHALES = "whales"
    POSTS = "posts"
    FEAR_GREED = "fear_greed"


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A modality that could not be used, and why (the reason is shown to people)."""

    reason: str
    last_seen: datetime | None = None


@dataclass(frozen=True, slots=True, eq=False)
class CandleSeries:
    """OHLCV candles of one symbol, oldest first; times are candle open times in ms (UTC)."""

    symbol: str
    interval_s: int
    open_time_ms: npt.NDArray[np.int64]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __post_init__(self) -> None:
        # Agents get views into the source's cache: read-only, so none can alter another's data.
        for array in (self.open_time_ms, self.open, self.high, self.low, self.close, self.volume):
            array.flags.writeable = False

    def __len__(self) -> int:
        return int(self.open_time_ms.shape[0])

    def __repr__(self) -> str:
        return f"CandleSeries({self.symbol}, {len(self)} × {self.interval_s} s)"

    @property
    def last_close_time(self) -> datetime:
        """The moment the newest candle closed: the market moment this series describes."""
        return from_ms(int(self.open_time_ms[-1]) + self.interval_s * 1000)

    def tail(self, count: int) -> CandleSeries:
        return self.window(max(0, len(self) - count), len(self))

    def window(self, start: int, stop: int) -> CandleSeries:
        return CandleSeries(
            symbol=self.symbol,
            interval_s=self.interval_s,
            open_time_ms=self.open_time_ms[start:stop],
            open=self.open[start:stop],
            high=self.high[start:stop],
            low=self.low[start:stop],
            close=self.close[start:stop],
            volume=self.volume[start:stop],
        )


@dataclass(frozen=True, slots=True)
class OrderBook:
    """One level-2 snapshot: bids descending, asks ascending, as (price, base quantity)."""

    timestamp: datetime
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]

    @property
    def best_bid(self) -> float:
        return self.bids[0][0]

    @property
    def best_ask(self) -> float:
        return self.asks[0][0]

    @property
    def mid(self) -> float:
        return (self.best_bid + self.best_ask) / 2.0


@dataclass(frozen=True, slots=True)
class OrderBookHistory:
    """Consecutive snapshots of one venue's book, oldest first (the newest is current)."""

    exchange: str
    venue_symbol: str
    books: tuple[OrderBook, ...]
    note: str | None = None
    # Live: how the books were read, the websocket stream or REST polling and why (the order-book
    # report shows it); None for recorded books.
    feed: str | None = None
    # Live: why REST polling stood in for the stream of a followed symbol (the report is then
    # degraded: no window of snapshots); None when streamed, not followed, or recorded.
    fallback: str | None = None

    @property
    def latest(self) -> OrderBook:
        return self.books[-1]


@dataclass(frozen=True, slots=True)
class ExchangeFlow:
    """Whale transfers into and out of exchanges during one hour starting at `hour_start`."""

    hour_start: datetime
    inflow_usd: float
    outflow_usd: float
    inflow_coins: float | None
    outflow_coins: float | None
    transfer_count: int


@dataclass(frozen=True, slots=True)
class WhaleFlows:
    """Hourly exchange flows over the look-back window; hours with no transfer are absent."""

    asset: str
    window_start: datetime
    as_of: datetime
    hours: tuple[ExchangeFlow, ...]
    credit: str
    # Hours of the window the provider watched (live); None: the whole window (replay).
    collected_h: int | None = None
    notes: tuple[str, ...] = ()  # how these flows were made (a proxy for another chain)


@dataclass(frozen=True, slots=True)
class SocialPost:
    """A Reddit post. Replay posts are as known at posting time (no author, score or comment
    count); a live post also carries its author and its score when it was fetched."""

    post_id: str
    community: str
    created: datetime
    title: str
    body: str
    author: str | None = None  # None: replay, or an account deleted since
    score: int | None = None  # upvotes minus downvotes at fetch time; None in replay


@dataclass(frozen=True, slots=True)
class FearGreedReading:
    timestamp: datetime
    value: int
    classification: str


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """Everything known about one symbol at `as_of`; each modality is data or `Unavailable`."""

    symbol: str
    as_of: datetime
    candles: CandleSeries | Unavailable
    orderbook: OrderBookHistory | Unavailable
    whales: WhaleFlows | Unavailable
    posts: tuple[SocialPost, ...] | Unavailable
    fear_greed: FearGreedReading | Unavailable


@dataclass(frozen=True, slots=True)
class AgentReport:
    """One agent's reading of the snapshot: a score on −100..+100 with the figures behind it."""

    agent: str
    status: ReportStatus
    score: float | None
    reason: str | None = None
    as_of: datetime | None = None
    age_s: float | None = None
    features: Features | None = None  # None when the agent had nothing to read
    notes: tuple[str, ...] = ()
    engine: str | None = None

    def features_as(self, kind: type[FeaturesT]) -> FeaturesT | None:
        """This report's figures if they are of `kind` (e.g. `WhaleFeatures`), else None."""
        return self.features if isinstance(self.features, kind) else None

    @classmethod
    def unavailable(
        cls, agent: str, reason: str, last_seen: datetime | None = None, now: datetime | None = None
    ) -> AgentReport:
        age = (now - last_seen).total_seconds() if (now and last_seen) else None
        return cls(
            agent=agent,
            status=ReportStatus.UNAVAILABLE,
            score=None,
            reason=reason,
            as_of=last_seen,
            age_s=age,
        )


@dataclass(frozen=True, slots=True)
class Signal:
    """The product: an explained BUY/SELL/HOLD call for one symbol at one market moment."""

    symbol: str
    action: Action
    confidence: int
    thesis: str
    risk_factors: tuple[str, ...]
    timeframe_hours: int
    position_size: PositionSize
    divergence: float
    coordinator: str
    clamps: tuple[str, ...]
    as_of: datetime
    created_at: datetime
    reports: Mapping[str, AgentReport]
    price: float | None = None
    high_divergence: bool = False  # |divergence| above the coordinator's configured bound
    # How this signal was made, for the reader: a fallback (the coordinator was late), a proxy.
    notes: tuple[str, ...] = ()
    # The figures that drove the call, most important first (both coordinators fill it).
    key_drivers: tuple[str, ...] = ()
    model: str | None = None  # the LLM that wrote the text; None for the rules
    # The rules' confidence before calibration (`intel.calibration`); None: made without
    # calibration, so `confidence` is the rules' own value. A HOLD made under calibration keeps
    # its value and carries it here too.
    raw_confidence: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "reports", MappingProxyType(dict(self.reports)))

    @property
    def rules_confidence(self) -> int:
        """The rules' confidence before any calibration (the contract's `raw_confidence`)."""
        return self.confidence if self.raw_confidence is None else self.raw_confidence
