"""The scorecard as text and as a reliability chart (PNG): pure functions, no I/O.

The chart uses matplotlib's object API on the Agg canvas, like the signal chart; no pyplot state.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bot.render.text import format_moment
from intel.outcome import DEFAULT_ROUND_TRIP_FEE_BPS
from intel.scorecard import MIN_GROUP, Group, HitRate, ReliabilityBin, Scorecard

__all__ = ["Performance", "render_performance", "render_reliability_chart"]


@dataclass(frozen=True, slots=True)
class Performance:
    """The three scorecards `performance` shows: what the bot sent (the public figure), every
    cycle signal, and on-demand signals apart."""

    symbols: tuple[str, ...]
    market_now: datetime
    sent: Scorecard
    cycle: Scorecard
    on_demand: Scorecard
    no_price: tuple[str, ...] = ()  # symbols whose candles could not be read
    round_trip_fee_bps: float = DEFAULT_ROUND_TRIP_FEE_BPS


def _pct(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:+.2f} %" if signed else f"{value * 100:.0f} %"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _hits(hits: HitRate) -> str:
    low, high = hits.interval or (0.0, 0.0)
    return (
        f"right {hits.right} of {hits.count} ({_pct(hits.rate)}, "
        f"95 % interval {low * 100:.0f}–{high * 100:.0f} %)"
    )


def _group(group: Group) -> str:
    if group.too_small:
        return f"{group.label}: too few to read ({group.hits.count})"
    return (
        f"{group.label}: {_pct(group.hits.rate)} of {group.hits.count} "
        f"(avg {_pct(group.mean_return, signed=True)})"
    )


def _card_lines(title: str, card: Scorecard, *, details: bool) -> list[str]:
    lines = [f"{title}: {_count(card.signals, 'signal')}, {_count(card.hits.count, 'call')} scored"]
    if card.hits.count:
        lines.append(f"  {_hits(card.hits)}")
        lines.append(
            f"  chance at the same horizons: {_pct(card.base_rate)} · "
            f"avg {_pct(card.mean_return, signed=True)} per call after fees"
        )
        if card.hits.count < MIN_GROUP:
            lines.append(f"  too few calls to read yet (fewer than {MIN_GROUP})")
        if card.overlapping:
            lines.append(
                f"  {card.overlapping} calls overlapped an earlier one; without them: "
                f"{_hits(card.non_overlapping)}"
            )
    else:
        lines.append("  no call scored yet")
    lines.append(f"  HOLDs {card.holds} (not bets, not scored) · pending {card.pending}")
    if details and card.hits.count:
        lines.append("  by action: " + " · ".join(_group(g) for g in card.by_action))
        lines.append("  by symbol: " + " · ".join(_group(g) for g in card.by_symbol))
        lines.append("  by confidence: " + " · ".join(_group(g) for g in card.by_bucket))
        lines.extend(_reliability_lines(card))
    return lines


def _reliability_lines(card: Scorecard) -> list[str]:
    rows = " · ".join(
        f"{b.low}–{b.high}: {b.hit_rate * 100:.0f} % ({b.count})" for b in card.reliability
    )
    brier = "n/a" if card.brier is None else f"{card.brier:.3f}"
    return [
        f"  reliability (stated confidence → share right): {rows}",
        f"  Brier score {brier} (0 is perfect; always saying 50 % scores 0.250)",
    ]


def render_performance(performance: Performance) -> str:
    """The scorecard reply: sent signals first, then every cycle signal, then on-demand ones."""
    lines = [
        f"Performance · {', '.join(performance.symbols)} · "
        f"market moment {format_moment(performance.market_now)}",
        *_card_lines("Signals the bot sent (alerts)", performance.sent, details=True),
        *_card_lines("Every scheduled signal", performance.cycle, details=True),
        *_card_lines("Asked for in chat (shown apart)", performance.on_demand, details=False),
    ]
    if performance.no_price:
        lines.append(f"No price history for {', '.join(performance.no_price)}: not scored.")
    lines.append(
        "A BUY is right when the price at the end of its timeframe is above the next hour's "
        f"open by more than {performance.round_trip_fee_bps / 100:.2f} % round-trip fees, a SELL "
        "when below; calls whose timeframe has not ended are pending. Not financial advice."
    )
    return "\n".join(lines)


def render_reliability_chart(
    curves: Sequence[tuple[str, Sequence[ReliabilityBin]]], title: str, base_rate: float | None
) -> bytes:
    """A reliability diagram: stated confidence (x) against the share right (y), one line per
    named curve (raw and calibrated side by side), marker area by count, the diagonal and the
    base rate for reference."""
    figure = Figure(figsize=(6.4, 5.0), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    ax.plot([0, 100], [0, 100], linestyle="--", color="#999999", label="perfectly calibrated")
    if base_rate is not None:
        ax.axhline(base_rate * 100, color="#b07d00", linestyle=":", label="chance (base rate)")
    for (name, bins), (colour, marker) in zip(
        curves, (("#1f77b4", "o"), ("#d62728", "s")), strict=False
    ):
        x = [b.mean_confidence * 100 for b in bins]
        y = [b.hit_rate * 100 for b in bins]
        ax.plot(x, y, color=colour, marker=marker, label=name)
        ax.scatter(x, y, s=[20 + 2 * b.count**0.5 * 10 for b in bins], color=colour, alpha=0.3)
        for b, xi, yi in zip(bins, x, y, strict=True):
            ax.annotate(str(b.count), (xi, yi), textcoords="offset points", xytext=(4, 4))
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.set_xlabel("stated confidence (mean in each 10-point bin)")
    ax.set_ylabel("share of calls right, %")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
