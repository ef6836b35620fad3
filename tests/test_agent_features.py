"""Each agent's typed figures on domain objects whose totals are known, and the read-only
collections inside the frozen domain types."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from intel.agents.orderbook import OrderBookAgent
from intel.agents.sentiment import SentimentAgent
from intel.agents.whales import WhaleAgent
from intel.config import AgentsConfig, Config
from intel.features import (
    BandImbalance,
    BookWall,
    OrderBookFeatures,
    SentimentFeatures,
    WhaleFeatures,
)
from intel.models import Action, FearGreedReading, OrderBookHistory, SocialPost
from intel.sentiment.lexicon import LexiconEngine
from intel.snapshot import SnapshotBuilder, Sources
from intel.sources.replay_candles import ReplayCandleSource
from intel.sources.replay_fear_greed import ReplayFearGreedSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.sources.replay_orderbook import ReplayOrderBookSource
from intel.sources.replay_reddit import ReplayPostSource
from intel.sources.replay_whales import ReplayWhaleSource
from intel.timeutil import parse_time
from tests.factories import DEFAULT_AS_OF, make_reports, make_signal, make_snapshot

AGENTS = AgentsConfig()
ENGINE = LexiconEngine()


async def test_whale_figures_sum_the_hours_of_the_window() -> None:
    # make_snapshot(BUY): four hours carrying a quarter each of 25 M in, 125 M out, 3+2+4+1
    # transfers, coin amounts at 62,150 USD; the window is the 24 h before the newest flows.
    report = await WhaleAgent(AGENTS.whales).analyze(make_snapshot(Action.BUY))
    assert report.features == WhaleFeatures(
        inflow_usd=25e6,
        outflow_usd=125e6,
        net_flow_usd=100e6,
        transfer_count=10,
        window_h=24.0,
        active_hours=4,
        inflow_coins=pytest.approx(25e6 / 62_150),
        outflow_coins=pytest.approx(125e6 / 62_150),
    )
    assert report.score == 100 * 100e6 / (150e6 + AGENTS.whales.volume_floor_usd)


async def test_order_book_figures_of_the_newest_book() -> None:
    # Bid 62,140 × (62,160 × 3 / 65536), ask 62,160 × (62,140 / 65536): 3:1 within 0.5 %;
    # depth to 2 % adds 61,700 + 61,500 + 61,250 × 20 + 61,000 (bids), and the asks' mirror.
    snapshot = make_snapshot(Action.BUY)
    report = await OrderBookAgent(AGENTS.orderbook).analyze(snapshot)
    assert isinstance(snapshot.orderbook, OrderBookHistory)
    deepest_bid, deepest_ask = (
        snapshot.orderbook.latest.bids[-1],
        snapshot.orderbook.latest.asks[-1],
    )
    inner = 62_140 * 62_160 / 65_536
    bid_depth = 3 * inner + 61_700 + 61_500 + 61_250 * 20 + 61_000
    ask_depth = inner + 62_600 + 62_800 + 63_050 * 20 + 63_300
    bid_1pct, ask_1pct = 3 * inner + 61_700, inner + 62_600  # within 621.5 of mid
    assert report.features == OrderBookFeatures(
        imbalances=(
            BandImbalance(0.1, 0.5),
            BandImbalance(0.5, 0.5),
            BandImbalance(1.0, pytest.approx((bid_1pct - ask_1pct) / (bid_1pct + ask_1pct))),
            BandImbalance(2.0, pytest.approx((bid_depth - ask_depth) / (bid_depth + ask_depth))),
        ),
        spread_bps=pytest.approx(20 / 62_150 * 10_000),
        mid_price=62_150.0,
        bid_depth_quote=pytest.approx(bid_depth),
        ask_depth_quote=pytest.approx(ask_depth),
        support=BookWall(61_250.0, 61_250.0 * 20),
        resistance=BookWall(63_050.0, 63_050.0 * 20),
        spoofing_events=0,
        snapshot_count=3,
        book_reach_pct=pytest.approx(
            min(62_150 - deepest_bid[0], deepest_ask[0] - 62_150) / 62_150 * 100
        ),
    )


@pytest.mark.parametrize("action", list(Action))
async def test_sentiment_figures_count_labels_and_average_the_engine_scores(
    action: Action,
) -> None:
    snapshot = make_snapshot(action)
    assert isinstance(snapshot.posts, tuple)
    assert isinstance(snapshot.fear_greed, FearGreedReading)
    scores = ENGINE.score([f"{post.title}. {post.body}".strip() for post in snapshot.posts])
    report = await SentimentAgent(AGENTS.sentiment, ENGINE).analyze(snapshot)
    figures = report.features_as(SentimentFeatures)
    assert figures is not None
    assert figures.reddit is not None
    assert figures.fear_greed is not None
    assert figures.reddit.post_count == len(snapshot.posts) == 6
    assert figures.reddit.positive_posts == sum(s.label == "positive" for s in scores)
    assert figures.reddit.negative_posts == sum(s.label == "negative" for s in scores)
    assert figures.reddit.mean_post_score == round(sum(s.score for s in scores) / 6, 4)
    assert figures.fear_greed.value == snapshot.fear_greed.value
    assert figures.fear_greed.age_s == 20 * 3600


def test_the_factory_scenarios_lean_as_named() -> None:
    buy = make_reports(Action.BUY)["sentiment"].features_as(SentimentFeatures)
    sell = make_reports(Action.SELL)["sentiment"].features_as(SentimentFeatures)
    assert buy is not None
    assert buy.reddit is not None
    assert sell is not None
    assert sell.reddit is not None
    assert (buy.reddit.negative_posts, sell.reddit.positive_posts) == (6, 6)


# --- read-only collections -------------------------------------------------------------------


def test_signal_reports_cannot_be_changed() -> None:
    signal = make_signal()
    with pytest.raises(TypeError):
        signal.reports["whales"] = signal.reports["sentiment"]  # type: ignore[index]


def test_a_signal_does_not_share_the_callers_dict() -> None:
    reports = make_reports()
    signal = make_signal()
    kept = dict(signal.reports)
    reports.clear()
    assert dict(signal.reports) == kept


async def test_candles_handed_to_agents_are_read_only_and_the_cache_stays_intact() -> None:
    source = ReplayCandleSource(DEFAULT_REPLAY_DIR)
    now = parse_time("2025-10-06T16:00Z")
    series = await source.candles("BTC/USDT", now, 24)
    before = float(series.close[-1])
    for array in (series.open_time_ms, series.open, series.high, series.low, series.close):
        with pytest.raises(ValueError, match="read-only"):
            array[-1] = 0
    with pytest.raises(ValueError, match="read-only"):
        series.volume[:] = np.zeros(len(series))
    again = await source.candles("BTC/USDT", now, 24)
    assert float(again.close[-1]) == before


async def test_the_snapshot_holds_posts_as_a_tuple() -> None:
    sources = Sources(
        candles=ReplayCandleSource(DEFAULT_REPLAY_DIR),
        orderbook=ReplayOrderBookSource(DEFAULT_REPLAY_DIR),
        whales=ReplayWhaleSource(DEFAULT_REPLAY_DIR),
        posts=ReplayPostSource(DEFAULT_REPLAY_DIR),
        fear_greed=ReplayFearGreedSource(DEFAULT_REPLAY_DIR),
    )
    snapshot = await SnapshotBuilder(sources, Config()).build("BTC/USDT", DEFAULT_AS_OF)
    assert isinstance(snapshot.posts, tuple)
    assert all(isinstance(post, SocialPost) for post in snapshot.posts)
    assert snapshot.as_of - timedelta(hours=24) <= min(p.created for p in snapshot.posts)


@pytest.mark.parametrize(("half_life_h", "mood"), [(6.0, 60.0), (12.0, 33.3), (1e9, 0.0)])
async def test_reddit_mood_weights_posts_by_recency(half_life_h: float, mood: float) -> None:
    # Three upbeat posts just now, three gloomy ones 12 h ago. Weights halve every half-life:
    # at 6 h the old posts weigh 1/4, so 100 × (3 − 0.75) / 3.75 = 60; at 12 h, 1/2: 33.3;
    # with no decay the six cancel out.
    upbeat, gloomy = make_snapshot(Action.SELL).posts, make_snapshot(Action.BUY).posts
    assert isinstance(upbeat, tuple)
    assert isinstance(gloomy, tuple)
    posts = tuple(replace(post, created=DEFAULT_AS_OF) for post in upbeat[:3]) + tuple(
        replace(post, created=DEFAULT_AS_OF - timedelta(hours=12)) for post in gloomy[:3]
    )
    config = AGENTS.sentiment.model_copy(update={"half_life_h": half_life_h})
    report = await SentimentAgent(config, ENGINE).analyze(
        replace(make_snapshot(Action.HOLD), posts=posts)
    )
    figures = report.features_as(SentimentFeatures)
    assert figures is not None
    assert figures.reddit is not None
    assert figures.reddit.mood == mood
