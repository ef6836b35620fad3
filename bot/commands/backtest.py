"""The chat `backtest <symbol> <period>` command: the default strategy over a period, beside
buy-and-hold, with the equity chart.

A backtest runs in a worker process of its own (never in the event loop, never in a thread: it
is CPU work), one at a time for the whole bot; `close()` terminates it, so stopping the bot never
waits for a backtest to finish; another request meanwhile is told to retry, and each user
waits `backtest.chat_cooldown_s` between backtests. Other commands are never delayed. Periods:
`90d`, `6m` (30-day months), `1y` (365 days), ending at the market clock; or `FROM..TO` dates.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Protocol

from cachetools import TTLCache

from bot.commands.base import Reply, Request
from bot.commands.registry import Command, Desk, check_arg_count
from bot.config import BotConfig
from intel.config import Config
from intel.errors import UserInputError
from intel.textfmt import quote_input
from intel.timeutil import iso, parse_time

__all__ = ["BacktestCommands", "BacktestSummary", "parse_period", "run_chat_backtest"]

USAGE = "backtest SYMBOL PERIOD"
STRATEGY = "divergence"
_UNITS_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}
_RELATIVE = re.compile(r"^(\d{1,4})([dwmy])$")


@dataclass(frozen=True, slots=True)
class BacktestSummary:
    """What the worker process sends back: the reply's text and its chart."""

    text: str
    chart_png: bytes


def parse_period(text: str, now: datetime) -> tuple[datetime, datetime]:
    """`90d`, `6m`, `1y` ending at `now` (on the hour), or `2024-11-05..2025-10-12`.

    UserInputError saying what would work otherwise."""
    match = _RELATIVE.match(text.strip().lower())
    if match:
        count, unit = int(match[1]), match[2]
        if count == 0:
            raise UserInputError("the period must be at least 1 day, e.g. `90d`")
        end = now.replace(minute=0, second=0, microsecond=0)
        return end - timedelta(days=count * _UNITS_DAYS[unit]), end
    start_text, dots, end_text = text.partition("..")
    if not dots:
        raise UserInputError(
            f"unknown period {quote_input(text)} — use 90d, 6m, 1y or 2024-11-05..2025-10-12"
        )
    try:
        start, end = parse_time(start_text), parse_time(end_text)
    except UserInputError as exc:
        raise UserInputError(f"period {quote_input(text)}: {exc}") from None
    if start >= end:
        raise UserInputError(f"period {quote_input(text)}: the start is not before the end")
    return start, end


def run_chat_backtest(
    config: Config, symbol: str, start: datetime, end: datetime
) -> BacktestSummary:
    """The worker process's job: the backtest, its summary and its chart (CPU work only)."""
    from bot.render.backtest import metrics_line, render_backtest_chart
    from intel.backtest.runner import run_strategy

    report = asyncio.run(run_strategy(config, symbol, STRATEGY, start, end))
    metrics = report.metrics
    win = metrics["win_rate"]
    lines = [
        f"Backtest {report.symbol}, {report.start:%Y-%m-%d %H:%M} → {report.end:%Y-%m-%d %H:%M} "
        f"UTC, fees and slippage {config.backtest.fee_bps + config.backtest.slippage_bps:g} bps "
        "per fill",
        f"{STRATEGY}: {metrics_line(metrics)}; {metrics['trades']} trades"
        + (f", {win * 100:.0f} % won" if win is not None else ""),
        f"buy-and-hold: {metrics_line(report.baseline_metrics)}",
        *(f"note: {note}" for note in report.notes),
        "Past results say little about future ones. Not financial advice.",
    ]
    return BacktestSummary("\n".join(lines), render_backtest_chart(report))


class BacktestDesk(Desk, Protocol):
    async def coverage(self, symbol: str) -> tuple[datetime, datetime]: ...


class BacktestCommands:
    """The `backtest` command group; `close()` ends its worker process."""

    def __init__(
        self,
        desk: BacktestDesk,
        config: BotConfig,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._desk = desk
        self._config = config
        self._clock = clock
        self._cooldown_s = config.backtest.chat_cooldown_s
        # Forgets a user once their cooldown has passed, so memory stays small.
        self._started_at: TTLCache[tuple[str, str], float] | dict[tuple[str, str], float] = (
            TTLCache(10_000, self._cooldown_s, timer=clock) if self._cooldown_s > 0 else {}
        )
        self._running = False
        self._worker: BaseProcess | None = None

    def commands(self) -> tuple[Command, ...]:
        return (
            Command(
                "backtest",
                self.backtest,
                f"the {STRATEGY} strategy over a period, beside buy-and-hold, with its chart",
                "backtest btc 90d",
                USAGE,
            ),
        )

    async def backtest(self, request: Request) -> Reply:
        check_arg_count(request.args, USAGE, least=2, most=2)
        symbol = self._desk.resolve(request.args[0])
        start, end = parse_period(request.args[1], self._desk.now())
        first, last = await self._desk.coverage(symbol)
        if start < first - timedelta(hours=1) or end > last:
            raise UserInputError(
                f"{iso(start)} → {iso(end)} is outside the data: the recorded {symbol} candles "
                f"cover {iso(first)} → {iso(last)}"
            )
        who = (request.transport, request.user_id)
        wait_s = self._started_at.get(who, -float("inf")) + self._cooldown_s - self._clock()
        if wait_s > 0:
            raise UserInputError(
                f"one backtest per {self._cooldown_s:g} s — try again in {wait_s:.0f} s"
            )
        if self._running:
            raise UserInputError("another backtest is running — try again in a minute")
        self._running = True
        try:
            summary = await self._run_in_worker(symbol, start, end)
        finally:
            self._running = False
        if self._cooldown_s > 0:  # only an answered backtest costs the user the wait
            self._started_at[who] = self._clock()
        return Reply(text=summary.text, chart_png=summary.chart_png)

    async def _run_in_worker(self, symbol: str, start: datetime, end: datetime) -> BacktestSummary:
        # A process per job rather than a ProcessPoolExecutor: a pool cannot stop a running job,
        # and its atexit hook would join the worker, holding the bot's exit until the job ends.
        # "spawn": a fork of the bot would copy its event loop and threads into the child.
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        worker = context.Process(
            target=_worker_main,
            args=(sender, self._config, symbol, start, end),
            name="signaldesk-backtest",
            daemon=True,
        )
        worker.start()
        sender.close()  # the child holds the only writer: its end (or death) ends our read
        self._worker = worker
        try:
            outcome = await asyncio.to_thread(_receive, receiver)
        finally:
            # Stopping the worker ends the read above (EOF), so no thread outlives a cancelled
            # request; the receiver closes when that read lets go of it.
            await _stop(worker)
            stopped = self._worker is not worker  # close() took it
            self._worker = None
        if outcome is None and stopped:
            raise UserInputError("the backtest was stopped because the bot is shutting down")
        if outcome is None:
            raise RuntimeError(f"the backtest worker exited with code {worker.exitcode}")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def close(self) -> None:
        """End the worker process at once (a backtest still running is abandoned)."""
        worker, self._worker = self._worker, None
        if worker is not None:
            await _stop(worker)


def _worker_main(
    sender: Connection, config: Config, symbol: str, start: datetime, end: datetime
) -> None:
    """The child process: run the job and send back its summary or its exception."""
    outcome: BacktestSummary | BaseException
    try:
        outcome = run_chat_backtest(config, symbol, start, end)
    except Exception as exc:  # sent to the parent, which raises it there
        outcome = exc
    try:
        sender.send(outcome)
    except Exception as exc:  # an exception that does not pickle: its text still gets there
        sender.send(RuntimeError(f"backtest failed: {exc!r}"))
    finally:
        sender.close()


def _receive(receiver: Connection) -> BacktestSummary | BaseException | None:
    """The worker's outcome; None when it ended without one (terminated by close, or crashed)."""
    try:
        outcome: BacktestSummary | BaseException = receiver.recv()
    except (EOFError, OSError):
        return None
    return outcome


async def _stop(worker: BaseProcess, grace_s: float = 1.0) -> None:
    """Terminate the worker if it still runs (SIGTERM, then SIGKILL after `grace_s`) and reap it."""
    if worker.is_alive():
        worker.terminate()
    await asyncio.to_thread(worker.join, grace_s)
    if worker.is_alive():
        worker.kill()
        await asyncio.to_thread(worker.join, grace_s)
