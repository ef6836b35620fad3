"""The live exchange source, through the real ccxt, against the fake Binance on 127.0.0.1.

Expected values are read here from the recorded files themselves (the replay candles and
books the fake re-serialises), never from the source under test.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import csv
import gc
import gzip
import json
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from structlog.testing import capture_logs

from intel.config import ExchangeConfig
from intel.errors import ConfigError, PermanentSourceError, SourceError, UnknownSymbolError
from intel.models import OrderBook, OrderBookHistory
from intel.sources.base import CandleSource, OrderBookSource, SkipsRecords
from intel.sources.exchange import ExchangeSource
from intel.sources.fakes.binance import EXCHANGE_INFO_FILE, FakeBinance, Faults
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.timeutil import from_ms, parse_time, to_ms

BOOK_MOMENT = parse_time("2024-08-09T00:00:30Z")  # inside the recorded Binance books
CANDLE_MOMENT = parse_time("2025-10-06T16:30Z")
WALL_CLOCK = datetime(2030, 1, 1, tzinfo=UTC)  # the source's "now" for coverage
TIMEOUT_S = 0.4


def recorded_candles(venue_symbol: str) -> list[tuple[int, float, float, float, float, float]]:
    path = DEFAULT_REPLAY_DIR / "candles" / f"{venue_symbol}_1h.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return [(int(r[0]), *(float(v) for v in r[1:6])) for r in rows]  # type: ignore[misc]


def recorded_books(venue_symbol: str) -> dict[int, dict[str, Any]]:
    path = DEFAULT_REPLAY_DIR / "orderbook" / f"binance_{venue_symbol}_top20_1s.tsv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return {int(ts): json.loads(raw) for ts, raw in (line.split("\t") for line in handle)}


def levels(book: OrderBook) -> dict[str, list[list[float]]]:
    return {
        "bids": [list(level) for level in book.bids],
        "asks": [list(level) for level in book.asks],
    }


def config(fake: FakeBinance, **overrides: Any) -> ExchangeConfig:
    settings: dict[str, Any] = {"timeout_s": TIMEOUT_S, "stream_retry_s": 60} | overrides
    return ExchangeConfig(rest_url=fake.rest_url, ws_url=fake.ws_url, **settings)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    async with FakeBinance(now_ms=to_ms(BOOK_MOMENT), stream_tick_s=0.02) as server:
        yield server


@pytest.fixture
async def source(fake: FakeBinance) -> AsyncIterator[ExchangeSource]:
    src = ExchangeSource(config(fake), window_s=5, clock=lambda: WALL_CLOCK)
    await src.start()
    yield src
    await src.close()


async def wait_for(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_it_is_a_candle_and_order_book_source() -> None:
    source = ExchangeSource(ExchangeConfig())
    candles: CandleSource = source
    books: OrderBookSource = source
    assert candles is books
    assert isinstance(source, SkipsRecords)


# Markets and symbols ------------------------------------------------------------------------


async def test_markets_are_loaded_once_from_spot_only(fake, source) -> None:
    fake.now_ms = to_ms(CANDLE_MOMENT)
    await source.candles("BTC/USDT", CANDLE_MOMENT, 5)
    await source.candles("ETH/USDT", CANDLE_MOMENT, 5)
    await source.coverage("BTC/USDT")
    await source.books("BTC/USDT", BOOK_MOMENT, 60)
    assert fake.requests["/api/v3/exchangeInfo"] == 1
    assert all(path.startswith("/api/v3/") for path in fake.requests), fake.requests


async def test_an_unlisted_symbol_is_a_user_error_with_a_suggestion(source) -> None:
    with pytest.raises(
        UnknownSymbolError, match=r"BTC/USDC is not listed on binance; did you mean BTC/USDT"
    ):
        await source.candles("BTC/USDC", CANDLE_MOMENT, 5)
    with pytest.raises(UnknownSymbolError, match="not listed"):
        await source.books("NOPE/XYZ", BOOK_MOMENT, 60)


async def test_a_symbol_that_stopped_trading_is_a_user_error() -> None:
    info = json.loads(EXCHANGE_INFO_FILE.read_text(encoding="utf-8"))
    info["symbols"][1]["status"] = "BREAK"  # ETHUSDT halted, as Binance marks delisted pairs
    async with FakeBinance(now_ms=to_ms(CANDLE_MOMENT), exchange_info=info) as fake:
        source = ExchangeSource(config(fake))
        await source.start()
        try:
            with pytest.raises(UnknownSymbolError, match="ETH/USDT is not trading on binance"):
                await source.candles("ETH/USDT", CANDLE_MOMENT, 5)
            assert len(await source.candles("BTC/USDT", CANDLE_MOMENT, 5)) == 5
        finally:
            await source.close()


async def test_an_unknown_exchange_id_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"exchange\.id"):
        await ExchangeSource(ExchangeConfig(id="no-such-exchange")).start()


# Candles ------------------------------------------------------------------------------------


async def test_candles_are_the_recorded_closed_candles(fake, source) -> None:
    fake.now_ms = to_ms(CANDLE_MOMENT)
    series = await source.candles("BTC/USDT", CANDLE_MOMENT, 24)
    recorded = [
        row for row in recorded_candles("BTCUSDT") if row[0] + 3_600_000 <= to_ms(CANDLE_MOMENT)
    ]
    expected = recorded[-24:]
    assert [int(t) for t in series.open_time_ms] == [row[0] for row in expected]
    assert list(series.close) == [row[4] for row in expected]
    assert list(series.volume) == [row[5] for row in expected]
    assert from_ms(int(series.open_time_ms[-1])) == parse_time("2025-10-06T15:00Z")
    assert not series.close.flags.writeable


@pytest.mark.parametrize(
    ("now", "last_open"),
    [
        ("2025-10-06T16:00:00Z", "2025-10-06T15:00Z"),  # closed exactly now: visible
        ("2025-10-06T15:59:59.999Z", "2025-10-06T14:00Z"),  # a millisecond short: still open
    ],
)
async def test_a_candle_is_visible_once_closed(fake, source, now, last_open) -> None:
    moment = parse_time(now)
    fake.now_ms = to_ms(moment)
    series = await source.candles("ETH/USDT", moment, 3)
    assert len(series) == 3
    assert from_ms(int(series.open_time_ms[-1])) == parse_time(last_open)


async def test_coverage_runs_from_the_first_closed_candle_to_now(fake, source) -> None:
    fake.now_ms = to_ms(CANDLE_MOMENT)
    first_open_ms = recorded_candles("ETHUSDT")[0][0]
    assert await source.coverage("ETH/USDT") == (from_ms(first_open_ms + 3_600_000), WALL_CLOCK)


async def test_malformed_candle_rows_are_skipped_and_counted(fake, source) -> None:
    fake.now_ms = to_ms(CANDLE_MOMENT)
    # Positions 1–4 of the answer: a NaN close, a negative open, a zero low, a short row.
    fake.faults = Faults(bad_kline_rows=frozenset({1, 2, 3, 4}))
    series = await source.candles("BTC/USDT", CANDLE_MOMENT, 10)
    answer = [row for row in recorded_candles("BTCUSDT") if row[0] <= to_ms(CANDLE_MOMENT)][-11:]
    kept = [row for position, row in enumerate(answer[:-1]) if position not in {1, 2, 3, 4}]
    assert [int(t) for t in series.open_time_ms] == [row[0] for row in kept]
    (note,) = source.skipped_records("BTC/USDT")
    assert "binance BTC/USDT klines: skipped 4 bad records" in note


async def test_no_readable_candle_is_a_source_error(fake, source) -> None:
    fake.now_ms = to_ms(CANDLE_MOMENT)
    fake.faults = Faults(bad_kline_rows=frozenset(range(4)))
    with pytest.raises(SourceError, match="no BTC/USDT candle from binance had closed"):
        await source.candles("BTC/USDT", CANDLE_MOMENT, 3)


# Order books --------------------------------------------------------------------------------


async def test_the_rest_book_is_the_recorded_snapshot(source) -> None:
    history = await source.books("ETH/USDT", BOOK_MOMENT, 60)
    recorded = recorded_books("ETHUSDT")
    taken_ms = max(ts for ts in recorded if ts <= to_ms(BOOK_MOMENT))
    assert history.feed == "binance REST polling (not streamed)"
    assert (history.exchange, history.venue_symbol) == ("binance", "ETH/USDT")
    (book,) = history.books
    assert levels(book) == recorded[taken_ms]
    assert book.timestamp == BOOK_MOMENT  # Binance's REST depth carries no time


async def stream_history(
    source: ExchangeSource, fake: FakeBinance, symbol: str
) -> OrderBookHistory:
    now = from_ms(fake.book_time_ms(symbol.replace("/", "")))
    return await source.books(symbol, now, 60)


async def test_the_stream_keeps_a_bounded_window_of_the_recorded_books(fake, source) -> None:
    assert source.follow(["BTC/USDT"]) == ("BTC/USDT",)

    async def six_snapshots_kept() -> bool:
        return len((await stream_history(source, fake, "BTC/USDT")).books) >= 6

    await wait_for(six_snapshots_kept)
    later_ms = fake.book_time_ms("BTCUSDT") + 10_000

    async def ten_seconds_more() -> bool:
        return fake.book_time_ms("BTCUSDT") >= later_ms

    await wait_for(ten_seconds_more)
    history = await stream_history(source, fake, "BTC/USDT")
    span_s = (history.books[-1].timestamp - history.books[0].timestamp).total_seconds()
    assert history.feed == (
        f"binance websocket stream: {len(history.books)} snapshot(s) over {span_s:.0f} s"
    )
    assert history.fallback is None
    # window_s=5 at one snapshot a second: at most 6 kept, plus the current book.
    assert 6 <= len(history.books) <= 7
    times = [book.timestamp for book in history.books]
    assert times == sorted(set(times))
    seconds = [int(t.timestamp()) for t in times[:-1]]
    assert len(set(seconds)) == len(seconds)  # one kept per second
    recorded = recorded_books("BTCUSDT")
    for book in history.books:  # the REST snapshot merged with the diffs is the recorded book
        assert levels(book) == recorded[to_ms(book.timestamp)]


async def test_the_current_book_comes_with_the_kept_ones(fake) -> None:
    # One snapshot kept per 10 minutes: within a minute of stream, the ring holds one.
    source = ExchangeSource(config(fake, stream_snapshot_interval_s=600), window_s=600)
    await source.start()
    try:
        source.follow(["ETH/USDT"])

        async def current_moved_on() -> bool:
            books = (await stream_history(source, fake, "ETH/USDT")).books
            return len(books) == 2 and books[1].timestamp - books[0].timestamp >= timedelta(
                seconds=3
            )

        await wait_for(current_moved_on)
        history = await stream_history(source, fake, "ETH/USDT")
        recorded = recorded_books("ETHUSDT")
        assert [levels(book) for book in history.books] == [
            recorded[to_ms(book.timestamp)] for book in history.books
        ]
    finally:
        await source.close()


async def test_a_dropped_stream_falls_back_to_rest_and_reconnects(fake) -> None:
    source = ExchangeSource(config(fake, stream_retry_s=0.3), window_s=5)
    await source.start()
    try:
        fake.faults = Faults(ws_drop_after=5)
        source.follow(["BTC/USDT"])

        async def on_rest() -> bool:
            note = (await source.books("BTC/USDT", BOOK_MOMENT, 60)).feed or ""
            return note.startswith("binance REST polling (stream down:")

        await wait_for(on_rest)
        history = await source.books("BTC/USDT", BOOK_MOMENT, 60)
        assert history.feed is not None
        assert "closing code 1011" in history.feed
        assert len(history.books) == 1
        fake.faults = Faults()

        async def streaming_again() -> bool:
            note = (await stream_history(source, fake, "BTC/USDT")).feed or ""
            return note.startswith("binance websocket stream")

        await wait_for(streaming_again)
        assert fake.ws_connections >= 2
    finally:
        await source.close()


async def test_a_refused_or_silent_stream_leaves_rest_in_charge() -> None:
    async with FakeBinance(now_ms=to_ms(BOOK_MOMENT), stream_tick_s=60) as fake:
        source = ExchangeSource(config(fake, stream_stale_s=0.2))
        await source.start()
        try:
            fake.faults = Faults(ws_refuse=True)
            source.follow(["BTC/USDT"])

            async def refused() -> bool:
                note = (await source.books("BTC/USDT", BOOK_MOMENT, 60)).feed or ""
                return "503" in note

            await wait_for(refused)
            source.follow([])
            fake.faults = Faults()
            depth_before = fake.requests["/api/v3/depth"]
            source.follow(["BTC/USDT"])  # connects, merges the REST snapshot, then silence

            async def snapshot_merged() -> bool:
                return fake.requests["/api/v3/depth"] > depth_before

            await wait_for(snapshot_merged)
            await asyncio.sleep(0.4)
            history = await source.books("BTC/USDT", BOOK_MOMENT, 60)
            assert history.feed == "binance REST polling (stream silent: no update for 0.2 s)"
        finally:
            await source.close()


async def test_no_server_at_all_is_a_transient_source_error() -> None:
    async with FakeBinance(now_ms=to_ms(BOOK_MOMENT)) as fake:
        settings = config(fake)
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"binance loading markets: .*\(transient\)") as caught:
        await ExchangeSource(settings).start()
    assert type(caught.value) is SourceError
    assert time.monotonic() - started < TIMEOUT_S + 1.0


async def test_streams_are_capped_and_an_unlisted_symbol_streams_the_others(fake) -> None:
    source = ExchangeSource(config(fake, stream_symbols_max=1))
    await source.start()
    try:
        assert source.follow(["BTC/USDT", "ETH/USDT"]) == ("BTC/USDT",)
        with capture_logs() as logs:
            # XRP/EUR is not listed: it neither blocks ETH/USDT nor takes the one stream slot.
            assert source.follow(["XRP/EUR", "ETH/USDT"]) == ("ETH/USDT",)
            assert source.follow(["XRP/EUR", "ETH/USDT"]) == ("ETH/USDT",)  # the next cycle
        (refused,) = [entry for entry in logs if entry["event"] == "orderbook_follow_refused"]
        assert refused["symbol"] == "XRP/EUR"
        assert "XRP/EUR is not listed on binance" in refused["detail"]
        assert source.follow([]) == ()
    finally:
        await source.close()


async def test_a_halted_symbol_is_not_streamed_and_the_others_are() -> None:
    info = json.loads(EXCHANGE_INFO_FILE.read_text(encoding="utf-8"))
    info["symbols"][1]["status"] = "BREAK"  # ETHUSDT halted, as Binance marks delisted pairs
    async with FakeBinance(now_ms=to_ms(BOOK_MOMENT), exchange_info=info) as fake:
        source = ExchangeSource(config(fake))
        await source.start()
        try:
            with capture_logs() as logs:
                assert source.follow(["ETH/USDT", "BTC/USDT"]) == ("BTC/USDT",)
            (refused,) = [e for e in logs if e["event"] == "orderbook_follow_refused"]
            assert "ETH/USDT is not trading on binance" in refused["detail"]
        finally:
            await source.close()


# Faults -------------------------------------------------------------------------------------

FAULTS = [
    pytest.param(Faults(status=451), PermanentSourceError,
                 r"not available from this location \(HTTP 451\) — set another exchange id",
                 id="451"),
    pytest.param(Faults(status=429, retry_after_s=2), SourceError,
                 r"rate limited \(transient\); retry after 2 s", id="429"),
    pytest.param(Faults(status=503), SourceError,
                 r"exchange unavailable \(transient\).*503", id="503"),
    pytest.param(Faults(latency_s=TIMEOUT_S * 3), SourceError,
                 rf"timed out after {TIMEOUT_S:g} s \(transient\)", id="timeout"),
    pytest.param(Faults(malformed_json=True), SourceError,
                 r"malformed response: malformed JSON", id="malformed-json"),
]  # fmt: skip


@pytest.mark.parametrize(("faults", "error", "message"), FAULTS)
async def test_each_http_fault_is_the_right_error_within_bounded_time(
    fake, source, faults, error, message
) -> None:
    fake.now_ms = to_ms(CANDLE_MOMENT)
    fake.faults = faults
    for call in (
        lambda: source.candles("BTC/USDT", CANDLE_MOMENT, 5),
        lambda: source.books("BTC/USDT", BOOK_MOMENT, 60),
    ):
        started = time.monotonic()
        with pytest.raises(SourceError, match=message) as caught:
            await call()
        assert type(caught.value) is error  # only the 451 is permanent
        # The resilience layer waits out exactly what the exchange asked for.
        expected_wait = faults.retry_after_s if faults.status == 429 else None
        assert caught.value.retry_after_s == expected_wait
        assert time.monotonic() - started < TIMEOUT_S + 1.0


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        (Faults(one_sided_book=True), r"BTC/USDT order book is one-sided \(no asks\)"),
        (
            Faults(nan_prices=True),
            r"BTC/USDT order book has 20 unusable level\(s\): the first at price nan",
        ),
        (Faults(crossed_book=True), r"BTC/USDT order book is crossed: best bid 61718 ≥ best ask"),
    ],
)
async def test_an_unusable_book_is_a_source_error(fake, source, faults, message) -> None:
    fake.faults = faults
    with pytest.raises(SourceError, match=message):
        await source.books("BTC/USDT", BOOK_MOMENT, 60)


async def test_an_empty_book_is_a_source_error() -> None:
    info = json.loads(EXCHANGE_INFO_FILE.read_text(encoding="utf-8"))
    listed = copy.deepcopy(info["symbols"][0])  # a market listed, but with no recorded book
    listed.update(symbol="SOLUSDT", baseAsset="SOL")
    info["symbols"].append(listed)
    async with FakeBinance(now_ms=to_ms(BOOK_MOMENT), exchange_info=info) as fake:
        source = ExchangeSource(config(fake))
        await source.start()
        try:
            with pytest.raises(SourceError, match="SOL/USDT order book is empty"):
                await source.books("SOL/USDT", BOOK_MOMENT, 60)
        finally:
            await source.close()


@contextlib.contextmanager
def no_unclosed_resources() -> Iterator[None]:
    """Fails if aiohttp or asyncio complains of an unclosed session, connector or task."""
    loop_errors: list[str] = []
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: loop_errors.append(str(context["message"])))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
            gc.collect()
    finally:
        loop.set_exception_handler(previous)
    complaints = [str(w.message) for w in caught] + loop_errors
    assert [c for c in complaints if "nclosed" in c or "never retrieved" in c] == []


async def test_a_region_block_at_start_is_permanent_and_closes_the_client(fake) -> None:
    fake.faults = Faults(status=451)
    with pytest.raises(PermanentSourceError, match="another exchange id"):
        await ExchangeSource(config(fake)).start()

    async def client_gone() -> bool:
        return fake.open_connections == 0

    await wait_for(client_gone, timeout_s=2)


async def test_symbols_followed_before_start_stream_once_the_markets_are_loaded(fake) -> None:
    source = ExchangeSource(config(fake), window_s=5)
    assert source.follow(["BTC/USDT", "XRP/EUR"]) == ()  # nothing to stream with yet
    await source.start()
    try:

        async def streaming() -> bool:
            feed = (await stream_history(source, fake, "BTC/USDT")).feed or ""
            return feed.startswith("binance websocket stream")

        await wait_for(streaming)
        # The unlisted one was left out at start, not streamed and not fatal.
        eth = await source.books("ETH/USDT", BOOK_MOMENT, 60)
        assert eth.feed == "binance REST polling (not streamed)"
    finally:
        await source.close()


async def test_a_stream_still_connecting_says_so() -> None:
    async with FakeBinance(now_ms=to_ms(BOOK_MOMENT), stream_tick_s=60) as fake:
        source = ExchangeSource(config(fake, stream_stale_s=30))
        await source.start()
        try:
            source.follow(["BTC/USDT"])
            history = await source.books("BTC/USDT", BOOK_MOMENT, 60)
            assert history.feed == "binance REST polling (stream connecting)"
        finally:
            await source.close()


# Lifecycle ----------------------------------------------------------------------------------


async def test_close_releases_the_client_and_the_streams(fake) -> None:
    async def use_and_close() -> ExchangeSource:
        source = ExchangeSource(config(fake))
        await source.start()
        source.follow(["BTC/USDT", "ETH/USDT"])
        await source.books("ETH/USDT", BOOK_MOMENT, 60)
        await source.close()
        return source

    with no_unclosed_resources():
        closed = await use_and_close()

        async def client_gone() -> bool:
            return fake.open_connections == 0

        await wait_for(client_gone, timeout_s=2)
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert [t for t in left if "ExchangeSource" in repr(t.get_coro())] == []
        with pytest.raises(SourceError, match="not started"):
            await closed.books("BTC/USDT", BOOK_MOMENT, 60)
        del closed  # aiohttp warns of an unclosed session when it is collected


async def test_more_candles_than_one_answer_holds_are_fetched_in_pages(fake, source) -> None:
    fake.now_ms = to_ms(CANDLE_MOMENT)
    series = await source.candles("BTC/USDT", CANDLE_MOMENT, 2500)  # Binance: 1000 an answer
    recorded = [r for r in recorded_candles("BTCUSDT") if r[0] + 3_600_000 <= to_ms(CANDLE_MOMENT)]
    assert [int(t) for t in series.open_time_ms] == [row[0] for row in recorded[-2500:]]
    assert list(series.close) == [row[4] for row in recorded[-2500:]]
    assert fake.requests["/api/v3/klines"] == 3
