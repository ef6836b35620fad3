"""Every number and word of the thesis, every risk factor and every confidence term, on reports
made by the real agents from domain objects. Expected values are worked out here from the inputs
(and the documented formulas), never read back from the code under test."""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from intel.agents.orderbook import OrderBookAgent
from intel.agents.sentiment import SentimentAgent
from intel.agents.whales import WhaleAgent
from intel.config import (
    AgentsConfig,
    CoordinatorConfig,
    SentimentAgentConfig,
    WhalesAgentConfig,
)
from intel.coordinator.rules import RulesCoordinator
from intel.models import (
    Action,
    AgentReport,
    CandleSeries,
    FearGreedReading,
    MarketSnapshot,
    OrderBookHistory,
    PositionSize,
    Signal,
    Unavailable,
)
from intel.sentiment.lexicon import LexiconEngine
from tests.factories import (
    DEFAULT_AS_OF,
    book_history,
    make_candles,
    make_snapshot,
    whale_flows,
)

AS_OF = DEFAULT_AS_OF
SYMBOL = "BTC/USDT"
ENGINE = LexiconEngine()
DEFAULTS = AgentsConfig()
# Scores that are exact integers: whale score = 100 × net / gross (no volume floor), retail mood
# = the Fear & Greed mood alone, (value − 50) × 2.
EXACT = AgentsConfig(
    whales=WhalesAgentConfig(volume_floor_usd=0),
    sentiment=SentimentAgentConfig(fear_greed_weight=1.0),
)


def snapshot(
    whale: int = 0, fear_greed: int = 50, book: tuple[int, int] = (1, 1), **changes: Any
) -> MarketSnapshot:
    """Under EXACT: whale score `whale`, mood (fear_greed − 50) × 2, book bid:ask volume `book`
    within the scoring band (3:1 → +50); six mixed posts, all fresh."""
    modalities: dict[str, Any] = {
        "whales": whale_flows(SYMBOL, AS_OF, (100 - whale) * 1e6, (100 + whale) * 1e6),
        "orderbook": book_history(SYMBOL, AS_OF, *book),
        "fear_greed": FearGreedReading(AS_OF - timedelta(hours=2), fear_greed, "Neutral"),
    }
    return replace(make_snapshot(Action.HOLD, AS_OF, SYMBOL), **(modalities | changes))


async def reports_of(market: MarketSnapshot, agents: AgentsConfig) -> dict[str, AgentReport]:
    analysts = (
        WhaleAgent(agents.whales),
        OrderBookAgent(agents.orderbook),
        SentimentAgent(agents.sentiment, ENGINE),
    )
    return {agent.name: await agent.analyze(market) for agent in analysts}


async def signal_of(
    market: MarketSnapshot,
    agents: AgentsConfig = EXACT,
    candles: CandleSeries | None = None,
    **rules: Any,
) -> Signal:
    coordinator = RulesCoordinator(CoordinatorConfig().model_copy(update=rules))
    reports = await reports_of(market, agents)
    series = make_candles(SYMBOL, AS_OF) if candles is None else candles
    return await coordinator.decide(SYMBOL, AS_OF, reports, series, created_at=AS_OF)


def volatile_candles(swing: float = 0.02) -> tuple[CandleSeries, float]:
    """Closes alternating ±`swing` around 62,150, and their hourly σ (%) over the last 24 h."""
    calm = make_candles(SYMBOL, AS_OF)
    close = 62_150.0 * (1 + swing * np.where(np.arange(len(calm)) % 2 == 0, 1.0, -1.0))
    log_returns = [math.log(b / a) for a, b in zip(close[-25:-1], close[-24:], strict=True)]
    sigma_pct = statistics.stdev(log_returns) * 100
    return replace(calm, close=close), sigma_pct


# --- the thesis: whales ----------------------------------------------------------------------


async def test_distribution_states_net_flow_window_transfers_and_score() -> None:
    market = replace(snapshot(), whales=whale_flows(SYMBOL, AS_OF, 300e6, 100e6))
    signal = await signal_of(market, DEFAULTS)
    # 100 × (100 M − 300 M) / (400 M + the 50 M volume floor) = −44.4
    assert signal.thesis.startswith(
        "Whales moved a net $200.0M into exchanges over 24 h "
        "(10 transfers, distribution score -44)."
    )


async def test_accumulation_states_net_flow_out_of_exchanges() -> None:
    market = replace(snapshot(), whales=whale_flows(SYMBOL, AS_OF, 30e6, 90e6, window_h=36))
    signal = await signal_of(market, DEFAULTS)
    # 100 × 60 M / (120 M + 50 M) = +35.3
    assert signal.thesis.startswith(
        "Whales moved a net $60.0M out of exchanges over 36 h "
        "(10 transfers, accumulation score +35)."
    )


async def test_a_window_without_transfers_says_so() -> None:
    quiet = replace(whale_flows(SYMBOL, AS_OF, 0, 0, window_h=48), hours=())
    signal = await signal_of(replace(snapshot(), whales=quiet), DEFAULTS)
    assert signal.thesis.startswith("No whale transfers to or from exchanges in the last 48 h.")


async def test_missing_whales_are_said_and_leave_nothing_to_act_on() -> None:
    signal = await signal_of(replace(snapshot(), whales=Unavailable("whale feed down")))
    assert signal.thesis.startswith("Whale flows are unavailable.")
    assert "Without whale flows there is no divergence to act on." in signal.thesis
    assert "whales unavailable: whale feed down" in signal.risk_factors


# --- the thesis: retail ----------------------------------------------------------------------


async def test_the_mood_sentence_gives_fear_greed_reddit_mood_and_post_count() -> None:
    market = replace(make_snapshot(Action.BUY, AS_OF, SYMBOL))
    signal = await signal_of(market, DEFAULTS)
    # Six fearful posts: Reddit mood −100 whatever the recency weights; Fear & Greed 22 → −56;
    # half and half: −78.
    assert "Retail is fearful: mood -78 (Fear & Greed 22; Reddit mood -100 over 6 posts)." in (
        signal.thesis
    )


async def test_the_mood_without_reddit_names_fear_greed_alone() -> None:
    signal = await signal_of(snapshot(fear_greed=70, posts=Unavailable("Reddit is down")))
    assert "Retail is greedy: mood +40 (Fear & Greed 70)." in signal.thesis


@pytest.mark.parametrize(
    ("fear_greed", "threshold", "tone"),
    [
        (45, 10, "fearful"),  # mood −10: at the threshold
        (46, 10, "neutral"),  # −8
        (55, 10, "greedy"),  # +10
        (54, 10, "neutral"),  # +8
        (40, 30, "neutral"),  # −20: fearful at the default threshold, not at 30
        (35, 30, "fearful"),  # −30
        (65, 30, "greedy"),  # +30
    ],
)
async def test_fearful_and_greedy_follow_the_configured_mood_threshold(
    fear_greed: int, threshold: float, tone: str
) -> None:
    signal = await signal_of(snapshot(fear_greed=fear_greed), mood_threshold=threshold)
    assert f"Retail is {tone}: mood {(fear_greed - 50) * 2:+d} " in signal.thesis


async def test_missing_sentiment_is_said() -> None:
    market = replace(snapshot(), posts=Unavailable("no posts"), fear_greed=Unavailable("no index"))
    signal = await signal_of(market)
    assert "Retail sentiment is unavailable." in signal.thesis


# --- the thesis: verdict and book ------------------------------------------------------------


@pytest.mark.parametrize(
    ("whale", "fear_greed", "rules", "words"),
    [
        (40, 35, {}, "Smart money accumulating into retail fear: divergence +70 (high)."),
        (-40, 65, {}, "Smart money distributing into retail greed: divergence -70 (high)."),
        (20, 35, {}, "Smart money accumulating into retail fear: divergence +50 (moderate)."),
        (
            30,
            60,
            {},
            "No call: whales are accumulating while retail is greedy: both lean the same way, "
            "so there is no divergence to trade (divergence +10, low).",
        ),
        (
            12,
            45,
            {},
            "No call: retail is fearful but whales show no clear intent, score +12 short of ±15 "
            "(divergence +22, moderate).",
        ),
        (
            10,
            45,
            {},
            "No call: retail is fearful but whales show no clear intent, score +10 short of ±15 "
            "(divergence +20, low).",
        ),
        (
            12,
            45,
            {"moderate_divergence": 30},
            "No call: retail is fearful but whales show no clear intent, score +12 short of ±15 "
            "(divergence +22, low).",
        ),
        # A high divergence without a call: the retail side is short of its threshold.
        (
            -61,
            54,
            {},
            "No call: whales are distributing, score -61, but retail mood +8 is short of greed at "
            "+10 (divergence -69, high).",
        ),
        (
            61,
            46,
            {"mood_threshold": 12},
            "No call: whales are accumulating, score +61, but retail mood -8 is short of fear at "
            "-12 (divergence +69, high).",
        ),
        (
            -20,
            35,
            {},
            "No call: whales are distributing while retail is fearful: both lean the same way, "
            "so there is no divergence to trade (divergence +10, low).",
        ),
        (
            5,
            52,
            {},
            "No call: whale score +5 and retail mood +4 are both inside their thresholds, ±15 and "
            "±10 (divergence +1, low).",
        ),
        (
            20,
            35,
            {"high_divergence": 40},
            "Smart money accumulating into retail fear: divergence +50 (high).",
        ),
    ],
)
async def test_the_verdict_names_the_call_divergence_and_its_level(
    whale: int, fear_greed: int, rules: dict[str, float], words: str
) -> None:
    signal = await signal_of(snapshot(whale, fear_greed), **rules)
    assert words in signal.thesis
    assert signal.divergence == whale - (fear_greed - 50) * 2


@pytest.mark.parametrize(
    ("whale", "fear_greed", "book", "words"),
    [
        (40, 35, (3, 1), "The order book leans to the bids (+50), confirming the call."),
        (40, 35, (1, 3), "The order book leans to the asks (-50), against the call."),
        (-40, 65, (1, 3), "The order book leans to the asks (-50), confirming the call."),
        (40, 35, (5, 3), "The order book leans to the bids (+25), confirming the call."),
        (0, 50, (3, 1), "The order book leans to the bids (+50)."),
    ],
)
async def test_the_book_sentence_gives_its_lean_and_effect(
    whale: int, fear_greed: int, book: tuple[int, int], words: str
) -> None:
    signal = await signal_of(snapshot(whale, fear_greed, book))
    assert signal.thesis.endswith(words)


# --- risk factors ----------------------------------------------------------------------------


async def test_high_volatility_is_a_risk_with_its_hourly_sigma() -> None:
    candles, sigma_pct = volatile_candles()
    assert sigma_pct > CoordinatorConfig().high_volatility_pct
    signal = await signal_of(snapshot(), candles=candles)
    assert (
        signal.risk_factors[0] == f"High volatility: hourly moves of {sigma_pct:.2f} % (1 σ, 24 h)"
    )


async def test_each_missing_and_degraded_modality_is_a_risk_with_its_reason() -> None:
    market = snapshot(orderbook=Unavailable("no book newer than 1 h"), posts=Unavailable("down"))
    signal = await signal_of(market)
    assert signal.risk_factors == (
        "orderbook unavailable: no book newer than 1 h",
        "sentiment degraded: Reddit: down",
    )


async def test_a_book_leaning_against_the_call_is_a_risk() -> None:
    signal = await signal_of(snapshot(40, 35, (1, 3)))
    assert signal.risk_factors == ("The order book leans against the call",)


async def test_pulled_walls_are_a_risk_with_their_count() -> None:
    calm = book_history(SYMBOL, AS_OF, 1, 1).books
    # An ask wall appears in the second snapshot and is gone, unreached, in the third.
    walled = replace(calm[1], asks=tuple(sorted((*calm[1].asks, (62_900.0, 30.0)))))
    books = (calm[0], walled, calm[2])
    market = snapshot(orderbook=OrderBookHistory("binance", SYMBOL, books))
    signal = await signal_of(market)
    assert "Possible spoofing: 1 wall(s) vanished before price reached them" in signal.risk_factors


async def test_a_call_without_high_divergence_is_a_weaker_setup() -> None:
    moderate = await signal_of(snapshot(20, 35))
    assert moderate.action is Action.BUY
    assert moderate.risk_factors == ("Divergence is moderate, not high: a weaker setup",)
    high = await signal_of(snapshot(40, 35))
    assert "Divergence is moderate, not high: a weaker setup" not in high.risk_factors


async def test_with_no_risk_found_the_generic_one_is_given() -> None:
    signal = await signal_of(snapshot(40, 35))
    assert signal.risk_factors == (
        "Signals can flip quickly around news; size positions accordingly",
    )


# --- confidence ------------------------------------------------------------------------------

NO_BOOK = {"orderbook": Unavailable("stale")}
NO_REDDIT = {"posts": Unavailable("down")}
CONFIDENCE_CASES = [
    # (id, whale, fear_greed, book, snapshot changes, rules, expected from the formula)
    ("hold", 10, 50, (1, 1), {}, {}, 70 - 0.3 * 10),
    ("hold-capped", 90, 10, (1, 1), {}, {"whale_threshold": 95}, 70 - 0.3 * 150),
    ("buy", 40, 35, (1, 1), {}, {}, 55 + 0.3 * 70),
    ("buy-max", 100, 0, (1, 1), {}, {}, 90),
    ("buy-confirmed", 40, 35, (3, 1), {}, {}, 55 + 0.3 * 70 + 10),
    ("buy-opposed", 40, 35, (1, 3), {}, {}, 55 + 0.3 * 70 - 15),
    ("sell-confirmed", -40, 65, (1, 3), {}, {}, 55 + 0.3 * 70 + 10),
    ("hold-book-ignored", 10, 50, (3, 1), {}, {}, 70 - 0.3 * 10),
    ("missing", 10, 50, (1, 1), NO_BOOK, {}, 70 - 0.3 * 10 - 15),
    ("degraded", 10, 50, (1, 1), NO_REDDIT, {}, 70 - 0.3 * 10 - 5),
    ("hold-base", 10, 50, (1, 1), {}, {"hold_confidence_base": 60}, 60 - 0.3 * 10),
    ("hold-slope", 10, 50, (1, 1), {}, {"hold_confidence_per_divergence": 0.5}, 70 - 0.5 * 10),
    (
        "hold-cap",
        90,
        10,
        (1, 1),
        {},
        {"whale_threshold": 95, "hold_divergence_cap": 100},
        70 - 0.3 * 100,
    ),
    ("call-base", 40, 35, (1, 1), {}, {"call_confidence_base": 50}, 50 + 0.3 * 70),
    ("call-slope", 40, 35, (1, 1), {}, {"call_confidence_per_divergence": 0.2}, 55 + 0.2 * 70),
    ("call-max", 100, 0, (1, 1), {}, {"call_confidence_max": 80}, 80),
    ("bonus", 40, 35, (3, 1), {}, {"orderbook_confirm_bonus": 4}, 55 + 0.3 * 70 + 4),
    ("against", 40, 35, (1, 3), {}, {"orderbook_against_penalty": 6}, 55 + 0.3 * 70 - 6),
    ("missing-penalty", 10, 50, (1, 1), NO_BOOK, {"missing_penalty": 20}, 70 - 0.3 * 10 - 20),
    ("degraded-penalty", 10, 50, (1, 1), NO_REDDIT, {"degraded_penalty": 9}, 70 - 0.3 * 10 - 9),
]


@pytest.mark.parametrize(
    ("whale", "fear_greed", "book", "changes", "rules", "expected"),
    [case[1:] for case in CONFIDENCE_CASES],
    ids=[case[0] for case in CONFIDENCE_CASES],
)
async def test_each_confidence_term(
    whale: int,
    fear_greed: int,
    book: tuple[int, int],
    changes: dict[str, Any],
    rules: dict[str, float],
    expected: float,
) -> None:
    signal = await signal_of(snapshot(whale, fear_greed, book, **changes), **rules)
    assert signal.confidence == round(expected)


async def test_confidence_stays_within_0_and_100() -> None:
    signal = await signal_of(
        snapshot(10, 50, orderbook=Unavailable("stale"), whales=Unavailable("down")),
        missing_penalty=60,
    )
    assert signal.confidence == 0


# --- timeframe and size ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("confidence", "rules", "hours"),
    [
        (75, {}, 24),
        (74, {}, 12),
        (55, {}, 12),
        (54, {}, 6),
        (75, {"timeframe_24h_confidence": 80}, 12),
        (55, {"timeframe_12h_confidence": 60}, 6),
    ],
)
async def test_the_timeframe_follows_the_configured_cut_offs(
    confidence: int, rules: dict[str, int], hours: int
) -> None:
    # A flat HOLD (divergence 0) has exactly the configured base as its confidence.
    signal = await signal_of(snapshot(0, 50), hold_confidence_base=confidence, **rules)
    assert signal.confidence == confidence
    assert signal.timeframe_hours == hours


async def test_high_volatility_halves_the_timeframe() -> None:
    candles, _sigma = volatile_candles()
    signal = await signal_of(snapshot(0, 50), candles=candles, hold_confidence_base=75)
    assert signal.timeframe_hours == 12


@pytest.mark.parametrize(
    ("call_base", "rules", "size"),
    [
        (54, {}, PositionSize.AGGRESSIVE),  # 54 + 0.3 × 70 = 75
        (34, {}, PositionSize.MODERATE),  # 55
        (53, {}, PositionSize.MODERATE),  # 74
        (33, {}, PositionSize.CONSERVATIVE),  # 54
        (54, {"aggressive_size_confidence": 80}, PositionSize.MODERATE),
        (34, {"moderate_size_confidence": 60}, PositionSize.CONSERVATIVE),  # 55
    ],
)
async def test_position_size_follows_the_configured_cut_offs(
    call_base: int, rules: dict[str, int], size: PositionSize
) -> None:
    signal = await signal_of(snapshot(40, 35), call_confidence_base=call_base, **rules)
    assert signal.action is Action.BUY
    assert signal.position_size is size
