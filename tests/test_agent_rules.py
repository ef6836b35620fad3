"""The rules each figure depends on — recency half-life, blend weight, minimum posts, windows,
the volume floor, wall and spoofing detection, the coordinator's thresholds — each checked so that
breaking it fails a test. Expected values are computed by hand or from the recording."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import pytest

from intel.agents.orderbook import OrderBookAgent
from intel.agents.sentiment import SentimentAgent
from intel.agents.whales import WhaleAgent
from intel.config import Config
from intel.models import (
    AgentReport,
    ExchangeFlow,
    FearGreedReading,
    MarketSnapshot,
    OrderBook,
    OrderBookHistory,
    SocialPost,
    Unavailable,
    WhaleFlows,
)
from intel.sentiment.lexicon import LexiconEngine
from intel.serialize import report_to_json
from intel.timeutil import parse_time
from tests.replay_truth import (
    desk_config,
    desk_signal,
    half_life_balance,
    posts_about,
    whale_totals,
)

T = parse_time("2025-10-06T16:00Z")
ENGINE = LexiconEngine()
NOT_NEEDED = Unavailable("not needed")
BULLISH, BEARISH = "great gains, bullish", "rug pull scam, rekt"


def snapshot(**modalities: Any) -> MarketSnapshot:
    base: dict[str, Any] = dict.fromkeys(
        ("candles", "orderbook", "whales", "posts", "fear_greed"), NOT_NEEDED
    )
    return MarketSnapshot(symbol="BTC/USDT", as_of=T, **{**base, **modalities})


def as_json(report: AgentReport) -> dict[str, Any]:
    return report_to_json(report)


def signal_json(symbol: str, at: datetime, **env: str) -> dict[str, Any]:
    return asyncio.run(desk_signal(symbol, at, desk_config(**env)))[0]


# --- sentiment: recency weighting, blend, minimum posts, window ------------------------------


def post(text: str, age_h: float) -> SocialPost:
    return SocialPost(f"p{age_h}", "bitcoin", T - timedelta(hours=age_h), text, "")


async def sentiment(config: Config, posts: Any, fear_greed: Any = NOT_NEEDED) -> dict[str, Any]:
    agent = SentimentAgent(config.agents.sentiment, ENGINE)
    return as_json(await agent.analyze(snapshot(posts=posts, fear_greed=fear_greed)))


def test_the_hand_texts_have_the_labels_the_expectations_assume() -> None:
    assert [s.label for s in ENGINE.score([BULLISH, BEARISH])] == ["positive", "negative"]


@pytest.mark.parametrize(
    ("fresh", "old", "half_life_h", "mood"),
    [
        (BULLISH, BEARISH, "6", 100 * (1 - 0.5) / 1.5),  # one half-life apart: weights 1, ½
        (BEARISH, BULLISH, "6", -100 * (1 - 0.5) / 1.5),
        (BULLISH, BEARISH, "3", 100 * (1 - 0.25) / 1.25),  # two half-lives: weights 1, ¼
    ],
    ids=["fresh-bull", "fresh-bear", "short-half-life"],
)
async def test_a_fresher_post_weighs_more_by_the_half_life(
    fresh: str, old: str, half_life_h: str, mood: float
) -> None:
    config = desk_config(BOT__AGENTS__SENTIMENT__HALF_LIFE_H=half_life_h)
    report = await sentiment(config, [post(old, 6.0), post(fresh, 0.0)])
    assert report["features"]["reddit_mood"] == round(mood, 1)
    assert report["features"]["post_count"] == 2


def test_reddit_mood_over_recorded_posts_uses_a_configured_half_life() -> None:
    config = desk_config(BOT__AGENTS__SENTIMENT__HALF_LIFE_H="1.5")
    posts = posts_about("BTC", T, config.agents.sentiment.window_h)
    labels = [s.label for s in ENGINE.score([p.text for p in posts])]
    ages_h = [(T - p.created).total_seconds() / 3600 for p in posts]
    expected = half_life_balance(labels, ages_h, 1.5)
    assert round(expected, 1) != round(half_life_balance(labels, ages_h, 6.0), 1)
    figures = signal_json("BTC/USDT", T, BOT__AGENTS__SENTIMENT__HALF_LIFE_H="1.5")["reports"]
    assert figures["sentiment"]["features"]["reddit_mood"] == round(expected, 1)


@pytest.mark.parametrize(("weight", "score"), [("0.25", 15.0), ("0.5", -3.3), ("0", 33.3)])
async def test_the_score_blends_reddit_and_fear_greed_by_the_configured_weight(
    weight: str, score: float
) -> None:
    """Reddit +33.3 (as above), Fear & Greed 30 → −40: 0.75·33.3 − 0.25·40 = 15."""
    config = desk_config(
        BOT__AGENTS__SENTIMENT__FEAR_GREED_WEIGHT=weight, BOT__AGENTS__SENTIMENT__MIN_POSTS="2"
    )
    reading = FearGreedReading(T - timedelta(hours=3), 30, "Fear")
    report = await sentiment(config, [post(BEARISH, 6.0), post(BULLISH, 0.0)], reading)
    assert report["features"]["fear_greed"] == 30
    assert report["features"]["fear_greed_mood"] == -40
    assert report["features"]["fear_greed_age_s"] == 3 * 3600
    assert report["score"] == score
    assert report["status"] == "ok"


async def test_fewer_posts_than_min_posts_leave_fear_greed_alone() -> None:
    reading = FearGreedReading(T, 30, "Fear")
    posts = [post(BEARISH, 6.0), post(BULLISH, 0.0)]
    counted = await sentiment(desk_config(BOT__AGENTS__SENTIMENT__MIN_POSTS="2"), posts, reading)
    thin = await sentiment(desk_config(BOT__AGENTS__SENTIMENT__MIN_POSTS="3"), posts, reading)
    assert counted["status"] == "ok"
    assert counted["score"] != -40
    assert thin["status"] == "degraded"
    assert thin["reason"] == "Reddit: only 2 posts in 24 h"
    assert thin["score"] == -40
    assert thin["features"]["reddit_mood"] == round(100 * 0.5 / 1.5, 1)  # still shown


async def test_without_fear_greed_reddit_alone_is_the_score() -> None:
    config = desk_config(BOT__AGENTS__SENTIMENT__MIN_POSTS="2")
    report = await sentiment(config, [post(BEARISH, 6.0), post(BULLISH, 0.0)])
    assert report["score"] == 33.3
    assert report["status"] == "degraded"


def test_the_sentiment_window_sets_which_recorded_posts_count() -> None:
    day, quarter = posts_about("BTC", T, 24), posts_about("BTC", T, 6)
    assert 0 < len(quarter) < len(day)
    report = signal_json("BTC/USDT", T, BOT__AGENTS__SENTIMENT__WINDOW_H="6")["reports"]
    figures = report["sentiment"]["features"]
    assert figures["post_count"] == len(quarter)
    if len(quarter) < desk_config().agents.sentiment.min_posts:
        assert f"only {len(quarter)} posts in 6 h" in report["sentiment"]["reason"]


# --- whales: window and volume floor ---------------------------------------------------------


def test_the_whale_window_sets_which_recorded_hours_count() -> None:
    half, day = whale_totals("BTC", T, 12), whale_totals("BTC", T, 24)
    assert half.inflow_usd != day.inflow_usd or half.outflow_usd != day.outflow_usd
    figures = signal_json("BTC/USDT", T, BOT__AGENTS__WHALES__WINDOW_H="12")["reports"]["whales"]
    assert figures["features"]["window_h"] == 12
    assert figures["features"]["inflow_usd"] == pytest.approx(half.inflow_usd)
    assert figures["features"]["outflow_usd"] == pytest.approx(half.outflow_usd)
    assert figures["features"]["transfer_count"] == half.transfers


def test_without_a_volume_floor_the_score_is_net_over_gross() -> None:
    truth = whale_totals("BTC", T, 24)
    report = signal_json("BTC/USDT", T, BOT__AGENTS__WHALES__VOLUME_FLOOR_USD="0")["reports"]
    expected = 100 * truth.net_usd / (truth.inflow_usd + truth.outflow_usd)
    assert report["whales"]["score"] == pytest.approx(expected, abs=1e-6)


def flows(*hours: tuple[float, float, int]) -> WhaleFlows:
    start = T - timedelta(hours=24)
    return WhaleFlows(
        "BTC",
        start,
        T,
        tuple(
            ExchangeFlow(start + timedelta(hours=i), inflow, outflow, None, None, count)
            for i, (inflow, outflow, count) in enumerate(hours)
        ),
        "test",
    )


@pytest.mark.parametrize(
    ("floor_usd", "hours", "score"),
    [
        ("50000000", [(0.0, 10e6, 1)], 100 * 10 / 60),  # one $10M withdrawal, damped
        ("0", [(0.0, 10e6, 1)], 100.0),
        ("50000000", [(30e6, 10e6, 2)], -100 * 20 / 90),
        ("50000000", [], 0.0),
    ],
    ids=["damped", "undamped", "distribution", "no-transfers"],
)
async def test_the_volume_floor_damps_small_flows(
    floor_usd: str, hours: list[tuple[float, float, int]], score: float
) -> None:
    config = desk_config(BOT__AGENTS__WHALES__VOLUME_FLOOR_USD=floor_usd).agents.whales
    report = as_json(await WhaleAgent(config).analyze(snapshot(whales=flows(*hours))))
    assert report["score"] == pytest.approx(score)
    if not hours:
        assert report["notes"][0] == "no whale transfers to or from exchanges in the last 24 h"


# --- order book: scoring band, walls, spoofing -----------------------------------------------


def test_the_score_follows_the_configured_scoring_band() -> None:
    env = {"BOT__AGENTS__ORDERBOOK__SCORE_BAND_PCT": "0.1"}
    report = signal_json("ETH/USDT", T, **env)["reports"]["orderbook"]
    by_default = signal_json("ETH/USDT", T)["reports"]["orderbook"]
    assert report["features"]["imbalance_0_1pct"] != report["features"]["imbalance_0_5pct"]
    assert report["score"] == pytest.approx(100 * report["features"]["imbalance_0_1pct"])
    assert by_default["score"] == pytest.approx(100 * by_default["features"]["imbalance_0_5pct"])


def ladder(best: float, step: float, sizes: dict[float, float]) -> tuple[tuple[float, float], ...]:
    """20 levels of 1 unit from `best` in `step`s, with some levels' quantity replaced."""
    levels = {round(best + step * i, 2): 1.0 for i in range(20)}
    levels.update(sizes)
    return tuple(sorted(levels.items(), reverse=step < 0))


def book(
    second: int, best_bid: float, bids: dict[float, float], asks: dict[float, float]
) -> OrderBook:
    return OrderBook(
        T - timedelta(seconds=60 - second),
        ladder(best_bid, -0.1, bids),
        ladder(round(best_bid + 0.2, 2), 0.1, asks),
    )


async def book_report(*books: OrderBook, **env: str) -> dict[str, Any]:
    config = desk_config(**env).agents.orderbook
    history = OrderBookHistory("binance", "BTC/USDT", books)
    return as_json(await OrderBookAgent(config).analyze(snapshot(orderbook=history)))


@pytest.mark.parametrize(("multiple", "support"), [("6", 99.0), ("4", 99.5)])
async def test_a_wall_is_a_level_the_configured_multiple_of_the_median(
    multiple: str, support: float
) -> None:
    """Median level ≈ $100: 99.5 holds 5 units (≈ 5×), 99.0 holds 7 (≈ 7×)."""
    report = await book_report(
        book(0, 99.9, {99.5: 5, 99.0: 7}, {}), BOT__AGENTS__ORDERBOOK__WALL_MULTIPLE=multiple
    )
    assert report["features"]["support_price"] == support
    assert "resistance_price" not in report["features"]


SIDES = {
    "bid": ({99.0: 20}, {}, 99.9, 99.0),  # wall 90 bps below; price falls to it when reached
    "ask": ({}, {100.8: 20}, 99.9, 100.6),  # wall 70 bps above; price rises to it when reached
}


@pytest.mark.parametrize("side", SIDES)
async def test_a_wall_that_appears_and_is_pulled_unreached_is_counted(side: str) -> None:
    bid_wall, ask_wall, best_bid, _ = SIDES[side]
    report = await book_report(
        book(0, best_bid, {}, {}), book(1, best_bid, bid_wall, ask_wall), book(2, best_bid, {}, {})
    )
    assert report["features"]["spoofing_events"] == 1
    assert report["features"]["snapshots"] == 3
    assert "spoofing: 1 wall(s) vanished unreached" in report["notes"]


@pytest.mark.parametrize("side", SIDES)
async def test_a_wall_price_reached_before_it_went_is_not_counted(side: str) -> None:
    bid_wall, ask_wall, best_bid, reached_bid = SIDES[side]
    report = await book_report(
        book(0, best_bid, {}, {}),
        book(1, best_bid, bid_wall, ask_wall),
        book(2, reached_bid, {}, {}),  # the touch is at the wall's price: it was traded into
    )
    assert report["features"]["spoofing_events"] == 0
    assert not [note for note in report["notes"] if note.startswith("spoofing")]


async def test_every_pulled_wall_counts_once() -> None:
    report = await book_report(
        book(0, 99.9, {}, {}),
        book(1, 99.9, {99.0: 20}, {100.8: 20}),
        book(2, 99.9, {99.0: 20}, {100.8: 20}),
        book(3, 99.9, {}, {}),
    )
    assert report["features"]["spoofing_events"] == 2
    assert "spoofing: 2 wall(s) vanished unreached" in report["notes"]


# --- the coordinator's thresholds ------------------------------------------------------------


def rule_action(whale: float, mood: float, whale_threshold: float, mood_threshold: float) -> str:
    """The documented rule: whales accumulate into fear → BUY; distribute into greed → SELL."""
    if whale >= whale_threshold and mood <= -mood_threshold:
        return "BUY"
    if whale <= -whale_threshold and mood >= mood_threshold:
        return "SELL"
    return "HOLD"


@cache
def base_scores() -> tuple[float, float]:
    """(whale score, retail mood) of BTC at T with the default configuration."""
    reports = signal_json("BTC/USDT", T)["reports"]
    return reports["whales"]["score"], reports["sentiment"]["score"]


@pytest.mark.parametrize("key", ["WHALE_THRESHOLD", "MOOD_THRESHOLD"])
@pytest.mark.parametrize("offset", [-0.5, 0.5], ids=["just-below", "just-above"])
def test_the_call_follows_the_configured_thresholds(key: str, offset: float) -> None:
    whale, mood = base_scores()
    value = str(round((abs(whale) if key == "WHALE_THRESHOLD" else abs(mood)) + offset, 2))
    env = {f"BOT__COORDINATOR__{key}": value}
    cfg = desk_config(**env).coordinator
    expected = rule_action(whale, mood, cfg.whale_threshold, cfg.mood_threshold)
    assert expected == ("SELL" if offset < 0 else "HOLD")
    assert signal_json("BTC/USDT", T, **env)["action"] == expected


def test_the_default_thresholds_call_this_moment_a_sell() -> None:
    cfg = desk_config().coordinator
    whale, mood = base_scores()
    assert rule_action(whale, mood, cfg.whale_threshold, cfg.mood_threshold) == "SELL"
    assert signal_json("BTC/USDT", T)["action"] == "SELL"


@pytest.mark.parametrize("bound", [-0.5, 0.5])
def test_high_divergence_follows_its_configured_bound(bound: float) -> None:
    whale, mood = base_scores()
    divergence = whale - mood
    value = str(round(abs(divergence) + bound, 2))
    data = signal_json("BTC/USDT", T, BOT__COORDINATOR__HIGH_DIVERGENCE=value)
    assert data["divergence"] == pytest.approx(divergence, abs=0.05)
    assert data["high_divergence"] is (abs(divergence) > float(value))
