"""A fake Binance spot API (REST and the depth websocket) on 127.0.0.1, serving recorded data.

What it answers, and from what:
- `GET /api/v3/exchangeInfo`: a real recorded response (NautilusTrader's test suite, LGPL-3.0,
  kept byte for byte with its notice in tests/fixtures/binance), or the document passed in.
- `GET /api/v3/klines`: the replay candles shipped in `intel/data/replay/candles`, re-serialised
  into Binance's documented 12-field kline arrays (values are the recorded text; the fields the
  recording lacks — quote volume, trade count, taker volumes — are zero).
- `GET /api/v3/depth` and the `<symbol>@depth@100ms` stream: the recorded one-second top-20
  Binance snapshots shipped in `intel/data/replay/orderbook`, re-serialised as Binance depth
  snapshots and diff events; each stream tick moves the market one recorded snapshot on, with
  update ids that continue the REST snapshot's `lastUpdateId` as Binance's do.
- `GET /api/v3/ping` and `/api/v3/time`; anything else is a 404, counted in `requests`.
`weight_limit` makes it answer 429 beyond a request weight per window, as Binance does, and count
the violations; `recorded_as` serves a listed symbol from another symbol's recording.
The fake's market clock `now_ms` decides what klines exist: every candle opened by then, the
last one still open (served with its recorded final values). The book starts at the snapshot
taken at or before `now_ms`. `faults` can be changed between requests.
"""

from __future__ import annotations

import asyncio
import bisect
import csv
import functools
import gzip
import json
import math
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

from intel.sources.fakes.server import serve_on_loopback
from intel.sources.replay_files import DEFAULT_REPLAY_DIR

__all__ = ["EXCHANGE_INFO_FILE", "FakeBinance", "Faults"]

EXCHANGE_INFO_FILE = (
    Path(__file__).resolve().parents[3]
    / "tests"
    / "fixtures"
    / "binance"
    / "nautilus_http_spot_market_exchange_info.json"
)
HOUR_MS = 3_600_000
UPDATE_ID_BASE = 14_527_958_487  # the recorded depth response's lastUpdateId
# Binance's answer to a client in a region it does not serve (HTTP 451).
REGION_BLOCK_MESSAGE = (
    "Service unavailable from a restricted location according to 'b. Eligibility' in "
    "https://www.binance.com/en/terms. Please contact customer service if you believe you "
    "received this message in error."
)
Levels = list[list[str]]


@dataclass
class Faults:
    """What goes wrong; all off by default. A test switches them on between requests."""

    latency_s: float = 0.0  # added before every REST answer
    status: int | None = None  # every REST request is answered with this HTTP status
    retry_after_s: int | None = None  # the Retry-After header sent with `status`
    malformed_json: bool = False  # REST bodies cut off mid-JSON
    one_sided_book: bool = False  # depth snapshots and diffs carry no asks
    nan_prices: bool = False  # depth bid prices are "NaN"
    crossed_book: bool = False  # depth asks priced at the bids' prices
    bad_kline_rows: frozenset[int] = frozenset()  # positions in a klines answer to corrupt
    ws_drop_after: int | None = None  # a websocket is cut after this many diff events
    ws_refuse: bool = False  # websocket upgrades are answered 503
    bid_price: str | None = None  # depth bids priced at this text, e.g. "-5" or "0"
    # The REST faults above (latency, status, malformed JSON) hit only these paths; empty: all.
    only_paths: frozenset[str] = frozenset()


@dataclass(frozen=True)
class _Candles:
    open_ms: list[int]
    rows: list[list[str]]  # open, high, low, close, volume as recorded


_Snapshot = tuple[dict[str, str], dict[str, str]]  # bids, asks: price → quantity (as text)


@dataclass
class _Books:
    times_ms: tuple[int, ...]
    snapshots: tuple[_Snapshot, ...]
    cursor: int  # the snapshot the market stands at; the stream moves it on


class FakeBinance:
    """The server; `async with FakeBinance(now_ms=...) as fake:` then point ccxt at `fake.rest_url`
    and `fake.ws_url`. `requests` counts the requests per path (websocket upgrades included)."""

    def __init__(
        self,
        *,
        now_ms: int,
        replay_dir: Path = DEFAULT_REPLAY_DIR,
        exchange_info: dict[str, Any] | None = None,
        stream_tick_s: float = 0.1,  # real seconds per stream event (one recorded second each)
        recorded_as: Mapping[str, str] | None = None,
    ) -> None:
        self.now_ms = now_ms
        self.replay_dir = replay_dir
        self.exchange_info = exchange_info
        self.stream_tick_s = stream_tick_s
        # venue symbol -> the recorded venue symbol whose candles and books it serves (benchmarks
        # list many symbols; only a few are recorded)
        self.recorded_as = dict(recorded_as or {})
        self.faults = Faults()
        self.requests: Counter[str] = Counter()
        self.ws_connections = 0
        self.violations = 0  # REST requests over the weight limit (answered 429)
        self._weight_limit: tuple[float, float] | None = None  # (weight, per seconds)
        self._weights: deque[tuple[float, float]] = deque()  # (monotonic time, weight)
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._books: dict[str, _Books] = {}
        self._sockets: set[web.WebSocketResponse] = set()

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}"

    @property
    def open_connections(self) -> int:
        """Client connections (HTTP keep-alive and websocket) the server holds open now."""
        server = self._runner.server if self._runner is not None else None
        return len(server.connections) if server is not None else 0

    async def start(self) -> None:
        if self.exchange_info is None:
            self.exchange_info = json.loads(EXCHANGE_INFO_FILE.read_text(encoding="utf-8"))
        app = web.Application()
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/api/v3/depth", self._depth)
        app.router.add_get("/api/v3/ping", self._ping)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/ws", self._websocket)
        app.router.add_get("/ws/{tail:.*}", self._websocket)
        app.router.add_route("*", "/{tail:.*}", self._unknown)
        self._runner, self._port = await serve_on_loopback(app)
        for venue_symbol in self._venue_symbols():  # read the recordings before any request
            self._load_candles(venue_symbol)
            self._book(venue_symbol)

    async def close(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeBinance:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def weight_limit(self, weight: float, per_s: float) -> None:
        """Answer 429 (Retry-After) to REST requests beyond `weight` in any `per_s` window,
        weighed as Binance does (`REQUEST_WEIGHT`: 6,000 a minute)."""
        self._weight_limit = (weight, per_s)

    def book_time_ms(self, venue_symbol: str) -> int:
        """The recorded time of the book as it stands now (the stream moves it on)."""
        books = self._book(venue_symbol)
        return books.times_ms[books.cursor]

    # REST -----------------------------------------------------------------------------------

    async def _answer(self, request: web.Request, body: Any) -> web.Response:
        self.requests[request.path] += 1
        if (over := self._over_weight(request)) is not None:
            return over
        faults = self.faults
        if faults.only_paths and request.path not in faults.only_paths:
            faults = Faults()
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        if faults.status is not None:
            return _error_response(faults.status, faults.retry_after_s)
        text = json.dumps(body)
        if faults.malformed_json:
            text = text[: max(1, len(text) // 2)]
        return web.Response(text=text, content_type="application/json")

    def _over_weight(self, request: web.Request) -> web.Response | None:
        if self._weight_limit is None:
            return None
        limit, per_s = self._weight_limit
        now = time.monotonic()
        while self._weights and now - self._weights[0][0] >= per_s:
            self._weights.popleft()
        weight = _request_weight(request)
        used = sum(w for _, w in self._weights)
        if used + weight <= limit:
            self._weights.append((now, weight))
            return None
        self.violations += 1
        wait_s = per_s - (now - self._weights[0][0]) if self._weights else per_s
        return _error_response(429, max(1, math.ceil(wait_s)))

    async def _exchange_info(self, request: web.Request) -> web.Response:
        return await self._answer(request, self.exchange_info)

    async def _ping(self, request: web.Request) -> web.Response:
        return await self._answer(request, {})

    async def _time(self, request: web.Request) -> web.Response:
        return await self._answer(request, {"serverTime": self.now_ms})

    async def _unknown(self, request: web.Request) -> web.Response:
        self.requests[request.path] += 1
        return web.json_response({"code": -1, "msg": "not served by the fake"}, status=404)

    async def _klines(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("interval") != "1h":
            return await self._bad_request(request, -1120, "Invalid interval.")
        candles = self._load_candles(query.get("symbol", ""))
        if candles is None:
            return await self._bad_request(request, -1121, "Invalid symbol.")
        limit = min(int(query.get("limit", 500)), 1000)
        stop = bisect.bisect_right(candles.open_ms, self.now_ms)
        if "endTime" in query:
            stop = min(stop, bisect.bisect_right(candles.open_ms, int(query["endTime"])))
        if "startTime" in query:
            start = bisect.bisect_left(candles.open_ms, int(query["startTime"]))
            stop = min(stop, start + limit)
        else:
            start = max(0, stop - limit)
        klines = [_kline(candles.open_ms[i], candles.rows[i]) for i in range(start, stop)]
        for position in self.faults.bad_kline_rows:
            if position < len(klines):
                klines[position] = _corrupt(klines[position], position)
        return await self._answer(request, klines)

    async def _depth(self, request: web.Request) -> web.Response:
        symbol = request.query.get("symbol", "")
        if symbol not in self._venue_symbols():
            return await self._bad_request(request, -1121, "Invalid symbol.")
        limit = int(request.query.get("limit", 100))
        books = self._book(symbol)
        bids, asks = books.snapshots[books.cursor] if books.snapshots else ({}, {})
        if self.faults.crossed_book:
            asks = bids
        body = {
            "lastUpdateId": UPDATE_ID_BASE + books.cursor,
            "bids": self._side(bids, descending=True)[:limit],
            "asks": self._side(asks, descending=False)[:limit],
        }
        return await self._answer(request, body)

    async def _bad_request(self, request: web.Request, code: int, message: str) -> web.Response:
        self.requests[request.path] += 1
        return web.json_response({"code": code, "msg": message}, status=400)

    def _side(self, levels: dict[str, str], *, descending: bool) -> Levels:
        if not descending and self.faults.one_sided_book:
            return []
        ordered = sorted(levels.items(), key=lambda item: float(item[0]), reverse=descending)
        if descending and self.faults.nan_prices:
            return [["NaN", quantity] for _, quantity in ordered]
        if descending and self.faults.bid_price is not None:
            return [[self.faults.bid_price, quantity] for _, quantity in ordered]
        return [[price, quantity] for price, quantity in ordered]

    # Websocket ------------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        self.requests[request.path] += 1
        if self.faults.ws_refuse:
            return web.Response(status=503, text="Service Unavailable")
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.ws_connections += 1
        self._sockets.add(socket)
        streams: list[asyncio.Task[None]] = []
        try:
            async for message in socket:
                if message.type is not WSMsgType.TEXT:
                    continue
                command = json.loads(message.data)
                if command.get("method") == "SUBSCRIBE":
                    await socket.send_json({"result": None, "id": command.get("id")})
                    for name in command.get("params", []):
                        stream = self._diff_stream(socket, str(name).split("@")[0].upper())
                        streams.append(asyncio.create_task(stream))
        finally:
            for task in streams:
                task.cancel()
            self._sockets.discard(socket)
        return socket

    async def _diff_stream(self, socket: web.WebSocketResponse, symbol: str) -> None:
        """Each tick: the next recorded snapshot, sent as a Binance `depthUpdate` diff."""
        books = self._book(symbol)
        sent = 0
        while books.cursor + 1 < len(books.snapshots) and not socket.closed:
            await asyncio.sleep(self.stream_tick_s)
            before, after = books.snapshots[books.cursor], books.snapshots[books.cursor + 1]
            books.cursor += 1
            update_id = UPDATE_ID_BASE + books.cursor
            event = {
                "e": "depthUpdate",
                "E": books.times_ms[books.cursor],
                "s": symbol,
                "U": update_id,
                "u": update_id,
                "b": _diff(before[0], after[0], nan=self.faults.nan_prices),
                "a": [] if self.faults.one_sided_book else _diff(before[1], after[1]),
            }
            await socket.send_str(json.dumps(event))
            sent += 1
            if self.faults.ws_drop_after is not None and sent >= self.faults.ws_drop_after:
                await socket.close(code=1011, message=b"dropped by the fake")
                return

    # Recorded data --------------------------------------------------------------------------

    def _venue_symbols(self) -> set[str]:
        assert self.exchange_info is not None
        return {str(item["symbol"]) for item in self.exchange_info["symbols"]}

    def _load_candles(self, venue_symbol: str) -> _Candles | None:
        recorded = self.recorded_as.get(venue_symbol, venue_symbol)
        path = self.replay_dir / "candles" / f"{recorded}_1h.csv.gz"
        if venue_symbol not in self._venue_symbols() or not path.is_file():
            return None
        return _read_candles(path)

    def _book(self, venue_symbol: str) -> _Books:
        if venue_symbol not in self._books:
            recorded = self.recorded_as.get(venue_symbol, venue_symbol)
            path = self.replay_dir / "orderbook" / f"binance_{recorded}_top20_1s.tsv.gz"
            times_ms, snapshots = _read_books(path) if path.is_file() else ((), ())
            cursor = max(0, bisect.bisect_right(times_ms, self.now_ms) - 1)
            self._books[venue_symbol] = _Books(times_ms, snapshots, cursor)
        return self._books[venue_symbol]


def _request_weight(request: web.Request) -> float:
    """Binance's documented REQUEST_WEIGHT of the endpoints the fake serves (spot API, 2024)."""
    if request.path == "/api/v3/klines":
        return 2
    if request.path == "/api/v3/depth":
        limit = int(request.query.get("limit", 100))
        return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250
    return 20 if request.path == "/api/v3/exchangeInfo" else 1


@functools.cache
def _read_candles(path: Path) -> _Candles:
    """Read once per process (about 0.3 s a file), so a test's first request is not slowed."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[1:]  # header: open_time_ms,open,high,low,close,volume
    return _Candles([int(row[0]) for row in rows], [row[1:] for row in rows])


@functools.cache
def _read_books(path: Path) -> tuple[tuple[int, ...], tuple[_Snapshot, ...]]:
    times_ms: list[int] = []
    snapshots: list[_Snapshot] = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        for line in handle:
            stamp, _, payload = line.partition("\t")
            raw = json.loads(payload)
            times_ms.append(int(stamp))
            snapshots.append((_levels(raw["bids"]), _levels(raw["asks"])))
    return tuple(times_ms), tuple(snapshots)


def _levels(pairs: list[list[float]]) -> dict[str, str]:
    """Recorded (price, quantity) numbers as Binance writes them: 8-decimal strings."""
    return {f"{price:.8f}": f"{quantity:.8f}" for price, quantity in pairs}


def _diff(before: dict[str, str], after: dict[str, str], *, nan: bool = False) -> Levels:
    changed = [[p, q] for p, q in after.items() if before.get(p) != q]
    removed = [[p, "0.00000000"] for p in before if p not in after]  # quantity 0: level gone
    levels = changed + removed
    return [["NaN", q] for _, q in levels] if nan else levels


def _kline(open_ms: int, row: list[str]) -> list[Any]:
    # Binance: open time, O, H, L, C, volume, close time, quote volume, trades, taker base
    # volume, taker quote volume, ignore.
    return [open_ms, *row[:5], open_ms + HOUR_MS - 1, "0", 0, "0", "0", "0"]


def _corrupt(kline: list[Any], position: int) -> list[Any]:
    """One of four real-world defects, chosen by position: NaN, negative, zero, short row."""
    damaged = list(kline)
    match position % 4:
        case 0:
            damaged[4] = "NaN"
        case 1:
            damaged[1] = "-1.00000000"
        case 2:
            damaged[3] = "0.00000000"
        case _:
            damaged = damaged[:4]
    return damaged


def _error_response(status: int, retry_after_s: int | None) -> web.Response:
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else {}
    if status == 451:
        body = {"code": 0, "msg": REGION_BLOCK_MESSAGE}
    elif status == 429:
        body = {"code": -1003, "msg": "Too many requests; please use the websocket for updates."}
    elif status >= 500:
        return web.Response(status=status, text="Service Unavailable", headers=headers)
    else:
        body = {"code": -1000, "msg": "An unknown error occurred while processing the request."}
    return web.json_response(body, status=status, headers=headers)
