"""The resilience layer on its own: retries, Retry-After, deadline, permanent errors, timeouts, the
circuit breaker's cycle and the rate limit, each timed by a fake clock where time matters."""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime

import pytest

from intel.config import SourcePolicyConfig
from intel.errors import (
    CircuitOpenError,
    NotConfiguredError,
    PermanentSourceError,
    SourceError,
    UnknownSymbolError,
)
from intel.lifecycle import NoResources
from intel.sources.resilience import BreakerState, SourceGuard, Timing, resilient

WALL = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class FakeTime:
    """A monotonic clock that only moves when the layer sleeps or the test says so."""

    def __init__(self) -> None:
        self.now_s = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now_s

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_s += seconds
        await asyncio.sleep(0)

    def timing(self) -> Timing:
        return Timing(monotonic=self.monotonic, sleep=self.sleep, wall=lambda: WALL)


class Answers:
    """A call that raises the given errors in turn, then answers "data"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "data"


def policy(**changes: object) -> SourcePolicyConfig:
    base = {
        "call_timeout_s": 1.0,
        "max_attempts": 3,
        "backoff_initial_s": 0.5,
        "backoff_max_s": 4.0,
        "retry_deadline_s": 8.0,
        "failures_to_open": 3,
        "open_cooldown_s": 30.0,
    }
    return SourcePolicyConfig.model_validate(base | changes)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


async def test_a_transient_failure_is_retried_with_growing_jittered_backoff(fake_time) -> None:
    guard = SourceGuard("api", policy(), fake_time.timing())
    call = Answers(SourceError("HTTP 503"), SourceError("HTTP 503"))
    assert await guard.call(call) == "data"
    assert call.calls == 3
    first, second = fake_time.sleeps
    # initial × 2^(n−1) plus jitter up to `initial`: [0.5, 1.0] then [1.0, 1.5]
    assert 0.5 <= first <= 1.0
    assert 1.0 <= second <= 1.5


async def test_retry_after_is_waited_instead_of_the_backoff(fake_time) -> None:
    guard = SourceGuard("api", policy(), fake_time.timing())
    call = Answers(SourceError("HTTP 429", retry_after_s=2.5))
    assert await guard.call(call) == "data"
    assert fake_time.sleeps == [2.5]


async def test_a_retry_after_beyond_the_deadline_gives_up_at_once(fake_time) -> None:
    guard = SourceGuard("api", policy(retry_deadline_s=8), fake_time.timing())
    call = Answers(SourceError("HTTP 429", retry_after_s=30))
    with pytest.raises(SourceError, match="HTTP 429"):
        await guard.call(call)
    assert call.calls == 1
    assert fake_time.sleeps == []


async def test_retries_end_within_the_deadline(fake_time) -> None:
    guard = SourceGuard(
        "api", policy(max_attempts=10, retry_deadline_s=3, backoff_initial_s=1), fake_time.timing()
    )
    call = Answers(*[SourceError("HTTP 500")] * 10)
    started = fake_time.now_s
    with pytest.raises(SourceError, match="HTTP 500"):
        await guard.call(call)
    assert fake_time.now_s - started < 3
    assert 1 < call.calls < 10


async def test_attempts_are_bounded(fake_time) -> None:
    guard = SourceGuard("api", policy(max_attempts=2), fake_time.timing())
    call = Answers(*[SourceError("HTTP 500")] * 5)
    with pytest.raises(SourceError):
        await guard.call(call)
    assert call.calls == 2


@pytest.mark.parametrize(
    "error",
    [
        PermanentSourceError("HTTP 451: not available from this location"),
        NotConfiguredError("Reddit not configured"),
        KeyError("a bug, not I/O"),
    ],
)
async def test_what_retrying_cannot_mend_is_not_retried(fake_time, error) -> None:
    guard = SourceGuard("api", policy(), fake_time.timing())
    call = Answers(error)
    with pytest.raises(type(error)):
        await guard.call(call)
    assert call.calls == 1
    assert fake_time.sleeps == []


async def test_a_try_that_never_answers_times_out_and_is_retried() -> None:
    # Real time here: the per-try timeout is the event loop's; 3 tries of 20 ms.
    guard = SourceGuard(
        "api",
        policy(call_timeout_s=0.02, backoff_initial_s=0, backoff_max_s=0, max_attempts=3),
    )
    calls = 0

    async def hang() -> str:
        nonlocal calls
        calls += 1
        await asyncio.Event().wait()
        return "never"

    started = time.monotonic()
    with pytest.raises(SourceError, match=r"api did not answer within 0\.02 s \(3 tries\)"):
        await guard.call(hang)
    assert calls == 3
    assert time.monotonic() - started < 1.0


async def test_the_breaker_opens_rests_half_opens_and_closes(fake_time) -> None:
    guard = SourceGuard("api", policy(max_attempts=1, failures_to_open=2), fake_time.timing())
    for _ in range(2):
        with pytest.raises(SourceError):
            await guard.call(Answers(SourceError("HTTP 502")))
    assert guard.breaker.state is BreakerState.OPEN
    untouched = Answers()
    with pytest.raises(CircuitOpenError, match="circuit open since 2026-01-02T03:04:05Z"):
        await guard.call(untouched)
    assert untouched.calls == 0  # fails fast, the source is not called

    fake_time.now_s += 30  # the cool-down
    assert guard.breaker.state is BreakerState.HALF_OPEN
    trial = Answers()
    assert await guard.call(trial) == "data"
    assert trial.calls == 1
    assert guard.breaker.state is BreakerState.CLOSED


async def test_a_failed_trial_opens_the_breaker_again(fake_time) -> None:
    guard = SourceGuard("api", policy(max_attempts=1, failures_to_open=1), fake_time.timing())
    with pytest.raises(SourceError):
        await guard.call(Answers(SourceError("HTTP 502")))
    fake_time.now_s += 30
    with pytest.raises(SourceError, match="HTTP 502"):
        await guard.call(Answers(SourceError("HTTP 502")))
    assert guard.breaker.state is BreakerState.OPEN


async def test_half_open_lets_one_trial_through_at_a_time(fake_time) -> None:
    guard = SourceGuard("api", policy(max_attempts=1, failures_to_open=1), fake_time.timing())
    with pytest.raises(SourceError):
        await guard.call(Answers(SourceError("HTTP 502")))
    fake_time.now_s += 30
    release = asyncio.Event()

    async def slow_trial() -> str:
        await release.wait()
        return "data"

    trial = asyncio.create_task(guard.call(slow_trial))
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError):
        await guard.call(Answers())
    release.set()
    assert await trial == "data"
    assert guard.breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    "error", [NotConfiguredError("no credentials"), UnknownSymbolError("unknown symbol XYZ/USDT")]
)
async def test_what_is_not_the_sources_fault_does_not_count_toward_the_breaker(
    fake_time, error
) -> None:
    guard = SourceGuard("api", policy(failures_to_open=1), fake_time.timing())
    for _ in range(3):
        with pytest.raises(type(error)):
            await guard.call(Answers(error))
    assert guard.breaker.state is BreakerState.CLOSED


async def test_the_rate_limit_spaces_calls() -> None:
    guard = SourceGuard("api", policy(rate_per_min=600))  # one call per 0.1 s
    moments: list[float] = []

    async def record() -> None:
        moments.append(time.monotonic())

    await asyncio.gather(*(guard.call(record) for _ in range(4)))
    gaps = [b - a for a, b in itertools.pairwise(moments)]
    assert min(gaps) >= 0.09  # aiolimiter's clock granularity leaves a little slack
    assert moments[-1] - moments[0] < 1.0


async def test_a_burst_goes_at_once_then_the_rate_spaces_calls() -> None:
    guard = SourceGuard("api", policy(rate_per_min=600, rate_burst=3))  # then one per 0.1 s
    moments: list[float] = []

    async def record() -> None:
        moments.append(time.monotonic())

    await asyncio.gather(*(guard.call(record) for _ in range(5)))
    offsets = [moment - moments[0] for moment in moments]
    assert offsets[2] < 0.05  # the burst of three
    assert offsets[3] >= 0.09 and offsets[4] - offsets[3] >= 0.09  # noqa: PT018
    assert offsets[4] < 1.0


async def test_a_source_that_paces_its_requests_is_not_paced_per_call() -> None:
    guard = SourceGuard("api", policy(rate_per_min=600))  # one request per 0.1 s
    pace = guard.pace_requests()
    requests: list[float] = []

    async def three_requests() -> None:
        for _ in range(3):
            await pace()
            requests.append(time.monotonic())

    await guard.call(three_requests)
    await guard.call(three_requests)
    gaps = [b - a for a, b in itertools.pairwise(requests)]
    assert len(requests) == 6
    assert min(gaps) >= 0.09  # every request spaced


async def test_a_call_of_a_source_pacing_its_requests_waits_for_no_slot() -> None:
    guard = SourceGuard("api", policy(rate_per_min=60))  # one request a second
    pace = guard.pace_requests()
    await pace()  # the slot of this second is taken

    async def no_request() -> str:
        return "cached"

    started = time.monotonic()
    assert await guard.call(no_request) == "cached"
    assert time.monotonic() - started < 0.5  # paced per call, it would wait a second


class StartsLate(NoResources):
    """A source whose start fails `failures` times (no network), then works."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures = failures
        self.error = error
        self.starts = 0
        self.closes = 0

    async def start(self) -> None:
        self.starts += 1
        if self.starts <= self.failures:
            raise self.error

    async def close(self) -> None:
        self.closes += 1

    async def latest(self, now: datetime) -> str:
        return "reading"


async def test_a_source_that_could_not_start_starts_before_its_next_call(fake_time) -> None:
    inner = StartsLate(1, OSError("network unreachable"))
    source = resilient(inner, SourceGuard("api", policy(), fake_time.timing()))
    await source.start()  # does not raise: the desk goes on
    assert await source.latest(WALL) == "reading"
    assert inner.starts == 2
    await source.close()
    assert inner.closes == 1


async def test_a_source_not_configured_at_start_refuses_every_call(fake_time) -> None:
    inner = StartsLate(99, NotConfiguredError("Reddit not configured"))
    source = resilient(inner, SourceGuard("reddit", policy(), fake_time.timing()))
    await source.start()
    for _ in range(2):
        with pytest.raises(NotConfiguredError, match="Reddit not configured"):
            await source.latest(WALL)
    assert inner.starts == 1
    await source.close()
    assert inner.closes == 0  # never started, never closed


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        ("0.25", 0.25),
        ("0", 0.0),
        (None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),  # the HTTP-date form: back off instead
        ("-1", None),
        ("7200", None),  # beyond an hour: no call's deadline would wait it out
    ],
)
def test_retry_after_headers_become_seconds_to_wait(header, seconds) -> None:
    from intel.sources.base import retry_after_s

    assert retry_after_s(header) == seconds
