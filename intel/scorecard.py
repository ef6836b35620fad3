"""The scorecard of a set of signals: how often the calls were right, against what chance gives.

Every call is judged by `intel.outcome` (entry at the next bar's open, exit at as_of + timeframe,
net of round-trip fees; pending past the market clock). HOLDs are counted, never in the hit rate.
Hit rates carry a 95 % Wilson score interval (Wilson 1927; Agresti & Coull 1998, eq. 2) and sit
beside the base rate: the share of calls of the same symbol, direction and horizon that would have
been right had one been made at every hour of the same period. Calls whose holding windows overlap
are flagged, and a non-overlapping subset (earliest first, greedy) is scored beside all calls.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from intel.models import Action, CandleSeries, Signal
from intel.outcome import (
    DEFAULT_ROUND_TRIP_FEE_BPS,
    HOUR_MS,
    Outcome,
    OutcomeStatus,
    call_outcomes,
    direction_of,
    score_signal,
)
from intel.timeutil import to_ms

__all__ = [
    "MIN_GROUP",
    "Group",
    "HitRate",
    "ReliabilityBin",
    "Scorecard",
    "base_rate",
    "brier_score",
    "build_scorecard",
    "confidence_bucket",
    "reliability",
    "wilson_interval",
]

MIN_GROUP = 30  # fewer calls than this in a group: shown as too small to read
Z_95 = 1.959963984540054


@dataclass(frozen=True, slots=True)
class HitRate:
    right: int
    count: int

    @property
    def rate(self) -> float | None:
        return self.right / self.count if self.count else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.right, self.count) if self.count else None


@dataclass(frozen=True, slots=True)
class Group:
    """The calls of one action, symbol or confidence bucket."""

    label: str
    hits: HitRate
    mean_return: float | None  # net of fees, a fraction

    @property
    def too_small(self) -> bool:
        return self.hits.count < MIN_GROUP


@dataclass(frozen=True, slots=True)
class ReliabilityBin:
    """Calls whose confidence lies in [low, high): their mean confidence (0..1) and hit rate."""

    low: int
    high: int
    count: int
    mean_confidence: float
    hit_rate: float


@dataclass(frozen=True, slots=True)
class Scorecard:
    signals: int
    holds: int
    pending: int
    no_price: int
    hits: HitRate
    base_rate: float | None
    mean_return: float | None
    overlapping: int  # scored calls whose window overlaps an earlier call's on the same symbol
    non_overlapping: HitRate
    by_action: tuple[Group, ...]
    by_symbol: tuple[Group, ...]
    by_bucket: tuple[Group, ...]
    reliability: tuple[ReliabilityBin, ...]
    raw_reliability: tuple[ReliabilityBin, ...]  # on the rules' confidence before calibration
    brier: float | None


def wilson_interval(right: int, count: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a proportion right/count (count > 0), as fractions."""
    p = right / count
    denominator = 1 + z * z / count
    centre = (p + z * z / (2 * count)) / denominator
    half = z * math.sqrt(p * (1 - p) / count + z * z / (4 * count * count)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def confidence_bucket(confidence: int) -> tuple[int, int]:
    """The 10-point bucket [low, high) of a confidence 0..100 (100 falls in 90–100)."""
    low = min(90, (confidence // 10) * 10)
    return low, low + 10


def brier_score(confidences: Sequence[float], right: Sequence[bool]) -> float | None:
    """Mean squared gap between confidence (0..1) and outcome (1 right, 0 wrong); Brier 1950."""
    if not confidences:
        return None
    p, y = np.asarray(confidences, dtype=float), np.asarray(right, dtype=float)
    return float(np.mean((p - y) ** 2))


def reliability(confidences: Sequence[int], right: Sequence[bool]) -> tuple[ReliabilityBin, ...]:
    """Stated confidence against the hit rate, in 10-point bins; empty bins left out."""
    bins: dict[tuple[int, int], list[tuple[int, bool]]] = defaultdict(list)
    for confidence, hit in zip(confidences, right, strict=True):
        bins[confidence_bucket(confidence)].append((confidence, hit))
    return tuple(
        ReliabilityBin(
            low=low,
            high=high,
            count=len(members),
            mean_confidence=float(np.mean([c for c, _ in members])) / 100.0,
            hit_rate=float(np.mean([h for _, h in members])),
        )
        for (low, high), members in sorted(bins.items())
    )


def base_rate(
    candles: CandleSeries,
    start: datetime,
    end: datetime,
    horizon_h: int,
    action: Action,
    market_now: datetime,
    round_trip_fee_bps: float = DEFAULT_ROUND_TRIP_FEE_BPS,
) -> HitRate:
    """How often `action` at `horizon_h` would have been right if called at every hour from
    `start` to `end` (calls still pending at `market_now` left out)."""
    hours = np.arange(to_ms(start), to_ms(end) + 1, HOUR_MS, dtype=np.int64)
    found = call_outcomes(
        candles,
        hours,
        np.full(len(hours), horizon_h, dtype=np.int64),
        np.full(len(hours), direction_of(action), dtype=np.int64),
        market_now,
        round_trip_fee_bps,
    )
    return HitRate(int(found.right.sum()), int(found.scored.sum()))


def build_scorecard(
    signals: Sequence[Signal],
    candles: Mapping[str, CandleSeries],
    market_now: datetime,
    round_trip_fee_bps: float = DEFAULT_ROUND_TRIP_FEE_BPS,
) -> Scorecard:
    """Score `signals` against `candles` (per symbol) as known at `market_now`.

    A signal whose symbol has no candles counts as having no price."""
    outcomes = [
        score_signal(s, candles[s.symbol], market_now, round_trip_fee_bps)
        if s.symbol in candles
        else Outcome(OutcomeStatus.NO_PRICE)
        for s in signals
    ]
    scored = [(s, o) for s, o in zip(signals, outcomes, strict=True) if o.scored]
    statuses = [o.status for o in outcomes]
    hits = [o.status is OutcomeStatus.RIGHT for _, o in scored]
    kept, overlapping = _non_overlapping(scored)
    return Scorecard(
        signals=len(signals),
        holds=statuses.count(OutcomeStatus.NOT_A_CALL),
        pending=statuses.count(OutcomeStatus.PENDING),
        no_price=statuses.count(OutcomeStatus.NO_PRICE),
        hits=HitRate(sum(hits), len(hits)),
        base_rate=_base_rate_of(scored, candles, market_now, round_trip_fee_bps),
        mean_return=_mean([o.net_return for _, o in scored]),
        overlapping=overlapping,
        non_overlapping=HitRate(sum(o.status is OutcomeStatus.RIGHT for _, o in kept), len(kept)),
        by_action=_groups(scored, lambda s: s.action.value),
        by_symbol=_groups(scored, lambda s: s.symbol),
        by_bucket=_groups(scored, lambda s: "{}–{}".format(*confidence_bucket(s.confidence))),
        reliability=reliability([s.confidence for s, _ in scored], hits),
        raw_reliability=reliability([s.rules_confidence for s, _ in scored], hits),
        brier=brier_score([s.confidence / 100.0 for s, _ in scored], hits),
    )


Scored = Sequence[tuple[Signal, Outcome]]


def _mean(values: Sequence[float | None]) -> float | None:
    numbers = [v for v in values if v is not None]
    return float(np.mean(numbers)) if numbers else None


def _groups(scored: Scored, key: Callable[[Signal], str]) -> tuple[Group, ...]:
    members: dict[str, list[Outcome]] = defaultdict(list)
    for signal, outcome in scored:
        members[key(signal)].append(outcome)
    return tuple(
        Group(
            label=label,
            hits=HitRate(sum(o.status is OutcomeStatus.RIGHT for o in group), len(group)),
            mean_return=_mean([o.net_return for o in group]),
        )
        for label, group in sorted(members.items())
    )


def _non_overlapping(scored: Scored) -> tuple[list[tuple[Signal, Outcome]], int]:
    """Calls kept earliest first, skipping any that enters before the last kept one exited; and
    how many calls overlap any earlier call of the same symbol."""
    kept: list[tuple[Signal, Outcome]] = []
    last_exit: dict[str, datetime] = {}
    latest_exit: dict[str, datetime] = {}
    overlapping = 0
    for signal, outcome in sorted(scored, key=lambda pair: pair[0].as_of):
        assert outcome.entry_time is not None  # scored
        assert outcome.exit_time is not None
        symbol = signal.symbol
        if symbol in latest_exit and outcome.entry_time < latest_exit[symbol]:
            overlapping += 1
        latest_exit[symbol] = max(latest_exit.get(symbol, outcome.exit_time), outcome.exit_time)
        if symbol not in last_exit or outcome.entry_time >= last_exit[symbol]:
            kept.append((signal, outcome))
            last_exit[symbol] = outcome.exit_time
    return kept, overlapping


def _base_rate_of(
    scored: Scored, candles: Mapping[str, CandleSeries], market_now: datetime, fee_bps: float
) -> float | None:
    """The base rate matched to the calls: per (symbol, action, horizon), the hourly base rate
    over that symbol's span of calls, weighted by how many calls it has."""
    if not scored:
        return None
    counts: dict[tuple[str, Action, int], int] = defaultdict(int)
    spans: dict[str, tuple[datetime, datetime]] = {}
    for signal, _ in scored:
        counts[(signal.symbol, signal.action, signal.timeframe_hours)] += 1
        first, last = spans.get(signal.symbol, (signal.as_of, signal.as_of))
        spans[signal.symbol] = (min(first, signal.as_of), max(last, signal.as_of))
    weighted = 0.0
    for (symbol, action, horizon), count in counts.items():
        start, end = spans[symbol]
        rate = base_rate(candles[symbol], start, end, horizon, action, market_now, fee_bps).rate
        weighted += count * (rate if rate is not None else 0.0)
    return weighted / len(scored)
