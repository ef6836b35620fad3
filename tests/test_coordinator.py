"""The rules coordinator on hand-built agent reports (exact scores) and real recorded candles."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intel.config import CoordinatorConfig
from intel.coordinator.rules import RulesCoordinator, hourly_volatility_pct
from intel.features import (
    BandImbalance,
    FearGreedFigures,
    OrderBookFeatures,
    RedditFigures,
    SentimentFeatures,
    WhaleFeatures,
)
from intel.models import Action, AgentReport, CandleSeries, PositionSize, ReportStatus, Signal
from intel.sources.replay_candles import ReplayCandleSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.textfmt import format_usd
from intel.timeutil import parse_time

CONFIG = CoordinatorConfig()
RULES = RulesCoordinator(CONFIG)
AS_OF = parse_time("2025-10-06T16:00Z")
CREATED = datetime(2025, 10, 6, 16, 0, 3, tzinfo=UTC)


def recorded_tail(moment: str) -> CandleSeries:
    source = ReplayCandleSource(DEFAULT_REPLAY_DIR)
    return asyncio.run(source.candles("BTC/USDT", parse_time(moment), 72))


CALM = recorded_tail("2025-10-06T16:00Z")  # hourly σ ≈ 0.28 %
VOLATILE = recorded_tail("2020-03-13T00:00Z")  # the March 2020 crash, hourly σ ≈ 5.6 %


def whales(score: float, net_usd: float | None = None, transfers: int = 12) -> AgentReport:
    net = score * 5_000_000 if net_usd is None else net_usd
    return AgentReport(
        agent="whales",
        status=ReportStatus.OK,
        score=score,
        as_of=AS_OF,
        age_s=0.0,
        features=WhaleFeatures(
            inflow_usd=max(0.0, -net) + 1e8,
            outflow_usd=max(0.0, net) + 1e8,
            net_flow_usd=net,
            transfer_count=transfers,
            window_h=24.0,
            active_hours=6,
        ),
    )


def sentiment(
    score: float,
    fear_greed: int = 50,
    status: ReportStatus = ReportStatus.OK,
    reason: str | None = None,
) -> AgentReport:
    return AgentReport(
        agent="sentiment",
        status=status,
        score=score,
        reason=reason,
        as_of=AS_OF,
        age_s=60.0,
        features=SentimentFeatures(
            reddit=RedditFigures(
                mood=score, post_count=14, positive_posts=5, negative_posts=4, mean_post_score=0.0
            ),
            fear_greed=FearGreedFigures(value=fear_greed, mood=(fear_greed - 50) * 2.0, age_s=60),
        ),
        engine="lexicon",
    )


def book(score: float) -> AgentReport:
    return AgentReport(
        agent="orderbook",
        status=ReportStatus.OK,
        score=score,
        as_of=AS_OF,
        age_s=5.0,
        features=OrderBookFeatures(
            imbalances=(BandImbalance(0.5, score / 100),),
            spread_bps=1.0,
            mid_price=62_000.0,
            bid_depth_quote=1e6,
            ask_depth_quote=1e6,
            support=None,
            resistance=None,
            spoofing_events=0,
            snapshot_count=3,
        ),
    )


def missing(name: str, reason: str) -> AgentReport:
    return AgentReport.unavailable(name, reason)


def decide(
    *reports: AgentReport, candles: CandleSeries = CALM, rules: RulesCoordinator = RULES
) -> Signal:
    return asyncio.run(
        rules.decide("BTC/USDT", AS_OF, {r.agent: r for r in reports}, candles, created_at=CREATED)
    )


def test_the_recorded_tails_are_calm_and_volatile() -> None:
    assert hourly_volatility_pct(CALM) < CONFIG.high_volatility_pct
    assert hourly_volatility_pct(VOLATILE) > CONFIG.high_volatility_pct


# --- the action -----------------------------------------------------------------------------


def test_accumulation_into_fear_is_a_buy() -> None:
    signal = decide(whales(40), sentiment(-30, fear_greed=22), book(0))
    assert signal.action is Action.BUY
    assert signal.divergence == 70


def test_distribution_into_greed_is_a_sell() -> None:
    signal = decide(whales(-40), sentiment(35, fear_greed=78), book(0))
    assert signal.action is Action.SELL
    assert signal.divergence == -75


def test_the_thresholds_are_inclusive() -> None:
    at = decide(whales(CONFIG.whale_threshold), sentiment(-CONFIG.mood_threshold), book(0))
    assert at.action is Action.BUY
    below = decide(whales(CONFIG.whale_threshold - 0.1), sentiment(-50), book(0))
    assert below.action is Action.HOLD


@pytest.mark.parametrize(
    ("whale", "mood"),
    [(40, 30), (-40, -30), (5, -60), (40, 0), (0, 0), (-5, 60), (-40, 5)],
    ids=[
        "accumulation+greed",
        "distribution+fear",
        "weak-whales",
        "neutral-mood",
        "flat",
        "weak-distribution",
        "distribution+neutral",
    ],
)
def test_anything_else_holds(whale, mood) -> None:
    signal = decide(whales(whale), sentiment(mood), book(0))
    assert signal.action is Action.HOLD
    assert signal.position_size is PositionSize.CONSERVATIVE


def test_no_whales_means_hold_whatever_the_mood() -> None:
    for mood in (-90, 0, 90):
        signal = decide(
            missing("whales", "no whale flows newer than 6 h"), sentiment(mood), book(40)
        )
        assert signal.action is Action.HOLD
        assert "Whale flows are unavailable." in signal.thesis
        assert "Without whale flows" in signal.thesis


def test_no_sentiment_means_hold() -> None:
    signal = decide(whales(80), missing("sentiment", "no posts"), book(40))
    assert signal.action is Action.HOLD


# --- confidence -----------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.floats(CONFIG.whale_threshold, 100),
    st.floats(CONFIG.mood_threshold, 100),
    st.sampled_from([1, -1]),
)
def test_high_divergence_gives_high_confidence(whale, mood, side) -> None:
    if whale + mood <= CONFIG.high_divergence:
        return
    signal = decide(whales(side * whale), sentiment(-side * mood), book(0))
    assert signal.action is (Action.BUY if side > 0 else Action.SELL)
    assert abs(signal.divergence) > CONFIG.high_divergence - 0.1
    assert signal.confidence >= 70


@pytest.mark.parametrize("side", [1, -1], ids=["buy", "sell"])
def test_the_order_book_confirms_or_opposes(side) -> None:
    def confidence(book_score: float) -> int:
        return decide(whales(side * 30), sentiment(-side * 15), book(book_score)).confidence

    neutral = confidence(0)
    confirming = confidence(side * 40)
    opposing = confidence(-side * 40)
    assert confirming > neutral > opposing
    opposed = decide(whales(side * 30), sentiment(-side * 15), book(-side * 40))
    assert "The order book leans against the call" in opposed.risk_factors
    assert "against the call" in opposed.thesis
    confirmed = decide(whales(side * 30), sentiment(-side * 15), book(side * 40))
    assert "confirming the call" in confirmed.thesis


def test_the_order_book_does_not_move_a_hold() -> None:
    assert (
        decide(whales(0), sentiment(0), book(80)).confidence
        == decide(whales(0), sentiment(0), book(-80)).confidence
    )


def test_each_missing_modality_lowers_confidence() -> None:
    full = decide(whales(0), sentiment(0), book(0))
    no_book = decide(whales(0), sentiment(0), missing("orderbook", "stale"))
    no_book_no_mood = decide(whales(0), missing("sentiment", "down"), missing("orderbook", "stale"))
    nothing = decide(missing("whales", "a"), missing("sentiment", "b"), missing("orderbook", "c"))
    assert full.confidence > no_book.confidence > no_book_no_mood.confidence > nothing.confidence
    assert full.confidence - no_book.confidence == CONFIG.missing_penalty

    buy = decide(whales(40), sentiment(-30), book(0))
    buy_no_book = decide(whales(40), sentiment(-30), missing("orderbook", "stale"))
    assert buy_no_book.action is Action.BUY
    assert buy.confidence > buy_no_book.confidence


def test_an_absent_report_counts_as_missing() -> None:
    listed = decide(whales(40), sentiment(-30), missing("orderbook", "stale"))
    absent = decide(whales(40), sentiment(-30))
    assert absent.confidence == listed.confidence


def test_a_degraded_modality_lowers_confidence_a_little() -> None:
    ok = decide(whales(40), sentiment(-30), book(0))
    degraded = decide(
        whales(40),
        sentiment(-30, status=ReportStatus.DEGRADED, reason="Reddit: only 2 posts in 24 h"),
        book(0),
    )
    assert 0 < ok.confidence - degraded.confidence < CONFIG.missing_penalty
    assert any("sentiment degraded: Reddit: only 2 posts" in r for r in degraded.risk_factors)


# --- timeframe and size ---------------------------------------------------------------------

REPORT_SETS = st.tuples(
    st.one_of(st.floats(-100, 100), st.none()),
    st.one_of(st.floats(-100, 100), st.none()),
    st.one_of(st.floats(-100, 100), st.none()),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(REPORT_SETS)
def test_every_signal_is_within_the_contract_bounds(case) -> None:
    whale, mood, book_score, volatile = case
    reports = [
        whales(whale) if whale is not None else missing("whales", "x"),
        sentiment(mood) if mood is not None else missing("sentiment", "y"),
        book(book_score) if book_score is not None else missing("orderbook", "z"),
    ]
    signal = decide(*reports, candles=VOLATILE if volatile else CALM)
    assert 2 <= signal.timeframe_hours <= 48
    assert 0 <= signal.confidence <= 100
    assert -200 <= signal.divergence <= 200
    assert signal.risk_factors
    if signal.action is Action.HOLD:
        assert signal.position_size is PositionSize.CONSERVATIVE


@pytest.mark.parametrize(
    "reports",
    [
        (whales(80), sentiment(-60), book(40)),
        (whales(30), sentiment(-25), book(0)),
        (whales(0), sentiment(0), book(0)),
        (whales(-50), sentiment(40), missing("orderbook", "stale")),
    ],
    ids=["strong-buy", "buy", "hold", "sell-no-book"],
)
def test_high_volatility_shortens_the_timeframe(reports) -> None:
    calm = decide(*reports, candles=CALM)
    volatile = decide(*reports, candles=VOLATILE)
    assert volatile.timeframe_hours < calm.timeframe_hours
    assert any(r.startswith("High volatility") for r in volatile.risk_factors)
    assert not any(r.startswith("High volatility") for r in calm.risk_factors)


def test_position_size_follows_confidence_volatility_and_missing_data() -> None:
    strong = decide(whales(80), sentiment(-60), book(40))
    assert strong.confidence >= 75
    assert strong.position_size is PositionSize.AGGRESSIVE

    assert (
        decide(whales(80), sentiment(-60), book(40), candles=VOLATILE).position_size
        is PositionSize.MODERATE
    )
    strong_no_book = decide(whales(80), sentiment(-60), missing("orderbook", "stale"))
    assert strong_no_book.confidence >= 55
    assert strong_no_book.position_size is not PositionSize.AGGRESSIVE

    middling = decide(whales(20), sentiment(-12), book(0))
    assert 55 <= middling.confidence < 75
    assert middling.position_size is PositionSize.MODERATE

    weak = decide(
        whales(20),
        sentiment(-12),
        book(-40),
        rules=RulesCoordinator(CONFIG.model_copy(update={"missing_penalty": 30})),
    )
    assert weak.action is Action.BUY
    assert weak.confidence < 55
    assert weak.position_size is PositionSize.CONSERVATIVE


# --- thesis and risks -----------------------------------------------------------------------


def test_the_thesis_states_the_numbers() -> None:
    signal = decide(
        whales(45, net_usd=412_000_000, transfers=17), sentiment(-35, fear_greed=18), book(0)
    )
    assert f"{format_usd(412_000_000)} out of exchanges" in signal.thesis
    assert "17 transfers" in signal.thesis
    assert "Fear & Greed 18" in signal.thesis
    assert "fearful" in signal.thesis
    assert "divergence +80" in signal.thesis


def test_distribution_is_described_as_flow_into_exchanges() -> None:
    signal = decide(whales(-45, net_usd=-1_250_000_000), sentiment(35, fear_greed=81), book(0))
    assert f"{format_usd(1_250_000_000)} into exchanges" in signal.thesis
    assert "Fear & Greed 81" in signal.thesis


def test_risk_factors_name_each_missing_modality_and_its_reason() -> None:
    signal = decide(
        whales(40),
        missing("sentiment", "no Reddit posts about BTC in 24 h"),
        missing("orderbook", "no order book newer than 1 h (newest is 423 days old)"),
    )
    assert "sentiment unavailable: no Reddit posts about BTC in 24 h" in signal.risk_factors
    assert (
        "orderbook unavailable: no order book newer than 1 h (newest is 423 days old)"
        in signal.risk_factors
    )
    assert "Retail sentiment is unavailable." in signal.thesis


def test_the_signal_carries_the_inputs() -> None:
    reports = (whales(40), sentiment(-30), book(10))
    signal = decide(*reports)
    assert signal.symbol == "BTC/USDT"
    assert signal.coordinator == "rules"
    assert signal.clamps == ()
    assert signal.as_of == AS_OF
    assert signal.created_at == CREATED
    assert signal.price == float(CALM.close[-1])
    assert signal.reports == {r.agent: r for r in reports}
