"""The scheduler, the demo clock and the signal cycle.

Overdue at start: one cycle at once, not a burst and not never; not overdue: the rhythm of the last
run is kept. The demo clock stops at the end of the data and says so once; the cycle computes each
followed symbol once, isolates failures and remembers when it ran.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from functools import partial

import pytest
import structlog
from structlog.testing import capture_logs

from bot.config import BotConfig
from bot.render.chart_task import ChartFn, ChartRenderer
from bot.scheduling.clock import DemoClock, FixedClock, build_market_clock
from bot.scheduling.cycle import LAST_CYCLE_AT, LAST_CYCLE_MARKET_AT, SignalCycle
from bot.scheduling.scheduler import CycleScheduler, real_interval_s
from intel.config import load_config
from intel.desk import SignalDesk, build_desk
from intel.errors import ConfigError
from intel.models import MarketSnapshot, Signal
from intel.pipeline import SignalResult
from intel.timeutil import iso, parse_time, utcnow


@pytest.fixture(autouse=True)
def _fresh_structlog() -> None:
    """Another test may have bound structlog to a stream pytest has since closed."""
    structlog.reset_defaults()


BTC, ETH = "BTC/USDT", "ETH/USDT"
START = datetime(2025, 10, 6, 16, tzinfo=UTC)


class Counter:
    def __init__(self, duration_s: float = 0.0) -> None:
        self.runs = 0
        self.running = 0
        self.most_at_once = 0
        self.duration_s = duration_s

    async def __call__(self) -> None:
        self.runs += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(self.duration_s)
        finally:
            self.running -= 1


async def run_scheduler(scheduler: CycleScheduler, seconds: float) -> None:
    await scheduler.start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await scheduler.stop()


async def test_overdue_cycle_runs_exactly_once_at_start(store):
    await store.set_meta(LAST_CYCLE_AT, iso(utcnow() - timedelta(days=3)))
    cycle = Counter()
    scheduler = CycleScheduler(cycle, store, interval_s=3600)
    await scheduler.start()
    await asyncio.sleep(0.4)
    next_run = scheduler.next_run_at
    await scheduler.stop()
    assert cycle.runs == 1  # three days of missed hourly cycles: one run, not 72
    assert next_run is not None
    assert timedelta(minutes=59) < next_run - utcnow() <= timedelta(hours=1)


async def test_first_start_runs_a_cycle_at_once(store):
    cycle = Counter()
    await run_scheduler(CycleScheduler(cycle, store, interval_s=3600), 0.3)
    assert cycle.runs == 1


async def test_not_overdue_keeps_the_rhythm_of_the_last_run(store):
    last = utcnow() - timedelta(minutes=20)
    await store.set_meta(LAST_CYCLE_AT, iso(last))
    cycle = Counter()
    scheduler = CycleScheduler(cycle, store, interval_s=3600)
    await scheduler.start()
    await asyncio.sleep(0.3)
    next_run = scheduler.next_run_at
    await scheduler.stop()
    assert cycle.runs == 0
    assert next_run is not None
    assert abs((next_run - (parse_time(iso(last)) + timedelta(hours=1))).total_seconds()) < 1


async def test_an_overrunning_cycle_is_never_started_twice(store):
    cycle = Counter(duration_s=0.35)
    await run_scheduler(CycleScheduler(cycle, store, interval_s=0.1), 1.0)
    assert cycle.most_at_once == 1
    assert 2 <= cycle.runs <= 4


async def test_stop_lets_a_cycle_in_flight_finish(store):
    cycle = Counter(duration_s=0.3)
    scheduler = CycleScheduler(cycle, store, interval_s=3600)
    await scheduler.start()
    await asyncio.sleep(0.1)
    assert cycle.running == 1
    await scheduler.stop()
    assert cycle.running == 0
    assert scheduler.next_run_at is None


def test_demo_interval_is_market_time_over_speed():
    assert real_interval_s(60, 360) == pytest.approx(10.0)
    assert real_interval_s(60, 1) == pytest.approx(3600.0)


def test_demo_clock_advances_then_stops_and_says_so_once(clock):
    ended = []
    demo = DemoClock(START, START + timedelta(hours=2), 360, ended.append, clock.monotonic)
    assert demo.now() == START
    clock.advance(10)
    assert demo.now() == START + timedelta(hours=1)
    assert demo.real_seconds_to_end() == pytest.approx(10)
    clock.advance(1000)
    assert demo.now() == START + timedelta(hours=2)  # not wrapped, not re-dated
    assert demo.now() == START + timedelta(hours=2)
    assert ended == [START + timedelta(hours=2)]
    assert demo.ended


def config_with(**env: str) -> BotConfig:
    return load_config(env={f"BOT__{k.upper()}": v for k, v in env.items()}, model=BotConfig)


def test_clock_resumes_where_the_last_run_stopped():
    config = config_with(data__default_at="2025-10-06T16:00Z")
    end = datetime(2025, 10, 12, 14, tzinfo=UTC)
    later = START + timedelta(hours=30)
    resumed = build_market_clock(config, end, resume_from=later)
    assert isinstance(resumed, DemoClock)
    assert resumed.start == later
    earlier = build_market_clock(config, end, resume_from=START - timedelta(days=1))
    assert isinstance(earlier, DemoClock)
    assert earlier.start == START
    clock = build_market_clock(config, START + timedelta(hours=5))  # candles end first
    assert clock.end == START + timedelta(hours=5)
    frozen = build_market_clock(config_with(demo__enabled="false"), end)
    assert isinstance(frozen, FixedClock)
    assert frozen.now() == config.data.default_at


def test_demo_until_is_validated():
    with pytest.raises(ConfigError, match=r"demo\.until"):
        config_with(demo__until="not a time")
    config = config_with(demo__until="2025-01-01T00:00Z")
    with pytest.raises(ConfigError, match="must be after"):
        build_market_clock(config, START + timedelta(days=30))


class MomentDesk:
    """The real desk at a settable market moment; `fail` symbols raise."""

    def __init__(self, desk: SignalDesk, fail: set[str] = frozenset()) -> None:
        self._desk = desk
        self.moment = datetime(2025, 9, 30, 4, tzinfo=UTC)
        self.fail = set(fail)
        self.computed: list[str] = []

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._desk.symbols

    def now(self) -> datetime:
        return self.moment

    async def signal(self, symbol: str, at: datetime | None = None) -> SignalResult:
        self.computed.append(symbol)
        if symbol in self.fail:
            raise RuntimeError(f"{symbol} broke")
        return await self._desk.signal(symbol, at)


@pytest.fixture(scope="module")
def real_desk() -> SignalDesk:
    return build_desk(load_config(env={}, model=BotConfig))


async def fixed_chart(signal: Signal, snapshot: MarketSnapshot) -> bytes | None:
    return b"PNG"


def make_cycle(
    desk, store, woken: list[int], render_chart: ChartFn = fixed_chart, wall_clock=utcnow
) -> SignalCycle:
    # No dwell: the first SELL alerts at once (the dwell has its own tests, test_alert_policy).
    config = config_with(alerts__dwell_cycles="1")
    return SignalCycle(desk, store, config, render_chart, partial(woken.append, 1), wall_clock)


async def test_cycle_computes_followed_symbols_once_and_isolates_failures(real_desk, store, clock):
    desk, woken = MomentDesk(real_desk, fail={BTC}), []
    cycle = make_cycle(desk, store, woken, wall_clock=clock)
    assert (await cycle.run_once()).computed == ()  # nobody follows anything yet
    assert desk.computed == []
    await store.subscribe("console", "console", ())  # all symbols
    result = await cycle.run_once()
    assert sorted(desk.computed) == [BTC, ETH]
    assert result.failed == (BTC,)
    assert result.computed == (ETH,)
    assert await store.get_meta(LAST_CYCLE_MARKET_AT) == iso(desk.moment)
    assert await store.get_meta(LAST_CYCLE_AT) == iso(clock())  # the wall clock, not market's
    desk.computed.clear()
    await cycle.run_once()  # the same market moment again: ETH is not recomputed
    assert desk.computed == [BTC]


async def test_cycle_records_alerts_with_their_chart_and_wakes_the_sender(real_desk, store):
    desk, woken = MomentDesk(real_desk), []
    cycle = make_cycle(desk, store, woken)
    await store.subscribe("console", "console", (BTC,))
    desk.moment = datetime(2025, 9, 30, 5, tzinfo=UTC)  # BTC turns SELL at 05:00
    result = await cycle.run_once()
    assert result.computed == (BTC,)
    assert result.deliveries == 1
    assert woken == [1]
    stored = await store.last_alerted(BTC)
    assert stored is not None
    assert stored.chart_png == b"PNG"
    assert (await store.outbox_counts())["pending"] == 1


async def test_a_chart_that_cannot_be_drawn_costs_the_picture_not_the_alert(real_desk, store):
    def broken_draw(*args: object, **kwargs: object) -> bytes:
        raise RuntimeError("renderer broke")

    desk, woken = MomentDesk(real_desk), []
    cycle = make_cycle(desk, store, woken, ChartRenderer(draw=broken_draw))
    await store.subscribe("console", "console", (BTC,))
    desk.moment = datetime(2025, 9, 30, 5, tzinfo=UTC)  # BTC turns SELL at 05:00
    with capture_logs() as logs:
        result = await cycle.run_once()
    assert result.failed == ()
    assert result.computed == (BTC,)
    assert result.deliveries == 1
    assert woken == [1]
    stored = await store.last_alerted(BTC)
    assert stored is not None
    assert stored.chart_png is None
    assert (await store.outbox_counts())["pending"] == 1
    (failure,) = [e for e in logs if e["event"] == "chart_failed"]
    assert failure["symbol"] == BTC
    assert failure["exc_info"] is True


async def test_first_run_is_now_when_overdue_else_one_interval_after_the_last(store, clock):
    scheduler = CycleScheduler(Counter(), store, interval_s=3600, wall_clock=clock)
    assert await scheduler.first_run_at() == clock()  # never ran
    await store.set_meta(LAST_CYCLE_AT, iso(clock() - timedelta(minutes=20)))
    assert await scheduler.first_run_at() == clock() + timedelta(minutes=40)
    clock.advance(40 * 60)
    assert await scheduler.first_run_at() == clock()  # due exactly now
    clock.advance(3 * 86400)
    assert await scheduler.first_run_at() == clock()  # days overdue: now, once


class BusyDesk:
    """Symbols whose signals take `delay_s` each (the real BTC signal, renamed); counts how many
    are computing at once."""

    def __init__(self, desk: SignalDesk, symbols: tuple[str, ...], delay_s: float) -> None:
        self._desk = desk
        self.symbols = symbols
        self._delay_s = delay_s
        self.running = 0
        self.peak = 0

    def now(self) -> datetime:
        return datetime(2025, 9, 30, 4, tzinfo=UTC)

    async def signal(self, symbol: str, at: datetime | None = None) -> SignalResult:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await asyncio.sleep(self._delay_s)
            result = await self._desk.signal(BTC, at)
        finally:
            self.running -= 1
        return dataclasses.replace(result, signal=dataclasses.replace(result.signal, symbol=symbol))


async def test_cycle_computes_symbols_concurrently_within_the_configured_bound(real_desk, store):
    symbols = tuple(f"{name}/USDT" for name in ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF"))
    desk = BusyDesk(real_desk, symbols, delay_s=0.1)
    config = config_with(alerts__dwell_cycles="1", schedule__max_concurrent_symbols="2")
    cycle = SignalCycle(desk, store, config, fixed_chart, lambda: None)  # type: ignore[arg-type]
    await store.subscribe("console", "console", ())
    result = await cycle.run_once()
    assert result.computed == symbols  # recorded in symbol order
    assert desk.peak == 2  # concurrent (not one by one), never more than the bound
    for symbol in symbols:
        stored = await store.last_signal(symbol)
        assert stored is not None
