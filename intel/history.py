"""Signals over history: the desk's own signals at every step of a market clock over replay.

The rules coordinator, agents and snapshot builder are those `build_desk` composes, over the
shipped replay data; only the market clock moves, so each signal sees exactly what the bot would
have seen at that moment (no look-ahead: the replay sources never show data after the clock).
A modality missing at a moment is unavailable there, exactly as live.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

from intel.config import Config, Secrets
from intel.desk import build_desk
from intel.errors import NoSignalError, UserInputError
from intel.models import Signal
from intel.symbols import normalize_symbol
from intel.timeutil import iso

__all__ = ["iter_signals_over_history", "signals_over_history"]


async def signals_over_history(
    config: Config, symbol: str, start: datetime, end: datetime, step: timedelta
) -> list[Signal]:
    """The signal for `symbol` at `start`, `start + step`, … up to and including `end`.

    `symbol` as people type it (`eth`, `ETH/USDT`). `config`'s data mode and coordinator are
    ignored: history is always the replay data decided by the rules. A moment where the desk
    can give no signal (a gap in the recorded candles, as at Binance outages) has none, as the
    bot would have had none. UserInputError when `step` is not positive or `start` is after
    `end`; NoSignalError when `start` or `end` lies outside the symbol's recorded candles.
    """
    steps = iter_signals_over_history(config, symbol, start, end, step)
    return [signal async for _, _, signal in steps if signal is not None]


async def iter_signals_over_history(
    config: Config, symbol: str, start: datetime, end: datetime, step: timedelta
) -> AsyncIterator[tuple[int, int, Signal | None]]:
    """As `signals_over_history`, one `(steps done, steps in total, signal or None)` per step
    (None: no signal possible at that moment), for progress and for counting the gaps."""
    if step <= timedelta(0):
        raise UserInputError(f"the step must be positive, not {step}")
    if start > end:
        raise UserInputError(f"the start {start.isoformat()} is after the end {end.isoformat()}")
    symbol = normalize_symbol(symbol)  # as people type it: "eth" is ETH/USDT
    total = int((end - start) / step) + 1
    clock = [start]
    # History is the rules' own record: never the LLM (one Groq call per step, spending the live
    # bot's quota), so the coordinator is the rules and no credential reaches the desk.
    replay = config.model_copy(
        update={
            "data": config.data.model_copy(update={"mode": "replay"}),
            "coordinator": config.coordinator.model_copy(update={"kind": "rules"}),
            "secrets": Secrets(),
        }
    )
    desk = build_desk(replay, market_clock=lambda: clock[0])
    async with desk:
        first, last = await desk.coverage(symbol)
        if start < first or end > last:
            raise NoSignalError(
                f"no {symbol} signals over {iso(start)} → {iso(end)}: its recorded candles "
                f"cover {iso(first)} → {iso(last)}"
            )
        for index in range(total):
            clock[0] = start + index * step
            try:
                result = await desk.signal(symbol)
            except NoSignalError:
                yield index + 1, total, None
                continue
            yield index + 1, total, result.signal
