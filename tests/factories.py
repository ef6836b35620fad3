"""Hand-built domain objects for tests: a plausible Signal without running the pipeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from intel.models import Action, AgentReport, PositionSize, ReportStatus, Signal

__all__ = ["DEFAULT_AS_OF", "make_reports", "make_signal"]

DEFAULT_AS_OF = datetime(2025, 10, 10, 20, 0, tzinfo=UTC)


def make_reports(action: Action, as_of: datetime) -> dict[str, AgentReport]:
    """Three agent reports leaning the way of `action` (HOLD: mixed)."""
    lean = {Action.BUY: 1.0, Action.SELL: -1.0, Action.HOLD: 0.0}[action]
    return {
        "whales": AgentReport(
            agent="whales",
            status=ReportStatus.OK,
            score=round(55.0 * lean, 1),
            as_of=as_of - timedelta(minutes=20),
            age_s=1200.0,
            features={"net_outflow_usd": 41_500_000.0 * lean, "transfer_count": 37.0},
            notes=("exchange outflows above their 7-day median",),
        ),
        "orderbook": AgentReport(
            agent="orderbook",
            status=ReportStatus.OK,
            score=round(30.0 * lean + 5.0, 1),
            as_of=as_of - timedelta(seconds=5),
            age_s=5.0,
            features={"imbalance_top20": 0.18 * lean, "spread_bps": 0.7},
        ),
        "sentiment": AgentReport(
            agent="sentiment",
            status=ReportStatus.DEGRADED,
            score=round(20.0 * lean, 1),
            reason="only 12 posts in the last 6 h",
            as_of=as_of - timedelta(hours=1),
            age_s=3600.0,
            features={"posts": 12.0, "fear_greed": 64.0},
            engine="lexicon",
        ),
    }


def make_signal(
    symbol: str = "BTC/USDT",
    action: Action = Action.BUY,
    confidence: int = 70,
    as_of: datetime = DEFAULT_AS_OF,
    *,
    price: float | None = 62_150.5,
) -> Signal:
    return Signal(
        symbol=symbol,
        action=action,
        confidence=confidence,
        thesis=f"{symbol}: whales withdraw from exchanges while the book leans to bids.",
        risk_factors=("sentiment data is thin", "funding turned positive"),
        timeframe_hours=24,
        position_size=PositionSize.MODERATE,
        divergence=0.35,
        coordinator="rules",
        clamps=(),
        as_of=as_of,
        created_at=as_of + timedelta(seconds=3),
        reports=make_reports(action, as_of),
        price=price,
    )
