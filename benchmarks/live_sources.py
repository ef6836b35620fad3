"""Live mode against the fake servers: a cold signal's wall time against its slowest source, and a
cycle over 50 symbols under the configured rate limits (requests, time against the rate-limit
floor, violations, CPU of the order-book streams).

The fakes (Binance REST and websocket, Alternative.me, Reddit) run in a child process, so their
work is not counted; this process runs the real desk, sources (ccxt, httpx, asyncpraw), resilience
layer and cycle. Run on demand: `.venv/bin/python benchmarks/live_sources.py [--runs 5]`.
Figures only; measured against the fakes, not the real APIs.

Cold signal: each run builds a fresh desk (markets loaded, Reddit logged in, caches empty) with
per-request latency at the fakes (exchange 150 ms, Reddit 600 ms, Fear & Greed 100 ms), times one
signal, then times each source's own fetch on another fresh desk. Target: signal ≤ 1.15 × the
slowest source's own fetch.

Cycle: 50 symbols (each served from the recorded BTC/USDT data), one subreddit each, every symbol
subscribed, ten order books streamed. The rate limits are the configured ones, scaled so the
cycle takes seconds: Binance's 6,000 request weight a minute as 100 a second (ccxt's own limiter
paces at that rate), Reddit's `resilience.reddit.rate_per_min` raised 30-fold (its burst kept),
each fake enforcing it over any one-second window. Floor: the slowest source's requests beyond
its burst at its rate. Target: cycle ≤ 1.2 × floor, 0 violations.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from bot.config import BotConfig
from bot.scheduling.cycle import SignalCycle
from bot.storage.memory import MemoryStore
from intel.config import Config, load_config
from intel.desk import build_desk
from intel.models import MarketSnapshot, Signal
from intel.snapshot import Sources
from intel.sources.fakes.binance import EXCHANGE_INFO_FILE, FakeBinance
from intel.sources.fakes.social import FakeAlternativeMe, FakePost, FakeReddit, replay_fear_greed
from intel.sources.live import live
from intel.timeutil import parse_time, to_ms

NOW = parse_time("2024-08-09T00:10:00Z")  # recorded candles and Fear & Greed exist
CYCLE_NOW = parse_time("2024-08-08T23:55:00Z")  # and ten minutes of recorded books to stream
STREAM_SPEED = 10  # recorded seconds the fake streams per real second (a diff per 100 ms)
LATENCY_S = {"exchange": 0.150, "reddit": 0.600, "fear_greed": 0.100}
CYCLE_SYMBOLS = 50
BINANCE_WEIGHT_PER_S = 6000 / 60  # Binance's REQUEST_WEIGHT limit, per second
# ccxt's token bucket lets two requests of cost 1 (depth: weight 5 each) go ahead of its pace.
# Binance's one-minute window absorbs that (10 of 6,000); the one-second window here must too.
CCXT_BURST_WEIGHT = 10
REDDIT_PER_MIN = 60 * 30  # `resilience.reddit.rate_per_min` (60) scaled 30-fold
REDDIT_BURST = Config().resilience.reddit.rate_burst
REDDIT_CREDENTIALS = {  # what the fake Reddit accepts
    "REDDIT_CLIENT_ID": "fake-client-id",
    "REDDIT_CLIENT_SECRET": "fake-client-secret",
    "REDDIT_USER_AGENT": "signaldesk-benchmark/0.1 (fake server)",
}


def assets(count: int) -> list[str]:
    return ["BTC"] + [f"X{i:02d}" for i in range(1, count)]


def subreddit(asset: str) -> str:
    return f"{asset.lower()}coin"


def posts(asset_names: list[str], now: datetime) -> list[FakePost]:
    created_s = (now - timedelta(hours=1)).timestamp()
    words = ("rally", "dump", "steady", "breakout", "fear", "buying")
    return [
        FakePost(f"{asset}{i}", subreddit(asset), created_s - 600 * i, f"{asset} {word}", "")
        for asset in asset_names
        for i, word in enumerate(words)
    ]


def exchange_info(asset_names: list[str]) -> dict[str, Any]:
    info = json.loads(EXCHANGE_INFO_FILE.read_text(encoding="utf-8"))
    btc = next(item for item in info["symbols"] if item["symbol"] == "BTCUSDT")
    info["symbols"] = []
    for asset in asset_names:
        listed = copy.deepcopy(btc)
        listed.update(symbol=f"{asset}USDT", baseAsset=asset)
        info["symbols"].append(listed)
    return dict(info)


# The fakes, in the child process -----------------------------------------------------------


def serve(pipe: Connection, scenario: str) -> None:
    asyncio.run(_serve(pipe, scenario))


async def _serve(pipe: Connection, scenario: str) -> None:
    names = assets(CYCLE_SYMBOLS if scenario == "cycle" else 1)
    cold = scenario == "cold"
    now = NOW if cold else CYCLE_NOW
    readings = [r for r in replay_fear_greed() if r.timestamp <= now]
    async with (
        FakeBinance(
            now_ms=to_ms(now),
            exchange_info=exchange_info(names),
            recorded_as={f"{asset}USDT": "BTCUSDT" for asset in names},
        ) as exchange,
        FakeAlternativeMe(readings, latency_s=LATENCY_S["fear_greed"] if cold else 0) as index,
        FakeReddit(
            posts(names, now), until_s=now.timestamp(), latency_s=LATENCY_S["reddit"] if cold else 0
        ) as reddit,
    ):
        if cold:
            exchange.faults.latency_s = LATENCY_S["exchange"]
        else:
            exchange.weight_limit(BINANCE_WEIGHT_PER_S + CCXT_BURST_WEIGHT, 1.0)
            # The configured limit: at most the burst plus a second's rate in any second.
            reddit.rate_limit(REDDIT_BURST + REDDIT_PER_MIN // 60, 1.0)
        pipe.send({"exchange": exchange.rest_url, "ws": exchange.ws_url,
                   "index": index.url, "reddit": reddit.url})  # fmt: skip
        loop = asyncio.get_running_loop()
        while (command := await loop.run_in_executor(None, pipe.recv)) != "stop":
            if command == "reset":
                exchange.requests.clear()
                reddit.requests.clear()
                index.requests.clear()
            pipe.send({
                "exchange": dict(exchange.requests),
                "exchange_violations": exchange.violations,
                "reddit": len(reddit.requests),
                "reddit_violations": reddit.violations,
                "fear_greed": len(index.requests),
            })  # fmt: skip


# The desk, in this process -----------------------------------------------------------------


def config(urls: dict[str, str], names: list[str], **env: str) -> BotConfig:
    subs = ", ".join(f"{asset}: [{subreddit(asset)}]" for asset in names)
    return load_config(
        path=None,
        env={
            "BOT__SYMBOLS": "[" + ", ".join(f"{asset}/USDT" for asset in names) + "]",
            "BOT__DATA__MODE": "live",
            "BOT__EXCHANGE__REST_URL": urls["exchange"],
            "BOT__EXCHANGE__WS_URL": urls["ws"],
            "BOT__SOURCES__FEAR_GREED__BASE_URL": urls["index"],
            "BOT__SOURCES__REDDIT__OAUTH_URL": urls["reddit"],
            "BOT__SOURCES__REDDIT__REDDIT_URL": urls["reddit"],
            "BOT__SOURCES__REDDIT__SUBREDDITS": "{" + subs + "}",
        }
        | REDDIT_CREDENTIALS
        | env,
        model=BotConfig,
    )


async def started(cfg: Config, clock: Callable[[], datetime] = lambda: NOW) -> tuple[Any, Sources]:
    """A started desk with Reddit logged in; no data fetched yet."""
    sources = live(cfg)
    desk = build_desk(cfg, sources=sources, market_clock=clock)
    await desk.start()
    try:
        await sources.posts.login()  # type: ignore[attr-defined]
    except BaseException:
        await desk.close()
        raise
    return desk, sources


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    t0 = time.perf_counter()
    await call()
    return time.perf_counter() - t0


async def own_fetches(src: Sources, symbol: str, lookback: int) -> dict[str, float]:
    """Each source's fetch on its own, one after another."""
    return {
        "candles": await timed(lambda: src.candles.candles(symbol, NOW, lookback)),
        "order book": await timed(lambda: src.orderbook.books(symbol, NOW, 900)),
        "Reddit": await timed(lambda: src.posts.posts(symbol, NOW, 24)),
        "Fear & Greed": await timed(lambda: src.fear_greed.latest(NOW)),
    }


async def cold_signal(urls: dict[str, str], runs: int) -> None:
    cfg = config(urls, ["BTC"])
    symbol, lookback = "BTC/USDT", cfg.pipeline.candle_lookback
    signal_s: list[float] = []
    slowest_s: list[float] = []
    own: dict[str, list[float]] = {}
    for _ in range(runs):
        desk, _ = await started(cfg)
        try:
            signal_s.append(await timed(partial(desk.signal, symbol)))
        finally:
            await desk.close()
        desk, src = await started(cfg)
        try:
            times = await own_fetches(src, symbol, lookback)
        finally:
            await desk.close()
        for name, seconds in times.items():
            own.setdefault(name, []).append(seconds)
        slowest_s.append(max(times.values()))
    latency = ", ".join(f"{name} {1000 * s:.0f} ms" for name, s in LATENCY_S.items())
    print(f"cold signal, {runs} runs (latency per request: {latency})")
    for name, samples in own.items():
        print(f"  {name:<13} own fetch  median {1000 * statistics.median(samples):6.0f} ms")
    ratio = statistics.median(signal_s) / statistics.median(slowest_s)
    print(f"  signal wall time       median {1000 * statistics.median(signal_s):6.0f} ms")
    print(f"  signal / slowest source: {ratio:.2f}x (target <= 1.15x)")


async def no_chart(signal: Signal, snapshot: MarketSnapshot) -> bytes | None:
    return None


async def cycle(urls: dict[str, str], pipe: Connection, concurrency: int) -> None:
    names = assets(CYCLE_SYMBOLS)
    cfg = config(
        urls,
        names,
        BOT__RESILIENCE__REDDIT__RATE_PER_MIN=str(REDDIT_PER_MIN),
        BOT__RESILIENCE__REDDIT__RATE_BURST=str(REDDIT_BURST),
        BOT__SCHEDULE__MAX_CONCURRENT_SYMBOLS=str(concurrency),
    )
    store = MemoryStore()
    await store.open()
    await store.subscribe("console", "all", [])  # every symbol
    started_at = time.monotonic()  # the market moves with the fake's streams, never behind them

    def market_now() -> datetime:
        return CYCLE_NOW + timedelta(seconds=STREAM_SPEED * (time.monotonic() - started_at))

    desk, _ = await started(cfg, market_now)
    try:
        signal_cycle = SignalCycle(desk, store, cfg, no_chart, lambda: None)
        streamed = await signal_cycle.follow_books()
        await asyncio.sleep(3)  # connect, subscribe, merge each REST snapshot
        cpu0, wall0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(5)
        stream_cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        pipe.send("reset")
        pipe.recv()
        cpu0, t0 = time.process_time(), time.perf_counter()
        result = await signal_cycle.run_once()
        cycle_s, cycle_cpu_s = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        await desk.close()
    pipe.send("report")
    counts = pipe.recv()
    weights = {"/api/v3/klines": 2, "/api/v3/depth": 5}
    weight = sum(weights.get(path, 1) * n for path, n in counts["exchange"].items())
    floors = {  # what goes at once (the bursts) needs no time
        "exchange": (weight - CCXT_BURST_WEIGHT) / BINANCE_WEIGHT_PER_S,
        "reddit": (counts["reddit"] - REDDIT_BURST) / (REDDIT_PER_MIN / 60),
    }
    floor_s = max(floors.values())
    print(f"cycle over {CYCLE_SYMBOLS} symbols, max_concurrent_symbols={concurrency}")
    print(f"  computed {len(result.computed)}, failed {len(result.failed)}")
    print(f"  exchange requests: {counts['exchange']} (weight {weight:g})")
    print(f"  Reddit requests: {counts['reddit']}; Fear & Greed requests: {counts['fear_greed']}")
    print(f"  rate-limit violations: exchange {counts['exchange_violations']}, "
          f"Reddit {counts['reddit_violations']}")  # fmt: skip
    floor_text = ", ".join(f"{name} {s:.2f} s" for name, s in floors.items())
    print(f"  floor (requests at the limit): {floor_text}")
    print(f"  cycle {cycle_s:.2f} s = {cycle_s / floor_s:.2f}x the floor (target <= 1.2x); "
          f"CPU {100 * cycle_cpu_s / cycle_s:.0f} % of one core")  # fmt: skip
    print(f"  order-book streams: {len(streamed)} at one diff per 100 ms, CPU between cycles "
          f"{100 * stream_cpu:.2f} % of one core")  # fmt: skip


def run(scenario: str, body: Callable[[dict[str, str], Connection], Awaitable[None]]) -> None:
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.Process(target=serve, args=(theirs, scenario))
    server.start()
    try:
        urls = ours.recv()
        asyncio.run(body(urls, ours))
    finally:
        ours.send("stop")
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=None, help="default: the config's")
    args = parser.parse_args()
    run("cold", lambda urls, _: cold_signal(urls, args.runs))
    concurrency = args.concurrency or Config().schedule.max_concurrent_symbols
    run("cycle", lambda urls, pipe: cycle(urls, pipe, concurrency))


if __name__ == "__main__":
    main()
