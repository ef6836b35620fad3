"""The Signal's JSON form, exactly as fixed in the public contract (more keys may be added).

Each report's typed figures travel as the contract's flat `features: {name: number}`, under the
names the first release wrote; stored signals that lack some figures still load.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from intel.features import (
    BandImbalance,
    BookWall,
    FearGreedFigures,
    Features,
    OrderBookFeatures,
    RedditFigures,
    SentimentFeatures,
    WhaleFeatures,
)
from intel.models import Action, AgentReport, PositionSize, ReportStatus, Signal
from intel.timeutil import iso, parse_time

__all__ = [
    "features_from_json",
    "features_to_json",
    "report_to_json",
    "signal_from_json",
    "signal_to_json",
]

Figures = Mapping[str, Any]
_BAND_KEY = re.compile(r"imbalance_(\d+(?:_\d+)?)pct")


def signal_to_json(signal: Signal) -> dict[str, Any]:
    return {
        "symbol": signal.symbol,
        "action": signal.action.value,
        "confidence": signal.confidence,
        "raw_confidence": signal.rules_confidence,
        "calibrated": signal.raw_confidence is not None,
        "thesis": signal.thesis,
        "risk_factors": list(signal.risk_factors),
        "timeframe_hours": signal.timeframe_hours,
        "position_size": signal.position_size.value,
        "divergence": signal.divergence,
        "high_divergence": signal.high_divergence,
        "coordinator": signal.coordinator,
        "clamps": list(signal.clamps),
        "notes": list(signal.notes),
        "key_drivers": list(signal.key_drivers),
        "model": signal.model,
        "as_of": iso(signal.as_of),
        "created_at": iso(signal.created_at),
        "price": signal.price,
        "reports": {name: report_to_json(r) for name, r in signal.reports.items()},
    }


def report_to_json(report: AgentReport) -> dict[str, Any]:
    data: dict[str, Any] = {
        "score": _number(report.score),
        "status": report.status.value,
        "reason": report.reason,
        "as_of": iso(report.as_of) if report.as_of else None,
        "age_s": _number(report.age_s),
        "features": features_to_json(report.features),
        "notes": list(report.notes),
    }
    if report.engine is not None:
        data["engine"] = report.engine
    return data


def _number(value: float | None) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(float(value), 6)


def signal_from_json(data: dict[str, Any]) -> Signal:
    """Rebuild a Signal from its JSON form (the store keeps signals this way)."""
    return Signal(
        symbol=data["symbol"],
        action=Action(data["action"]),
        confidence=int(data["confidence"]),
        thesis=data["thesis"],
        risk_factors=tuple(data["risk_factors"]),
        timeframe_hours=int(data["timeframe_hours"]),
        position_size=PositionSize(data["position_size"]),
        divergence=float(data["divergence"]),
        high_divergence=bool(data.get("high_divergence", False)),
        coordinator=data["coordinator"],
        clamps=tuple(data["clamps"]),
        notes=tuple(data.get("notes", ())),  # signals stored before notes existed have none
        as_of=parse_time(data["as_of"]),
        created_at=parse_time(data["created_at"]),
        reports={name: _report_from_json(name, r) for name, r in data["reports"].items()},
        price=data.get("price"),
        # Signals stored before the LLM coordinator have neither.
        key_drivers=tuple(data.get("key_drivers", ())),
        model=data.get("model"),
        # Made without calibration (or stored before it existed): no separate raw value.
        raw_confidence=int(data["raw_confidence"]) if data.get("calibrated") else None,
    )


def _report_from_json(name: str, data: dict[str, Any]) -> AgentReport:
    return AgentReport(
        agent=name,
        status=ReportStatus(data["status"]),
        score=data["score"],
        reason=data["reason"],
        as_of=parse_time(data["as_of"]) if data["as_of"] else None,
        age_s=data["age_s"],
        features=features_from_json(name, data["features"]),
        notes=tuple(data.get("notes", ())),
        engine=data.get("engine"),
    )


def features_to_json(features: Features | None) -> dict[str, float]:
    """The flat `{name: number}` form; figures that are not finite numbers are left out."""
    match features:
        case WhaleFeatures():
            figures = _whale_figures(features)
        case OrderBookFeatures():
            figures = _book_figures(features)
        case SentimentFeatures():
            figures = _sentiment_figures(features)
        case None:
            figures = {}
    return {
        name: value for name, value in figures.items() if value is not None and math.isfinite(value)
    }


def features_from_json(agent: str, figures: Figures) -> Features | None:
    """The typed record of `agent`'s figures; None when the figures it needs are missing."""
    parse = _PARSERS.get(agent)
    return parse(figures) if parse and figures else None


def _whale_figures(f: WhaleFeatures) -> dict[str, float | None]:
    return {
        "inflow_usd": f.inflow_usd,
        "outflow_usd": f.outflow_usd,
        "net_flow_usd": f.net_flow_usd,
        "transfer_count": float(f.transfer_count),
        "window_h": f.window_h,
        "active_hours": float(f.active_hours),
        "inflow_coins": f.inflow_coins,
        "outflow_coins": f.outflow_coins,
    }


def _band_key(band_pct: float) -> str:
    """0.1 -> imbalance_0_1pct, 1.0 -> imbalance_1pct."""
    return "imbalance_" + f"{band_pct:g}".replace(".", "_") + "pct"


def _book_figures(f: OrderBookFeatures) -> dict[str, float | None]:
    figures: dict[str, float | None] = {_band_key(b.band_pct): b.imbalance for b in f.imbalances}
    figures.update(
        spread_bps=f.spread_bps,
        mid=f.mid_price,
        bid_depth_quote=f.bid_depth_quote,
        ask_depth_quote=f.ask_depth_quote,
    )
    for label, wall in (("support", f.support), ("resistance", f.resistance)):
        if wall is not None:
            figures[f"{label}_price"] = wall.price
            figures[f"{label}_size_quote"] = wall.size_quote
    figures.update(spoofing_events=float(f.spoofing_events), snapshots=float(f.snapshot_count))
    if f.book_reach_pct is not None:
        figures["book_reach_pct"] = f.book_reach_pct
    return figures


def _sentiment_figures(f: SentimentFeatures) -> dict[str, float | None]:
    figures: dict[str, float | None] = {}
    if f.reddit is not None:
        figures.update(
            reddit_mood=f.reddit.mood,
            post_count=float(f.reddit.post_count),
            positive_posts=float(f.reddit.positive_posts),
            negative_posts=float(f.reddit.negative_posts),
            mean_post_score=f.reddit.mean_post_score,
        )
    if f.fear_greed is not None:
        figures.update(
            fear_greed=float(f.fear_greed.value),
            fear_greed_mood=f.fear_greed.mood,
            fear_greed_age_s=f.fear_greed.age_s,
        )
    return figures


def _figure(figures: Figures, name: str) -> float | None:
    value = figures.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _required(figures: Figures, names: tuple[str, ...]) -> tuple[float, ...] | None:
    """Every named figure, or None when one is missing (an older or partial record)."""
    values = tuple(value for name in names if (value := _figure(figures, name)) is not None)
    return values if len(values) == len(names) else None


def _whales_from_json(figures: Figures) -> WhaleFeatures | None:
    names = ("inflow_usd", "outflow_usd", "net_flow_usd", "transfer_count", "window_h")
    found = _required(figures, (*names, "active_hours"))
    if found is None:
        return None
    inflow, outflow, net, count, window_h, active_hours = found
    return WhaleFeatures(
        inflow_usd=inflow,
        outflow_usd=outflow,
        net_flow_usd=net,
        transfer_count=int(count),
        window_h=window_h,
        active_hours=int(active_hours),
        inflow_coins=_figure(figures, "inflow_coins"),
        outflow_coins=_figure(figures, "outflow_coins"),
    )


def _book_from_json(figures: Figures) -> OrderBookFeatures | None:
    names = ("spread_bps", "mid", "bid_depth_quote", "ask_depth_quote", "spoofing_events")
    found = _required(figures, (*names, "snapshots"))
    if found is None:
        return None
    spread_bps, mid, bid_depth, ask_depth, spoofing_events, snapshots = found
    imbalances = (
        BandImbalance(float(match[1].replace("_", ".")), value)
        for name in figures
        if (match := _BAND_KEY.fullmatch(name)) and (value := _figure(figures, name)) is not None
    )
    return OrderBookFeatures(
        imbalances=tuple(imbalances),
        spread_bps=spread_bps,
        mid_price=mid,
        bid_depth_quote=bid_depth,
        ask_depth_quote=ask_depth,
        support=_wall_from_json(figures, "support"),
        resistance=_wall_from_json(figures, "resistance"),
        spoofing_events=int(spoofing_events),
        snapshot_count=int(snapshots),
        book_reach_pct=_figure(figures, "book_reach_pct"),
    )


def _wall_from_json(figures: Figures, label: str) -> BookWall | None:
    found = _required(figures, (f"{label}_price", f"{label}_size_quote"))
    return BookWall(*found) if found else None


def _sentiment_from_json(figures: Figures) -> SentimentFeatures | None:
    reddit, fear_greed = _reddit_from_json(figures), _fear_greed_from_json(figures)
    if reddit is None and fear_greed is None:
        return None
    return SentimentFeatures(reddit=reddit, fear_greed=fear_greed)


def _reddit_from_json(figures: Figures) -> RedditFigures | None:
    names = ("reddit_mood", "post_count", "positive_posts", "negative_posts", "mean_post_score")
    found = _required(figures, names)
    if found is None:
        return None
    mood, post_count, positive, negative, mean_score = found
    return RedditFigures(mood, int(post_count), int(positive), int(negative), mean_score)


def _fear_greed_from_json(figures: Figures) -> FearGreedFigures | None:
    found = _required(figures, ("fear_greed", "fear_greed_mood", "fear_greed_age_s"))
    if found is None:
        return None
    value, mood, age_s = found
    return FearGreedFigures(value=int(value), mood=mood, age_s=age_s)


_PARSERS: Mapping[str, Callable[[Figures], Features | None]] = {
    "whales": _whales_from_json,
    "orderbook": _book_from_json,
    "sentiment": _sentiment_from_json,
}
