"""What each modality is worth: the information coefficient (IC) of each agent's score.

    IC = Spearman rank correlation between an agent's score at `as_of` and the forward return
         from the next bar's open to `as_of + h` (the `intel.outcome` entry and exit, no fees)

Forward returns of calls an hour apart overlap for h > 1 and are not independent, so each
horizon's IC is computed on moments at least h hours apart (every h-th hour from the first), and
its 95 % interval uses Fisher's z with the Spearman standard error 1.06 / √(n − 3) (Fieller,
Hartley & Pearson 1957). Report only: a rule change these figures suggest needs out-of-sample
evidence of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from scipy.stats import spearmanr

from intel.models import CandleSeries, Signal
from intel.outcome import call_outcomes
from intel.timeutil import to_ms

__all__ = ["AGENTS", "HORIZONS_H", "InformationCoefficient", "information_coefficients"]

AGENTS = ("whales", "orderbook", "sentiment")
HORIZONS_H = (4, 12, 24)
Z_95 = 1.959963984540054
MIN_PAIRS = 10


@dataclass(frozen=True, slots=True)
class InformationCoefficient:
    agent: str
    horizon_h: int
    pairs: int  # non-overlapping (score, forward return) pairs
    ic: float | None  # None: fewer than MIN_PAIRS pairs, or a constant score
    low: float | None
    high: float | None
    first: datetime | None  # the period the pairs cover
    last: datetime | None


def information_coefficients(
    signals: Sequence[Signal],
    candles: CandleSeries,
    market_now: datetime,
    agents: Sequence[str] = AGENTS,
    horizons_h: Sequence[int] = HORIZONS_H,
) -> list[InformationCoefficient]:
    """Per agent and horizon, the IC of one symbol's signals (hourly, oldest first) against its
    candles; moments where the agent had no score are left out."""
    return [
        _one(signals, candles, market_now, agent, horizon)
        for agent in agents
        for horizon in horizons_h
    ]


def _one(
    signals: Sequence[Signal], candles: CandleSeries, now: datetime, agent: str, horizon: int
) -> InformationCoefficient:
    spaced = _spaced(signals, horizon)
    moments = np.array([to_ms(s.as_of) for s in spaced], dtype=np.int64)
    n = len(moments)
    found = call_outcomes(
        candles,
        moments,
        np.full(n, horizon, dtype=np.int64),
        np.ones(n, dtype=np.int64),
        now,
        round_trip_fee_bps=0.0,
    )
    pairs = [
        (score, float(ret), s.as_of)
        for s, ret, ok in zip(spaced, found.net_return, found.scored, strict=True)
        if ok and (score := _score(s, agent)) is not None
    ]
    first = pairs[0][2] if pairs else None
    last = pairs[-1][2] if pairs else None
    scores = [p[0] for p in pairs]
    if len(pairs) < MIN_PAIRS or len(set(scores)) < 2:
        return InformationCoefficient(agent, horizon, len(pairs), None, None, None, first, last)
    rho = float(spearmanr(scores, [p[1] for p in pairs]).statistic)
    low, high = _fisher_interval(rho, len(pairs))
    return InformationCoefficient(agent, horizon, len(pairs), rho, low, high, first, last)


def _spaced(signals: Sequence[Signal], horizon_h: int) -> list[Signal]:
    """Signals at least `horizon_h` hours apart, earliest first."""
    kept: list[Signal] = []
    for signal in signals:
        if not kept or (signal.as_of - kept[-1].as_of).total_seconds() >= horizon_h * 3600:
            kept.append(signal)
    return kept


def _score(signal: Signal, agent: str) -> float | None:
    report = signal.reports.get(agent)
    if report is None or report.score is None or math.isnan(report.score):
        return None
    return float(report.score)


def _fisher_interval(rho: float, n: int) -> tuple[float, float]:
    if n <= 3 or abs(rho) >= 1.0:
        return rho, rho
    z, se = math.atanh(rho), 1.06 / math.sqrt(n - 3)
    return math.tanh(z - Z_95 * se), math.tanh(z + Z_95 * se)
