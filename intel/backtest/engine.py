"""The backtest engine: a target position per bar in, the equity curve and the trade list out.

Vectorised over numpy arrays, no loop over bars. The model, once:

- `target[i]` is the signed fraction of equity (−1..1; negative is short) decided with what was
  known at the **close** of bar `i`. It is executed at the **open of bar i+1**, never on the bar
  that produced it, so no decision sees the price it trades at. Bar 0 starts flat.
- A run of bars with one position is one trade. Entry at the open after the decision, exit at the
  open after the decision to leave; a position still open at the end is closed at the last
  close. A change of size closes the trade and opens a new one (fees on both fills: this
  overstates costs a little when only the size changes).
- Each fill pays `fee_bps` of its notional and trades at a price `slippage_bps` worse than the
  open (a buy above it, a sell below it).
- A position of size `w` commits `w` of the equity to notional plus entry fee: its notional is
  `k = w/(1 + f)` of the equity `E0` at entry (`f` the fee rate), so a full position never borrows
  for its fee. Units are fixed for a trade's life (no rebalancing). With `d` ±1 the side and `e`
  the entry fill, the equity at a price `P` is `E0·(1 − f·k + d·k·(P/e − 1))`; the exit fill `x`
  leaves `E0·(1 − f·k + d·k·(x/e − 1) − f·k·x/e)`.
- Equity is marked at each bar's close; the last point is after the final exit's costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from intel.models import CandleSeries

__all__ = ["BacktestResult", "Costs", "Trade", "run_backtest"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BPS = 1e-4


@dataclass(frozen=True, slots=True)
class Costs:
    fee_bps: float = 0.0  # per fill, of its notional
    slippage_bps: float = 0.0  # per fill, of its price, against us


@dataclass(frozen=True, slots=True)
class Trade:
    """One position from entry to exit. Times are candle open times in ms (UTC); the exit of a
    trade still open at the end is the last bar's close time."""

    entry_index: int  # the bar whose open filled the entry
    exit_index: int  # the bar whose open filled the exit (len(bars) when closed at the end)
    entry_time_ms: int
    exit_time_ms: int
    entry_price: float  # fill, slippage included
    exit_price: float
    side: str  # "long" | "short"
    size: float  # fraction of the equity at entry committed (notional and entry fee)
    pnl: float  # quote currency, fees and slippage included
    return_: float  # pnl / entry notional


@dataclass(frozen=True, slots=True, eq=False)
class BacktestResult:
    """Per bar: `position` held during the bar and `equity` at its close (quote currency)."""

    bars: CandleSeries
    position: FloatArray
    equity: FloatArray
    initial_equity: float
    trades: tuple[Trade, ...]

    @property
    def close_time_ms(self) -> IntArray:
        return self.bars.open_time_ms + self.bars.interval_s * 1000

    @property
    def returns(self) -> FloatArray:
        """Simple return of the equity over each bar (the first against the initial equity)."""
        previous = np.concatenate(([self.initial_equity], self.equity[:-1]))
        return self.equity / previous - 1.0


def run_backtest(
    bars: CandleSeries, target: FloatArray, costs: Costs, initial_equity: float
) -> BacktestResult:
    """Simulate `target` over `bars` (see the module doc). ValueError when `target` does not
    match the bars, is not finite or leaves −1..1."""
    n = len(bars)
    target = np.asarray(target, dtype=np.float64)
    if target.shape != (n,) or n == 0:
        raise ValueError(f"target has shape {target.shape}; the bars need ({n},), n > 0")
    if not np.all(np.isfinite(target)) or np.any(np.abs(target) > 1.0):
        raise ValueError("target positions must be finite fractions within −1..1")
    held = np.concatenate(([0.0], target[:-1]))  # executed one bar after the decision
    changed = np.diff(held) != 0
    starts = np.concatenate(([0], np.flatnonzero(changed) + 1)).astype(np.int64)
    ends = np.concatenate((starts[1:], [n])).astype(np.int64)  # exit bar, exclusive end
    weight = held[starts]
    fee, slip = costs.fee_bps * BPS, costs.slippage_bps * BPS
    side, size = np.sign(weight), np.abs(weight)
    notional = size / (1.0 + fee)
    entry = bars.open[starts] * (1.0 + side * slip)
    closes_at_end = ends == n
    exit_base = np.where(closes_at_end, bars.close[-1], bars.open[np.minimum(ends, n - 1)])
    exit_ = exit_base * (1.0 - side * slip)
    gain = side * notional * (exit_ / entry - 1.0)
    growth = 1.0 - fee * notional + gain - fee * notional * exit_ / entry
    start_equity = initial_equity * np.concatenate(([1.0], np.cumprod(growth)[:-1]))
    segment = np.concatenate(([0], np.cumsum(changed)))  # each bar's run of one position
    held_notional = notional[segment]
    mark = side[segment] * held_notional * (bars.close / entry[segment] - 1.0)
    equity = start_equity[segment] * (1.0 - fee * held_notional + mark)
    equity[-1] = start_equity[-1] * growth[-1]  # the last point is after the final exit
    trades = _trades(bars, starts, ends, side, size, notional, entry, exit_, start_equity, growth)
    return BacktestResult(bars, held, equity, initial_equity, trades)


def _trades(
    bars: CandleSeries,
    starts: IntArray,
    ends: IntArray,
    side: FloatArray,
    size: FloatArray,
    notional: FloatArray,
    entry: FloatArray,
    exit_: FloatArray,
    start_equity: FloatArray,
    growth: FloatArray,
) -> tuple[Trade, ...]:
    n = len(bars)
    exit_times = np.where(
        ends < n,
        bars.open_time_ms[np.minimum(ends, n - 1)],
        bars.open_time_ms[-1] + bars.interval_s * 1000,
    )
    pnl = start_equity * (growth - 1.0)
    return tuple(
        Trade(
            entry_index=int(starts[k]),
            exit_index=int(ends[k]),
            entry_time_ms=int(bars.open_time_ms[starts[k]]),
            exit_time_ms=int(exit_times[k]),
            entry_price=float(entry[k]),
            exit_price=float(exit_[k]),
            side="long" if side[k] > 0 else "short",
            size=float(size[k]),
            pnl=float(pnl[k]),
            return_=float((growth[k] - 1.0) / notional[k]),
        )
        for k in np.flatnonzero(size > 0)
    )
