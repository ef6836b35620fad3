"""Signal latency on the embedded replay data: in-process p50/p95 (without and with the chart)
and the start-to-answer time of `python -m bot signal BTC/USDT` as a fresh process.

Run on demand: `.venv/bin/python benchmarks/signal_latency.py [--runs 60]`. Prints figures; the
targets (issue: warm p95 ≤ 150 ms without chart, ≤ 450 ms with it) are checked by reading them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta

from bot.config import BotConfig
from bot.render.chart import render_chart
from intel.config import load_config
from intel.desk import SignalDesk, build_desk


def percentiles(samples_ms: list[float]) -> str:
    ordered = sorted(samples_ms)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):7.1f} ms   p95 {p95:7.1f} ms   (n={len(ordered)})"


async def in_process(runs: int) -> None:
    config = load_config(env={}, model=BotConfig)
    async with build_desk(config) as desk:  # opened and closed as the composition roots do
        await measure(desk, config, runs)


async def measure(desk: SignalDesk, config: BotConfig, runs: int) -> None:
    start = config.data.default_at
    # Each run asks for a different hour, so every run reads the sources (no cache hit).
    moments = [start - timedelta(hours=i) for i in range(runs)]
    await desk.signal("BTC/USDT", start)  # warm-up: loads the data files and matplotlib once
    warm = await desk.signal("ETH/USDT", start)
    render_chart(warm.signal, warm.snapshot)
    for symbol in ("BTC/USDT", "ETH/USDT"):
        plain, charted = [], []
        for moment in moments:
            t0 = time.perf_counter()
            await desk.signal(symbol, moment)
            plain.append((time.perf_counter() - t0) * 1000)
        for moment in moments:
            t0 = time.perf_counter()
            result = await desk.signal(symbol, moment)
            render_chart(
                result.signal,
                result.snapshot,
                candles=config.chart.candles,
                flow_hours=config.chart.flow_hours,
            )
            charted.append((time.perf_counter() - t0) * 1000)
        print(f"{symbol} warm signal, no chart:   {percentiles(plain)}")
        print(f"{symbol} warm signal + chart PNG: {percentiles(charted)}")


def process_start(runs: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT__")}
    samples = []
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "bot", "signal", "BTC/USDT"],
                cwd=cwd,
                env=env,
                check=True,
                capture_output=True,
                timeout=120,
            )
            samples.append((time.perf_counter() - t0) * 1000)
    print(f"python -m bot signal BTC/USDT (fresh process): {percentiles(samples)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=60, help="timed runs per figure (≥ 50)")
    parser.add_argument("--process-runs", type=int, default=5)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    asyncio.run(in_process(max(50, args.runs)))
    process_start(max(1, args.process_runs))


if __name__ == "__main__":
    main()
