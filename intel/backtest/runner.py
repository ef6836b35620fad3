"""One backtest of a named strategy over the shipped history, beside buy-and-hold.

divergence             the product's rules over the modalities recorded at each moment
                       (candles and Fear & Greed always; whale flows 2024-11-04 → 2025-10-12;
                       Reddit where recorded), stepped every `backtest.signal_step_minutes`
fear-greed-contrarian  Fear & Greed extremes with a trend filter (no other modality)
buy-and-hold           the baseline
stored                 the signals the bot stored (cycle and on-demand), read through
                       `SignalArchive`; intel never imports the bot's store
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt

from intel.backtest.engine import BacktestResult, Costs, run_backtest
from intel.backtest.metrics import Metrics, compute_metrics
from intel.backtest.strategies import buy_and_hold, fear_greed_contrarian, targets_from_signals
from intel.config import Config
from intel.errors import BadTimeError, NoSignalError, NotRecordedError, UserInputError
from intel.history import iter_signals_over_history
from intel.models import Action, CandleSeries, Signal
from intel.sources.replay_candles import ReplayCandleSource
from intel.sources.replay_fear_greed import ReplayFearGreedSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.symbols import resolve_symbol
from intel.timeutil import from_ms, iso, to_ms

__all__ = [
    "STRATEGIES",
    "ArchivedSignal",
    "BacktestReport",
    "Progress",
    "SignalArchive",
    "run_strategy",
]

STRATEGIES = ("divergence", "fear-greed-contrarian", "buy-and-hold", "stored")
Progress = Callable[[int, int], None]  # (done, total) signals over history


class ArchivedSignal(Protocol):
    @property
    def signal(self) -> Signal: ...


class SignalArchive(Protocol):
    """Where stored signals are read from (the bot's store satisfies it)."""

    async def signals(
        self, symbol: str, since: datetime | None = None, until: datetime | None = None
    ) -> Sequence[ArchivedSignal]: ...


@dataclass(frozen=True, slots=True, eq=False)
class BacktestReport:
    symbol: str
    strategy: str
    start: datetime  # first bar's open
    end: datetime  # last bar's close
    result: BacktestResult
    metrics: Metrics
    baseline: BacktestResult  # buy-and-hold over the same bars and costs
    baseline_metrics: Metrics
    signals: int  # signals the strategy read (0 for those that read none)
    calls: int  # of which BUY or SELL
    notes: tuple[str, ...]


async def run_strategy(
    config: Config,
    symbol_text: str,
    strategy: str,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    archive: SignalArchive | None = None,
    progress: Progress | None = None,
) -> BacktestReport:
    """Backtest `strategy` for a symbol over [start, end] (default: all its candles).

    UserInputError for an unknown symbol or strategy, `start` after `end` or a window under two
    bars; BadTimeError for dates outside the candles; NoSignalError for `stored` without an
    archive.
    """
    if strategy not in STRATEGIES:
        choices = ", ".join(STRATEGIES)
        raise UserInputError(f"unknown strategy {strategy!r}; choose one of {choices}")
    symbol = resolve_symbol(symbol_text, config.symbols)
    replay_dir = config.data.replay_dir or DEFAULT_REPLAY_DIR
    history = ReplayCandleSource(replay_dir).history(symbol)
    first, stop = _window(history, symbol, start, end)
    bars = history.window(first, stop)
    signals: list[Signal] = []
    notes: list[str] = []
    match strategy:
        case "buy-and-hold":
            target = buy_and_hold(bars)
        case "fear-greed-contrarian":
            readings = await _fear_greed_by_bar(history, ReplayFearGreedSource(replay_dir))
            target = fear_greed_contrarian(history, readings, config.backtest)[first:stop]
        case "divergence":
            signals, gaps = await _divergence(config, bars, symbol, progress)
            if gaps:
                notes.append(f"{gaps} moments without a signal: gaps in the recorded candles")
            target = targets_from_signals(bars, signals, config.backtest)
        case _:  # "stored"
            signals = await _stored(archive, bars, symbol)
            target = targets_from_signals(bars, signals, config.backtest)
    return _report(config, symbol, strategy, bars, target, signals, notes)


def _report(
    config: Config,
    symbol: str,
    strategy: str,
    bars: CandleSeries,
    target: npt.NDArray[np.float64],
    signals: Sequence[Signal],
    notes: list[str],
) -> BacktestReport:
    cfg = config.backtest
    costs = Costs(fee_bps=cfg.fee_bps, slippage_bps=cfg.slippage_bps)
    result = run_backtest(bars, target, costs, cfg.initial_equity)
    baseline = run_backtest(bars, buy_and_hold(bars), costs, cfg.initial_equity)
    calls = sum(s.action is not Action.HOLD for s in signals)
    if not result.trades:
        notes.append(_never_traded(config, strategy, len(signals), calls))
    return BacktestReport(
        symbol=symbol,
        strategy=strategy,
        start=from_ms(int(bars.open_time_ms[0])),
        end=bars.last_close_time,
        result=result,
        metrics=compute_metrics(result),
        baseline=baseline,
        baseline_metrics=compute_metrics(baseline),
        signals=len(signals),
        calls=calls,
        notes=tuple(notes),
    )


def _never_traded(config: Config, strategy: str, signals: int, calls: int) -> str:
    cfg = config.backtest
    if strategy == "fear-greed-contrarian":
        return (
            f"no trade: Fear & Greed never reached {cfg.fear_max} or below while the close was "
            f"above its {cfg.trend_sma_days}-day average in this window"
        )
    if calls and not cfg.allow_short:
        return (
            f"no trade: the {calls} calls here are SELLs, which only go flat "
            "(backtest.allow_short: false)"
        )
    if strategy == "stored":
        return f"no trade: {signals} stored signals in this window, {calls} of them BUY or SELL"
    return (
        f"no trade: the rules made no BUY or SELL in {signals} signals here — they need whale "
        "flows, recorded only 2024-11-04 → 2025-10-12; elsewhere every signal is HOLD"
    )


def _window(
    history: CandleSeries, symbol: str, start: datetime | None, end: datetime | None
) -> tuple[int, int]:
    """Bar indices [first, stop) with open ≥ start and close ≤ end."""
    interval_ms = history.interval_s * 1000
    lo, hi = int(history.open_time_ms[0]), int(history.open_time_ms[-1]) + interval_ms
    covered = f"the recorded {symbol} candles cover {iso(from_ms(lo))} → {iso(from_ms(hi))}"
    if start is not None and end is not None and start > end:
        raise UserInputError(f"--from {iso(start)} is after --to {iso(end)}")
    for name, moment in (("--from", start), ("--to", end)):
        if moment is not None and not lo <= to_ms(moment) <= hi:
            raise BadTimeError(f"{name} {iso(moment)} is outside the data: {covered}")
    first = int(np.searchsorted(history.open_time_ms, to_ms(start) if start else lo))
    last_open = (to_ms(end) if end else hi) - interval_ms
    stop = int(np.searchsorted(history.open_time_ms, last_open, side="right"))
    if stop - first < 2:
        raise UserInputError(f"the window holds {max(0, stop - first)} bar(s); a backtest needs 2")
    return first, stop


async def _fear_greed_by_bar(
    history: CandleSeries, source: ReplayFearGreedSource
) -> npt.NDArray[np.float64]:
    """The Fear & Greed value published by each bar's close (NaN before the first reading)."""
    close_ms = history.open_time_ms + history.interval_s * 1000
    values = np.full(len(history), np.nan)
    for index, moment in enumerate(close_ms):
        try:
            values[index] = (await source.latest(from_ms(int(moment)))).value
        except NotRecordedError:
            continue
    return values


async def _divergence(
    config: Config, bars: CandleSeries, symbol: str, progress: Progress | None
) -> tuple[list[Signal], int]:
    """The desk's signals at every step over the bars, and how many steps had none."""
    step = timedelta(minutes=config.backtest.signal_step_minutes)
    first_close = from_ms(int(bars.open_time_ms[0]) + bars.interval_s * 1000)
    signals, gaps = [], 0
    async for done, total, signal in iter_signals_over_history(
        config, symbol, first_close, bars.last_close_time, step
    ):
        if signal is None:
            gaps += 1
        else:
            signals.append(signal)
        if progress is not None:
            progress(done, total)
    return signals, gaps


async def _stored(archive: SignalArchive | None, bars: CandleSeries, symbol: str) -> list[Signal]:
    if archive is None:
        raise NoSignalError("no stored signals to replay: no bot database")
    start, end = from_ms(int(bars.open_time_ms[0])), bars.last_close_time
    return [item.signal for item in await archive.signals(symbol, start, end)]
