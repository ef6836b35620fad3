"""The Signal JSON keys fixed by the public contract (shared/CONTRACTS.md); output may add keys."""

from __future__ import annotations

__all__ = ["REPORT_KEYS", "SIGNAL_KEYS"]

SIGNAL_KEYS = frozenset(
    {
        "symbol",
        "action",
        "confidence",
        "thesis",
        "risk_factors",
        "timeframe_hours",
        "position_size",
        "divergence",
        "coordinator",
        "clamps",
        "notes",
        "as_of",
        "created_at",
        "reports",
    }
)
REPORT_KEYS = frozenset({"score", "status", "reason", "as_of", "age_s", "features"})
