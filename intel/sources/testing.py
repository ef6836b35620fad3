"""In-process fake sources for fault tests and benchmarks: a real source behind a script of
faults (hang, delay, fail), so the resilience layer and the pipeline meet slow, failing, flaky
and permanently failing sources without any network.

Each data call takes the next step of the script, then `then` for every later call; a step of
None passes the call to the wrapped source. Calls are counted and timed (monotonic).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast

from intel.lifecycle import Lifecycle, NoResources
from intel.models import CandleSeries, OrderBookHistory
from intel.sources.replay_candles import ReplayCandleSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.sources.replay_orderbook import ReplayOrderBookSource
from intel.sources.resilience import AsyncMethodProxy

__all__ = [
    "Delay",
    "Fail",
    "Hang",
    "ReplayExchange",
    "ScriptedSource",
    "Step",
    "failing",
    "flaky",
    "never_answering",
    "script_of",
    "scripted",
    "slow",
]

T = TypeVar("T")
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Hang:
    """Never answers (until cancelled)."""


@dataclass(frozen=True, slots=True)
class Delay:
    """Answers from the wrapped source after `seconds`."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Fail:
    """Raises `error` (the same instance each time: fine for exceptions carrying no traceback
    state the test reads)."""

    error: Exception


Step = Hang | Delay | Fail | None


class ScriptedSource(AsyncMethodProxy):
    """`inner` with faults injected per call; `calls` and `call_times` say what it was asked."""

    def __init__(
        self,
        inner: Lifecycle,
        script: Iterable[Step] = (),
        then: Step = None,
        methods: Collection[str] | None = None,
    ) -> None:
        super().__init__(inner)
        self._lifecycle = inner
        self._script = list(script)
        self._then = then
        self._methods = methods  # None: every data method; else only these meet the script
        self.calls = 0
        self.call_times: list[float] = []
        self.started = False
        self.closed = False

    async def start(self) -> None:
        await self._lifecycle.start()
        self.started = True

    async def close(self) -> None:
        await self._lifecycle.close()
        self.closed = True

    def __getattr__(self, name: str) -> Any:
        if self._methods is not None and name not in self._methods:
            return getattr(self._inner, name)
        return super().__getattr__(name)

    async def _around(self, call: Callable[[], Awaitable[T]]) -> T:
        self.calls += 1
        self.call_times.append(time.monotonic())
        step = self._script.pop(0) if self._script else self._then
        match step:
            case Hang():
                await asyncio.Event().wait()
            case Delay(seconds):
                await asyncio.sleep(seconds)
            case Fail(error):
                raise error
        return await call()


def scripted(
    source: S,
    script: Iterable[Step] = (),
    then: Step = None,
    methods: Collection[str] | None = None,
) -> S:
    """`source` behind a script (for `methods` only, if given), typed as the source itself."""
    return cast(S, ScriptedSource(cast(Lifecycle, source), script, then, methods))


def never_answering(source: S, methods: Collection[str] | None = None) -> S:
    return scripted(source, then=Hang(), methods=methods)


def slow(source: S, seconds: float, methods: Collection[str] | None = None) -> S:
    return scripted(source, then=Delay(seconds), methods=methods)


def failing(source: S, error: Exception, methods: Collection[str] | None = None) -> S:
    """Fails every call with `error` (a PermanentSourceError makes it permanently failing)."""
    return scripted(source, then=Fail(error), methods=methods)


def flaky(source: S, failures: int, error: Exception, methods: Collection[str] | None = None) -> S:
    """Fails the first `failures` calls with `error`, then answers."""
    return scripted(source, [Fail(error)] * failures, methods=methods)


class ReplayExchange(NoResources):
    """Recorded candles and order books as one exchange-like source (like the live client)."""

    def __init__(self, replay_dir: Path = DEFAULT_REPLAY_DIR) -> None:
        self._candles = ReplayCandleSource(replay_dir)
        self._books = ReplayOrderBookSource(replay_dir)

    async def coverage(self, symbol: str) -> tuple[datetime, datetime]:
        return await self._candles.coverage(symbol)

    async def candles(self, symbol: str, now: datetime, count: int) -> CandleSeries:
        return await self._candles.candles(symbol, now, count)

    async def books(self, symbol: str, now: datetime, window_s: float) -> OrderBookHistory:
        return await self._books.books(symbol, now, window_s)


def script_of(source: object) -> ScriptedSource:
    """The script behind a source made by this module (for its call counts)."""
    if not isinstance(source, ScriptedSource):
        raise TypeError(f"{type(source).__name__} is not a scripted source")
    return source
