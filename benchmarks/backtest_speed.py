"""Backtest speed: a moving-average cross over five years of hourly BTC/USDT run by this engine,
by backtesting.py and by vectorbt (the same trades: entry and exit bars and prices), and the
`divergence` strategy over the whole shipped BTC/USDT history.

Run on demand: `.venv/bin/pip install -e '.[bench]'` (backtesting.py is AGPL: only this script
uses it, nothing is copied from it), then `.venv/bin/python benchmarks/backtest_speed.py
[--runs 5] [--skip-divergence]`. Reads `../shared/data/ohlcv` (the data pack) when present, else
the shipped replay candles. Targets (issue 12): >= 50x faster than backtesting.py, within 1.5x of
vectorbt (its numba compile reported apart).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from intel.backtest.engine import Costs, run_backtest
from intel.backtest.metrics import compute_metrics
from intel.backtest.runner import run_strategy
from intel.config import Config
from intel.models import CandleSeries
from intel.sources.replay_candles import ReplayCandleSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR

PACK = Path(__file__).resolve().parents[2] / "shared" / "data" / "ohlcv"
FAST, SLOW = 10, 30  # hours
YEARS = 5


def five_years() -> CandleSeries:
    """The last five years of hourly BTC/USDT bars of the data pack (or of the replay data)."""
    packed = PACK / "binance_spot_BTCUSDT_1h.csv.gz"
    if packed.is_file():
        frame = pd.read_csv(packed)
        series = CandleSeries(
            symbol="BTC/USDT",
            interval_s=3600,
            open_time_ms=frame["timestamp"].to_numpy(np.int64),
            **{
                k: frame[k].to_numpy(np.float64) for k in ("open", "high", "low", "close", "volume")
            },
        )
    else:
        series = ReplayCandleSource(DEFAULT_REPLAY_DIR).history("BTC/USDT")
    return series.tail(YEARS * 365 * 24)


def sma(values: np.ndarray, window: int) -> np.ndarray:
    out = np.full(values.size, np.nan)
    sums = np.cumsum(np.concatenate(([0.0], values)))
    out[window - 1 :] = (sums[window:] - sums[:-window]) / window
    return out


def crossings(close: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """backtesting.py's `crossover`: strictly below the bar before, strictly above now."""
    fast, slow = sma(close, FAST), sma(close, SLOW)
    up = np.zeros(close.size, bool)
    down = np.zeros(close.size, bool)
    up[1:] = (fast[:-1] < slow[:-1]) & (fast[1:] > slow[1:])
    down[1:] = (slow[:-1] < fast[:-1]) & (slow[1:] > fast[1:])
    return up, down


def ours(bars: CandleSeries) -> tuple[list[tuple[int, int, float, float]], float]:
    start = time.perf_counter()
    up, down = crossings(bars.close)
    events = np.where(up, 1.0, np.where(down, 0.0, np.nan))
    known = np.maximum.accumulate(np.where(np.isnan(events), -1, np.arange(events.size)))
    target = np.where(known >= 0, events[np.maximum(known, 0)], 0.0)
    result = run_backtest(bars, target, Costs(), 1_000_000.0)
    compute_metrics(result)
    elapsed = time.perf_counter() - start
    closed = [t for t in result.trades if t.exit_index < len(bars)]
    return [(t.entry_index, t.exit_index, t.entry_price, t.exit_price) for t in closed], elapsed


def frame_of(bars: CandleSeries) -> pd.DataFrame:
    index = pd.to_datetime(bars.open_time_ms, unit="ms")  # timezone-naive, as both need
    return pd.DataFrame(
        {
            "Open": bars.open,
            "High": bars.high,
            "Low": bars.low,
            "Close": bars.close,
            "Volume": bars.volume,
        },
        index=index,
    )


def backtesting_py(frame: pd.DataFrame) -> tuple[list[tuple[int, int, float, float]], float]:
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    def mean(values: np.ndarray, window: int) -> np.ndarray:
        return sma(np.asarray(values, dtype=float), window)

    class Cross(Strategy):
        def init(self) -> None:
            self.fast = self.I(mean, self.data.Close, FAST)
            self.slow = self.I(mean, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Cash enough that whole units do not matter; orders fill at the next bar's open.
        stats = Backtest(frame, Cross, cash=1e12, commission=0.0).run()
    elapsed = time.perf_counter() - start
    trades = stats["_trades"]
    rows = zip(
        trades["EntryBar"],
        trades["ExitBar"],
        trades["EntryPrice"],
        trades["ExitPrice"],
        strict=True,
    )
    return [(int(a), int(b), float(c), float(d)) for a, b, c, d in rows], elapsed


def vectorbt(frame: pd.DataFrame, bars: CandleSeries) -> tuple[list[tuple], float, float]:
    import vectorbt as vbt

    up, down = crossings(bars.close)
    # Decided at a bar's close, filled at the next bar's open.
    entries = pd.Series(np.concatenate(([False], up[:-1])), index=frame.index)
    exits = pd.Series(np.concatenate(([False], down[:-1])), index=frame.index)

    def run(n: int) -> list[tuple]:
        pf = vbt.Portfolio.from_signals(
            frame["Close"][:n],
            entries[:n],
            exits[:n],
            price=frame["Open"][:n],
            fees=0.0,
            init_cash=1_000_000.0,
            freq="1h",
        )
        for metric in (
            pf.total_return,
            pf.sharpe_ratio,
            pf.sortino_ratio,
            pf.max_drawdown,
            pf.calmar_ratio,
            pf.trades.win_rate,
            pf.trades.profit_factor,
        ):
            metric()
        records = pf.trades.records
        closed = records[records["status"] == 1]
        return list(
            zip(
                closed["entry_idx"],
                closed["exit_idx"],
                closed["entry_price"],
                closed["exit_price"],
                strict=True,
            )
        )

    start = time.perf_counter()
    run(500)  # numba compiles on the first call
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    trades = run(len(frame))
    return trades, time.perf_counter() - start, compile_s


def same(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(
        x[0] == y[0] and x[1] == y[1] and np.isclose(x[2], y[2]) and np.isclose(x[3], y[3])
        for x, y in zip(a, b, strict=True)
    )


def best(fn, runs: int) -> tuple:
    results = [fn() for _ in range(runs)]
    return min(results, key=lambda r: r[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-divergence", action="store_true")
    args = parser.parse_args()
    bars = five_years()
    frame = frame_of(bars)
    print(
        f"MA cross {FAST}/{SLOW} h over {len(bars):,} hourly BTC/USDT bars, fees 0, "
        f"best of {args.runs}"
    )
    our_trades, our_s = best(lambda: ours(bars), args.runs)
    bt_trades, bt_s = best(lambda: backtesting_py(frame), max(1, args.runs // 2))
    vbt_runs = [vectorbt(frame, bars) for _ in range(args.runs)]
    vbt_trades, vbt_s, _ = min(vbt_runs, key=lambda r: r[1])
    print(f"  this engine     {our_s * 1000:9.1f} ms   {len(our_trades)} closed trades")
    print(
        f"  backtesting.py  {bt_s * 1000:9.1f} ms   same trades: {same(our_trades, bt_trades)}"
        f"   ours is {bt_s / our_s:,.0f}x faster (target >= 50x)"
    )
    print(
        f"  vectorbt        {vbt_s * 1000:9.1f} ms   same trades: {same(our_trades, vbt_trades)}"
        f"   ours takes {our_s / vbt_s:.2f}x its time (target <= 1.5x); "
        f"numba compile apart: {vbt_runs[0][2]:.1f} s"
    )
    if not args.skip_divergence:
        divergence_over_history()


def divergence_over_history() -> None:
    start = time.perf_counter()
    report = asyncio.run(run_strategy(Config(), "BTC/USDT", "divergence"))
    elapsed = time.perf_counter() - start
    print(
        f"divergence over the whole shipped BTC/USDT history ({report.start:%Y-%m-%d} → "
        f"{report.end:%Y-%m-%d}): {report.signals:,} signals in {elapsed:.1f} s, "
        f"{report.signals / elapsed:,.0f} signals/s, {report.metrics['trades']} trades"
    )


if __name__ == "__main__":
    main()
