"""The backtest engine against an independent bar-by-bar simulation on recorded candles, its
metrics against empyrical (test-only dependency), and the no-look-ahead guarantees."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import numpy as np
import pytest

from intel.backtest.engine import Costs, run_backtest
from intel.backtest.metrics import compute_metrics
from intel.backtest.strategies import fear_greed_contrarian, targets_from_signals
from intel.config import BacktestConfig
from intel.models import Action, PositionSize
from intel.sources.replay_candles import ReplayCandleSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.timeutil import from_ms

from .factories import make_signal

empyrical = pytest.importorskip("empyrical")

HISTORY = ReplayCandleSource(DEFAULT_REPLAY_DIR).history("BTC/USDT")
BARS = HISTORY.window(60_000, 62_000)  # 2,000 recorded hourly bars (2024)
HOURLY_YEAR = 8760


def reference(open_, close, target, fee, slip, equity0):
    """Cash-and-units bookkeeping, one bar at a time: the engine's model written out plainly."""
    cash, units, held, equity, trades = equity0, 0.0, 0.0, [], []
    entry = None
    for j in range(len(open_)):
        want = target[j - 1] if j else 0.0
        if want != held:
            if units:
                price = open_[j] * (1 - np.sign(units) * slip)
                cash += units * price - fee * abs(units) * price
                trades.append((entry[0], j, entry[1], price, cash - entry[2]))
                units = 0.0
            if want:
                price = open_[j] * (1 + np.sign(want) * slip)
                units = want * cash / (price * (1 + fee))  # notional + fee = want × equity
                entry = (j, price, cash)
                cash -= units * price + fee * abs(units) * price
            held = want
        equity.append(cash + units * close[j])
    if units:
        price = close[-1] * (1 - np.sign(units) * slip)
        cash += units * price - fee * abs(units) * price
        trades.append((entry[0], len(open_), entry[1], price, cash - entry[2]))
        equity[-1] = cash
    return np.array(equity), trades


def random_target(seed: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    levels = np.array([-1.0, -0.5, 0.0, 0.0, 0.25, 0.5, 1.0])
    changes = rng.random(n) < 0.03  # a new position every ~30 bars
    picks = levels[rng.integers(0, levels.size, n)]
    target = np.where(changes, picks, np.nan)
    target[0] = 0.0
    last = np.maximum.accumulate(np.where(np.isnan(target), 0, np.arange(n)))
    return target[last]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_equity_and_trades_match_a_bar_by_bar_simulation(seed) -> None:
    target = random_target(seed, len(BARS))
    result = run_backtest(BARS, target, Costs(fee_bps=10, slippage_bps=5), 10_000)
    equity, trades = reference(BARS.open, BARS.close, target, 0.001, 0.0005, 10_000)
    np.testing.assert_allclose(result.equity, equity, rtol=1e-10)
    assert len(result.trades) == len(trades) > 10
    for trade, (entry_i, exit_i, entry_px, exit_px, pnl) in zip(result.trades, trades, strict=True):
        assert (trade.entry_index, trade.exit_index) == (entry_i, exit_i)
        assert trade.entry_price == pytest.approx(entry_px, rel=1e-12)
        assert trade.exit_price == pytest.approx(exit_px, rel=1e-12)
        assert trade.pnl == pytest.approx(pnl, rel=1e-9, abs=1e-9)


def test_a_decision_fills_at_the_next_bars_open_never_its_own() -> None:
    target = np.zeros(len(BARS))
    target[100:150] = 1.0  # long decided at the close of bar 100, flat at the close of 150
    result = run_backtest(BARS, target, Costs(slippage_bps=0), 1_000)
    (trade,) = result.trades
    assert (trade.entry_index, trade.exit_index) == (101, 151)
    assert trade.entry_price == BARS.open[101]
    assert trade.exit_price == BARS.open[151]
    assert trade.entry_time_ms == BARS.open_time_ms[101]
    # Nothing moves before the fill: the bar that produced the decision is still flat.
    assert np.all(result.equity[:101] == 1_000)


def test_equity_never_depends_on_later_decisions() -> None:
    base = random_target(7, len(BARS))
    other = base.copy()
    other[1200:] = -other[1200:] + 0.5 * (other[1200:] == 0)  # different decisions from 1200 on
    costs = Costs(fee_bps=10, slippage_bps=2)
    a, b = run_backtest(BARS, base, costs, 1_000), run_backtest(BARS, other, costs, 1_000)
    np.testing.assert_array_equal(a.equity[:1201], b.equity[:1201])
    assert not np.array_equal(a.equity[1201:], b.equity[1201:])


def test_bad_targets_are_refused() -> None:
    with pytest.raises(ValueError, match="shape"):
        run_backtest(BARS, np.zeros(3), Costs(), 1_000)
    with pytest.raises(ValueError, match="within"):
        run_backtest(BARS, np.full(len(BARS), 1.5), Costs(), 1_000)


def test_metrics_match_empyrical_at_the_hourly_interval() -> None:
    result = run_backtest(BARS, random_target(11, len(BARS)), Costs(10, 2), 10_000)
    metrics = compute_metrics(result)
    returns = result.returns
    kw = {"annualization": HOURLY_YEAR}
    assert metrics["sharpe"] == pytest.approx(empyrical.sharpe_ratio(returns, **kw), rel=1e-9)
    # empyrical's downside deviation is the population one, √(mean(min(r, 0)²)); ours takes
    # ddof=1 as the contract says, √(Σ min(r, 0)² / (n − 1)), so ours = empyrical's · √((n−1)/n).
    n = returns.size
    ddof1 = empyrical.sortino_ratio(returns, **kw) * math.sqrt((n - 1) / n)
    assert metrics["sortino"] == pytest.approx(ddof1, rel=1e-9)
    assert metrics["sortino"] != pytest.approx(empyrical.sortino_ratio(returns, **kw), rel=1e-9)
    assert metrics["cagr"] == pytest.approx(empyrical.annual_return(returns, **kw), rel=1e-9)
    assert metrics["max_drawdown"] == pytest.approx(empyrical.max_drawdown(returns), rel=1e-9)
    assert metrics["calmar"] == pytest.approx(empyrical.calmar_ratio(returns, **kw), rel=1e-9)
    total = empyrical.cum_returns_final(returns)
    assert metrics["total_return"] == pytest.approx(total, rel=1e-9)
    assert metrics["max_drawdown"] < 0


def test_trade_metrics_are_per_trade_in_quote_currency() -> None:
    target = random_target(5, len(BARS))
    result = run_backtest(BARS, target, Costs(10, 2), 10_000)
    _, trades = reference(BARS.open, BARS.close, target, 0.001, 0.0002, 10_000)
    pnl = np.array([t[4] for t in trades])
    metrics = compute_metrics(result)
    assert metrics["trades"] == pnl.size
    assert metrics["win_rate"] == pytest.approx(np.mean(pnl > 0))
    assert metrics["profit_factor"] == pytest.approx(pnl[pnl > 0].sum() / -pnl[pnl < 0].sum())
    assert metrics["exposure"] == pytest.approx(np.mean(np.concatenate(([0], target[:-1])) != 0))


def test_undefined_metrics_are_none_not_infinite() -> None:
    flat = compute_metrics(run_backtest(BARS, np.zeros(len(BARS)), Costs(10, 2), 1_000))
    assert flat["trades"] == 0
    assert flat["total_return"] == 0
    for name in ("win_rate", "profit_factor", "sharpe", "sortino", "calmar", "average_trade"):
        assert flat[name] is None


def _call(action: Action, bar: int, hours: int, size: PositionSize):
    as_of = from_ms(int(BARS.open_time_ms[bar]) + 3_600_000)  # the close of `bar`
    signal = make_signal(action=action) if action is not Action.HOLD else make_signal()
    return dataclasses.replace(
        signal, action=action, as_of=as_of, timeframe_hours=hours, position_size=size
    )


def test_a_call_is_held_over_its_horizon_from_the_next_open() -> None:
    config = BacktestConfig()
    buy = _call(Action.BUY, 100, 24, PositionSize.MODERATE)
    target = targets_from_signals(BARS, [buy], config)
    result = run_backtest(BARS, target, Costs(), 1_000)
    (trade,) = result.trades
    # Entry: the first open after as_of; exit: the open at as_of + 24 h.
    assert from_ms(trade.entry_time_ms) == buy.as_of
    assert from_ms(trade.exit_time_ms) == buy.as_of + timedelta(hours=24)
    assert trade.size == config.sizing.moderate


def test_a_sell_goes_flat_or_short_and_replaces_an_earlier_buy() -> None:
    buy = _call(Action.BUY, 100, 24, PositionSize.AGGRESSIVE)
    sell = _call(Action.SELL, 110, 6, PositionSize.CONSERVATIVE)
    hold = _call(Action.HOLD, 105, 6, PositionSize.CONSERVATIVE)
    flat = targets_from_signals(BARS, [sell, hold, buy], BacktestConfig())
    assert np.all(flat[100:110] == 1.0)
    assert np.all(flat[110:] == 0.0)
    short = targets_from_signals(BARS, [buy, hold, sell], BacktestConfig(allow_short=True))
    assert np.all(short[110:116] == -0.25)
    assert np.all(short[116:] == 0.0)


def test_fear_greed_contrarian_never_uses_later_bars() -> None:
    config = BacktestConfig(allow_short=True, trend_sma_days=5)
    rng = np.random.default_rng(3)
    readings = rng.integers(0, 101, len(BARS)).astype(float)
    full = fear_greed_contrarian(BARS, readings, config)
    cut = 1500
    early = fear_greed_contrarian(BARS.window(0, cut), readings[:cut], config)
    np.testing.assert_array_equal(full[:cut], early)
    assert np.any(full > 0)
    assert np.any(full < 0)


def test_fear_greed_contrarian_follows_its_rule() -> None:
    config = BacktestConfig(trend_sma_days=5)
    window = 5 * 24
    sma = np.full(len(BARS), np.nan)
    sma[window - 1 :] = np.convolve(BARS.close, np.ones(window) / window, mode="valid")
    uptrend = BARS.close > sma
    start = int(np.flatnonzero(uptrend)[10])
    leave = start + int(np.flatnonzero(~uptrend[start:])[0])
    readings = np.full(len(BARS), 50.0)
    readings[start] = 10  # extreme fear in an uptrend: in, until the close drops below the SMA
    target = fear_greed_contrarian(BARS, readings, config)
    assert target[start - 1] == 0.0
    assert np.all(target[start:leave] == 1.0)
    assert target[leave] == 0.0
    readings[start + 1] = 80  # extreme greed: out at once
    target = fear_greed_contrarian(BARS, readings, config)
    assert target[start] == 1.0
    assert target[start + 1] == 0.0
