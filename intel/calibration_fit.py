"""Fitting and judging the calibration map (scikit-learn, used only here: `python -m bot
calibrate` and the tests import it; the product only reads the map it writes).

Purged walk-forward: the calls of the earlier part of the period fit the map, the later part
judges it, and the calls in a gap between them as long as the longest horizon (48 h, the longest
timeframe a signal may carry) are dropped, so no outcome in the fit overlaps one in the judgement.

Figures, before (raw confidence) and after (calibrated), on the later part:
    ECE         Σ_bins (n_b / n) · |share right_b − mean confidence_b|, 10 equal-width bins
                (Naeini, Cooper & Hauskrecht 2015)
    Brier       mean (confidence − outcome)²
    skill       1 − Brier / Brier of always forecasting the fit period's share right
    spread      standard deviation of the confidence across calls (resolution)
    AUC         how well confidence ranks right calls above wrong ones (0.5: not at all)
each for all calls and for rising, falling and sideways markets apart (the symbol's trailing
30-day return above +10 %, below −10 %, else sideways).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from intel.calibration import CalibrationMap, FitScope
from intel.config import CoordinatorConfig
from intel.features import SentimentFeatures
from intel.models import Action, CandleSeries, ReportStatus, Signal
from intel.outcome import DEFAULT_ROUND_TRIP_FEE_BPS, score_signal
from intel.timeutil import iso, to_ms

__all__ = [
    "CallSet",
    "auc_interval",
    "calibration_figures",
    "call_set",
    "expected_calibration_error",
    "fit_map",
    "no_demonstrated_edge",
    "purged_split",
]

GAP = timedelta(hours=48)
REGIME_LOOKBACK = timedelta(days=30)
REGIME_BAND = 0.10
FLAT_SPREAD = 0.02  # calibrated confidence spread (std) below 2 points: no demonstrated edge
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class CallSet:
    """Scored BUY/SELL calls: raw confidence (0..1), outcome, moment, market regime."""

    raw: FloatArray
    right: npt.NDArray[np.bool_]
    as_of: tuple[datetime, ...]
    regime: tuple[str, ...]

    def select(self, mask: npt.NDArray[np.bool_]) -> CallSet:
        idx = np.flatnonzero(mask)
        return CallSet(
            self.raw[idx],
            self.right[idx],
            tuple(self.as_of[i] for i in idx),
            tuple(self.regime[i] for i in idx),
        )


def call_set(
    signals: Sequence[Signal],
    candles: Mapping[str, CandleSeries],
    market_now: datetime,
    fee_bps: float = DEFAULT_ROUND_TRIP_FEE_BPS,
) -> CallSet:
    """The scored calls among `signals` (HOLDs and pending calls left out), oldest first."""
    rows = []
    for signal in sorted(signals, key=lambda s: s.as_of):
        outcome = score_signal(signal, candles[signal.symbol], market_now, fee_bps)
        if outcome.scored:
            regime = _regime(candles[signal.symbol], signal.as_of)
            rows.append((signal.rules_confidence / 100.0, outcome.net_return, signal.as_of, regime))
    return CallSet(
        raw=np.array([r[0] for r in rows], dtype=float),
        right=np.array([(r[1] or 0.0) > 0 for r in rows], dtype=bool),
        as_of=tuple(r[2] for r in rows),
        regime=tuple(r[3] for r in rows),
    )


def _regime(candles: CandleSeries, as_of: datetime) -> str:
    """rising / falling / sideways by the trailing 30-day return of the closes known at as_of."""
    times = candles.open_time_ms + candles.interval_s * 1000
    now_i = int(np.searchsorted(times, to_ms(as_of), side="right")) - 1
    then_i = int(np.searchsorted(times, to_ms(as_of - REGIME_LOOKBACK), side="right")) - 1
    if now_i < 0 or then_i < 0:
        return "sideways"
    change = candles.close[now_i] / candles.close[then_i] - 1.0
    return "rising" if change > REGIME_BAND else "falling" if change < -REGIME_BAND else "sideways"


def purged_split(calls: CallSet, fit_share: float = 0.6) -> tuple[CallSet, CallSet]:
    """(earlier part, later part): the first `fit_share` of the period's time, then the rest
    after a gap of `GAP`."""
    first, last = calls.as_of[0], calls.as_of[-1]
    cut = first + (last - first) * fit_share
    moments = np.array([to_ms(t) for t in calls.as_of])
    fit = moments <= to_ms(cut)
    later = moments > to_ms(cut + GAP)
    return calls.select(fit), calls.select(later)


def fit_map(calls: CallSet, scope: FitScope, rules: CoordinatorConfig) -> CalibrationMap:
    """Isotonic regression of outcome on raw confidence (increasing, clipped to 0..1), read as
    a curve through each level's centroid: the mean raw confidence of the calls at that level.

    Isotonic regression's own steps jump at a single raw value (69 → 70 can be 11 points), so a
    call hovering there would flip the confidence users see by more than an alert step; joining
    the levels' centroids keeps the fitted levels where the calls are and moves gradually between.
    """
    raw = calls.raw * 100.0
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    fitted = isotonic.fit(raw, calls.right.astype(float)).predict(raw)
    levels = np.unique(fitted)
    knots = tuple(float(raw[fitted == level].mean()) for level in levels)
    probabilities = tuple(float(level) for level in levels)
    draft = CalibrationMap(knots, probabilities, scope, flat=bool(np.std(fitted) < FLAT_SPREAD))
    cutoffs = {
        "timeframe_24h": draft.apply(rules.timeframe_24h_confidence),
        "timeframe_12h": draft.apply(rules.timeframe_12h_confidence),
        "moderate_size": draft.apply(rules.moderate_size_confidence),
        "aggressive_size": draft.apply(rules.aggressive_size_confidence),
    }
    return CalibrationMap(knots, probabilities, scope, draft.flat, cutoffs)


def calibration_figures(
    calls: CallSet, calibration: CalibrationMap, base_rate: float
) -> dict[str, dict[str, dict[str, float | int | None]]]:
    """{"all" | "rising" | "falling" | "sideways": {"before" | "after": figures}}."""
    calibrated = np.array([calibration.apply(round(r * 100)) / 100.0 for r in calls.raw])
    groups: dict[str, npt.NDArray[np.bool_]] = {"all": np.ones(len(calls.raw), dtype=bool)}
    for regime in ("rising", "falling", "sideways"):
        groups[regime] = np.array([r == regime for r in calls.regime], dtype=bool)
    return {
        name: {
            "before": _figures(calls.raw[mask], calls.right[mask], base_rate),
            "after": _figures(calibrated[mask], calls.right[mask], base_rate),
        }
        for name, mask in groups.items()
    }


def _figures(
    p: FloatArray, y: npt.NDArray[np.bool_], base_rate: float
) -> dict[str, float | int | None]:
    if not len(p):
        return {"calls": 0}
    outcome = y.astype(float)
    brier = float(np.mean((p - outcome) ** 2))
    reference = float(np.mean((base_rate - outcome) ** 2))
    both = 0 < outcome.sum() < len(outcome)
    auc = float(roc_auc_score(y, p)) if both else None
    return {
        "calls": len(p),
        "share_right": float(outcome.mean()),
        "mean_confidence": float(p.mean()),
        "ece": expected_calibration_error(p, y),
        "brier": brier,
        "brier_base_rate": reference,
        "brier_skill": 1.0 - brier / reference if reference > 0 else None,
        "spread": float(np.std(p)),
        "auc": auc,
        "auc_low": auc_interval(auc, int(y.sum()), int((~y).sum()))[0] if auc is not None else None,
    }


def auc_interval(auc: float, positives: int, negatives: int) -> tuple[float, float]:
    """95 % interval of an AUC by the Hanley & McNeil (1982) standard error."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    half = 1.959963984540054 * math.sqrt(max(variance, 0.0))
    return auc - half, auc + half


def no_demonstrated_edge(figures: Mapping[str, Any]) -> bool:
    """Flat in what matters: on the later period, calibrated confidence spreads less than
    `FLAT_SPREAD`, or its AUC's 95 % interval does not clear 0.5 (it cannot tell right calls
    from wrong ones better than chance)."""
    after = figures["all"]["after"]
    auc_low = after.get("auc_low")
    return bool(after.get("spread", 0.0) < FLAT_SPREAD or auc_low is None or auc_low <= 0.5)


def expected_calibration_error(p: FloatArray, y: npt.NDArray[np.bool_], bins: int = 10) -> float:
    """ECE over `bins` equal-width bins of confidence (0..1); 1.0 falls in the last bin."""
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            total += members.mean() * abs(y[members].mean() - p[members].mean())
    return float(total)


def modalities_present(signals: Sequence[Signal]) -> tuple[str, ...]:
    """The modalities that had data for at least one of `signals`: candles always, whale flows
    and the order book when their agent read any, Reddit posts and Fear & Greed when the
    sentiment agent's figures hold them."""
    present = {"candles"}
    for signal in signals:
        for name in ("whales", "orderbook"):
            report = signal.reports.get(name)
            if report is not None and report.status is not ReportStatus.UNAVAILABLE:
                present.add(name)
        sentiment = signal.reports.get("sentiment")
        figures = sentiment.features_as(SentimentFeatures) if sentiment else None
        if figures is not None and figures.reddit is not None:
            present.add("reddit")
        if figures is not None and figures.fear_greed is not None:
            present.add("fear_greed")
    order = ("candles", "whales", "orderbook", "reddit", "fear_greed")
    return tuple(name for name in order if name in present)


def describe_period(signals: Sequence[Signal]) -> tuple[str, str]:
    moments = [s.as_of for s in signals if s.action is not Action.HOLD] or [
        s.as_of for s in signals
    ]
    return iso(min(moments)), iso(max(moments))
