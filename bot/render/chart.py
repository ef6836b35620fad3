"""The signal chart as PNG bytes: candles with the call marked, and one small panel per modality.

Pure and thread-safe: matplotlib's object API on the Agg canvas, no pyplot state. mplfinance is
not used because it drives pyplot and would add pandas for one panel of candles.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping, Sequence
from datetime import timedelta

import matplotlib.dates as mdates
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator
from PIL import Image

from bot.render.text import (
    MODALITY_TITLES,
    beyond_book,
    book_reach_label,
    calls_right_in_10,
    confidence_label,
    coordinator_label,
    format_age,
    format_moment,
    format_price,
    format_score,
    format_usd,
    shown_walls,
)
from intel.calibration import NO_EDGE_NOTE
from intel.features import OrderBookFeatures, SentimentFeatures
from intel.models import (
    Action,
    AgentReport,
    CandleSeries,
    FearGreedReading,
    MarketSnapshot,
    OrderBook,
    OrderBookHistory,
    ReportStatus,
    Signal,
    Unavailable,
    WhaleFlows,
)

__all__ = ["build_figure", "render_chart"]

ACTION_COLOURS: Mapping[Action, str] = {
    Action.BUY: "#1a9850",
    Action.SELL: "#d73027",
    Action.HOLD: "#707070",
}
ACTION_MARKERS: Mapping[Action, str] = {Action.BUY: "^", Action.SELL: "v", Action.HOLD: "D"}
ACTION_GLYPHS: Mapping[Action, str] = {Action.BUY: "▲", Action.SELL: "▼", Action.HOLD: "◆"}
UP, DOWN, MUTED = "#26a69a", "#ef5350", "#666666"
BOOK_RANGE_PCT = 2.0
FEAR_GREED_BANDS = (
    (0, 25, "#d73027"),
    (25, 45, "#fc8d59"),
    (45, 55, "#cccccc"),
    (55, 75, "#91cf60"),
    (75, 100, "#1a9850"),
)
MS_PER_DAY = 86_400_000.0
GAUGE_LEFT, GAUGE_RIGHT = 0.06, 0.94

FloatArray = npt.NDArray[np.float64]


def render_chart(
    signal: Signal, snapshot: MarketSnapshot, *, candles: int = 72, flow_hours: int = 48
) -> bytes:
    """The chart of one signal as PNG bytes, about 1200×900 px."""
    figure = build_figure(signal, snapshot, candles=candles, flow_hours=flow_hours)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())
    # An opaque RGB PNG at a light compression level: half the encode time of matplotlib's RGBA.
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert("RGB").save(buffer, format="png", compress_level=3)
    return buffer.getvalue()


def build_figure(
    signal: Signal, snapshot: MarketSnapshot, *, candles: int = 72, flow_hours: int = 48
) -> Figure:
    """Lay out the chart; exposed so tests can inspect the artists before PNG encoding."""
    figure = Figure(figsize=(12, 9), dpi=100, facecolor="white")
    # Fixed margins instead of tight_layout: it costs about as much as drawing the whole chart.
    grid = figure.add_gridspec(
        2,
        3,
        height_ratios=(1.9, 1.0),
        left=0.07,
        right=0.98,
        top=0.87,
        bottom=0.09,
        hspace=0.3,
        wspace=0.28,
    )
    _draw_header(figure, signal)
    _draw_price_panel(figure.add_subplot(grid[0, :]), signal, snapshot.candles, candles)
    reports = signal.reports
    _draw_orderbook_panel(
        figure.add_subplot(grid[1, 0]), snapshot.orderbook, reports.get("orderbook")
    )
    _draw_whale_panel(figure.add_subplot(grid[1, 1]), snapshot, reports.get("whales"), flow_hours)
    _draw_sentiment_panel(
        figure.add_subplot(grid[1, 2]), snapshot.fear_greed, reports.get("sentiment")
    )
    figure.text(
        0.5,
        0.015,
        f"{coordinator_label(signal)} · not financial advice",
        ha="center",
        fontsize=9,
        color=MUTED,
    )
    return figure


def _draw_header(figure: Figure, signal: Signal) -> None:
    price = f" at {format_price(signal.price)}" if signal.price is not None else ""
    title = (
        f"{ACTION_GLYPHS[signal.action]} {signal.action.value} {signal.symbol}{price}"
        f" · {format_moment(signal.as_of)}"
    )
    colour = ACTION_COLOURS[signal.action]
    figure.text(0.07, 0.958, title, fontsize=17, fontweight="bold", color=colour)
    # Its own line: the calibrated wording is long ("no demonstrated edge … historically").
    figure.text(0.07, 0.928, confidence_label(signal), fontsize=12, color=colour)
    figure.text(0.07, 0.903, _freshness_line(signal), fontsize=10, color=MUTED)


def _freshness_line(signal: Signal) -> str:
    missing = [
        title.lower()
        for key, title in MODALITY_TITLES.items()
        if key not in signal.reports or signal.reports[key].status is ReportStatus.UNAVAILABLE
    ]
    degraded = [
        MODALITY_TITLES.get(key, key).lower()
        for key, report in signal.reports.items()
        if report.status is ReportStatus.DEGRADED
    ]
    parts = [
        f"{3 - len(missing)}/3 modalities",
        f"{signal.timeframe_hours} h horizon",
        f"{signal.position_size.value} size",
        f"divergence {signal.divergence:+.0f}",
    ]
    if missing:
        parts.append(f"unavailable: {', '.join(missing)}")
    if degraded:
        parts.append(f"degraded: {', '.join(degraded)}")
    return " · ".join(parts)


def _show_unavailable(ax: Axes, name: str, reason: str) -> None:
    """Keep the panel's place and say why it is empty, so a gap is never silent."""
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_facecolor("#f4f4f4")
    message = f"{name} unavailable\n\n" + textwrap.fill(reason, width=40)
    ax.text(
        0.5,
        0.5,
        message,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=10,
        color="#444444",
    )


def _unavailable_reason(data: object, report: AgentReport | None) -> str | None:
    if isinstance(data, Unavailable):
        return data.reason
    if report is None:
        return "no report from this agent"
    if report.status is ReportStatus.UNAVAILABLE:
        return report.reason or "no reason given"
    return None


def _score_title(name: str, report: AgentReport | None) -> str:
    if report is None or report.status is ReportStatus.UNAVAILABLE:
        return name
    title = f"{name} · score {format_score(report.score)}"
    if report.status is ReportStatus.DEGRADED:
        age = f", {format_age(report.age_s)} old" if report.age_s is not None else ""
        title += f"\ndegraded{age}"
    return title


def _title(ax: Axes, text: str, color: str = "black") -> None:
    # An explicit y skips matplotlib's title auto-placement, which measures every tick label.
    ax.set_title(text, loc="left", fontsize=10, color=color, y=1.0, pad=5)


def _boxes(
    left: FloatArray, right: FloatArray, bottom: FloatArray, top: FloatArray, colours: Sequence[str]
) -> PolyCollection:
    """Many rectangles as one artist: far cheaper to draw than one Rectangle each."""
    corners = ((left, bottom), (left, top), (right, top), (right, bottom))
    verts = np.stack([np.column_stack(corner) for corner in corners], axis=1)
    return PolyCollection(list(verts), facecolors=colours, edgecolors=colours, linewidths=0.5)


def _draw_price_panel(
    ax: Axes, signal: Signal, series: CandleSeries | Unavailable, count: int
) -> None:
    if isinstance(series, Unavailable) or len(series) == 0:
        reason = series.reason if isinstance(series, Unavailable) else "no candles"
        _show_unavailable(ax, f"{signal.symbol} price candles", reason)
        return
    recent = series.tail(count)
    interval_days = recent.interval_s * 1000 / MS_PER_DAY
    x = mdates.date2num(recent.open_time_ms.astype("datetime64[ms]")) + interval_days / 2
    _draw_candles(ax, recent, x, interval_days)
    # Just right of the newest candle, so the marker does not hide it.
    _mark_signal(ax, signal, float(x[-1]) + interval_days * 1.5, recent)
    ax.set_xlim(x[0] - interval_days, x[-1] + interval_days * max(3, len(x) // 12))
    # Few ticks on purpose: every tick label is a text layout, the slowest thing drawn here.
    locator = mdates.AutoDateLocator(minticks=4, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    quote = signal.symbol.partition("/")[2] or "quote"
    ax.set_ylabel(f"price ({quote})")
    _title(
        ax, f"last {len(recent)} × {_interval_label(recent.interval_s)} candles · UTC", color=MUTED
    )
    ax.grid(alpha=0.25)


def _interval_label(interval_s: int) -> str:
    if interval_s % 86_400 == 0:
        return f"{interval_s // 86_400} d"
    if interval_s % 3600 == 0:
        return f"{interval_s // 3600} h"
    return f"{interval_s // 60} min"


def _draw_candles(ax: Axes, series: CandleSeries, x: FloatArray, interval_days: float) -> None:
    colours: list[str] = np.where(series.close >= series.open, UP, DOWN).tolist()
    ax.vlines(x, series.low, series.high, colors=colours, linewidth=1.0)
    bottom = np.minimum(series.open, series.close)
    # A doji still gets a visible body.
    floor = (float(series.high.max()) - float(series.low.min())) * 0.003
    top = np.maximum(np.maximum(series.open, series.close), bottom + floor)
    half = interval_days * 0.35
    ax.add_collection(_boxes(x - half, x + half, bottom, top, colours))


def _mark_signal(ax: Axes, signal: Signal, x: float, series: CandleSeries) -> None:
    colour = ACTION_COLOURS[signal.action]
    y = signal.price if signal.price is not None else float(series.close[-1])
    low, high = float(series.low.min()), float(series.high.max())
    # Put the label where there is room: below the marker when it sits high in the panel.
    high_up = (y - low) > 0.6 * (high - low)
    ax.plot(
        [x],
        [y],
        marker=ACTION_MARKERS[signal.action],
        markersize=15,
        color=colour,
        markeredgecolor="black",
        linestyle="none",
        zorder=5,
    )
    offset_y = -50 if high_up else 50
    ax.annotate(
        _marker_label(signal),
        xy=(x, y),
        xytext=(-70, offset_y),
        textcoords="offset points",
        ha="right",
        va="center",
        fontsize=12,
        fontweight="bold",
        color=colour,
        zorder=6,
        bbox={"boxstyle": "round", "fc": "white", "ec": colour},
        arrowprops={"arrowstyle": "->", "color": colour},
    )


def _marker_label(signal: Signal) -> str:
    """The marker's "BUY 41/100" and, under calibration, a short line on what 41 means (the
    title carries the full wording: `confidence_label`)."""
    head = f"{signal.action.value} {signal.confidence}/100"
    if signal.raw_confidence is None:
        return head
    if signal.action is Action.HOLD:
        return f"{head}\nnot a probability"
    if NO_EDGE_NOTE in signal.notes:
        return f"{head}\nno demonstrated edge"
    return f"{head}\nright ~{calls_right_in_10(signal.confidence)} times in 10"


def _draw_orderbook_panel(
    ax: Axes, book: OrderBookHistory | Unavailable, report: AgentReport | None
) -> None:
    reason = _unavailable_reason(book, report)
    if isinstance(book, OrderBookHistory) and not (
        book.books and (book.latest.bids or book.latest.asks)
    ):
        reason = reason or "empty order book"
    if reason is not None or not isinstance(book, OrderBookHistory):
        _show_unavailable(ax, "Order book", reason or "no data")
        return
    latest = book.latest
    _draw_depth(ax, latest)
    features = report.features_as(OrderBookFeatures) if report is not None else None
    _title(ax, _score_title(f"Order book · {book.exchange} {book.venue_symbol}", report))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: format_usd(value)))
    ax.xaxis.set_major_locator(MaxNLocator(3))
    ax.yaxis.set_major_locator(MaxNLocator(3))
    ax.set_ylim(bottom=0)
    ax.set_xlabel(_book_axis_label(latest, features), fontsize=8)
    ax.tick_params(labelsize=8)
    if features is not None:
        _mark_walls(ax, features)
        _mark_unreached_bands(ax, features)


def _book_axis_label(book: OrderBook, features: OrderBookFeatures | None) -> str:
    """The price span actually drawn: the recorded book, when it is shallower than the range."""
    reach = features and book_reach_label(features)
    if reach and features and (features.book_reach_pct or 0.0) < BOOK_RANGE_PCT:
        return f"price ({reach} of mid)"
    return f"price (±{BOOK_RANGE_PCT:g}% of mid)"


def _mark_unreached_bands(ax: Axes, book: OrderBookFeatures) -> None:
    unreached = [f"{b.band_pct:g}" for b in book.imbalances if beyond_book(book, b.band_pct)]
    if unreached:
        ax.text(
            0.5,
            0.4,
            f"imbalance bands ±{', '.join(unreached)}%:\nbeyond the recorded book",
            transform=ax.transAxes,
            fontsize=7,
            color=MUTED,
            ha="center",
            va="top",
        )


def _side_depth(
    levels: tuple[tuple[float, float], ...], mid: float
) -> tuple[FloatArray, FloatArray]:
    """Prices within range of mid and the cumulative quote-currency depth up to each."""
    if not levels:
        return np.empty(0), np.empty(0)
    table = np.asarray(levels, dtype=np.float64)
    inside = np.abs(table[:, 0] / mid - 1.0) * 100 <= BOOK_RANGE_PCT
    table = table[inside] if inside.any() else table
    return table[:, 0], np.cumsum(table[:, 0] * table[:, 1])


def _draw_depth(ax: Axes, book: OrderBook) -> None:
    mid = book.mid if book.bids and book.asks else (book.bids or book.asks)[0][0]
    for levels, colour in ((book.bids, UP), (book.asks, DOWN)):
        prices, depth = _side_depth(levels, mid)
        if prices.size:
            ax.fill_between(prices, depth, step="post", color=colour, alpha=0.35)
            ax.step(prices, depth, where="post", color=colour, linewidth=1.2)
    ax.axvline(mid, color=MUTED, linewidth=0.8, linestyle=":")
    # Two labels rather than a legend: a Legend costs as much to draw as the whole panel.
    ax.text(
        mid, 0.55, "bids ◀ ", transform=ax.get_xaxis_transform(), fontsize=8, color=UP, ha="right"
    )
    ax.text(
        mid, 0.55, " ▶ asks", transform=ax.get_xaxis_transform(), fontsize=8, color=DOWN, ha="left"
    )


def _mark_walls(ax: Axes, book: OrderBookFeatures) -> None:
    walls = shown_walls(book)
    left, right = ax.get_xlim()
    # Labels grow away from their lines; when the lines are close (under a third of the panel)
    # the second label drops a row, so the two never run into each other.
    close = len(walls) == 2 and abs(walls[1][1].price - walls[0][1].price) < (right - left) / 3
    for row, (label, wall) in enumerate(walls):
        colour, align = (UP, "right") if label == "support" else (DOWN, "left")
        ax.axvline(wall.price, color=colour, linestyle="--", linewidth=1.2)
        ax.text(
            wall.price,
            0.97 - (0.17 * row if close else 0.0),
            f" {label}\n {format_price(wall.price)}",
            transform=ax.get_xaxis_transform(),
            fontsize=7,
            color=colour,
            va="top",
            ha=align,
        )


def _draw_whale_panel(
    ax: Axes, snapshot: MarketSnapshot, report: AgentReport | None, flow_hours: int
) -> None:
    flows = snapshot.whales
    reason = _unavailable_reason(flows, report)
    if reason is not None or not isinstance(flows, WhaleFlows):
        _show_unavailable(ax, "Whale flows", reason or "no data")
        return
    # The axis spans what was fetched (the agent's window) when that is shorter than asked for:
    # a wider axis would show the unfetched hours as hours without flows.
    fetched_h = (snapshot.as_of - flows.window_start).total_seconds() / 3600
    span_h = min(float(flow_hours), fetched_h)
    start = snapshot.as_of - timedelta(hours=span_h)
    hours = [hour for hour in flows.hours if start <= hour.hour_start < snapshot.as_of]
    x = np.array([(h.hour_start - snapshot.as_of).total_seconds() / 3600 for h in hours])
    inflow = np.array([h.inflow_usd for h in hours]) / 1e6
    outflow = np.array([h.outflow_usd for h in hours]) / 1e6
    if hours:
        zeros = np.zeros(len(hours))
        ax.add_collection(_boxes(x + 0.1, x + 0.9, zeros, outflow, [UP] * len(hours)))
        ax.add_collection(_boxes(x + 0.1, x + 0.9, -inflow, zeros, [DOWN] * len(hours)))
    peak = max(1.0, float(np.max(np.concatenate([inflow, outflow, [0.0]]))))
    ax.set_xlim(-span_h, 0)
    ax.xaxis.set_major_locator(MaxNLocator(3, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(3, symmetric=True))
    ax.set_ylim(-peak * 1.3, peak * 1.3)
    ax.axhline(0, color="black", linewidth=0.8)
    _label_whale_panel(ax, report, float(outflow.sum() - inflow.sum()), span_h)


def _label_whale_panel(
    ax: Axes, report: AgentReport | None, net_out_m: float, span_h: float
) -> None:
    ax.text(
        0.02, 0.96, "↑ out of exchanges", transform=ax.transAxes, fontsize=7, color=UP, va="top"
    )
    ax.text(
        0.02, 0.04, "↓ into exchanges", transform=ax.transAxes, fontsize=7, color=DOWN, va="bottom"
    )
    direction = "off" if net_out_m >= 0 else "into"
    ax.text(
        0.98,
        0.96,
        f"net {format_usd(abs(net_out_m) * 1e6)} {direction} exchanges",
        transform=ax.transAxes,
        fontsize=7,
        ha="right",
        va="top",
    )
    _title(ax, _score_title("Whale flows", report))
    ax.set_ylabel("$M per hour", fontsize=8)
    # Whole hours: the bot's clock sits seconds past the hour, and "24.0025 h" says nothing more.
    ax.set_xlabel(
        f"hours before the signal ({span_h:.0f} h fetched) · data: Whale Alert", fontsize=8
    )
    ax.tick_params(labelsize=8)


def _draw_sentiment_panel(
    ax: Axes, reading: FearGreedReading | Unavailable, report: AgentReport | None
) -> None:
    """Sentiment score and the Fear & Greed gauge in one tickless axes (ticks cost most)."""
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xticks([])
    ax.set_yticks([])
    _title(ax, _score_title("Sentiment", report))
    reason = _unavailable_reason(None, report)
    if reason is None and report is not None and report.score is None:
        reason = "no score"
    if reason is not None or report is None:
        _centred_note(ax, 0.74, "Reddit sentiment", reason or "no report")
    else:
        _draw_sentiment_score(ax, report)
    if isinstance(reading, Unavailable):
        _centred_note(ax, 0.27, "Fear & Greed", reading.reason)
    else:
        _draw_fear_greed(ax, reading)
    ax.text(
        0.98,
        0.02,
        "Fear & Greed: Alternative.me",
        fontsize=6.5,
        color=MUTED,
        ha="right",
        va="bottom",
    )


def _centred_note(ax: Axes, y: float, name: str, reason: str) -> None:
    ax.text(
        0.5,
        y,
        f"{name} unavailable\n" + textwrap.fill(reason, width=44),
        ha="center",
        va="center",
        fontsize=9,
        color="#444444",
    )


def _scale_labels(ax: Axes, y: float, left: str, right: str) -> None:
    ax.text(GAUGE_LEFT, y, left, ha="left", va="top", fontsize=7, color=MUTED)
    ax.text(GAUGE_RIGHT, y, right, ha="right", va="top", fontsize=7, color=MUTED)


def _draw_sentiment_score(ax: Axes, report: AgentReport) -> None:
    score = max(-100.0, min(100.0, float(report.score or 0.0)))
    half_width = (GAUGE_RIGHT - GAUGE_LEFT) / 2
    ax.barh([0.8], [GAUGE_RIGHT - GAUGE_LEFT], left=GAUGE_LEFT, height=0.11, color="#eeeeee")
    ax.barh(
        [0.8], [score / 100 * half_width], left=0.5, height=0.11, color=UP if score >= 0 else DOWN
    )
    ax.plot([0.5, 0.5], [0.73, 0.87], color="black", linewidth=0.8)
    ax.text(
        0.5 + score / 100 * half_width,
        0.8,
        f" {score:+.0f} ",
        va="center",
        fontsize=9,
        fontweight="bold",
        ha="left" if score >= 0 else "right",
    )
    _scale_labels(ax, 0.72, "−100 bearish", "bullish +100")
    ax.text(0.5, 0.6, _sentiment_caption(report), ha="center", va="center", fontsize=7.5)


def _sentiment_caption(report: AgentReport) -> str:
    mood = report.features_as(SentimentFeatures)
    parts: list[str] = []
    if mood and mood.reddit:
        parts.extend((f"Reddit {mood.reddit.mood:+.0f}", f"{mood.reddit.post_count} posts"))
    if report.engine:
        parts.append(report.engine)
    return " · ".join(parts)


def _draw_fear_greed(ax: Axes, reading: FearGreedReading) -> None:
    span = GAUGE_RIGHT - GAUGE_LEFT
    lefts = [GAUGE_LEFT + span * low / 100 for low, _high, _colour in FEAR_GREED_BANDS]
    widths = [span * (high - low) / 100 for low, high, _colour in FEAR_GREED_BANDS]
    colours = [colour for _low, _high, colour in FEAR_GREED_BANDS]
    ax.barh([0.25] * len(lefts), widths, left=lefts, height=0.11, color=colours, alpha=0.85)
    ax.plot(
        [GAUGE_LEFT + span * reading.value / 100],
        [0.35],
        marker="v",
        markersize=10,
        color="black",
        linestyle="none",
    )
    ax.text(
        GAUGE_LEFT,
        0.47,
        f"Fear & Greed {reading.value}/100 · {reading.classification}",
        fontsize=9,
        fontweight="bold",
        va="center",
    )
    _scale_labels(ax, 0.18, "0 fear", "greed 100")
