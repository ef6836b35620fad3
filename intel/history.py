"""Signals over history: the product's own desk run over replay with a stepped market clock.

Each signal is computed at its moment exactly as `signal --at` would, from data known then, so
modalities the recording lacks at that moment are unavailable to the rules, as they would be live.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from intel.config import Config
from intel.desk import build_desk
from intel.errors import ConfigError, UserInputError
from intel.models import Signal

__all__ = ["signals_over_history"]


async def signals_over_history(
    config: Config, symbol: str, start: datetime, end: datetime, step: timedelta
) -> list[Signal]:
    """The signals for `symbol` at start, start + step, … ≤ end, oldest first; moments outside
    the symbol's candles are skipped. ConfigError in live mode, UserInputError for a step ≤ 0."""
    if config.data.mode != "replay":
        raise ConfigError("signals over history need replay data (data.mode: replay)")
    if step <= timedelta(0):
        raise UserInputError(f"the step between signals must be positive, not {step}")
    moment = start
    desk = build_desk(config, market_clock=lambda: moment)
    signals: list[Signal] = []
    async with desk:
        canonical = desk.resolve(symbol)
        first, last = await desk.coverage(canonical)
        while moment <= end:
            if first <= moment <= last:
                signals.append((await desk.signal(canonical, moment)).signal)
            moment += step
    return signals
