"""Live candles and order books from an exchange through ccxt (REST, and a websocket book stream).

Everything ccxt returns is checked and converted here, at the edge: candle rows that cannot be
read are skipped and counted (`SkipsRecords`), a book that cannot be used raises `SourceError`,
and ccxt's exceptions become `intel.errors` types whose message says whether a retry may help.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import ccxt.pro as ccxt_pro
import numpy as np
import structlog
from ccxt import async_support as ccxt_async
from ccxt.base import errors as ccxt_errors

from intel.config import ExchangeConfig
from intel.errors import ConfigError, PermanentSourceError, SourceError, UnknownSymbolError
from intel.models import CandleSeries, OrderBookHistory
from intel.sources.base import retry_after_s
from intel.sources.exchange_stream import BookStreams, book_stamp, first_line, to_book
from intel.sources.replay_files import RECORD_ERRORS, BadRecords, skipped_notes
from intel.timeutil import from_ms, iso, to_ms, utcnow

__all__ = ["ExchangeSource"]

log = structlog.get_logger(__name__)

T = TypeVar("T")
HOUR_S = 3600
HOUR_MS = HOUR_S * 1000
_MAX_CANDLE_PAGES = 10  # with Binance's 1000 a page, more than `pipeline.candle_lookback` allows
_REGION_BLOCKED = re.compile(r"\b451\b|restricted location")


class ExchangeSource:
    """`CandleSource` and `OrderBookSource` on one ccxt exchange; markets are loaded at start.

    `window_s` is how much stream history `books` can answer for (the spoofing window); `clock`
    is the wall clock: the end of `coverage`, and no streamed book is dated after it. Call
    `follow` with the symbols the bot follows to stream their books.
    """

    def __init__(
        self,
        config: ExchangeConfig,
        *,
        window_s: float = 900.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._config = config
        self._window_s = window_s
        self._clock = clock
        self._exchange: Any = None
        self._streams: BookStreams | None = None
        self._first_open_ms: dict[str, int] = {}
        self._bad: dict[str, BadRecords] = {}
        self._wanted: tuple[str, ...] = ()  # what `follow` was last asked for
        self._refused: set[str] = set()  # unlisted or halted symbols already warned about

    @property
    def exchange_id(self) -> str:
        return self._config.id

    async def start(self) -> None:
        exchange = _create_exchange(self._config)
        try:
            await self._call("loading markets", exchange.load_markets())
        except BaseException:
            await exchange.close()
            raise
        self._exchange = exchange
        self._streams = BookStreams(
            exchange, self._config, window_s=self._window_s, clock=self._clock
        )
        # Followed before the markets were known (the bot starts with the exchange down):
        # streamed now, an unlisted symbol left out (its signals say why).
        self._streams.follow(self._streamable(self._wanted))

    async def close(self) -> None:
        if self._streams is not None:
            await self._streams.close()  # before the exchange: a stream must not outlive it
            self._streams = None
        if self._exchange is not None:
            await self._exchange.close()
            self._exchange = None

    def skipped_records(self, symbol: str) -> tuple[str, ...]:
        stream_bad = self._streams.skipped(symbol) if self._streams else None
        return skipped_notes(self._bad.get(symbol), stream_bad)

    # Candles --------------------------------------------------------------------------------

    async def coverage(self, symbol: str) -> tuple[datetime, datetime]:
        """From the close of the first listed hourly candle to now."""
        self._market(symbol)
        if symbol not in self._first_open_ms:
            rows = await self._call(
                f"{symbol} first candle", self._ex.fetch_ohlcv(symbol, "1h", since=0, limit=1)
            )
            table, _ = _parse_candle_rows(rows, BadRecords("first candle"))
            if not table:
                raise SourceError(f"{self.exchange_id} has no {symbol} candles")
            self._first_open_ms[symbol] = int(table[0][0])
        return from_ms(self._first_open_ms[symbol] + HOUR_MS), self._clock()

    async def candles(self, symbol: str, now: datetime, count: int) -> CandleSeries:
        """The newest `count` hourly candles closed by `now`; the still-open one is dropped."""
        self._market(symbol)
        now_ms = to_ms(now)
        bad = BadRecords(f"{self.exchange_id} {symbol} klines")
        # One more than asked: the newest row is usually the candle still open at `now`.
        table = await self._candle_pages(symbol, now_ms, count + 1, bad)
        self._bad[symbol] = bad
        bad.log()
        closed = [row for row in table if row[0] + HOUR_MS <= now_ms][-count:]
        if not closed:
            raise SourceError(
                f"no {symbol} candle from {self.exchange_id} had closed by {iso(now)}"
            )
        columns = np.array(closed, dtype=np.float64)
        return CandleSeries(
            symbol=symbol,
            interval_s=HOUR_S,
            open_time_ms=columns[:, 0].astype(np.int64),
            open=columns[:, 1].copy(),
            high=columns[:, 2].copy(),
            low=columns[:, 3].copy(),
            close=columns[:, 4].copy(),
            volume=columns[:, 5].copy(),
        )

    async def _candle_pages(
        self, symbol: str, until_ms: int, wanted: int, bad: BadRecords
    ) -> list[tuple[float, ...]]:
        """The newest `wanted` rows opened by `until_ms`, oldest first (bad rows skipped, not
        replaced). An exchange answers a capped number of rows per request (Binance 1000; ccxt
        caps `limit` silently): a short answer means "ask for older ones", an empty one "no
        more"."""
        table: list[tuple[float, ...]] = []
        received = 0  # rows received, the skipped ones too: they are not asked for again
        for _ in range(_MAX_CANDLE_PAGES):
            asked = wanted - received
            rows = await self._call(
                f"{symbol} candles",
                self._ex.fetch_ohlcv(symbol, "1h", limit=asked, params={"until": until_ms}),
            )
            page, bad = _parse_candle_rows(rows, bad)
            table = page + table
            received += len(rows)
            if not page or len(rows) >= asked:
                break
            until_ms = int(page[0][0]) - 1
        return table

    # Order books ----------------------------------------------------------------------------

    async def books(self, symbol: str, now: datetime, window_s: float) -> OrderBookHistory:
        """The stream's snapshots in (now − window_s, now] when it is up, else one REST book.

        `feed` says which: "<id> websocket stream: …", or "<id> REST polling (…)" with the
        reason the stream was not used; `fallback` is that reason for a followed symbol."""
        venue_symbol = self._market(symbol)["symbol"]
        streams = self._book_streams
        fallback = None
        if streams.followed(symbol):
            books, fallback = streams.window(symbol, now, window_s)
            if books:
                span_s = (books[-1].timestamp - books[0].timestamp).total_seconds()
                feed = (
                    f"{self.exchange_id} websocket stream: {len(books)} snapshot(s) "
                    f"over {span_s:.0f} s"
                )
                return OrderBookHistory(self.exchange_id, venue_symbol, tuple(books), feed=feed)
        raw = await self._call(
            f"{symbol} order book",
            self._ex.fetch_order_book(symbol, limit=self._config.book_levels),
        )
        book = to_book(symbol, raw, book_stamp(raw, now))
        feed = f"{self.exchange_id} REST polling ({fallback or 'not streamed'})"
        return OrderBookHistory(
            self.exchange_id, venue_symbol, (book,), feed=feed, fallback=fallback
        )

    def follow(self, symbols: Iterable[str]) -> tuple[str, ...]:
        """Stream the books of `symbols` (the first `stream_symbols_max` the exchange lists and
        trades), stop the others'. Returns the symbols now streamed.

        An unlisted or halted symbol is left out with one warning (`orderbook_follow_refused`,
        once per symbol, not every cycle): it must not keep the others from streaming, and its
        signals say why it has no book. Before `start` (or after a failed one) the symbols are
        kept and streamed once the markets are loaded; () until then.
        """
        wanted = tuple(symbols)
        self._wanted = wanted
        if self._streams is None:
            return ()
        return self._streams.follow(self._streamable(wanted))

    def _streamable(self, symbols: Iterable[str]) -> list[str]:
        """`symbols` the exchange lists and trades; a warning for each other one, once."""
        streamable = []
        for symbol in symbols:
            try:
                self._market(symbol)
            except UnknownSymbolError as exc:
                if symbol not in self._refused:
                    self._refused.add(symbol)
                    log.warning("orderbook_follow_refused", symbol=symbol, detail=str(exc))
                continue
            streamable.append(symbol)
        return streamable

    # ccxt at the edge -----------------------------------------------------------------------

    @property
    def _book_streams(self) -> BookStreams:
        if self._streams is None:
            raise SourceError(f"the {self._config.id} source is not started")
        return self._streams

    @property
    def _ex(self) -> Any:
        if self._exchange is None:
            raise SourceError(f"the {self._config.id} source is not started")
        return self._exchange

    def _market(self, symbol: str) -> dict[str, Any]:
        """The exchange's market for `symbol`; UnknownSymbolError when unlisted or not trading."""
        markets: dict[str, Any] = self._ex.markets or {}
        market = markets.get(symbol)
        if market is None:
            listed = [name for name, m in markets.items() if m.get("spot", True)]
            close = difflib.get_close_matches(symbol, listed, n=3, cutoff=0.6)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise UnknownSymbolError(f"{symbol} is not listed on {self.exchange_id}{hint}")
        if market.get("active") is False:
            raise UnknownSymbolError(
                f"{symbol} is not trading on {self.exchange_id} (delisted or suspended)"
            )
        return dict(market)

    async def _call(self, what: str, request: Awaitable[T]) -> T:
        """Await a ccxt request; its errors become the product's, saying if a retry may help."""
        where = f"{self.exchange_id} {what}"
        try:
            return await request
        except ccxt_errors.ExchangeNotAvailable as exc:
            if _REGION_BLOCKED.search(str(exc)):
                raise PermanentSourceError(
                    f"{where}: exchange not available from this location (HTTP 451) — "
                    "set another exchange id (exchange.id)"
                ) from exc
            raise SourceError(
                f"{where}: exchange unavailable (transient): {first_line(exc)}"
            ) from exc
        except ccxt_errors.DDoSProtection as exc:  # 429 and 418 rate limiting
            wait_s = self._retry_after_s()
            after = f"; retry after {wait_s:g} s" if wait_s is not None else ""
            raise SourceError(
                f"{where}: rate limited (transient){after}", retry_after_s=wait_s
            ) from exc
        except ccxt_errors.RequestTimeout as exc:
            timeout = f"{self._config.timeout_s:g}"
            raise SourceError(f"{where}: timed out after {timeout} s (transient)") from exc
        except ccxt_errors.NetworkError as exc:
            raise SourceError(f"{where}: network error (transient): {first_line(exc)}") from exc
        except ccxt_errors.BadResponse as exc:
            raise SourceError(f"{where}: malformed response: {first_line(exc)}") from exc
        except ccxt_errors.BaseError as exc:
            raise SourceError(f"{where}: {type(exc).__name__}: {first_line(exc)}") from exc
        except RECORD_ERRORS as exc:  # ccxt parsing a body that is not what the API documents
            raise SourceError(f"{where}: malformed response ({type(exc).__name__})") from exc

    def _retry_after_s(self) -> float | None:
        """The exchange's Retry-After in seconds, for the resilience layer to wait out. From the
        last response's headers: with concurrent calls, maybe another's (ccxt keeps only one)."""
        headers = (self._exchange.last_response_headers if self._exchange else None) or {}
        return retry_after_s(
            next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
        )


def _create_exchange(config: ExchangeConfig) -> Any:
    """The ccxt exchange (the ccxt.pro class when it streams), its URLs pointed as configured."""
    module = ccxt_pro if config.id in ccxt_pro.exchanges else ccxt_async
    if config.id not in module.exchanges:
        raise ConfigError(f"exchange.id: unknown exchange {config.id!r} (not a ccxt exchange id)")
    settings: dict[str, Any] = {"enableRateLimit": True, "timeout": int(config.timeout_s * 1000)}
    if config.id == "binance":  # else load_markets also calls the futures endpoints
        settings["options"] = {"fetchMarkets": {"types": ["spot"]}}
    exchange = getattr(module, config.id)(settings)
    exchange.urls["api"] = _rebase(exchange.urls["api"], config.rest_url, config.ws_url)
    exchange.parse_json = _strict_json(exchange.parse_json)
    return exchange


def _strict_json(parse_json: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """ccxt's `parse_json`, raising on a body that starts as JSON but does not parse.

    ccxt returns None for it and then parses the raw text as if it were data: a truncated depth
    answer would pass for an empty book. Non-JSON bodies (an HTML 503 page) still go on to
    ccxt's HTTP status handling.
    """

    def parse(http_response: Any) -> Any:
        parsed = parse_json(http_response)
        looks_like_json = isinstance(http_response, str) and http_response.lstrip()[:1] in (
            "{",
            "[",
        )
        if parsed is None and looks_like_json:
            raise ccxt_errors.BadResponse(f"malformed JSON ({len(http_response)} bytes)")
        return parsed

    return parse


def _rebase(urls: Any, rest_url: str, ws_url: str) -> Any:
    """Every URL in ccxt's `urls['api']` tree with its host replaced, its path kept."""
    if isinstance(urls, dict):
        return {key: _rebase(value, rest_url, ws_url) for key, value in urls.items()}
    if not isinstance(urls, str):
        return urls
    parts = urlsplit(urls)
    base = ws_url if parts.scheme in ("ws", "wss") else rest_url
    return base.rstrip("/") + parts.path if base else urls


def _parse_candle_rows(rows: Any, bad: BadRecords) -> tuple[list[tuple[float, ...]], BadRecords]:
    """ccxt OHLCV rows as (open ms, o, h, l, c, v), oldest first; unreadable rows counted."""
    if not isinstance(rows, list):
        raise SourceError(f"{bad.file}: malformed response (not a list of candles)")
    table: list[tuple[float, ...]] = []
    for position, row in enumerate(rows, start=1):
        try:
            table.append(_candle(row))
        except RECORD_ERRORS as exc:
            bad.skip(position, exc)
    table.sort(key=lambda row: row[0])
    return table, bad


def _candle(row: Any) -> tuple[float, ...]:
    if len(row) != 6 or row[0] is None:
        raise ValueError(f"expected 6 fields, got {len(row)} or no time")
    values = tuple(float(value) for value in row)
    open_, high, low, close, volume = values[1:]
    if not all(math.isfinite(v) for v in values):
        raise ValueError("a value is not a finite number")
    if min(open_, high, low, close) <= 0 or volume < 0:
        raise ValueError("a price is zero or negative, or the volume negative")
    if high < max(open_, close, low) or low > min(open_, close):
        raise ValueError("high/low do not bracket open and close")
    return values
