"""Backtest metrics, each defined once (names and units as in the Backtest JSON contract).

All are fractions, not percent. `r` are the simple returns of the equity bar by bar (the first
against the initial equity) and `P` the periods per year of the bar interval (365 days; hourly:
8,760). Risk-free rate 0. Definitions follow empyrical (Quantopian), which the tests compare,
except that every standard deviation takes ddof=1 (the Backtest JSON contract), the downside
deviation included: sortino is empyrical's times √((n − 1) / n) for n bars.

- total_return   E_end / E_0 − 1
- cagr           (1 + total_return) ^ (P / len(r)) − 1
- sharpe         mean(r) / std(r, ddof=1) · √P
- sortino        mean(r) / √(Σ min(r, 0)² / (n − 1)) · √P  (downside deviation over all n bars,
                 ddof=1, as Sharpe's standard deviation; Sortino & Price 1994 with target 0)
- max_drawdown   min over the curve (E_0 first) of E / running max(E) − 1; negative
- calmar         cagr / |max_drawdown|
- exposure       share of bars with a position
- win_rate       winning trades / trades (a trade wins when its pnl, after costs, is > 0)
- profit_factor  gross profit / gross loss of the trades' pnl in quote currency
- average_trade  mean of the trades' returns (pnl / entry notional)
- trades         number of trades

A figure that is undefined (no trade, no loss, no variation, no drawdown) is None (JSON null).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from intel.backtest.engine import BacktestResult, Trade

__all__ = ["METRIC_NAMES", "Metrics", "compute_metrics", "drawdown", "periods_per_year"]

FloatArray = npt.NDArray[np.float64]
Metrics = dict[str, float | int | None]
METRIC_NAMES = (
    "total_return",
    "cagr",
    "win_rate",
    "profit_factor",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "exposure",
    "trades",
    "average_trade",
)
YEAR_S = 365 * 86_400


def periods_per_year(interval_s: int) -> float:
    """Bars in a 365-day year: 8,760 for hourly bars, 365 for daily ones."""
    return YEAR_S / interval_s


def compute_metrics(result: BacktestResult) -> Metrics:
    """Every metric of the module doc for one backtest."""
    returns = result.returns
    periods = periods_per_year(result.bars.interval_s)
    total = float(result.equity[-1] / result.initial_equity - 1.0)
    growth = cagr(total, returns.size, periods)
    drawdown = max_drawdown(result.equity, result.initial_equity)
    return {
        "total_return": total,
        "cagr": growth,
        "win_rate": win_rate(result.trades),
        "profit_factor": profit_factor(result.trades),
        "sharpe": sharpe(returns, periods),
        "sortino": sortino(returns, periods),
        "max_drawdown": drawdown,
        "calmar": calmar(growth, drawdown),
        "exposure": float(np.mean(result.position != 0.0)),
        "trades": len(result.trades),
        "average_trade": average_trade(result.trades),
    }


def cagr(total_return: float, bars: int, periods: float) -> float | None:
    if bars == 0 or total_return <= -1.0:
        return None if bars == 0 else -1.0
    return float((1.0 + total_return) ** (periods / bars) - 1.0)


def sharpe(returns: FloatArray, periods: float) -> float | None:
    if returns.size < 2:
        return None
    spread = float(np.std(returns, ddof=1))
    return _finite(float(np.mean(returns)) / spread * math.sqrt(periods)) if spread > 0 else None


def sortino(returns: FloatArray, periods: float) -> float | None:
    if returns.size < 2:
        return None
    # ddof=1 like sharpe's std: the downside squares summed over every bar, over n − 1.
    downside = math.sqrt(float(np.sum(np.minimum(returns, 0.0) ** 2)) / (returns.size - 1))
    if downside == 0:
        return None
    return _finite(float(np.mean(returns)) / downside * math.sqrt(periods))


def drawdown(equity: FloatArray, initial_equity: float) -> FloatArray:
    """Each bar's equity against the highest before it (E_0 included), minus 1: ≤ 0."""
    curve = np.concatenate(([initial_equity], equity))
    return (curve / np.maximum.accumulate(curve) - 1.0)[1:]


def max_drawdown(equity: FloatArray, initial_equity: float) -> float:
    return min(0.0, float(np.min(drawdown(equity, initial_equity))))


def calmar(growth: float | None, drawdown: float) -> float | None:
    return None if growth is None or drawdown == 0 else growth / abs(drawdown)


def win_rate(trades: Sequence[Trade]) -> float | None:
    return sum(t.pnl > 0 for t in trades) / len(trades) if trades else None


def profit_factor(trades: Sequence[Trade]) -> float | None:
    gross_profit = sum(t.pnl for t in trades if t.pnl > 0)
    gross_loss = -sum(t.pnl for t in trades if t.pnl < 0)
    return gross_profit / gross_loss if gross_loss > 0 else None


def average_trade(trades: Sequence[Trade]) -> float | None:
    return sum(t.return_ for t in trades) / len(trades) if trades else None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
