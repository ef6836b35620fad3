"""Strategies over history, each a target position per bar (see `intel.backtest.engine`).

`target[i]` uses only what was known at the close of bar `i`; each function says what it reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from intel.config import BacktestConfig
from intel.models import Action, CandleSeries, Signal
from intel.timeutil import to_ms

__all__ = ["buy_and_hold", "fear_greed_contrarian", "targets_from_signals"]

FloatArray = npt.NDArray[np.float64]


def buy_and_hold(bars: CandleSeries) -> FloatArray:
    """Fully long from the first decision on (filled at the second bar's open)."""
    return np.ones(len(bars))


def targets_from_signals(
    bars: CandleSeries, signals: Sequence[Signal], config: BacktestConfig
) -> FloatArray:
    """Each BUY/SELL held over its own horizon, as the scorecard scores it.

    A call at `as_of` is decided at the close of the bar that closes at `as_of` (entry at the
    next open) and lasts until `as_of + timeframe_hours` (exit at that bar's open), sized by its
    `position_size` (`backtest.sizing`). BUY is long; SELL is flat, or short with
    `backtest.allow_short`. A newer call replaces an older one; a HOLD changes nothing, so an
    earlier call runs its course. Signals outside the bars are ignored.
    """
    target = np.zeros(len(bars))
    close_ms = bars.open_time_ms + bars.interval_s * 1000
    active_end = 0
    for signal in sorted(signals, key=lambda s: s.as_of):
        if signal.action is Action.HOLD:
            continue
        as_of_ms = to_ms(signal.as_of)
        decided = int(np.searchsorted(close_ms, as_of_ms, side="right")) - 1
        if decided < 0 or decided >= len(bars):
            continue
        expiry_ms = as_of_ms + signal.timeframe_hours * 3_600_000
        ends = int(np.searchsorted(close_ms, expiry_ms, side="right")) - 1
        size = getattr(config.sizing, signal.position_size.value)
        weight = size if signal.action is Action.BUY else (-size if config.allow_short else 0.0)
        target[decided:ends] = weight
        if active_end > ends:  # the older call's tail is replaced by this one's end
            target[ends:active_end] = 0.0
        active_end = max(ends, decided)
    return target


def fear_greed_contrarian(
    bars: CandleSeries, fear_greed: FloatArray, config: BacktestConfig
) -> FloatArray:
    """Fear & Greed extremes with a trend filter; `fear_greed[i]` is the value published by the
    close of bar `i` (NaN before the first).

    Long when the index is at or below `fear_max` while the close is above its
    `trend_sma_days` simple moving average; out when it reaches `greed_min` or the close falls
    below the average. With `allow_short`, the mirror image: short at `greed_min` below the
    average, out at `fear_max` or above it.
    """
    window = max(1, round(config.trend_sma_days * 86_400 / bars.interval_s))
    sma = _moving_average(bars.close, window)
    uptrend, downtrend = bars.close > sma, bars.close < sma
    fear, greed = fear_greed <= config.fear_max, fear_greed >= config.greed_min
    long = _hold_between(fear & uptrend, greed | downtrend)
    if not config.allow_short:
        return long
    short = _hold_between(greed & downtrend, fear | uptrend)
    return long - short


def _hold_between(enter: npt.NDArray[np.bool_], leave: npt.NDArray[np.bool_]) -> FloatArray:
    """1 from a bar where `enter` holds until the next where `leave` does, else 0."""
    events = np.where(enter, 1.0, np.where(leave, 0.0, np.nan))
    known = np.where(np.isnan(events), -1, np.arange(events.size))
    last = np.maximum.accumulate(known)  # index of the latest event so far, −1 before any
    return np.where(last >= 0, events[np.maximum(last, 0)], 0.0)


def _moving_average(values: FloatArray, window: int) -> FloatArray:
    """Simple moving average of the last `window` values including this one; NaN before."""
    sums = np.cumsum(np.concatenate(([0.0], values)))
    average = np.full(values.size, np.nan)
    average[window - 1 :] = (sums[window:] - sums[:-window]) / window
    return average
