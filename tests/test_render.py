"""The pure renderers: chart PNG and console text, over hand-built signals and snapshots."""

from __future__ import annotations

import dataclasses
import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import matplotlib.image
import numpy as np
import pytest
from matplotlib.text import Text

from bot.render.chart import build_figure, render_chart
from bot.render.text import format_age, format_usd, render_text
from intel.features import (
    BandImbalance,
    BookWall,
    FearGreedFigures,
    OrderBookFeatures,
    RedditFigures,
    SentimentFeatures,
    WhaleFeatures,
)
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
    ReportStatus,
    Signal,
    Unavailable,
    WhaleFlows,
)

AS_OF = datetime(2025, 10, 6, 18, 0, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def make_candles(count: int = 120, end_price: float = 2480.0) -> CandleSeries:
    rng = np.random.default_rng(7)
    walk = np.cumsum(rng.normal(0.8, 9.0, count))
    close = end_price + walk - walk[-1]
    open_ = np.concatenate([[close[0] - 3.0], close[:-1]])
    spread = np.abs(rng.normal(0, 6.0, count)) + 2.0
    first_open_ms = int((AS_OF - timedelta(hours=count)).timestamp() * 1000)
    return CandleSeries(
        symbol="ETH/USDT",
        interval_s=3600,
        open_time_ms=first_open_ms + np.arange(count, dtype=np.int64) * 3_600_000,
        open=open_,
        high=np.maximum(open_, close) + spread,
        low=np.minimum(open_, close) - spread,
        close=close,
        volume=rng.uniform(800, 3000, count),
    )


def make_book(mid: float = 2480.0) -> OrderBookHistory:
    bids = tuple(
        (mid - 0.5 - step * 2.0, 5.0 + (40.0 if step == 12 else step % 7)) for step in range(40)
    )
    asks = tuple(
        (mid + 0.5 + step * 2.0, 4.0 + (30.0 if step == 18 else step % 5)) for step in range(40)
    )
    book = OrderBook(timestamp=AS_OF - timedelta(seconds=20), bids=bids, asks=asks)
    return OrderBookHistory(exchange="Kraken", venue_symbol="ETH/USD", books=(book,))


def make_whales() -> WhaleFlows:
    hours = tuple(
        ExchangeFlow(
            hour_start=AS_OF - timedelta(hours=h),
            inflow_usd=(h % 5) * 4.2e6,
            outflow_usd=(h % 3) * 7.9e6,
            inflow_coins=None,
            outflow_coins=None,
            transfer_count=h % 4,
        )
        for h in range(1, 60, 2)
    )
    return WhaleFlows(
        asset="ETH",
        window_start=AS_OF - timedelta(hours=60),
        as_of=AS_OF,
        hours=hours,
        credit="Whale Alert (replayed)",
    )


def make_snapshot() -> MarketSnapshot:
    return MarketSnapshot(
        symbol="ETH/USDT",
        as_of=AS_OF,
        candles=make_candles(),
        orderbook=make_book(),
        whales=make_whales(),
        posts=(),
        fear_greed=FearGreedReading(timestamp=AS_OF, value=71, classification="Greed"),
    )


def make_reports() -> dict[str, AgentReport]:
    return {
        "whales": AgentReport(
            agent="whales",
            status=ReportStatus.OK,
            score=64.0,
            as_of=AS_OF,
            age_s=0.0,
            features=WhaleFeatures(
                inflow_usd=40.1e6,
                outflow_usd=222.5e6,
                net_flow_usd=-182.4e6,
                transfer_count=37,
                window_h=24.0,
                active_hours=9,
            ),
            notes=("Whale Alert replay",),
        ),
        "orderbook": AgentReport(
            agent="orderbook",
            status=ReportStatus.OK,
            score=38.0,
            as_of=AS_OF,
            age_s=20.0,
            features=OrderBookFeatures(
                imbalances=(BandImbalance(0.5, 0.31), BandImbalance(1.0, 0.12)),
                spread_bps=1.2,
                mid_price=2480.0,
                bid_depth_quote=1.5e6,
                ask_depth_quote=1.1e6,
                support=BookWall(2455.5, 120_000.0),
                resistance=BookWall(2516.5, 95_000.0),
                spoofing_events=2,
                snapshot_count=12,
            ),
            notes=("Kraken ETH/USD book",),
        ),
        "sentiment": AgentReport(
            agent="sentiment",
            status=ReportStatus.DEGRADED,
            score=-12.0,
            reason="few posts",
            as_of=AS_OF - timedelta(hours=3, minutes=12),
            age_s=3 * 3600 + 12 * 60,
            features=SentimentFeatures(
                reddit=RedditFigures(-18.0, 14, 3, 6, -0.12),
                fear_greed=FearGreedFigures(value=71, mood=42.0, age_s=3600.0),
            ),
            engine="vader",
        ),
    }


def make_signal(
    reports: dict[str, AgentReport] | None = None, action: Action = Action.BUY
) -> Signal:
    return Signal(
        symbol="ETH/USDT",
        action=action,
        confidence=72,
        thesis=(
            "Whales moved $182.4M net off exchanges in 48 h while the book leans 0.31 to "
            "bids; Fear & Greed 71 (Greed) tempers the call."
        ),
        risk_factors=("Greed above 70 often precedes pullbacks", "Sentiment from few posts"),
        timeframe_hours=24,
        position_size=PositionSize.MODERATE,
        divergence=62.0,
        high_divergence=True,
        coordinator="rules",
        clamps=(),
        as_of=AS_OF,
        created_at=AS_OF + timedelta(seconds=4),
        reports=make_reports() if reports is None else reports,
        price=2480.0,
    )


def all_unavailable() -> tuple[Signal, MarketSnapshot]:
    reasons = {
        "whales": "whale feed down",
        "orderbook": "no order book newer than 1 h",
        "sentiment": "reddit unreachable",
    }
    reports = {
        key: AgentReport.unavailable(key, reason, AS_OF - timedelta(hours=2), AS_OF)
        for key, reason in reasons.items()
    }
    snapshot = MarketSnapshot(
        symbol="ETH/USDT",
        as_of=AS_OF,
        candles=Unavailable("exchange timed out"),
        orderbook=Unavailable(reasons["orderbook"]),
        whales=Unavailable(reasons["whales"]),
        posts=Unavailable(reasons["sentiment"]),
        fear_greed=Unavailable("alternative.me 503"),
    )
    return make_signal(reports, Action.HOLD), snapshot


def figure_strings(signal: Signal, snapshot: MarketSnapshot) -> str:
    figure = build_figure(signal, snapshot)
    return "\n".join(text.get_text() for text in figure.findobj(Text))


def decode_png(data: bytes) -> np.ndarray:
    assert data[:8] == PNG_SIGNATURE
    return matplotlib.image.imread(io.BytesIO(data))


@pytest.mark.parametrize("action", list(Action))
def test_chart_is_a_png_of_the_expected_size(action: Action) -> None:
    image = decode_png(render_chart(make_signal(action=action), make_snapshot()))
    assert image.shape[:2] == (900, 1200)


def test_chart_marks_the_signal_and_names_the_venue() -> None:
    strings = figure_strings(make_signal(), make_snapshot())
    assert "BUY 72/100" in strings
    assert "Kraken ETH/USD" in strings
    assert "Whale Alert" in strings
    assert "Fear & Greed: Alternative.me" in strings
    assert "71/100 · Greed" in strings
    assert "rules coordinator · not financial advice" in strings


def test_chart_with_every_modality_unavailable_still_renders() -> None:
    signal, snapshot = all_unavailable()
    image = decode_png(render_chart(signal, snapshot))
    assert image.shape[:2] == (900, 1200)
    strings = " ".join(figure_strings(signal, snapshot).split())
    for reason in (
        "exchange timed out",
        "no order book newer than 1 h",
        "whale feed down",
        "reddit unreachable",
        "alternative.me 503",
    ):
        assert reason in strings


def test_chart_shows_an_unavailable_report_even_when_data_exists() -> None:
    reports = make_reports()
    reports["orderbook"] = AgentReport.unavailable("orderbook", "book too thin to read")
    strings = figure_strings(make_signal(reports), make_snapshot())
    assert "book too thin to read" in strings
    assert "Kraken ETH/USD" not in strings


def test_chart_survives_empty_flows_and_features() -> None:
    reports = {
        key: replace(report, features=None, notes=()) for key, report in make_reports().items()
    }
    snapshot = replace(make_snapshot(), whales=replace(make_whales(), hours=()))
    decode_png(render_chart(make_signal(reports), snapshot, candles=10, flow_hours=6))


def test_chart_survives_an_empty_book_and_no_candles() -> None:
    empty_candles = make_candles().tail(0)
    snapshot = replace(
        make_snapshot(), candles=empty_candles, orderbook=replace(make_book(), books=())
    )
    strings = figure_strings(make_signal(), snapshot)
    assert "no candles" in strings
    assert "empty order book" in strings


TEXT_FRAGMENTS = (
    "Whales",
    "+64",
    "-$182.4M",
    "in $40.1M / out $222.5M",
    "37 transfers",
    "Order book",
    "imbalance +0.31 (±0.5%)",
    "spread 1.2 bps",
    "support $2,455.50",
    "resistance $2,516.50",
    "spoofing seen (2)",
    "Kraken ETH/USD book",
    "Sentiment",
    "Reddit mood -18 over 14 posts",
    "Fear & Greed 71/100",
    "engine vader",
    "degraded: few posts (age 3 h 12 min)",
    "Divergence +62 (high)",
    "Timeframe 24 h · position moderate",
    "  • Sentiment from few posts",
    "Market moment 2025-10-06 18:00 UTC",
    "created 2025-10-06 18:00:04 UTC",
    "Fear & Greed: Alternative.me",
    "whale flows: Whale Alert",
)


def test_text_has_header_modalities_and_footer() -> None:
    text = render_text(make_signal())
    header = text.splitlines()[0]
    for part in ("BUY", "ETH/USDT", "confidence 72/100", "rules coordinator"):
        assert part in header
    for fragment in TEXT_FRAGMENTS:
        assert fragment in text
    assert text.rstrip().endswith("Not financial advice.")


def test_text_shows_reason_of_unavailable_modality() -> None:
    signal, _snapshot = all_unavailable()
    text = render_text(signal)
    assert text.startswith("⚪ HOLD")
    for fragment in (
        "no order book newer than 1 h (age 2 h)",
        "whale feed down",
        "reddit unreachable",
    ):
        assert fragment in text


def test_text_survives_empty_features_and_missing_reports() -> None:
    bare = {"whales": AgentReport(agent="whales", status=ReportStatus.OK, score=5.0)}
    text = render_text(make_signal(bare))
    for fragment in ("Whales", "+5", "Order book", "unavailable: no report", "Divergence +62"):
        assert fragment in text


@pytest.mark.parametrize(
    ("amount", "expected"),
    [(12.34e6, "$12.3M"), (1.2e9, "$1.2B"), (950.0, "$950"), (-4.5e4, "-$45.0K")],
)
def test_format_usd(amount: float, expected: str) -> None:
    assert format_usd(amount) == expected


@pytest.mark.parametrize(
    ("age_s", "expected"),
    [(45, "45 s"), (720, "12 min"), (11_520, "3 h 12 min"), (7200, "2 h"), (190_800, "2 d 5 h")],
)
def test_format_age(age_s: float, expected: str) -> None:
    assert format_age(age_s) == expected


def test_text_calls_divergence_high_only_when_the_coordinator_did() -> None:
    high = render_text(make_signal())
    plain = render_text(dataclasses.replace(make_signal(), high_divergence=False))
    assert "Divergence +62 (high)" in high
    assert "Divergence +62\n" in plain


def test_text_shows_the_signal_notes_on_one_line_only_when_there_are_any() -> None:
    notes = ("Fell back to the rules: the llm coordinator failed (TimeoutError)", "BTC flows")
    text = render_text(dataclasses.replace(make_signal(), notes=notes))
    lines = text.splitlines()
    assert f"Note: {notes[0]} · {notes[1]}" in lines
    assert lines.index(f"Note: {notes[0]} · {notes[1]}") < lines.index(
        next(line for line in lines if line.startswith("Market moment"))
    )
    assert "Note:" not in render_text(make_signal())
