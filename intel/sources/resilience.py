"""One resilience layer for every live source: a rate limit, a timeout per try, retries with
backoff and jitter that honour `Retry-After` within a deadline, and a circuit breaker.

`SourceGuard.call` runs one source call under all of them (a source whose calls make several
requests paces each request itself, with `SourceGuard.pace_requests`); `resilient(source, guard)`
puts every async data method of a source behind its guard (one mechanism whatever the source's
protocol).
Never retried: `PermanentSourceError` (the answer will not change), `NotConfiguredError` (nothing
to call), a user's bad input (an unknown symbol) and errors that are bugs rather than I/O. The
breaker counts failed calls (after their retries; a call cut off by a caller's timeout counts too,
a missing configuration or bad input does not): `failures_to_open` in a row open it and calls
fail fast with `CircuitOpenError` until `open_cooldown_s` has passed; then one trial call runs
(half-open) and its outcome closes or reopens the breaker. Clocks and sleep are injectable
(`Timing`) so tests run the cycle in milliseconds.

A guarded source's `start` tries once and never raises for a source failure: a source that could
not start (no network) is started again before its next call, so its `start` must leave nothing
open when it raises. A `NotConfiguredError` at start makes every later call raise it at once.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar, cast

import structlog
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential,
    wait_random,
)

from intel.config import SourcePolicyConfig
from intel.errors import (
    CircuitOpenError,
    NotConfiguredError,
    PermanentSourceError,
    SourceError,
    UserInputError,
)
from intel.lifecycle import Lifecycle
from intel.timeutil import iso, utcnow

__all__ = [
    "AsyncMethodProxy",
    "BreakerState",
    "CircuitBreaker",
    "GuardedSource",
    "SourceGuard",
    "Timing",
    "resilient",
]

log = structlog.get_logger(__name__)
T = TypeVar("T")
S = TypeVar("S")


@dataclass(frozen=True, slots=True)
class Timing:
    """Where the layer reads time and how it waits; tests pass fakes."""

    monotonic: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    wall: Callable[[], datetime] = field(default=utcnow)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """closed → open after `failures_to_open` failed calls in a row → half-open after
    `open_cooldown_s` (one trial call) → closed on its success, open again on its failure."""

    def __init__(
        self, name: str, failures_to_open: int, open_cooldown_s: float, timing: Timing
    ) -> None:
        self._name = name
        self._failures_to_open = failures_to_open
        self._cooldown_s = open_cooldown_s
        self._timing = timing
        self._failures = 0
        self._opened_at: float | None = None  # monotonic
        self._opened_wall: datetime | None = None
        self._last_error = ""
        self._trial_running = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._timing.monotonic() - self._opened_at >= self._cooldown_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def before_call(self) -> None:
        """CircuitOpenError while open, or while half-open with the trial call under way."""
        state = self.state
        if state is BreakerState.CLOSED:
            return
        if state is BreakerState.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            return
        since = iso(self._opened_wall) if self._opened_wall else "?"
        raise CircuitOpenError(
            f"{self._name}: circuit open since {since} after {self._failures} failed calls "
            f"in a row (last: {self._last_error}); next try after a {self._cooldown_s:g} s rest"
        )

    def succeeded(self) -> None:
        self._failures, self._opened_at, self._opened_wall = 0, None, None
        self._trial_running = False

    def failed(self, error: str) -> None:
        self._failures += 1
        self._last_error = error
        self._trial_running = False
        # The count is kept through the rest, so a failed trial call opens the breaker again.
        if self._failures >= self._failures_to_open:
            self._opened_at, self._opened_wall = self._timing.monotonic(), self._timing.wall()
            log.warning("circuit_opened", source=self._name, failures=self._failures, last=error)

    def released(self) -> None:
        """The call ended without an outcome worth counting (a missing configuration)."""
        self._trial_running = False


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, PermanentSourceError | NotConfiguredError | CircuitOpenError):
        return False
    return isinstance(exc, SourceError | TimeoutError | OSError)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


class SourceGuard:
    """The rate limit, retries, timeouts and breaker of one source, from its policy."""

    def __init__(self, name: str, policy: SourcePolicyConfig, timing: Timing | None = None) -> None:
        self.name = name
        self.call_timeout_s = policy.call_timeout_s
        self._policy = policy
        self._timing = timing or Timing()
        self.breaker = CircuitBreaker(
            name, policy.failures_to_open, policy.open_cooldown_s, self._timing
        )
        # `rate_burst` at once, then one per 60/rate seconds (a leaky bucket): over any window of
        # W seconds at most rate_burst + W × rate / 60 go out (with no burst, the API's per-minute
        # limit holds over any window).
        burst = policy.rate_burst
        self._limiter = (
            AsyncLimiter(burst, burst * 60.0 / policy.rate_per_min)
            if policy.rate_per_min is not None
            else None
        )
        self._pace_calls = True  # else the source paces its requests (`pace_requests`)
        # initial × 2^(try−1), capped, plus up to `initial` of jitter so clients spread out.
        self._backoff = wait_exponential(
            multiplier=policy.backoff_initial_s, max=policy.backoff_max_s
        ) + wait_random(0, policy.backoff_initial_s)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """`fn()` under the policy; the last error (a timeout as SourceError) when it gives up."""
        self.breaker.before_call()
        deadline = self._timing.monotonic() + self._policy.retry_deadline_s
        retrying = AsyncRetrying(
            stop=lambda state: self._should_stop(state, deadline),
            wait=self._wait,
            retry=retry_if_exception(_retryable),
            sleep=self._timing.sleep,
            reraise=True,
        )
        try:
            result: T = await retrying(self._attempt, fn, deadline)
        except (NotConfiguredError, UserInputError):  # nothing wrong with the source itself
            self.breaker.released()
            raise
        except TimeoutError as exc:
            self.breaker.failed(_describe(exc))
            raise SourceError(
                f"{self.name} did not answer within {self._policy.call_timeout_s:g} s "
                f"({retrying.statistics.get('attempt_number', 1)} tries)"
            ) from exc
        except BaseException as exc:  # a call cut off by its caller failed too
            self.breaker.failed(_describe(exc))
            raise
        self.breaker.succeeded()
        return result

    async def pace(self) -> None:
        """Wait for the rate limit's next slot (at once when the policy sets no rate)."""
        if self._limiter is not None:
            await self._limiter.acquire()

    def pace_requests(self) -> Callable[[], Awaitable[None]]:
        """Hand the rate limit to a source whose one call makes several requests (Reddit: two
        listings per subreddit), since an API counts requests: the guard stops pacing calls, and
        the source awaits the returned `pace` before each request."""
        self._pace_calls = False
        return self.pace

    async def _attempt(self, fn: Callable[[], Awaitable[T]], deadline: float) -> T:
        remaining_s = deadline - self._timing.monotonic()
        if remaining_s <= 0:
            raise TimeoutError
        async with asyncio.timeout(min(self._policy.call_timeout_s, remaining_s)):
            if self._pace_calls:
                await self.pace()
            return await fn()

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        asked_s = getattr(error, "retry_after_s", None)
        if isinstance(asked_s, int | float) and asked_s >= 0:
            return float(asked_s)  # the source said when; sooner would only be refused again
        return self._backoff(state)

    def _should_stop(self, state: RetryCallState, deadline: float) -> bool:
        if state.attempt_number >= self._policy.max_attempts:
            return True
        # Give up now rather than sleep past the deadline (a long Retry-After included).
        return self._timing.monotonic() + state.upcoming_sleep >= deadline


class AsyncMethodProxy:
    """Stands for `inner`: its async methods run through `_around`; anything else (sync methods,
    attributes such as `credit`) is `inner`'s own. `start` and `close` are the subclass's."""

    def __init__(self, inner: object) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        async def around(*args: Any, **kwargs: Any) -> Any:
            return await self._around(lambda: attribute(*args, **kwargs))

        return around

    async def _around(self, call: Callable[[], Awaitable[T]]) -> T:
        return await call()


class GuardedSource(AsyncMethodProxy):
    """A source behind its `SourceGuard` (see the module docstring for start and close)."""

    def __init__(self, inner: Lifecycle, guard: SourceGuard) -> None:
        super().__init__(inner)
        self.guard = guard
        self._lifecycle = inner
        self._started = False
        self._not_configured: NotConfiguredError | None = None
        self._start_lock = asyncio.Lock()

    async def start(self) -> None:
        # One bounded try, no retries: the desk starts its parts one by one, and a source that
        # cannot start now is started again before its next call, under the full policy.
        try:
            async with asyncio.timeout(self.guard.call_timeout_s):
                await self._ensure_started()
        except NotConfiguredError as exc:
            log.info("source_not_configured", source=self.guard.name, detail=str(exc))
        except (SourceError, TimeoutError, OSError) as exc:  # tried again before the next call
            # Info, not warning: the signal or status that needs the source reports it, and the
            # CLI's error stays one line.
            log.info("source_start_failed", source=self.guard.name, detail=_describe(exc))

    async def close(self) -> None:
        if self._started:
            self._started = False
            await self._lifecycle.close()

    async def _ensure_started(self) -> None:
        if self._not_configured is not None:
            raise self._not_configured
        async with self._start_lock:
            if self._started:
                return
            try:
                await self._lifecycle.start()
            except NotConfiguredError as exc:
                self._not_configured = exc
                raise
            self._started = True

    async def _around(self, call: Callable[[], Awaitable[T]]) -> T:
        if self._not_configured is not None:
            raise self._not_configured

        async def started_then_call() -> T:
            await self._ensure_started()
            return await call()

        return await self.guard.call(started_then_call)


def resilient(source: S, guard: SourceGuard) -> S:
    """`source` with every async data method behind `guard`; same protocol, same attributes."""
    return cast(S, GuardedSource(cast(Lifecycle, source), guard))
