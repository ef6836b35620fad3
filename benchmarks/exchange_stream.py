"""CPU cost of the live order-book streams, and `books()` from the stream against REST.

The fake Binance runs in a child process (so its own work is not counted), streaming the recorded
BTC/USDT and ETH/USDT books at Binance's pace (one diff per 100 ms); this process runs the real
`ExchangeSource` through ccxt. Run on demand: `.venv/bin/python benchmarks/exchange_stream.py
[--seconds 20] [--latency-ms 150]`. Figures only; measured against the fake, not Binance.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from datetime import UTC, datetime
from multiprocessing.connection import Connection

from intel.config import ExchangeConfig
from intel.sources.exchange import ExchangeSource
from intel.sources.fakes.binance import FakeBinance
from intel.timeutil import parse_time, to_ms

BOOK_MOMENT = parse_time("2024-08-09T00:00:00Z")  # the recorded books start at 23:54
SYMBOLS = ("BTC/USDT", "ETH/USDT")


def serve(pipe: Connection, latency_s: float) -> None:
    async def run() -> None:
        async with FakeBinance(now_ms=to_ms(BOOK_MOMENT)) as fake:
            fake.faults.latency_s = latency_s
            pipe.send((fake.rest_url, fake.ws_url))
            await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # until told

    asyncio.run(run())


async def measure(rest_url: str, ws_url: str, seconds: float) -> None:
    config = ExchangeConfig(rest_url=rest_url, ws_url=ws_url)
    source = ExchangeSource(config, clock=lambda: datetime.now(UTC))
    await source.start()
    try:
        far = datetime(2100, 1, 1, tzinfo=UTC)  # the recorded stream is in 2024: take all of it
        rest_ms = [await timed(source, far) for _ in range(5)]
        source.follow(SYMBOLS)
        await asyncio.sleep(2)  # connect, subscribe, merge the REST snapshot
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
        stream_ms = [await timed(source, far) for _ in range(20)]
        history = await source.books(SYMBOLS[0], far, (far - BOOK_MOMENT).total_seconds())
        # Each diff is one recorded second: the window fills 10x faster than on Binance.
        print(f"streams: {len(SYMBOLS)} symbols, one diff per 100 ms each, {wall_s:.1f} s")
        print(f"  CPU of this process: {100 * cpu_s / wall_s:.2f} % of one core")
        print(f"  books() from REST:   median {statistics.median(rest_ms):6.1f} ms")
        print(f"  books() from stream: median {statistics.median(stream_ms):6.2f} ms")
        print(f"  kept: {len(history.books)} snapshots; feed: {history.feed}")
    finally:
        await source.close()


async def timed(source: ExchangeSource, now: datetime) -> float:
    t0 = time.perf_counter()
    await source.books(SYMBOLS[0], now, 900)
    return (time.perf_counter() - t0) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--latency-ms", type=float, default=150.0)
    args = parser.parse_args()
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(theirs, args.latency_ms / 1000))
    server.start()
    try:
        rest_url, ws_url = ours.recv()
        asyncio.run(measure(rest_url, ws_url, args.seconds))
    finally:
        ours.send("stop")
        server.join(timeout=10)


if __name__ == "__main__":
    main()
