"""`signal SYMBOL`, and the guard that protects on-demand computation.

The guard applies a cooldown per user and symbol, shares one computation between concurrent
requests for the same symbol (single flight: a request joins the computation already running for
its symbol), caps how many symbols one user has in flight, and caps how many computations run at
once; when that cap is full a request waits, bounded by `signal_wait_s`, before it is told to
retry. Only an answered signal starts the cooldown: "busy" or an error costs the user nothing.
Each computed signal is kept in the store (origin "on_demand").
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import structlog
from cachetools import TTLCache

from bot.commands.alerts import EXAMPLE_THRESHOLD
from bot.commands.base import Field, Reply, Request
from bot.commands.registry import Command, Desk, check_arg_count, error_reply
from bot.config import CommandsConfig
from bot.render.chart_task import ChartFn
from bot.render.text import MODALITY_TITLES, modality_line, render_text
from bot.storage.base import SignalLog, SignalOrigin
from intel.coordinator.budget import on_demand
from intel.models import AgentReport, Signal
from intel.pipeline import SignalResult
from intel.symbols import base_asset

__all__ = [
    "BusyError",
    "InFlightCapError",
    "SignalCommands",
    "SignalGuard",
    "SignalOutcome",
    "modality_fields",
]

log = structlog.get_logger(__name__)

USAGE = "signal SYMBOL"
# Bounds the cooldown memory; past this many (user, symbol) pairs the oldest are forgotten.
_MAX_TRACKED_REQUESTS = 100_000
UserKey = tuple[str, str]  # (transport, user_id)


class BusyError(Exception):
    """Every computation slot stayed busy for the whole bounded wait."""


class InFlightCapError(Exception):
    """This user already has as many symbols computing as one user may."""

    def __init__(self, symbols: tuple[str, ...]) -> None:
        super().__init__(", ".join(symbols))
        self.symbols = symbols


@dataclass(frozen=True, slots=True)
class SignalOutcome:
    """One computation, shared by every request that joined it."""

    result: SignalResult
    chart_png: bytes | None


class SignalGuard:
    """Cooldown per (transport, user, symbol), a cap per user on symbols in flight, single
    flight per symbol, a concurrency cap."""

    def __init__(
        self,
        desk: Desk,
        store: SignalLog,
        config: CommandsConfig,
        render_chart: ChartFn,
        clock: Callable[[], float],
    ) -> None:
        self._desk = desk
        self._store = store
        self._render_chart = render_chart
        self._cooldown_s = config.signal_cooldown_s
        self._wait_s = config.signal_wait_s
        self._per_user = config.max_signals_in_flight_per_user
        self._slots = asyncio.Semaphore(config.max_concurrent_signals)
        self._in_flight: dict[str, asyncio.Task[SignalOutcome]] = {}
        # Per user: how many of their requests wait on each symbol (duplicates join, uncounted).
        self._asking: dict[UserKey, Counter[str]] = {}
        # cachetools' TTLCache forgets a pair once the cooldown has passed, so memory stays small.
        self._last_request: TTLCache[tuple[str, str, str], float] | None = (
            TTLCache(_MAX_TRACKED_REQUESTS, config.signal_cooldown_s, timer=clock)
            if config.signal_cooldown_s > 0
            else None
        )
        self._clock = clock

    def cooldown_left_s(self, transport: str, user_id: str, symbol: str) -> float:
        """Seconds before this user may ask for this symbol again; 0 when they may ask now."""
        if self._last_request is None:
            return 0.0
        asked_at = self._last_request.get((transport, user_id, symbol))
        if asked_at is None:
            return 0.0
        return max(0.0, asked_at + self._cooldown_s - self._clock())

    def start_cooldown(self, transport: str, user_id: str, symbol: str) -> None:
        if self._last_request is not None:
            self._last_request[(transport, user_id, symbol)] = self._clock()

    @contextmanager
    def asking(self, transport: str, user_id: str, symbol: str) -> Iterator[None]:
        """Count this request against the user's cap; InFlightCapError when it is full.

        A second request for a symbol the user already waits on joins it and takes no more room.
        """
        key = (transport, user_id)
        waiting = self._asking.setdefault(key, Counter())
        if symbol not in waiting and len(waiting) >= self._per_user:
            raise InFlightCapError(tuple(sorted(waiting)))
        waiting[symbol] += 1
        try:
            yield
        finally:
            waiting[symbol] -= 1
            if waiting[symbol] <= 0:
                del waiting[symbol]
            if not waiting:
                del self._asking[key]

    async def compute(self, symbol: str) -> SignalOutcome:
        """The signal now, joining the computation already under way for this symbol, if any.

        Keyed by symbol alone: with a moving market clock no two requests see the same moment,
        and one that arrives mid-computation wants that answer, not a second one a moment later.
        """
        task = self._in_flight.get(symbol)
        if task is None:
            task = asyncio.create_task(self._compute(symbol))
            self._in_flight[symbol] = task
            task.add_done_callback(lambda done: self._finished(symbol, done))
        # shield: one requester giving up must not cancel the others' shared computation.
        return await asyncio.shield(task)

    def _finished(self, symbol: str, task: asyncio.Task[SignalOutcome]) -> None:
        if self._in_flight.get(symbol) is task:
            del self._in_flight[symbol]
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every requester went away

    async def _compute(self, symbol: str) -> SignalOutcome:
        try:
            async with asyncio.timeout(self._wait_s):
                await self._slots.acquire()
        except TimeoutError:
            raise BusyError from None
        try:
            result = await self._desk.signal(symbol)  # at the desk's market moment now
            chart_png = await self._render_chart(result.signal, result.snapshot)
        finally:
            self._slots.release()
        await self._keep(result.signal)
        return SignalOutcome(result=result, chart_png=chart_png)

    async def _keep(self, signal: Signal) -> None:
        """Store the computed signal once (not per joiner); a failed write never costs the reply."""
        try:
            await self._store.record_signal(
                signal, chart_png=None, deliveries=(), alerted=False, origin=SignalOrigin.ON_DEMAND
            )
        except Exception:
            log.exception("on_demand_signal_not_stored", symbol=signal.symbol)


def modality_fields(signal: Signal) -> tuple[Field, ...]:
    """One field per modality, each a one-line score and its figures; missing ones say so."""
    fields = [
        Field(title, _modality_value(key, signal.reports.get(key)))
        for key, title in MODALITY_TITLES.items()
    ]
    fields.extend(
        Field(key.replace("_", " ").capitalize(), _modality_value(key, report))
        for key, report in signal.reports.items()
        if key not in MODALITY_TITLES
    )
    return tuple(fields)


def _modality_value(key: str, report: AgentReport | None) -> str:
    if report is None:
        return "n/a · unavailable: no report"
    # modality_line is "<title padded> <score>  <figures>"; the field carries the title already.
    title = MODALITY_TITLES.get(key, key.replace("_", " ").capitalize())
    body = modality_line(key, report).removeprefix(f"{title:<11} ").strip()
    return " · ".join(part.strip() for part in body.split("  ", 1) if part.strip())


class SignalCommands:
    """The `signal` command group."""

    def __init__(self, desk: Desk, guard: SignalGuard) -> None:
        self._desk = desk
        self._guard = guard

    def commands(self) -> tuple[Command, ...]:
        return (
            Command(
                "signal",
                self.signal,
                "a signal for one symbol now, with its chart",
                f"signal {base_asset(self._desk.symbols[0]).lower()}",
                USAGE,
            ),
        )

    async def signal(self, request: Request) -> Reply:
        check_arg_count(request.args, USAGE, least=1, most=1)
        symbol = self._desk.resolve(request.args[0])
        who = (request.transport, request.user_id)
        wait_s = self._guard.cooldown_left_s(*who, symbol)
        if wait_s > 0:
            return error_reply(
                f"not so fast — you can ask for another {symbol} signal in {math.ceil(wait_s)} s"
            )
        try:
            # on_demand: the LLM may draw on the share of its budget kept for /signal.
            with self._guard.asking(*who, symbol), on_demand(":".join(who)):
                outcome = await self._guard.compute(symbol)
        except InFlightCapError as exc:
            still = "signals are" if len(exc.symbols) > 1 else "signal is"
            return error_reply(
                f"your {', '.join(exc.symbols)} {still} still computing — ask again once answered"
            )
        except BusyError:
            return error_reply("busy computing other signals right now — try again in a minute")
        # Only an answer costs the cooldown; a user's concurrent duplicates joined this same
        # computation, so they cost nothing extra either.
        self._guard.start_cooldown(*who, symbol)
        return signal_reply(outcome)


def signal_reply(outcome: SignalOutcome) -> Reply:
    """The reply for a computed signal: the text, one field per modality, the chart."""
    signal = outcome.result.signal
    base = base_asset(signal.symbol).lower()
    next_step = (
        f"`watch add {base}` to follow {signal.symbol}, then `alerts {EXAMPLE_THRESHOLD}` for a DM"
    )
    return Reply(
        text=render_text(signal, outcome.result.credits),
        fields=modality_fields(signal),
        chart_png=outcome.chart_png,
        signal=signal,
        credits=tuple(outcome.result.credits),
        extra={"next": next_step},
    )
