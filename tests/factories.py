"""Test signals built through the real agents: a MarketSnapshot of domain objects leaning the way
of the wanted action is read by the whale, order-book and sentiment agents (lexicon engine), and
the rules write the thesis and risks from their reports, so every test renders real figures.

Action and confidence are pinned to what a test asks for (the scenario is built so that the rules
reach the same action; the factory checks it). Inputs are chosen so that each score survives the
Signal JSON's six decimals exactly: stored signals compare equal to the ones written.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import cache

import numpy as np

from intel.agents.orderbook import OrderBookAgent
from intel.agents.sentiment import SentimentAgent
from intel.agents.whales import WhaleAgent
from intel.config import Config
from intel.coordinator.rules import RulesCoordinator
from intel.coordinator.thesis import risk_factors, write_thesis
from intel.models import (
    Action,
    AgentReport,
    CandleSeries,
    ExchangeFlow,
    FearGreedReading,
    MarketSnapshot,
    OrderBook,
    OrderBookHistory,
    PositionSize,
    Signal,
    SocialPost,
    WhaleFlows,
)
from intel.sentiment.lexicon import LexiconEngine
from intel.symbols import base_asset

__all__ = [
    "DEFAULT_AS_OF",
    "book_history",
    "make_candles",
    "make_reports",
    "make_signal",
    "make_snapshot",
    "whale_flows",
]

DEFAULT_AS_OF = datetime(2025, 10, 10, 20, 0, tzinfo=UTC)
MID_PRICE = 62_150.0
CONFIG = Config()

# Whale flows (USD): with the 50 M volume floor, 100 M net of 150 M gross scores exactly ±50.
_FLOWS_USD = {
    Action.BUY: (25e6, 125e6),  # (inflow, outflow): coins leave exchanges
    Action.SELL: (125e6, 25e6),
    Action.HOLD: (67.5e6, 82.5e6),  # +7.5: below the whale threshold
}
_POSTS = {
    Action.BUY: (
        "Bitcoin is crashing, I am scared and selling everything",
        "Terrible dump today, panic everywhere, this is awful",
        "Lost so much money, the market is horrible",
        "Fear is everywhere, worst week ever",
        "Another crash, I hate this, total disaster",
        "Liquidated again, so sad and angry",
    ),
    Action.SELL: (
        "Bitcoin to the moon, amazing rally, so happy",
        "Best week ever, great gains, love this market",
        "Incredible pump, everyone is winning, wonderful",
        "So bullish, fantastic breakout, great times",
        "Huge profits today, awesome and exciting",
        "Perfect rally, excellent news, very happy",
    ),
    Action.HOLD: (
        "Bitcoin is crashing, I am scared and selling everything",
        "Best week ever, great gains, love this market",
        "Terrible dump today, panic everywhere, this is awful",
        "So bullish, fantastic breakout, great times",
        "Price moved sideways today",
        "Volume was average this afternoon",
    ),
}
_FEAR_GREED = {
    Action.BUY: (22, "Extreme Fear"),
    Action.SELL: (78, "Extreme Greed"),
    Action.HOLD: (50, "Neutral"),
}
# Bid to ask quote volume within the scoring band: 3:1 reads +50, 1:3 −50, 5:3 +25.
_BOOK_LEAN = {Action.BUY: (3, 1), Action.SELL: (1, 3), Action.HOLD: (5, 3)}


def make_snapshot(
    action: Action = Action.BUY, as_of: datetime = DEFAULT_AS_OF, symbol: str = "BTC/USDT"
) -> MarketSnapshot:
    """Every modality present and fresh, leaning towards `action` (HOLD: mixed)."""
    fear_greed, label = _FEAR_GREED[action]
    return MarketSnapshot(
        symbol=symbol,
        as_of=as_of,
        candles=make_candles(symbol, as_of),
        orderbook=book_history(symbol, as_of, *_BOOK_LEAN[action]),
        whales=whale_flows(symbol, as_of, *_FLOWS_USD[action]),
        posts=tuple(
            SocialPost(f"p{i}", "Bitcoin", as_of - timedelta(hours=i + 1), title, "")
            for i, title in enumerate(_POSTS[action])
        ),
        fear_greed=FearGreedReading(as_of - timedelta(hours=20), fear_greed, label),
    )


def make_reports(
    action: Action = Action.BUY, as_of: datetime = DEFAULT_AS_OF, symbol: str = "BTC/USDT"
) -> dict[str, AgentReport]:
    """The three agents' reports on `make_snapshot(action, as_of, symbol)`."""
    return dict(_agent_reports(symbol, action, as_of))


def make_signal(
    symbol: str = "BTC/USDT",
    action: Action = Action.BUY,
    confidence: int = 70,
    as_of: datetime = DEFAULT_AS_OF,
    *,
    price: float | None = 62_150.5,
) -> Signal:
    """A signal on `make_reports(action, as_of, symbol)`, thesis and risks by the rules."""
    reports = make_reports(action, as_of, symbol)
    coordinator = RulesCoordinator(CONFIG.coordinator)
    assessment = coordinator.assess(reports, make_candles(symbol, as_of))
    if assessment.action is not action:
        raise AssertionError(f"factory scenario for {action} reads as {assessment.action}")
    return Signal(
        symbol=symbol,
        action=action,
        confidence=confidence,
        thesis=write_thesis(assessment, reports),
        risk_factors=tuple(risk_factors(assessment, reports)),
        timeframe_hours=24,
        position_size=PositionSize.MODERATE,
        divergence=round(assessment.divergence, 1),
        high_divergence=assessment.high_divergence,
        coordinator=coordinator.name,
        clamps=(),
        as_of=as_of,
        created_at=as_of + timedelta(seconds=3),
        reports=reports,
        price=price,
    )


@cache
def _engine() -> LexiconEngine:
    return LexiconEngine()


@cache
def _agent_reports(
    symbol: str, action: Action, as_of: datetime
) -> tuple[tuple[str, AgentReport], ...]:
    snapshot = make_snapshot(action, as_of, symbol)
    agents = CONFIG.agents
    analysts = (
        WhaleAgent(agents.whales),
        OrderBookAgent(agents.orderbook),
        SentimentAgent(agents.sentiment, _engine()),
    )

    async def analyze() -> list[AgentReport]:
        return list(await asyncio.gather(*(agent.analyze(snapshot) for agent in analysts)))

    # A thread of its own, so that async tests (inside a running loop) can call the factory too.
    with ThreadPoolExecutor(max_workers=1) as pool:
        reports = pool.submit(asyncio.run, analyze()).result()
    return tuple((agent.name, report) for agent, report in zip(analysts, reports, strict=True))


def make_candles(
    symbol: str = "BTC/USDT", as_of: datetime = DEFAULT_AS_OF, count: int = 48
) -> CandleSeries:
    """Hourly candles closing at `as_of`, swinging ±0.1 % around the mid: a calm market."""
    close = MID_PRICE * (1 + 0.001 * np.where(np.arange(count) % 2 == 0, 1.0, -1.0))
    close[-1] = MID_PRICE + 0.5
    open_ = np.concatenate([[MID_PRICE], close[:-1]])
    first_open_ms = int((as_of - timedelta(hours=count)).timestamp() * 1000)
    return CandleSeries(
        symbol=symbol,
        interval_s=3600,
        open_time_ms=first_open_ms + np.arange(count, dtype=np.int64) * 3_600_000,
        open=open_,
        high=np.maximum(open_, close) + 20.0,
        low=np.minimum(open_, close) - 20.0,
        close=close,
        volume=np.full(count, 1_000.0),
    )


def book_history(symbol: str, as_of: datetime, bid_parts: int, ask_parts: int) -> OrderBookHistory:
    """Three identical snapshots 5 s apart. One level each side inside the 0.5 % scoring band,
    sized (in 1/65536 units, exact in binary) so the bid and ask quote volumes are exactly in the
    ratio bid_parts:ask_parts; farther levels give depth; one level per side is a wall (≥ 6× the
    side's median level)."""
    best_bid, best_ask = MID_PRICE - 10.0, MID_PRICE + 10.0
    bids = (
        (best_bid, best_ask * bid_parts / 65536),
        (61_700.0, 1.0),
        (61_500.0, 1.0),
        (61_250.0, 20.0),
        (61_000.0, 1.0),
    )
    asks = (
        (best_ask, best_bid * ask_parts / 65536),
        (62_600.0, 1.0),
        (62_800.0, 1.0),
        (63_050.0, 20.0),
        (63_300.0, 1.0),
    )
    books = tuple(OrderBook(as_of - timedelta(seconds=s), bids, asks) for s in (15, 10, 5))
    return OrderBookHistory("binance", symbol, books)


def whale_flows(
    symbol: str, as_of: datetime, inflow_usd: float, outflow_usd: float, window_h: int = 24
) -> WhaleFlows:
    """Four active hours in the last `window_h` (≥ 21) carrying the given totals, a quarter
    each, with 10 transfers in all; the newest flows are 20 min old."""
    flows_as_of = as_of - timedelta(minutes=20)
    hours = tuple(
        ExchangeFlow(
            hour_start=flows_as_of - timedelta(hours=h),
            inflow_usd=inflow_usd / 4,
            outflow_usd=outflow_usd / 4,
            inflow_coins=inflow_usd / 4 / MID_PRICE,
            outflow_coins=outflow_usd / 4 / MID_PRICE,
            transfer_count=count,
        )
        for h, count in zip((20, 14, 6, 2), (3, 2, 4, 1), strict=True)
    )
    return WhaleFlows(
        asset=base_asset(symbol),
        window_start=flows_as_of - timedelta(hours=window_h),
        as_of=flows_as_of,
        hours=hours,
        credit="test flows",
    )
