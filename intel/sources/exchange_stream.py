"""The exchange source's live order books: ccxt's `watch_order_book` for each followed symbol,
keeping a bounded ring of snapshots (one per interval) for the wall and spoofing analysis.

Also the conversion of a ccxt order book into an `OrderBook`, shared with the REST path.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from ccxt.base import errors as ccxt_errors

from intel.config import ExchangeConfig
from intel.errors import SourceError
from intel.models import OrderBook
from intel.sources.replay_files import RECORD_ERRORS, BadRecords
from intel.timeutil import from_ms

__all__ = ["BookStreams", "book_stamp", "first_line", "to_book"]

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Stream:
    """One symbol's live book: ccxt's merged book, and snapshots kept one per interval."""

    ring: deque[OrderBook]
    bad: BadRecords
    task: asyncio.Task[None] | None = None
    book: Any = None  # ccxt's order book, updated in place by ccxt with every diff
    updated_at: float = -math.inf  # time.monotonic() of the last update
    error: str | None = None  # why the stream is down, when it is
    updates: int = 0
    started_at: float = field(default_factory=time.monotonic)


class BookStreams:
    """The streams of one started ccxt exchange; `follow` says which symbols, `close` ends all."""

    def __init__(
        self,
        exchange: Any,
        config: ExchangeConfig,
        *,
        window_s: float,
        clock: Callable[[], datetime],
    ) -> None:
        self._exchange = exchange
        self._config = config
        self._ring_size = math.ceil(window_s / config.stream_snapshot_interval_s) + 1
        self._clock = clock
        self._streams: dict[str, _Stream] = {}
        self._stopping: set[asyncio.Task[None]] = set()  # cancelled, awaited by `close`

    def follow(self, symbols: Sequence[str]) -> tuple[str, ...]:
        """Stream these (already resolved) symbols, the first `stream_symbols_max`; stop others.

        Synchronous (it only starts and cancels tasks), so the resilience layer passes it
        through: it is no call to the exchange and must not wait for one."""
        wanted = list(dict.fromkeys(symbols))
        if wanted and not self._exchange.has.get("watchOrderBook"):
            log.warning("orderbook_stream_unsupported", exchange=self._config.id)
            wanted = []
        limit = self._config.stream_symbols_max
        if len(wanted) > limit:
            log.warning("orderbook_streams_capped", limit=limit, dropped=wanted[limit:])
        kept = tuple(wanted[:limit])
        for symbol in [s for s in self._streams if s not in kept]:
            task = self._streams.pop(symbol).task
            if task is not None:
                task.cancel()
                self._stopping.add(task)
                task.add_done_callback(self._stopping.discard)
        for symbol in kept:
            if symbol not in self._streams:
                stream = _Stream(deque(maxlen=self._ring_size), BadRecords(f"{symbol} stream"))
                stream.task = asyncio.create_task(self._run(symbol, stream))
                self._streams[symbol] = stream
        return kept

    async def close(self) -> None:
        self.follow(())
        await asyncio.gather(*self._stopping, return_exceptions=True)

    def followed(self, symbol: str) -> bool:
        return symbol in self._streams

    def skipped(self, symbol: str) -> BadRecords | None:
        stream = self._streams.get(symbol)
        return stream.bad if stream else None

    def window(self, symbol: str, now: datetime, window_s: float) -> tuple[list[OrderBook], str]:
        """The kept snapshots taken in (now − window_s, now] and the current book; when there
        are none, why not: "stream down: …", "stream connecting", "stream silent: …" or
        "stream has no usable snapshot yet"."""
        stream = self._streams[symbol]
        alive = stream.task is not None and not stream.task.done()
        if stream.error or not alive:
            return [], f"stream down: {stream.error or 'stopped'}"
        stale_s = self._config.stream_stale_s
        since_s = time.monotonic() - max(stream.updated_at, stream.started_at)
        if since_s > stale_s:
            return [], f"stream silent: no update for {stale_s:g} s"
        if stream.book is None:
            return [], "stream connecting"
        start = now.timestamp() - window_s
        kept = [b for b in stream.ring if start < b.timestamp.timestamp() and b.timestamp <= now]
        current = self._current(symbol, stream)
        newest = kept[-1].timestamp if kept else None
        if current is not None and current.timestamp <= now and current.timestamp != newest:
            kept.append(current)  # the current book, newer than the last one kept
        return kept, "" if kept else "stream has no usable snapshot yet"

    def _current(self, symbol: str, stream: _Stream) -> OrderBook | None:
        if stream.book.get("timestamp") is None:  # the REST snapshot just merged, undated
            return None
        try:
            return to_book(symbol, stream.book, book_stamp(stream.book, self._clock()))
        except SourceError:
            return None

    async def _run(self, symbol: str, stream: _Stream) -> None:
        """Follow the book until cancelled; after a failure wait `stream_retry_s`, reconnect."""
        while True:
            try:
                while True:
                    book = await self._exchange.watch_order_book(symbol, self._config.book_levels)
                    self._on_update(symbol, stream, book)
            except ccxt_errors.BaseError as exc:
                stream.error = first_line(exc)
                log.warning("orderbook_stream_down", symbol=symbol, error=stream.error)
            except Exception as exc:  # a bug in a background task must be seen, not fatal
                stream.error = f"{type(exc).__name__}: {exc}"
                log.exception("orderbook_stream_failed", symbol=symbol)
            await asyncio.sleep(self._config.stream_retry_s)

    def _on_update(self, symbol: str, stream: _Stream, book: Any) -> None:
        stream.book, stream.updated_at, stream.error = book, time.monotonic(), None
        stream.updates += 1
        if book.get("timestamp") is None:  # the REST snapshot just merged: the next diff dates it
            return
        stamp = book_stamp(book, self._clock())
        # One snapshot per interval slot, so a feed's jitter (999 ms, 1001 ms) skips none.
        interval_s = self._config.stream_snapshot_interval_s
        if stream.ring and stream.ring[-1].timestamp.timestamp() // interval_s >= (
            stamp.timestamp() // interval_s
        ):
            return
        try:
            stream.ring.append(to_book(symbol, book, stamp))
        except SourceError as exc:  # an unusable moment of the book is skipped, not kept
            stream.bad.skip(stream.updates, exc)
            stream.bad.log()


def to_book(symbol: str, raw: Any, stamp: datetime) -> OrderBook:
    """A ccxt order book as an `OrderBook`; SourceError when it is not a usable book."""
    try:
        bids = tuple((float(level[0]), float(level[1])) for level in raw["bids"])
        asks = tuple((float(level[0]), float(level[1])) for level in raw["asks"])
    except (*RECORD_ERRORS, AttributeError) as exc:
        raise SourceError(f"{symbol} order book: malformed response ({exc})") from exc
    if not bids and not asks:
        raise SourceError(f"{symbol} order book is empty")
    if not bids or not asks:
        raise SourceError(f"{symbol} order book is one-sided (no {'asks' if bids else 'bids'})")
    unusable = [
        (p, q)
        for p, q in bids + asks
        if not (math.isfinite(p) and p > 0 and math.isfinite(q) and q >= 0)
    ]
    if unusable:  # NaN, infinite, zero or negative: no price a book can hold
        price, size = unusable[0]
        raise SourceError(
            f"{symbol} order book has {len(unusable)} unusable level(s): the first at price "
            f"{price:g}, size {size:g} (prices must be positive numbers)"
        )
    if bids[0][0] >= asks[0][0]:
        raise SourceError(
            f"{symbol} order book is crossed: best bid {bids[0][0]:g} ≥ best ask {asks[0][0]:g}"
        )
    return OrderBook(timestamp=stamp, bids=bids, asks=asks)


def book_stamp(raw: Any, latest: datetime) -> datetime:
    """The exchange's time of a book, never later than `latest` (clocks drift); `latest` when
    the exchange gives none (Binance's REST depth has none)."""
    stamp_ms = raw.get("timestamp") if isinstance(raw, dict) else None
    return latest if stamp_ms is None else min(from_ms(int(stamp_ms)), latest)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
