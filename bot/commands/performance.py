"""`performance [SYMBOL]`: the track record of this bot's own signals, read from the signal log.

The public figure scores the signals the bot sent (cycle signals that changed the alerted call);
every cycle signal is the second figure, and signals asked for in chat are shown apart. Calls are
judged by `intel.outcome` against candles closed by the market clock, so a call still running is
pending, never scored.

Each answer reads the whole signal log and (in live mode) fetches candles from the exchange back
to the oldest signal, so a user waits `commands.performance_cooldown_s` between answers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from cachetools import TTLCache

from bot.commands.base import Reply, Request
from bot.commands.registry import Command, check_arg_count
from bot.render.scorecard import Performance, render_performance, render_reliability_chart
from bot.storage.base import SignalLog, SignalOrigin, StoredSignal
from intel.errors import SourceError, UserInputError
from intel.models import CandleSeries, Signal
from intel.scorecard import MIN_GROUP, Scorecard, build_scorecard

__all__ = ["PerformanceCommands", "PriceDesk", "gather_performance"]

USAGE = "performance [SYMBOL]"
HOUR_S = 3600


class PriceDesk(Protocol):
    """The part of the desk `performance` reads: symbols, the market clock and past candles."""

    @property
    def symbols(self) -> tuple[str, ...]: ...

    def resolve(self, text: str) -> str: ...

    def now(self) -> datetime: ...

    async def candles(self, symbol: str, now: datetime, count: int) -> CandleSeries: ...


class PerformanceCommands:
    """The `performance` command group; `cooldown_s` per user between answers."""

    def __init__(
        self,
        desk: PriceDesk,
        signals: SignalLog,
        cooldown_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._desk = desk
        self._signals = signals
        self._cooldown_s = cooldown_s
        self._clock = clock
        # Forgets a user once their cooldown has passed, so memory stays small.
        self._answered_at: TTLCache[tuple[str, str], float] | dict[tuple[str, str], float] = (
            TTLCache(10_000, cooldown_s, timer=clock) if cooldown_s > 0 else {}
        )

    def commands(self) -> tuple[Command, ...]:
        return (
            Command(
                "performance",
                self.performance,
                "how often the bot's calls were right, beside chance, with a reliability chart",
                "performance btc",
                USAGE,
            ),
        )

    async def performance(self, request: Request) -> Reply:
        check_arg_count(request.args, USAGE, most=1)
        symbols = (
            (self._desk.resolve(request.args[0]),) if request.args else tuple(self._desk.symbols)
        )
        who = (request.transport, request.user_id)
        wait_s = self._answered_at.get(who, -math.inf) + self._cooldown_s - self._clock()
        if wait_s > 0:
            raise UserInputError(
                f"one performance report per {self._cooldown_s:g} s — try again in "
                f"{math.ceil(wait_s):.0f} s"
            )
        performance = await gather_performance(self._desk, self._signals, symbols)
        if self._cooldown_s > 0:  # only an answer costs the user the wait
            self._answered_at[who] = self._clock()
        return Reply(text=render_performance(performance), chart_png=_chart(performance))


async def gather_performance(
    desk: PriceDesk, log: SignalLog, symbols: Sequence[str]
) -> Performance:
    """The three scorecards of `symbols`' stored signals as known at the desk's market moment."""
    now = desk.now()
    stored: list[StoredSignal] = []
    candles: dict[str, CandleSeries] = {}
    no_price: list[str] = []
    for symbol in symbols:
        history = [s for s in await log.signals(symbol) if s.signal.as_of <= now]
        stored.extend(history)
        if not history:
            continue
        hours = math.ceil((now - history[0].signal.as_of).total_seconds() / HOUR_S) + 2
        try:
            candles[symbol] = await desk.candles(symbol, now, hours)
        except SourceError:
            no_price.append(symbol)

    def card(chosen: list[Signal]) -> Scorecard:
        return build_scorecard(chosen, candles, now)

    cycle = [s for s in stored if s.origin == SignalOrigin.CYCLE]
    return Performance(
        symbols=tuple(symbols),
        market_now=now,
        sent=card([s.signal for s in cycle if s.alerted]),
        cycle=card([s.signal for s in cycle]),
        on_demand=card([s.signal for s in stored if s.origin == SignalOrigin.ON_DEMAND]),
        no_price=tuple(no_price),
    )


def _chart(performance: Performance) -> bytes | None:
    """The sent signals' reliability once they are enough to read, else every cycle signal's;
    the rules' raw confidence beside the calibrated one when they differ."""
    if performance.sent.hits.count >= MIN_GROUP:
        card, whose = performance.sent, "signals sent"
    elif performance.cycle.hits.count:
        card, whose = performance.cycle, "every scheduled signal (too few sent yet)"
    else:
        return None
    curves = [("confidence shown", card.reliability)]
    if card.raw_reliability != card.reliability:
        curves = [("raw rules confidence", card.raw_reliability), *curves]
    return render_reliability_chart(curves, f"Reliability · {whose}", card.base_rate)
