"""Every figure a user reads — Signal JSON, the text, the chat fields — checked against the
recording read independently (tests/replay_truth.py), for whales, order book and sentiment."""

from __future__ import annotations

import asyncio
import re
import statistics
from datetime import datetime
from functools import cache
from typing import Any

import pytest

from bot.commands.signal import modality_fields
from bot.render.text import render_text
from intel.pipeline import SignalResult
from intel.sentiment.lexicon import LexiconEngine
from intel.timeutil import parse_time
from tests.replay_truth import (
    BookRow,
    Level,
    book_history,
    desk_config,
    desk_signal,
    fear_greed_at,
    half_life_balance,
    last_book_time,
    posts_about,
    whale_totals,
)

# Whales, Reddit and Fear & Greed are all current here; ETH's book is Kraken's (degraded).
NOW = parse_time("2025-10-06T16:00Z")
KRAKEN_FILE = "kraken_ETHUSD_1usd.tsv.gz"
BINANCE_NOW = parse_time("2024-08-09T00:05Z")
BINANCE_FILE = "binance_BTCUSDT_top20_1s.tsv.gz"
CONFIG = desk_config()


@cache
def signal_at(symbol: str, at: datetime) -> tuple[dict[str, Any], SignalResult]:
    return asyncio.run(desk_signal(symbol, at, CONFIG))


def features(symbol: str, at: datetime, agent: str) -> dict[str, float]:
    return signal_at(symbol, at)[0]["reports"][agent]["features"]  # type: ignore[no-any-return]


def text_line(symbol: str, at: datetime, title: str) -> str:
    """The modality's line: its title, padded, then the score (the thesis may start alike)."""
    lines = render_text(signal_at(symbol, at)[1].signal).splitlines()
    return next(line for line in lines if re.match(rf"{title}\s{{2,}}\S", line))


def chat_field(symbol: str, at: datetime, title: str) -> str:
    fields = modality_fields(signal_at(symbol, at)[1].signal)
    return next(field.value for field in fields if field.name == title)


def millions(amount: float, *, signed: bool = False) -> str:
    """$218.1M as the renderers print amounts between one million and one billion."""
    assert 1e6 <= abs(amount) < 1e9, "the expected-text helper covers millions only"
    sign = "-" if amount < 0 else "+" if signed else ""
    return f"{sign}${abs(amount) / 1e6:.1f}M"


# --- whales ----------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["BTC/USDT", "ETH/USDT"])
def test_whale_figures_are_the_recorded_window_sums(symbol: str) -> None:
    window_h = CONFIG.agents.whales.window_h
    truth = whale_totals(symbol[:3], NOW, window_h)
    assert truth.transfers > 0  # a telling window: transfers, and a net flow
    assert truth.inflow_usd != truth.outflow_usd
    figures = features(symbol, NOW, "whales")
    assert figures["inflow_usd"] == pytest.approx(truth.inflow_usd)
    assert figures["outflow_usd"] == pytest.approx(truth.outflow_usd)
    assert figures["net_flow_usd"] == pytest.approx(truth.net_usd)
    assert figures["inflow_coins"] == pytest.approx(truth.inflow_coins)
    assert figures["outflow_coins"] == pytest.approx(truth.outflow_coins)
    assert figures["transfer_count"] == truth.transfers
    assert figures["active_hours"] == truth.active_hours
    assert figures["window_h"] == window_h


@pytest.mark.parametrize("symbol", ["BTC/USDT", "ETH/USDT"])
def test_whale_score_is_net_over_gross_plus_the_volume_floor(symbol: str) -> None:
    truth = whale_totals(symbol[:3], NOW, CONFIG.agents.whales.window_h)
    floor = CONFIG.agents.whales.volume_floor_usd
    expected = 100 * truth.net_usd / (truth.inflow_usd + truth.outflow_usd + floor)
    report = signal_at(symbol, NOW)[0]["reports"]["whales"]
    assert report["score"] == pytest.approx(expected, abs=1e-6)
    assert report["status"] == "ok"
    assert report["as_of"] == "2025-10-06T16:00:00Z"  # the last completed hour
    assert report["age_s"] == 0


def test_whale_figures_in_the_text_the_chat_and_the_thesis() -> None:
    truth = whale_totals("BTC", NOW, CONFIG.agents.whales.window_h)
    score = signal_at("BTC/USDT", NOW)[0]["reports"]["whales"]["score"]
    figures = (
        f"net exchange flow {millions(truth.net_usd, signed=True)} · "
        f"in {millions(truth.inflow_usd)} / out {millions(truth.outflow_usd)} · "
        f"{truth.transfers} transfers"
    )
    assert (
        text_line("BTC/USDT", NOW, "Whales")
        .split(None, 1)[1]
        .startswith(f"{score:+.0f}  {figures} · data: via Whale Alert")
    )
    assert chat_field("BTC/USDT", NOW, "Whales").startswith(f"{score:+.0f} · {figures}")
    direction = "out of" if truth.net_usd >= 0 else "into"
    stance = "accumulation" if truth.net_usd >= 0 else "distribution"
    thesis = signal_at("BTC/USDT", NOW)[0]["thesis"]
    assert (
        f"Whales moved a net {millions(abs(truth.net_usd))} {direction} exchanges over 24 h "
        f"({truth.transfers} transfers, {stance} score {score:+.0f})." in thesis
    )


# --- order book ------------------------------------------------------------------------------


def quote_near(levels: list[Level], mid: float, pct: float) -> float:
    return sum(p * q for p, q in levels if abs(p - mid) <= mid * pct / 100)


def nearest_wall(
    levels: list[Level], mid: float, multiple: float, range_pct: float
) -> Level | None:
    """(price, quote size) of the wall nearest to mid: a level within range, beyond the touch
    (the first level), at least `multiple` times the median quote size of the side's levels
    within range."""
    near = [(p, p * q) for p, q in levels if abs(p - mid) <= mid * range_pct / 100]
    threshold = multiple * statistics.median(size for _, size in near)
    walls = [(p, s) for p, s in near[1:] if s >= threshold]
    return min(walls, key=lambda w: abs(w[0] - mid), default=None)


def band_key(band_pct: float) -> str:
    return {0.1: "imbalance_0_1pct", 0.5: "imbalance_0_5pct", 1.0: "imbalance_1pct"}.get(
        band_pct, "imbalance_2pct"
    )


BOOK_CASES = [("ETH/USDT", NOW, KRAKEN_FILE), ("BTC/USDT", BINANCE_NOW, BINANCE_FILE)]


@pytest.mark.parametrize(("symbol", "at", "file"), BOOK_CASES, ids=["kraken", "binance"])
def test_book_figures_are_those_of_the_newest_recorded_book(
    symbol: str, at: datetime, file: str
) -> None:
    cfg = CONFIG.agents.orderbook
    history = book_history(file, at, cfg.spoof_window_s)
    book: BookRow = history[-1]
    bids, asks = book.bids, book.asks
    mid = (bids[0][0] + asks[0][0]) / 2
    figures = features(symbol, at, "orderbook")

    assert cfg.bands_pct == (0.1, 0.5, 1.0, 2.0)  # the keys below name these bands
    for band in cfg.bands_pct:
        bid, ask = quote_near(bids, mid, band), quote_near(asks, mid, band)
        assert figures[band_key(band)] == pytest.approx((bid - ask) / (bid + ask)), band
    assert figures["spread_bps"] == pytest.approx((asks[0][0] - bids[0][0]) / mid * 10_000)
    assert figures["mid"] == pytest.approx(mid)
    assert figures["bid_depth_quote"] == pytest.approx(quote_near(bids, mid, cfg.wall_range_pct))
    assert figures["ask_depth_quote"] == pytest.approx(quote_near(asks, mid, cfg.wall_range_pct))
    for label, levels in (("support", bids), ("resistance", asks)):
        wall = nearest_wall(levels, mid, cfg.wall_multiple, cfg.wall_range_pct)
        found = (figures.get(f"{label}_price"), figures.get(f"{label}_size_quote"))
        assert found == (pytest.approx(wall) if wall else (None, None)), label
    reach_pct = min((mid - bids[-1][0]) / mid, (asks[-1][0] - mid) / mid) * 100
    assert figures["book_reach_pct"] == pytest.approx(reach_pct)
    assert figures["snapshots"] == len(history)
    report = signal_at(symbol, at)[0]["reports"]["orderbook"]
    band_score = figures[band_key(cfg.score_band_pct)]
    assert report["score"] == pytest.approx(100 * band_score)
    assert report["as_of"] == book.taken.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert report["age_s"] == pytest.approx((at - book.taken).total_seconds())


def test_book_figures_in_the_text_and_the_chat() -> None:
    history = book_history(KRAKEN_FILE, NOW, CONFIG.agents.orderbook.spoof_window_s)
    book = history[-1]
    mid = (book.bids[0][0] + book.asks[0][0]) / 2
    cfg = CONFIG.agents.orderbook
    bid, ask = quote_near(book.bids, mid, 0.5), quote_near(book.asks, mid, 0.5)
    support_wall = nearest_wall(book.bids, mid, cfg.wall_multiple, cfg.wall_range_pct)
    resistance_wall = nearest_wall(book.asks, mid, cfg.wall_multiple, cfg.wall_range_pct)
    assert support_wall
    assert resistance_wall
    support, resistance = support_wall[0], resistance_wall[0]
    spread_bps = (book.asks[0][0] - book.bids[0][0]) / mid * 10_000
    shown = (
        f"imbalance {(bid - ask) / (bid + ask):+.2f} (±0.5%) · spread {spread_bps:.1f} bps · "
        f"support ${support:,.2f} · resistance ${resistance:,.2f}"
    )
    age_min = int((NOW - book.taken).total_seconds() // 60)
    assert 0 < age_min < 60  # the degraded note below shows the age in minutes
    line = text_line("ETH/USDT", NOW, "Order book")
    assert f"{100 * (bid - ask) / (bid + ask):+.0f}  {shown}" in line
    assert line.endswith(
        "degraded: order book from Kraken ETH/USD (another venue and quote currency)"
        f" (age {age_min} min)"
    )
    assert shown in chat_field("ETH/USDT", NOW, "Order book")


def test_a_shallow_book_shows_no_touch_as_a_wall_and_says_how_far_it_reaches() -> None:
    """Binance's top-20 book spans hundredths of a percent: its best bid and ask are not walls,
    and bands wider than the book all hold the whole book."""
    cfg = CONFIG.agents.orderbook
    book = book_history(BINANCE_FILE, BINANCE_NOW, cfg.spoof_window_s)[-1]
    mid = (book.bids[0][0] + book.asks[0][0]) / 2
    bid_reach = (mid - book.bids[-1][0]) / mid * 100
    ask_reach = (book.asks[-1][0] - mid) / mid * 100
    assert max(bid_reach, ask_reach) < 0.1  # shallower than every configured band
    support = nearest_wall(book.bids, mid, cfg.wall_multiple, cfg.wall_range_pct)
    assert support is not None
    assert support[0] != book.bids[0][0]
    assert nearest_wall(book.asks, mid, cfg.wall_multiple, cfg.wall_range_pct) is None
    bid, ask = quote_near(book.bids, mid, 0.5), quote_near(book.asks, mid, 0.5)
    shown = (
        f"imbalance {(bid - ask) / (bid + ask):+.2f} (whole book, book reaches "
        f"±{min(bid_reach, ask_reach):.2g}%; ±0.5%: beyond the recorded book)"
    )
    for surface in (
        text_line("BTC/USDT", BINANCE_NOW, "Order book"),
        chat_field("BTC/USDT", BINANCE_NOW, "Order book"),
    ):
        assert shown in surface
        assert f"support ${support[0]:,.0f}" in surface
        assert f"${book.asks[0][0]:,.0f}" not in surface.replace(f"${support[0]:,.0f}", "")
        assert f"no resistance wall within {ask_reach:.2g} %" in surface


def test_a_stale_book_is_unavailable_with_its_age_everywhere() -> None:
    report = signal_at("BTC/USDT", NOW)[0]["reports"]["orderbook"]
    newest = last_book_time(BINANCE_FILE)
    days, hours = divmod(int((NOW - newest).total_seconds()) // 3600, 24)
    reason = f"no order book newer than 1 h (newest is {days} d {hours} h old)"
    assert report["status"] == "unavailable"
    assert report["score"] is None
    assert report["features"] == {}
    assert report["reason"] == reason
    assert report["as_of"] == newest.strftime("%Y-%m-%dT%H:%M:%SZ")
    # The reason already gives the age: it is printed once, not again as "(age …)".
    shown = f"unavailable: {reason}"
    assert text_line("BTC/USDT", NOW, "Order book").endswith(f"n/a  {shown}")
    assert chat_field("BTC/USDT", NOW, "Order book") == f"n/a · {shown}"


# --- sentiment -------------------------------------------------------------------------------


@cache
def expected_reddit(symbol: str, window_h: int, half_life_h: float) -> tuple[float, int, int, int]:
    """(recency-weighted mood, posts, positive, negative) from the posts file and the lexicon."""
    posts = posts_about(symbol[:3], NOW, window_h)
    labels = [s.label for s in LexiconEngine().score([p.text for p in posts])]
    ages_h = [(NOW - p.created).total_seconds() / 3600 for p in posts]
    mood = half_life_balance(labels, ages_h, half_life_h)
    return mood, len(posts), labels.count("positive"), labels.count("negative")


@pytest.mark.parametrize("symbol", ["BTC/USDT", "ETH/USDT"])
def test_reddit_mood_is_the_recency_weighted_balance_of_the_recorded_posts(symbol: str) -> None:
    cfg = CONFIG.agents.sentiment
    mood, count, positive, negative = expected_reddit(symbol, cfg.window_h, cfg.half_life_h)
    flat = 100 * (positive - negative) / count
    assert abs(round(mood, 1) - round(flat, 1)) >= 0.1  # recency weighting changes the figure
    figures = features(symbol, NOW, "sentiment")
    assert figures["reddit_mood"] == round(mood, 1)
    assert figures["post_count"] == count
    assert figures["positive_posts"] == positive
    assert figures["negative_posts"] == negative


@pytest.mark.parametrize("symbol", ["BTC/USDT", "ETH/USDT"])
def test_fear_greed_figures_and_the_blended_score(symbol: str) -> None:
    cfg = CONFIG.agents.sentiment
    reading = fear_greed_at(NOW)
    mood, *_ = expected_reddit(symbol, cfg.window_h, cfg.half_life_h)
    fg_mood = 2 * (reading.value - 50)  # 0..100 → −100..+100
    report = signal_at(symbol, NOW)[0]["reports"]["sentiment"]
    figures = report["features"]
    assert figures["fear_greed"] == reading.value
    assert figures["fear_greed_mood"] == fg_mood
    assert figures["fear_greed_age_s"] == (NOW - reading.published).total_seconds()
    weight = cfg.fear_greed_weight
    assert report["score"] == round(weight * fg_mood + (1 - weight) * mood, 1)
    assert report["status"] == "ok"
    assert report["engine"] == "lexicon"
    assert f"{reading.classification} (Fear & Greed by Alternative.me)" in report["notes"]


def test_sentiment_figures_in_the_text_and_the_chat() -> None:
    cfg = CONFIG.agents.sentiment
    mood, count, *_ = expected_reddit("BTC/USDT", cfg.window_h, cfg.half_life_h)
    reading = fear_greed_at(NOW)
    shown = f"Reddit mood {mood:+.0f} over {count} posts · Fear & Greed {reading.value}/100"
    assert shown in text_line("BTC/USDT", NOW, "Sentiment")
    assert shown in chat_field("BTC/USDT", NOW, "Sentiment")
    thesis = signal_at("BTC/USDT", NOW)[0]["thesis"]
    assert f"Fear & Greed {reading.value}; Reddit mood {mood:+.0f} over {count} posts" in thesis


# --- times -----------------------------------------------------------------------------------


def test_the_text_prints_the_market_moment_and_creation_time() -> None:
    data, result = signal_at("ETH/USDT", NOW)
    created = parse_time(data["created_at"])
    lines = render_text(result.signal).splitlines()
    assert data["as_of"] == "2025-10-06T16:00:00Z"
    assert f"Market moment 2025-10-06 16:00 UTC · created {created:%Y-%m-%d %H:%M:%S} UTC" in lines
