"""One signal cycle: every followed symbol computed once, alerts planned, all recorded atomically.

The signal is the desk's, unchanged; the alert policy (`bot.alerts`) then decides what it means
for each chat and user, from the symbol's call state, which is recorded with the signal.

A failure for one symbol is logged and never stops the others; a chart that cannot be drawn costs
only the picture (the signal and its alerts are recorded without it). A symbol already computed at
this market moment (the demo clock at the end of the data, or a restart at the moment where the
last run stopped) is not computed again: the same data would only repeat the same signal.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import structlog

from bot.alerts.calls import advance_call, steady_changed
from bot.alerts.policy import plan_deliveries
from bot.config import BotConfig
from bot.storage.base import (
    AlertStateStore,
    MetaStore,
    SignalLog,
    SignalOrigin,
    SubscriptionStore,
    WatchlistStore,
)
from intel.desk import SignalDesk
from intel.errors import UserInputError
from intel.pipeline import SignalResult
from intel.timeutil import iso, parse_time, utcnow

if TYPE_CHECKING:  # at run time it would load matplotlib into `status`, which reads this module
    from bot.render.chart_task import ChartFn

__all__ = [
    "LAST_CYCLE_AT",
    "LAST_CYCLE_MARKET_AT",
    "CycleResult",
    "CycleStore",
    "SignalCycle",
    "stored_time",
]

LAST_CYCLE_AT = "last_cycle_at"  # wall-clock time the last cycle finished (ISO-8601 UTC)
LAST_CYCLE_MARKET_AT = "last_cycle_market_at"  # the market moment it computed

log = structlog.get_logger(__name__)


class CycleStore(
    SubscriptionStore, WatchlistStore, SignalLog, AlertStateStore, MetaStore, Protocol
):
    """What the cycle reads and writes: everything but the outbox, which it fills only through
    `record_signal`."""


@dataclass(frozen=True, slots=True)
class CycleResult:
    """What one cycle did, for logs and tests."""

    market_at: datetime
    computed: tuple[str, ...]
    deliveries: int
    failed: tuple[str, ...]


class SignalCycle:
    def __init__(
        self,
        desk: SignalDesk,
        store: CycleStore,
        config: BotConfig,
        render_chart: ChartFn,
        on_recorded: Callable[[], None],
        wall_clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._desk = desk
        self._store = store
        self._config = config
        self._render_chart = render_chart
        self._on_recorded = on_recorded
        self._wall_clock = wall_clock
        self._streamed: tuple[str, ...] = ()  # the order books streamed, as last asked

    async def run_once(self) -> CycleResult:
        """Compute every followed symbol once at the current market moment; never raises.

        Signals are computed concurrently, at most `schedule.max_concurrent_symbols` at once
        (each source's rate limit paces its own calls); they are recorded one by one, in symbol
        order, so alerts and the store see the same sequence as before.
        """
        market_at = self._desk.now().replace(microsecond=0)
        computed: list[str] = []
        failed: list[str] = []
        deliveries = 0
        symbols = sorted(await self.followed_symbols())
        self._follow_books(symbols)  # subscriptions and watchlists may have changed since
        slots = asyncio.Semaphore(self._config.schedule.max_concurrent_symbols)
        results = await asyncio.gather(
            *(self._compute(symbol, market_at, slots) for symbol in symbols),
            return_exceptions=True,
        )
        for symbol, outcome in zip(symbols, results, strict=True):
            try:
                if isinstance(outcome, BaseException):
                    raise outcome
                sent = None if outcome is None else await self._record(symbol, outcome)
            except Exception:  # one symbol's failure must not stop the others
                log.exception("cycle_symbol_failed", symbol=symbol, market_at=iso(market_at))
                failed.append(symbol)
                continue
            if sent is not None:
                computed.append(symbol)
                deliveries += sent
        await self._store.set_meta(LAST_CYCLE_AT, iso(self._wall_clock()))
        await self._store.set_meta(LAST_CYCLE_MARKET_AT, iso(market_at))
        result = CycleResult(market_at, tuple(computed), deliveries, tuple(failed))
        log.info(
            "cycle_done",
            market_at=iso(market_at),
            computed=list(computed),
            deliveries=deliveries,
            failed=list(failed),
        )
        return result

    async def followed_symbols(self) -> set[str]:
        """Symbols in any watchlist or subscription; all of them when a chat subscribed to all."""
        followed = set(await self._store.followed_symbols())
        for symbol in self._desk.symbols:
            if symbol in followed:
                continue
            # The Store has no "any all-symbol subscription?" query; ask per configured symbol.
            subscriptions = await self._store.subscriptions_for(symbol)
            if any(sub.active and not sub.symbols for sub in subscriptions):
                return set(self._desk.symbols)
        return followed & set(self._desk.symbols)

    async def follow_books(self) -> tuple[str, ...]:
        """Live: stream the order books of the followed symbols (see `SignalDesk.follow_books`);
        the symbols streamed. Called at start and by every cycle."""
        return self._follow_books(sorted(await self.followed_symbols()))

    def _follow_books(self, symbols: list[str]) -> tuple[str, ...]:
        try:
            streamed = self._desk.follow_books(symbols)
        except Exception:  # the books are then read over REST: no reason to stop the cycle
            log.exception("orderbook_follow_failed", symbols=symbols)
            return ()
        if streamed != self._streamed:  # logged when it changes, not every cycle
            log.info("orderbook_streams", symbols=list(streamed))
            self._streamed = streamed
        return streamed

    async def _compute(
        self, symbol: str, market_at: datetime, slots: asyncio.Semaphore
    ) -> SignalResult | None:
        """The symbol's signal at `market_at`; None when already computed for that moment."""
        last = await self._store.last_signal(symbol)
        if last is not None and last.signal.as_of >= market_at:
            return None
        async with slots:
            return await self._desk.signal(symbol, market_at)

    async def _record(self, symbol: str, result: SignalResult) -> int:
        """Plan and record one computed signal; the number of deliveries."""
        signal = result.signal
        before = await self._store.call_state(symbol)
        state = advance_call(before, signal, self._config.alerts)  # the dwell and hysteresis
        deliveries = plan_deliveries(
            signal,
            state,
            await self._store.subscriptions_for(symbol),
            await self._store.chat_states(symbol),
            await self._store.watchers(symbol),
            await self._store.dm_states(symbol),
            self._config.alerts.confidence_step,
        )
        alerted = steady_changed(before, state)
        chart = None
        if deliveries:  # the chart costs a few hundred ms; only messages need it
            chart = await self._render_chart(signal, result.snapshot)  # None when drawing failed
        await self._store.record_signal(
            signal, chart, deliveries, alerted, SignalOrigin.CYCLE, state
        )
        log.info(
            "signal_recorded",
            symbol=symbol,
            action=signal.action.value,
            confidence=signal.confidence,
            alerted=alerted,
            deliveries=len(deliveries),
        )
        if deliveries:
            self._on_recorded()
        return len(deliveries)


async def stored_time(store: MetaStore, key: str) -> datetime | None:
    """A time kept in the store's meta table; None when absent or unreadable (logged)."""
    value = await store.get_meta(key)
    if value is None:
        return None
    with contextlib.suppress(UserInputError):
        return parse_time(value)
    log.warning("bad_stored_time", key=key)
    return None
