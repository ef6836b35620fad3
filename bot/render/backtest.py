"""A backtest for people (text beside buy-and-hold), for scripts (the Backtest JSON contract) and
as a chart (equity curve and drawdown, beside buy-and-hold)."""

from __future__ import annotations

import io
from typing import Any

import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from intel.backtest.metrics import METRIC_NAMES, Metrics, drawdown
from intel.backtest.runner import BacktestReport
from intel.timeutil import from_ms, iso

__all__ = [
    "metrics_line",
    "render_backtest_chart",
    "render_backtest_text",
    "report_to_json",
]

STRATEGY_COLOR, BASELINE_COLOR, MUTED = "#1f77b4", "#999999", "#666666"
# (label, metric, how it is shown)
ROWS = (
    ("total return", "total_return", "pct"),
    ("CAGR", "cagr", "pct"),
    ("max drawdown", "max_drawdown", "pct"),
    ("Sharpe", "sharpe", "ratio"),
    ("Sortino", "sortino", "ratio"),
    ("Calmar", "calmar", "ratio"),
    ("trades", "trades", "count"),
    ("win rate", "win_rate", "share"),
    ("profit factor", "profit_factor", "ratio"),
    ("average trade", "average_trade", "pct"),
    ("exposure", "exposure", "share"),
)


def report_to_json(report: BacktestReport) -> dict[str, Any]:
    """The Backtest JSON contract (`metrics`, `trades`, `equity` bar by bar), plus context."""
    result = report.result
    close_ms = result.close_time_ms
    return {
        "symbol": report.symbol,
        "strategy": report.strategy,
        "from": iso(report.start),
        "to": iso(report.end),
        "bar_interval_s": result.bars.interval_s,
        "metrics": {name: report.metrics[name] for name in METRIC_NAMES},
        "trades": [
            {
                "entry_time": iso(from_ms(trade.entry_time_ms)),
                "entry_price": trade.entry_price,
                "exit_time": iso(from_ms(trade.exit_time_ms)),
                "exit_price": trade.exit_price,
                "side": trade.side,
                "return": trade.return_,
                "size": trade.size,
                "pnl": trade.pnl,
            }
            for trade in result.trades
        ],
        "equity": [
            {"time": iso(from_ms(int(ms))), "equity": float(value)}
            for ms, value in zip(close_ms, result.equity, strict=True)
        ],
        "buy_and_hold": {"metrics": {n: report.baseline_metrics[n] for n in METRIC_NAMES}},
        "signals": report.signals,
        "calls": report.calls,
        "notes": list(report.notes),
    }


def format_metric(value: float | int | None, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "count":
        return f"{int(value):,}"
    if kind == "pct":
        return f"{value * 100:+.1f} %"
    if kind == "share":
        return f"{value * 100:.1f} %"
    return f"{value:.2f}"


def render_backtest_text(report: BacktestReport, *, fee_bps: float, slippage_bps: float) -> str:
    """The metrics table, strategy beside buy-and-hold, with the window, costs and notes."""
    bars = len(report.result.bars)
    hours = report.result.bars.interval_s / 3600
    lines = [
        f"Backtest {report.symbol} · {report.strategy} · {iso(report.start)} → {iso(report.end)}"
        f" ({bars:,} bars of {hours:g} h)",
        f"fees {fee_bps:g} bps and slippage {slippage_bps:g} bps per fill; "
        "entry and exit at the next bar's open",
        "",
        f"{'':<15}{report.strategy:>22}{'buy-and-hold':>16}",
    ]
    lines += [
        f"{label:<15}{format_metric(report.metrics[key], kind):>22}"
        f"{format_metric(report.baseline_metrics[key], kind):>16}"
        for label, key, kind in ROWS
    ]
    if report.signals:
        lines.append(f"\nsignals read: {report.signals:,} ({report.calls:,} BUY or SELL)")
    lines += [f"note: {note}" for note in report.notes]
    lines.append("Past results say little about future ones. Not financial advice.")
    return "\n".join(lines)


def render_backtest_chart(report: BacktestReport) -> bytes:
    """Equity (top) and drawdown (bottom) of the strategy beside buy-and-hold, PNG bytes."""
    figure = Figure(figsize=(11, 6.5), dpi=100, facecolor="white")
    grid = figure.add_gridspec(2, 1, height_ratios=(2.2, 1.0), left=0.09, right=0.97, top=0.9)
    equity_axes, drawdown_axes = figure.add_subplot(grid[0]), figure.add_subplot(grid[1])
    for result, label, color in (
        (report.baseline, "buy-and-hold", BASELINE_COLOR),
        (report.result, report.strategy, STRATEGY_COLOR),
    ):
        times = mdates.date2num([from_ms(int(ms)) for ms in result.close_time_ms])
        equity_axes.plot(times, result.equity, color=color, linewidth=1.2, label=label)
        drawdown_axes.plot(
            times, drawdown(result.equity, result.initial_equity) * 100, color=color, linewidth=1.0
        )
    equity_axes.set_ylabel("equity (quote currency)")
    equity_axes.legend(loc="upper left", frameon=False)
    drawdown_axes.set_ylabel("drawdown (%)")
    for axes in (equity_axes, drawdown_axes):
        axes.xaxis_date()
        axes.grid(alpha=0.3)
    total = format_metric(report.metrics["total_return"], "pct")
    baseline = format_metric(report.baseline_metrics["total_return"], "pct")
    figure.suptitle(
        f"{report.symbol} · {report.strategy} {total} vs buy-and-hold {baseline} "
        f"({report.start:%Y-%m-%d} → {report.end:%Y-%m-%d})",
        fontsize=12,
    )
    figure.text(
        0.5,
        0.01,
        "backtest on recorded data · not financial advice",
        ha="center",
        fontsize=8,
        color=MUTED,
    )
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB").save(buffer, format="png")
    return buffer.getvalue()


def metrics_line(metrics: Metrics) -> str:
    """One line: total return, max drawdown and Sharpe (chat summaries)."""
    return (
        f"{format_metric(metrics['total_return'], 'pct')} total, "
        f"{format_metric(metrics['max_drawdown'], 'pct')} max drawdown, "
        f"Sharpe {format_metric(metrics['sharpe'], 'ratio')}"
    )
