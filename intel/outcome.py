"""The one definition of a call being right, shared by the scorecard, calibration and the
information coefficients.

    entry   = the open of the first hourly bar opening at or after `as_of` (the first price after
              the signal; never the bar that produced it, which closed at `as_of`)
    exit    = the close of the last bar closing at or before `as_of + timeframe_hours`
    move    = direction × (exit / entry − 1),   direction +1 for BUY, −1 for SELL
    net     = move − round-trip fees
    right   = net > 0   (a BUY's exit above its entry by more than the fees, a SELL's below)

A call whose exit moment lies after the market clock is *pending*: only bars that had closed by
the clock are read, so data recorded after it (in replay it exists) can never decide a call.
A HOLD is not a bet and is never scored here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from intel.models import Action, CandleSeries, Signal
from intel.timeutil import from_ms, to_ms

__all__ = [
    "DEFAULT_ROUND_TRIP_FEE_BPS",
    "CallOutcomes",
    "Outcome",
    "OutcomeStatus",
    "call_outcomes",
    "direction_of",
    "score_signal",
    "visible_candles",
]

# Binance spot's base taker fee is 0.10 % a side: 20 bps for entering and leaving.
DEFAULT_ROUND_TRIP_FEE_BPS = 20.0
HOUR_MS = 3_600_000

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


class OutcomeStatus(StrEnum):
    RIGHT = "right"
    WRONG = "wrong"
    PENDING = "pending"  # the exit moment is after the market clock
    NOT_A_CALL = "not_a_call"  # a HOLD
    NO_PRICE = "no_price"  # the candles have no bar at the entry or the exit


@dataclass(frozen=True, slots=True)
class Outcome:
    """One signal's outcome; prices and `net_return` (a fraction, after fees) only when scored."""

    status: OutcomeStatus
    entry_time: datetime | None = None
    entry_price: float | None = None
    exit_time: datetime | None = None
    exit_price: float | None = None
    net_return: float | None = None

    @property
    def scored(self) -> bool:
        return self.status in (OutcomeStatus.RIGHT, OutcomeStatus.WRONG)


@dataclass(frozen=True, slots=True)
class CallOutcomes:
    """`call_outcomes` for n calls: per call, whether it is scored, pending, and its figures
    (NaN / −1 where not scored)."""

    scored: BoolArray
    pending: BoolArray
    right: BoolArray
    net_return: FloatArray
    entry_index: IntArray
    exit_index: IntArray


def direction_of(action: Action) -> int:
    """+1 for BUY, −1 for SELL, 0 for HOLD."""
    return {Action.BUY: 1, Action.SELL: -1}.get(action, 0)


def visible_candles(candles: CandleSeries, market_now: datetime) -> CandleSeries:
    """The bars that had closed by `market_now` (open time + interval ≤ now)."""
    cutoff = to_ms(market_now) - candles.interval_s * 1000
    return candles.window(0, int(np.searchsorted(candles.open_time_ms, cutoff, side="right")))


def call_outcomes(
    candles: CandleSeries,
    as_of_ms: IntArray,
    horizon_h: IntArray,
    direction: IntArray,
    market_now: datetime,
    round_trip_fee_bps: float = DEFAULT_ROUND_TRIP_FEE_BPS,
) -> CallOutcomes:
    """The module's definition over n calls at once (arrays of equal length; `direction` ±1).

    A call is pending when `as_of + horizon` is after `market_now`; it has no price when no bar
    opens within one interval after `as_of`, or none closes within one interval before the exit.
    """
    bars = visible_candles(candles, market_now)
    interval_ms = bars.interval_s * 1000
    opens, closes_at = bars.open_time_ms, bars.open_time_ms + interval_ms
    exit_ms = as_of_ms + horizon_h.astype(np.int64) * HOUR_MS
    pending = exit_ms > to_ms(market_now)
    entry = np.searchsorted(opens, as_of_ms, side="left")
    exit_ = np.searchsorted(closes_at, exit_ms, side="right") - 1
    n_bars = len(bars)
    entry_ok = entry < n_bars
    safe_entry, safe_exit = np.minimum(entry, n_bars - 1), np.maximum(exit_, 0)
    if n_bars:
        entry_ok &= opens[safe_entry] - as_of_ms < interval_ms
        exit_ok = (exit_ >= 0) & (exit_ms - closes_at[safe_exit] < interval_ms)
        exit_ok &= safe_exit >= safe_entry
    else:
        exit_ok = np.zeros_like(entry_ok)
    scored = ~pending & entry_ok & exit_ok & (direction != 0)
    net = np.full(len(as_of_ms), np.nan)
    if n_bars:
        move = direction * (bars.close[safe_exit] / bars.open[safe_entry] - 1.0)
        net = np.where(scored, move - round_trip_fee_bps / 10_000.0, np.nan)
    return CallOutcomes(
        scored=scored,
        pending=pending & (direction != 0),
        right=scored & (np.nan_to_num(net, nan=0.0) > 0),
        net_return=net,
        entry_index=np.where(scored, entry, -1),
        exit_index=np.where(scored, exit_, -1),
    )


def score_signal(
    signal: Signal,
    candles: CandleSeries,
    market_now: datetime,
    round_trip_fee_bps: float = DEFAULT_ROUND_TRIP_FEE_BPS,
) -> Outcome:
    """One signal's outcome by `call_outcomes`; `candles` are the signal's symbol's."""
    direction = direction_of(signal.action)
    if direction == 0:
        return Outcome(OutcomeStatus.NOT_A_CALL)
    found = call_outcomes(
        candles,
        np.array([to_ms(signal.as_of)], dtype=np.int64),
        np.array([signal.timeframe_hours], dtype=np.int64),
        np.array([direction], dtype=np.int64),
        market_now,
        round_trip_fee_bps,
    )
    if found.pending[0]:
        return Outcome(OutcomeStatus.PENDING)
    if not found.scored[0]:
        return Outcome(OutcomeStatus.NO_PRICE)
    entry, exit_ = int(found.entry_index[0]), int(found.exit_index[0])
    return Outcome(
        status=OutcomeStatus.RIGHT if found.right[0] else OutcomeStatus.WRONG,
        entry_time=from_ms(int(candles.open_time_ms[entry])),
        entry_price=float(candles.open[entry]),
        exit_time=from_ms(int(candles.open_time_ms[exit_]) + candles.interval_s * 1000),
        exit_price=float(candles.close[exit_]),
        net_return=float(found.net_return[0]),
    )
