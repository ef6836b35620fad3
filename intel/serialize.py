"""The Signal's JSON form, exactly as fixed in the public contract (more keys may be added)."""

from __future__ import annotations

import math
from typing import Any

from intel.models import Action, AgentReport, PositionSize, ReportStatus, Signal
from intel.timeutil import iso, parse_time

__all__ = ["report_to_json", "signal_from_json", "signal_to_json"]


def signal_to_json(signal: Signal) -> dict[str, Any]:
    return {
        "symbol": signal.symbol,
        "action": signal.action.value,
        "confidence": signal.confidence,
        "thesis": signal.thesis,
        "risk_factors": list(signal.risk_factors),
        "timeframe_hours": signal.timeframe_hours,
        "position_size": signal.position_size.value,
        "divergence": signal.divergence,
        "high_divergence": signal.high_divergence,
        "coordinator": signal.coordinator,
        "clamps": list(signal.clamps),
        "notes": list(signal.notes),
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
        "features": {k: v for k, v in report.features.items() if _number(v) is not None},
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
    )


def _report_from_json(name: str, data: dict[str, Any]) -> AgentReport:
    return AgentReport(
        agent=name,
        status=ReportStatus(data["status"]),
        score=data["score"],
        reason=data["reason"],
        as_of=parse_time(data["as_of"]) if data["as_of"] else None,
        age_s=data["age_s"],
        features=dict(data["features"]),
        notes=tuple(data.get("notes", ())),
        engine=data.get("engine"),
    )
