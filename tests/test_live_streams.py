"""Live order-book streams followed by the bot: the symbols watched or subscribed stream through
the real ccxt websocket client from the fake Binance on 127.0.0.1, from the start of `run` to its
end; the order-book report says whether the stream or REST polling served it, and why."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from structlog.testing import capture_logs

from bot.app import run_bot
from bot.config import BotConfig
from bot.scheduling.cycle import LAST_CYCLE_AT, SignalCycle
from bot.storage.memory import MemoryStore
from bot.storage.sqlite import SqliteStore
from intel.config import Secrets, load_config
from intel.desk import SignalDesk, build_desk
from intel.models import AgentReport, FearGreedReading, MarketSnapshot, ReportStatus, Signal
from intel.sources.fakes.binance import FakeBinance, Faults
from intel.sources.fakes.social import FakeAlternativeMe, replay_fear_greed
from intel.timeutil import iso, parse_time, to_ms, utcnow

BOOK_MOMENT = parse_time("2024-08-09T00:00:30Z")  # inside the recorded Binance books
MARKET_NOW = BOOK_MOMENT + timedelta(minutes=10)
REDDIT_ENV = ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USER_AGENT")
WS_PATH = "/ws"


@pytest.fixture(autouse=True)
def no_reddit_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in REDDIT_ENV:
        monkeypatch.delenv(name, raising=False)


@dataclass
class Fakes:
    exchange: FakeBinance
    index: FakeAlternativeMe

    def config(self, **env: str) -> BotConfig:
        return load_config(
            path=None,
            env={
                "BOT__DATA__MODE": "live",
                "BOT__EXCHANGE__REST_URL": self.exchange.rest_url,
                "BOT__EXCHANGE__WS_URL": self.exchange.ws_url,
                "BOT__EXCHANGE__TIMEOUT_S": "2",
                "BOT__EXCHANGE__STREAM_RETRY_S": "60",  # a dropped stream stays down here
                "BOT__SOURCES__FEAR_GREED__BASE_URL": self.index.url,
                "BOT__CACHE_TTL_S__ORDERBOOK": "0",  # every signal reads the book again
            }
            | env,
            model=BotConfig,
        )

    def market_now(self) -> datetime:
        """The desk's clock: ahead of the streamed books (twenty recorded seconds a second), so
        every book streamed during a test is in the window, and fixed, so it cannot pass them."""
        return MARKET_NOW


def published_by(moment: datetime) -> list[FearGreedReading]:
    """The readings the live API would have served at `moment`."""
    return [reading for reading in replay_fear_greed() if reading.timestamp <= moment]


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    async with (
        FakeBinance(now_ms=to_ms(BOOK_MOMENT), stream_tick_s=0.05) as exchange,
        FakeAlternativeMe(published_by(BOOK_MOMENT)) as index,
    ):
        yield Fakes(exchange, index)


# ccxt asks for the REST snapshot only after a few diffs: ten recorded seconds are plenty.
async def wait_for(condition: Callable[[], bool | Awaitable[bool]], timeout_s: float = 5) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        met = condition()
        if not isinstance(met, bool):
            met = await met
        if met:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def no_chart(signal: Signal, snapshot: MarketSnapshot) -> bytes | None:
    return None


def book_report(signal: Signal) -> AgentReport:
    return signal.reports["orderbook"]


def feed_note(report: AgentReport) -> str:
    (note,) = [note for note in report.notes if note.startswith("order book via ")]
    return note


async def watched(*symbols: str) -> MemoryStore:
    store = MemoryStore()
    await store.open()
    for symbol in symbols:
        await store.watch_add("console", "ana", "console", symbol)
    return store


async def test_the_cycle_streams_the_followed_books_and_the_report_says_so(fakes) -> None:
    config = fakes.config()
    desk = build_desk(config, market_clock=fakes.market_now)
    store = await watched("BTC/USDT")
    cycle = SignalCycle(desk, store, config, no_chart, lambda: None)
    async with desk:
        assert await cycle.follow_books() == ("BTC/USDT",)  # ETH/USDT: nobody follows it
        await wait_for(lambda: fakes.exchange.ws_connections == 1)
        start_ms = fakes.exchange.book_time_ms("BTCUSDT")
        await wait_for(lambda: fakes.exchange.book_time_ms("BTCUSDT") >= start_ms + 10_000)
        result = await cycle.run_once()
        assert result.computed == ("BTC/USDT",)
        stored = await store.last_signal("BTC/USDT")
        assert stored is not None
        note = feed_note(book_report(stored.signal))
        assert note.startswith("order book via binance websocket stream: ")
        assert book_report(stored.signal).status is ReportStatus.OK
        # More than one snapshot: the stream's window, not one polled book.
        assert "spoofing not judged: only one order-book snapshot" not in (
            book_report(stored.signal).notes
        )
        # Not followed: read over REST, and the report says why.
        eth = book_report((await desk.signal("ETH/USDT")).signal)
        assert feed_note(eth) == "order book via binance REST polling (not streamed)"
        assert eth.status is ReportStatus.OK  # asked on demand: one book is all it needs
    await wait_for(lambda: fakes.exchange.open_connections == 0)  # closed with the desk


async def test_a_stream_dropped_mid_way_falls_back_to_rest_with_the_reason(fakes) -> None:
    config = fakes.config()
    desk = build_desk(config, market_clock=fakes.market_now)
    async with desk:
        assert desk.follow_books(["BTC/USDT"]) == ("BTC/USDT",)
        start_ms = fakes.exchange.book_time_ms("BTCUSDT")
        await wait_for(lambda: fakes.exchange.book_time_ms("BTCUSDT") >= start_ms + 10_000)
        streamed = await desk.signal("BTC/USDT")
        assert "websocket stream" in feed_note(book_report(streamed.signal))
        depth_before = fakes.exchange.requests["/api/v3/depth"]
        fakes.exchange.faults = Faults(ws_drop_after=1)  # the fake cuts the socket at once

        async def on_rest() -> bool:
            result = await desk.signal("BTC/USDT")
            return "REST polling" in feed_note(book_report(result.signal))

        await wait_for(on_rest)
        dropped = await desk.signal("BTC/USDT")
        report = book_report(dropped.signal)
        assert report.score is not None  # the polled book still counts, degraded
        assert report.status is ReportStatus.DEGRADED
        assert report.reason is not None
        assert report.reason.startswith("one order book over REST, no stream window (stream down: ")
        assert "1011" in report.reason
        note = feed_note(report)
        assert note.startswith("order book via binance REST polling (stream down: ")
        assert "1011" in note  # the closing code the fake sent
        assert fakes.exchange.requests["/api/v3/depth"] > depth_before


async def test_the_streamed_symbols_follow_the_watchlists_each_cycle(fakes) -> None:
    config = fakes.config(BOT__EXCHANGE__STREAM_SYMBOLS_MAX="1")
    desk = build_desk(config, market_clock=fakes.market_now)
    store = await watched()
    cycle = SignalCycle(desk, store, config, no_chart, lambda: None)
    async with desk:
        assert await cycle.follow_books() == ()
        await store.watch_add("console", "ana", "console", "ETH/USDT")
        await store.watch_add("console", "bo", "console", "BTC/USDT")
        await cycle.run_once()
        await wait_for(lambda: fakes.exchange.ws_connections == 1)  # the cycle followed them
        # Both followed, one stream allowed: the first in `symbols` config order.
        assert desk.config.symbols[0] == "BTC/USDT"
        assert fakes.exchange.requests["/ws/0"] == 1
        assert await cycle.follow_books() == ("BTC/USDT",)
        assert desk.follow_books(["ETH/USDT"]) == ("ETH/USDT",)


async def test_replay_streams_nothing() -> None:
    desk: SignalDesk = build_desk(load_config(path=None, env={}))
    assert desk.follow_books(["BTC/USDT"]) == ()


async def test_run_live_streams_the_followed_books_from_start_to_stop(fakes, tmp_path) -> None:
    db_path = tmp_path / "bot.db"
    store = SqliteStore(db_path)
    await store.open()
    await store.watch_add("console", "ana", "console", "BTC/USDT")
    # A cycle just ran: the next one is not due while this bot runs, so only its start follows.
    await store.set_meta(LAST_CYCLE_AT, iso(utcnow()))
    await store.close()
    config = fakes.config(
        BOT__STORAGE__DB_PATH=str(db_path), BOT__CONSOLE__CHART_DIR=str(tmp_path / "charts")
    )
    stdin, stdout = io.StringIO("status\n"), io.StringIO()
    run = asyncio.create_task(run_bot(config, Secrets(), console=True, stdin=stdin, stdout=stdout))
    await wait_for(lambda: fakes.exchange.ws_connections == 1 or run.done(), timeout_s=10)
    assert await asyncio.wait_for(run, timeout=30) == 0
    assert fakes.exchange.ws_connections == 1  # streamed while the bot ran
    await wait_for(lambda: fakes.exchange.open_connections == 0)  # and closed with it


async def test_live_the_home_exchange_is_the_configured_exchange(fakes) -> None:
    # A home exchange left from another setup must not make the exchange's own book "another venue".
    config = fakes.config(BOT__AGENTS__ORDERBOOK__HOME_EXCHANGE="kraken")
    desk = build_desk(config, market_clock=fakes.market_now)
    async with desk:
        report = book_report((await desk.signal("BTC/USDT")).signal)
    assert report.status is ReportStatus.OK, report.reason
    assert config.agents.orderbook.home_exchange == "kraken"  # replay would still read it


async def test_a_followed_symbol_the_exchange_does_not_list_is_one_warning(fakes) -> None:
    # One unlisted symbol must not turn streaming off for the listed ones.
    config = fakes.config(BOT__SYMBOLS="[BTC/USDT, XRP/EUR]")
    desk = build_desk(config, market_clock=fakes.market_now)
    store = await watched("BTC/USDT", "XRP/EUR")
    cycle = SignalCycle(desk, store, config, no_chart, lambda: None)
    async with desk:
        with capture_logs() as logs:
            assert await cycle.follow_books() == ("BTC/USDT",)
            assert await cycle.follow_books() == ("BTC/USDT",)  # the next cycle: no new warning
            await wait_for(lambda: fakes.exchange.ws_connections == 1)
    (refused,) = [entry for entry in logs if entry["event"] == "orderbook_follow_refused"]
    assert refused["log_level"] == "warning"
    assert "XRP/EUR is not listed on binance" in refused["detail"]
    assert not [entry for entry in logs if entry["log_level"] in ("error", "critical")]
    assert not [entry for entry in logs if "exc_info" in entry]
