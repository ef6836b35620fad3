"""The chart's annotations and the status output's times, checked against the recording read
independently. The chart is inspected through `build_figure`'s text artists and whale bars."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from bot.commands.base import BotStatus
from bot.commands.status import render_status, source_health, status_to_json
from bot.render.chart import build_figure
from intel.desk import build_desk
from intel.pipeline import SignalResult
from intel.timeutil import parse_time
from tests.replay_truth import (
    book_history,
    close_at,
    desk_config,
    desk_signal,
    fear_greed_at,
    last_book_time,
    posts_about,
    whale_totals,
)

NOW = parse_time("2025-10-06T16:00Z")
CONFIG = desk_config()
WINDOW_H = CONFIG.agents.whales.window_h


@cache
def signal_at(symbol: str) -> tuple[dict[str, Any], SignalResult]:
    return asyncio.run(desk_signal(symbol, NOW, CONFIG))


@cache
def figure_of(symbol: str) -> Figure:
    # The whale panel spans the agent's window here, so its sums are the agent's.
    _, result = signal_at(symbol)
    return build_figure(
        result.signal, result.snapshot, candles=CONFIG.chart.candles, flow_hours=WINDOW_H
    )


def panel(symbol: str, title_start: str) -> Axes:
    return panel_of(figure_of(symbol), title_start)


def panel_of(figure: Figure, title_start: str) -> Axes:
    return next(ax for ax in figure.axes if ax.get_title(loc="left").startswith(title_start))


def texts(ax: Axes) -> list[str]:
    return [t.get_text() for t in ax.texts]


def millions(amount: float) -> str:
    assert 1e6 <= abs(amount) < 1e9
    return f"${abs(amount) / 1e6:.1f}M"


def test_the_header_names_the_call_price_confidence_and_moment() -> None:
    data, _ = signal_at("BTC/USDT")
    close = close_at("BTCUSDT_1h.csv.gz", NOW)
    assert close >= 10_000  # printed without cents
    glyph = {"BUY": "▲", "SELL": "▼", "HOLD": "◆"}[data["action"]]
    header = [t.get_text() for t in figure_of("BTC/USDT").texts]
    # Calibrated (the shipped map shows no edge): a call reads as its record, a HOLD never as
    # a probability.
    tens = Decimal(data["confidence"]).scaleb(-1).quantize(Decimal(1), ROUND_HALF_UP)
    record = f"right about {tens} times in 10 historically"
    how_sure = (
        f"hold {data['confidence']}/100 (how far from a call, not a probability)"
        if data["action"] == "HOLD"
        else f"no demonstrated edge at this horizon ({record})"
    )
    assert data["calibrated"] is True
    assert f"{glyph} {data['action']} BTC/USDT at ${close:,.0f} · 2025-10-06 16:00 UTC" in header
    assert how_sure in header
    assert (
        f"2/3 modalities · {data['timeframe_hours']} h horizon · {data['position_size']} size · "
        f"divergence {data['divergence']:+.0f} · unavailable: order book"
    ) in header
    price_panel = panel("BTC/USDT", "last ")
    # The marker says what the number is too (the shipped map is flat: no demonstrated edge).
    meaning = "not a probability" if data["action"] == "HOLD" else "no demonstrated edge"
    assert f"{data['action']} {data['confidence']}/100\n{meaning}" in texts(price_panel)


@pytest.mark.parametrize("symbol", ["BTC/USDT", "ETH/USDT"])
def test_the_whale_panel_shows_the_recorded_net_flow_and_bars(symbol: str) -> None:
    truth = whale_totals(symbol[:3], NOW, WINDOW_H)
    score = signal_at(symbol)[0]["reports"]["whales"]["score"]
    ax = panel(symbol, "Whale flows")
    assert ax.get_title(loc="left") == f"Whale flows · score {score:+.0f}"
    direction = "off" if truth.net_usd >= 0 else "into"
    assert f"net {millions(truth.net_usd)} {direction} exchanges" in texts(ax)
    heights = [
        path.vertices[:, 1].max() if path.vertices[:, 1].max() > 0 else path.vertices[:, 1].min()
        for collection in ax.collections
        if isinstance(collection, PolyCollection)
        for path in collection.get_paths()
    ]
    assert sum(h for h in heights if h > 0) == pytest.approx(truth.outflow_usd / 1e6)
    assert -sum(h for h in heights if h < 0) == pytest.approx(truth.inflow_usd / 1e6)


def test_the_order_book_panel_marks_the_walls_and_its_age() -> None:
    features = signal_at("ETH/USDT")[0]["reports"]["orderbook"]
    book = book_history("kraken_ETHUSD_1usd.tsv.gz", NOW, CONFIG.agents.orderbook.spoof_window_s)[
        -1
    ]
    age_min = int((NOW - book.taken).total_seconds() // 60)
    ax = panel("ETH/USDT", "Order book")
    assert ax.get_title(loc="left") == (
        f"Order book · kraken ETH/USD · score {features['score']:+.0f}\ndegraded, {age_min} min old"
    )
    shown = texts(ax)
    assert f" support\n ${features['features']['support_price']:,.2f}" in shown
    assert f" resistance\n ${features['features']['resistance_price']:,.2f}" in shown


def test_the_sentiment_panel_shows_score_reddit_and_fear_greed() -> None:
    report = signal_at("BTC/USDT")[0]["reports"]["sentiment"]
    reading = fear_greed_at(NOW)
    count = len(posts_about("BTC", NOW, CONFIG.agents.sentiment.window_h))
    ax = panel("BTC/USDT", "Sentiment")
    shown = texts(ax)
    assert ax.get_title(loc="left") == f"Sentiment · score {report['score']:+.0f}"
    assert f" {report['score']:+.0f} " in shown
    assert f"Reddit {report['features']['reddit_mood']:+.0f} · {count} posts · lexicon" in shown
    assert f"Fear & Greed {reading.value}/100 · {reading.classification}" in shown


def test_the_unavailable_book_panel_says_why_with_its_age() -> None:
    age_s = (NOW - last_book_time("binance_BTCUSDT_top20_1s.tsv.gz")).total_seconds()
    days, hours = divmod(int(age_s) // 3600, 24)
    ax = figure_of("BTC/USDT").axes[1]
    (message,) = texts(ax)
    assert message.startswith("Order book unavailable")
    assert f"(newest is {days} d {hours} h old)" in " ".join(message.split())


# --- status ----------------------------------------------------------------------------------


@cache
def status() -> BotStatus:
    desk = build_desk(CONFIG, market_clock=lambda: NOW)
    states = asyncio.run(desk.probe_sources())
    return BotStatus(NOW, source_health(states), None, None, None, {}, ())


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def expected_sources() -> dict[str, tuple[str, str]]:
    """Per source: (state, detail), from the recording."""
    stale_s = (NOW - last_book_time("binance_BTCUSDT_top20_1s.tsv.gz")).total_seconds()
    days, hours = divmod(int(stale_s) // 3600, 24)
    kraken = book_history("kraken_ETHUSD_1usd.tsv.gz", NOW, 1)[-1].taken
    expected = {
        "fear_greed": ("ok", f"data as of {iso(fear_greed_at(NOW).published)}"),
        "orderbook BTC/USDT": (  # the recording has no BTC book then: expected, not failing
            "ok",
            f"not recorded: no order book newer than 1 h (newest is {days} d {hours} h old)",
        ),
        "orderbook ETH/USDT": ("ok", f"data as of {iso(kraken)}"),
    }
    for asset in ("BTC", "ETH"):
        newest_post = max(p.created for p in posts_about(asset, NOW, 24))
        expected[f"candles {asset}/USDT"] = ("ok", f"data as of {iso(NOW)}")
        expected[f"whales {asset}/USDT"] = ("ok", f"data as of {iso(NOW)}")
        expected[f"posts {asset}/USDT"] = ("ok", f"data as of {iso(newest_post)}")
    return expected


def test_status_json_gives_each_source_its_recorded_data_moment() -> None:
    sources = status_to_json(status())["sources"]
    assert isinstance(sources, dict)
    shown = {name: (s["state"], s["detail"]) for name, s in sources.items()}
    assert shown == expected_sources()


def test_status_text_prints_the_market_moment_and_each_source_time() -> None:
    text = render_status(status()).text
    assert text.startswith("Status · market moment 2025-10-06 16:00 UTC")
    for name, (state, detail) in expected_sources().items():
        if detail.startswith("not recorded"):
            assert f"○ {name}: {detail} (since " in text
        else:
            mark = {"ok": "✅", "failing": "❌"}[state]
            assert f"{mark} {name}: {state} — {detail} (since " in text


@pytest.mark.parametrize("symbol", ["BTC/USDT", "ETH/USDT"])
def test_the_whale_axis_at_the_configured_span_draws_every_recorded_flow_it_covers(
    symbol: str,
) -> None:
    """With the chart's own span (48 h, wider than the 24 h fetched), every hour on the axis is
    an hour whose recorded flows are drawn: the axis never shows unfetched hours as empty."""
    assert CONFIG.chart.flow_hours > WINDOW_H  # the case in question
    _, result = signal_at(symbol)
    figure = build_figure(result.signal, result.snapshot, flow_hours=CONFIG.chart.flow_hours)
    ax = panel_of(figure, "Whale flows")
    left, right = ax.get_xlim()
    assert right == 0
    truth = whale_totals(symbol[:3], NOW, round(-left))
    bars = [
        path.vertices[:, 1]
        for collection in ax.collections
        if isinstance(collection, PolyCollection)
        for path in collection.get_paths()
    ]
    assert sum(max(b.max(), 0.0) for b in bars) == pytest.approx(truth.outflow_usd / 1e6)
    assert -sum(min(b.min(), 0.0) for b in bars) == pytest.approx(truth.inflow_usd / 1e6)
    assert f"({-left:.0f} h fetched)" in ax.get_xlabel()


def test_a_shallow_book_axis_says_how_far_the_book_reaches() -> None:
    at = parse_time("2024-08-09T00:05Z")
    _, result = asyncio.run(desk_signal("BTC/USDT", at, CONFIG))
    book = book_history("binance_BTCUSDT_top20_1s.tsv.gz", at, 900)[-1]
    mid = (book.bids[0][0] + book.asks[0][0]) / 2
    reach_pct = min(mid - book.bids[-1][0], book.asks[-1][0] - mid) / mid * 100
    ax = panel_of(build_figure(result.signal, result.snapshot), "Order book")
    assert ax.get_xlabel() == f"price (book reaches ±{reach_pct:.2g}% of mid)"
    bands = ", ".join(f"{band:g}" for band in CONFIG.agents.orderbook.bands_pct)
    assert f"imbalance bands ±{bands}%:\nbeyond the recorded book" in texts(ax)
    labels = [text for text in texts(ax) if "support" in text or "resistance" in text]
    assert all(f"${book.bids[0][0]:,.0f}" not in label for label in labels)


def test_the_whale_axis_names_whole_hours_when_the_clock_is_off_the_hour() -> None:
    # The running bot's demo clock sits seconds past the hour (here 16:00:09).
    _, result = asyncio.run(desk_signal("BTC/USDT", parse_time("2025-10-06T16:00:09Z"), CONFIG))
    ax = panel_of(build_figure(result.signal, result.snapshot), "Whale flows")
    assert f"({WINDOW_H} h fetched)" in ax.get_xlabel()


@pytest.mark.parametrize("symbol", ["BTC/USDT", "ETH/USDT"])
def test_every_header_line_fits_inside_the_image(symbol: str) -> None:
    figure = figure_of(symbol)
    renderer = FigureCanvasAgg(figure).get_renderer()  # as the PNG is drawn
    width = figure.bbox.width
    for text in figure.texts:
        extent = text.get_window_extent(renderer)
        assert extent.x0 >= 0, text.get_text()
        assert extent.x1 <= width, text.get_text()
