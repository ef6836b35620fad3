"""Plain-text rendering of a Signal for the console and CLI: pure, no I/O.

The small formatters here (money, prices, ages, scores) are shared with the other renderers so
that every surface shows the same figures the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from intel.calibration import NO_EDGE_NOTE
from intel.features import BookWall, Features, OrderBookFeatures, SentimentFeatures, WhaleFeatures
from intel.models import Action, AgentReport, ReportStatus, Signal
from intel.textfmt import format_age, format_usd

__all__ = [
    "ACTION_EMOJI",
    "DEFAULT_CREDITS",
    "MODALITY_TITLES",
    "beyond_book",
    "book_reach_label",
    "call_reading",
    "calls_right_in_10",
    "confidence_label",
    "confidence_phrase",
    "confidence_reading",
    "coordinator_label",
    "format_age",
    "format_moment",
    "format_price",
    "format_score",
    "format_usd",
    "is_touch",
    "modality_figures",
    "modality_status",
    "modality_title",
    "ordered_reports",
    "render_text",
    "shown_walls",
]

ACTION_EMOJI: Mapping[Action, str] = {Action.BUY: "🟢", Action.SELL: "🔴", Action.HOLD: "⚪"}
MODALITY_TITLES: Mapping[str, str] = {
    "whales": "Whales",
    "orderbook": "Order book",
    "sentiment": "Sentiment",
}
# The replay sources' credits; a desk's own come from its sources (`SignalDesk.credits`).
DEFAULT_CREDITS = ("Fear & Greed: Alternative.me", "whale flows: Whale Alert")
# The band whose imbalance is shown: the first of these the report has.
_SHOWN_IMBALANCE_BANDS_PCT = (0.5, 0.1, 1.0, 2.0)


def format_price(price: float) -> str:
    if price >= 10_000:
        return f"${price:,.0f}"
    if price >= 1:
        return f"${price:,.2f}"
    return f"${price:.4g}"


def format_score(score: float | None) -> str:
    return "n/a" if score is None else f"{score:+.0f}"


def format_moment(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def calls_right_in_10(confidence: int) -> int:
    """A calibrated confidence (0-100, the share of such calls that came out right) as calls
    right out of 10, rounded half up (45 -> 5; Python's round() would give 4)."""
    return (confidence + 5) // 10


def confidence_reading(signal: Signal) -> str | None:
    """What a calibrated confidence means, to show beside its N/100: a BUY/SELL as the share of
    such calls that came out right (saying "no demonstrated edge" when the map shows none), a
    HOLD as how far the market is from a call, never as a probability. None without calibration
    (the number is then the coordinator's own 0-100 score)."""
    return call_reading(
        signal.action,
        signal.confidence,
        calibrated=signal.raw_confidence is not None,
        no_edge=NO_EDGE_NOTE in signal.notes,
    )


def call_reading(action: Action, confidence: int, *, calibrated: bool, no_edge: bool) -> str | None:
    """`confidence_reading` from a call's parts, for records that keep no whole signal (a whale
    alert's current call): `no_edge` when the signal carried the calibration's no-edge note."""
    if not calibrated:
        return None
    if action is Action.HOLD:
        return "how far from a call, not a probability"
    record = f"right about {calls_right_in_10(confidence)} times in 10 historically"
    if no_edge:
        return f"no demonstrated edge at this horizon ({record})"
    return record


def confidence_phrase(signal: Signal) -> str:
    """'confidence N/100' followed by what N means under calibration, for sentences such as
    alert intros: "confidence 41/100, no demonstrated edge at this horizon (right about 4 times
    in 10 historically)"."""
    reading = confidence_reading(signal)
    head = f"confidence {signal.confidence}/100"
    if reading is None:
        return head
    return f"{head} ({reading})" if signal.action is Action.HOLD else f"{head}, {reading}"


def confidence_label(signal: Signal) -> str:
    """How sure, as users should read it. A calibrated BUY/SELL as the share of such calls that
    came out right ("no demonstrated edge" when the map shows none); a HOLD made under
    calibration as how far the market is from a call, never as a probability; a signal made
    without calibration as N/100, as before."""
    reading = confidence_reading(signal)
    if reading is None:
        return f"confidence {signal.confidence}/100"
    if signal.action is Action.HOLD:
        return f"hold {signal.confidence}/100 ({reading})"
    # "No demonstrated edge" already says how little the number means: it is left out.
    return reading if NO_EDGE_NOTE in signal.notes else f"{reading} ({signal.confidence}/100)"


def coordinator_label(signal: Signal) -> str:
    name = signal.coordinator.strip()
    label = name if name.lower().endswith("coordinator") else f"{name} coordinator"
    if signal.model:  # the LLM that wrote the text
        label = f"{label} ({signal.model})"
    return f"{label} (clamps: {', '.join(signal.clamps)})" if signal.clamps else label


def _whale_figures(flows: WhaleFeatures) -> list[str]:
    return [
        f"net exchange flow {format_usd(flows.net_flow_usd, signed=True)}",
        f"in {format_usd(flows.inflow_usd)} / out {format_usd(flows.outflow_usd)}",
        f"{flows.transfer_count} transfers",
    ]


def beyond_book(book: OrderBookFeatures, band_pct: float) -> bool:
    """Whether the band reaches past the recorded book (its figure is then the whole book's)."""
    return book.book_reach_pct is not None and band_pct > book.book_reach_pct


def book_reach_label(book: OrderBookFeatures) -> str | None:
    return None if book.book_reach_pct is None else f"book reaches ±{book.book_reach_pct:.2g}%"


def _imbalance_figure(book: OrderBookFeatures) -> str | None:
    band_pct, imbalance = next(
        (
            (band_pct, imbalance)
            for band_pct in _SHOWN_IMBALANCE_BANDS_PCT
            if (imbalance := book.imbalance_at(band_pct)) is not None
        ),
        (None, None),
    )
    if band_pct is None or imbalance is None:
        return None
    if beyond_book(book, band_pct):
        return (
            f"imbalance {imbalance:+.2f} (whole book, {book_reach_label(book)}; "
            f"±{band_pct:g}%: beyond the recorded book)"
        )
    return f"imbalance {imbalance:+.2f} (±{band_pct:g}%)"


def is_touch(book: OrderBookFeatures, wall: BookWall, *, bid: bool) -> bool:
    """A "wall" at the best bid or ask, as records made before walls skipped the touch hold."""
    half_spread = book.mid_price * book.spread_bps / 20_000
    touch = book.mid_price - half_spread if bid else book.mid_price + half_spread
    return abs(wall.price - touch) <= book.mid_price * 1e-9


def shown_walls(book: OrderBookFeatures) -> list[tuple[str, BookWall]]:
    """Support and resistance worth showing: present, and not just the touch."""
    return [
        (label, wall)
        for label, wall, bid in (
            ("support", book.support, True),
            ("resistance", book.resistance, False),
        )
        if wall is not None and not is_touch(book, wall, bid=bid)
    ]


def _orderbook_figures(book: OrderBookFeatures) -> list[str]:
    imbalance = _imbalance_figure(book)
    parts = [imbalance] if imbalance else []
    parts.append(f"spread {book.spread_bps:.1f} bps")
    shown = dict(shown_walls(book))
    for label, wall in (("support", book.support), ("resistance", book.resistance)):
        if label in shown:
            parts.append(f"{label} {format_price(shown[label].price)}")
        elif wall is not None:  # an older record's "wall" at the best bid or ask
            parts.append(f"no {label} wall beyond the touch")
    if book.spoofing_events > 0:
        parts.append(f"⚠ spoofing seen ({book.spoofing_events})")
    return parts


def _sentiment_figures(mood: SentimentFeatures) -> list[str]:
    parts: list[str] = []
    if mood.reddit is not None:
        parts.append(f"Reddit mood {mood.reddit.mood:+.0f} over {mood.reddit.post_count} posts")
    if mood.fear_greed is not None:
        parts.append(f"Fear & Greed {mood.fear_greed.value}/100")
    return parts


def _figures(features: Features | None) -> list[str]:
    match features:
        case WhaleFeatures():
            return _whale_figures(features)
        case OrderBookFeatures():
            return _orderbook_figures(features)
        case SentimentFeatures():
            return _sentiment_figures(features)
        case None:
            return []


def modality_status(report: AgentReport) -> str | None:
    """Why a modality is degraded or unavailable (with its age), or None when it is ok."""
    if report.status is ReportStatus.OK:
        return None
    note = f"{report.status.value}: {report.reason or 'no reason given'}"
    if report.age_s is None or format_age(report.age_s) in note:
        return note  # the reason already says how old the data is: once is enough
    return f"{note} (age {format_age(report.age_s)})"


def modality_title(key: str) -> str:
    return MODALITY_TITLES.get(key, key.replace("_", " ").capitalize())


def modality_figures(report: AgentReport) -> list[str]:
    """The figures behind an agent's score, most telling first, then its engine and notes."""
    parts = _figures(report.features)
    if report.engine:
        parts.append(f"engine {report.engine}")
    parts.extend(report.notes)
    return parts


def modality_line(key: str, report: AgentReport) -> str:
    """One line per agent: title, score, the figures behind it, notes and any degradation."""
    parts = modality_figures(report)
    status = modality_status(report)
    if status:
        parts.append(status)
    return f"{modality_title(key):<11} {format_score(report.score):>4}  " + " · ".join(parts)


def ordered_reports(reports: Mapping[str, AgentReport]) -> list[tuple[str, AgentReport]]:
    known = [(key, reports[key]) for key in MODALITY_TITLES if key in reports]
    return known + [(key, r) for key, r in reports.items() if key not in MODALITY_TITLES]


def _missing_lines(reports: Mapping[str, AgentReport]) -> list[str]:
    return [
        f"{title:<11}  n/a  unavailable: no report"
        for key, title in MODALITY_TITLES.items()
        if key not in reports
    ]


def _divergence_line(signal: Signal) -> str:
    high = " (high)" if signal.high_divergence else ""
    return f"Divergence {signal.divergence:+.0f}{high}"


def _plan_lines(signal: Signal) -> list[str]:
    price = f" · price {format_price(signal.price)}" if signal.price is not None else ""
    lines = [
        _divergence_line(signal),
        f"Timeframe {signal.timeframe_hours} h · position {signal.position_size.value}{price}",
    ]
    if signal.risk_factors:
        lines.append("Risks:")
        lines.extend(f"  • {risk}" for risk in signal.risk_factors)
    return lines


def render_text(signal: Signal, credits: Sequence[str] = DEFAULT_CREDITS) -> str:
    """The console/CLI text of a signal: what, how sure, why and how fresh, in a few lines;
    the footer credits `credits`, the data sources the signal was made from."""
    header = (
        f"{ACTION_EMOJI.get(signal.action, '')} {signal.action.value} {signal.symbol}"
        f" · {confidence_label(signal)} · {coordinator_label(signal)}"
    )
    lines = [header, "", signal.thesis.strip(), ""]
    lines.extend(modality_line(key, report) for key, report in ordered_reports(signal.reports))
    lines.extend(_missing_lines(signal.reports))
    lines.append("")
    lines.extend(_plan_lines(signal))
    if signal.notes:  # how the signal was made (a fallback, a proxy): worth one line
        lines.append("Note: " + " · ".join(signal.notes))
    lines.append(
        f"Market moment {format_moment(signal.as_of)}"
        f" · created {signal.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    )
    lines.append(" · ".join((*credits, "Not financial advice.")))
    return "\n".join(lines)
