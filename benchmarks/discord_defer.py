"""Discord acknowledgement benchmark: time from an interaction arriving at the fake gateway to its
defer reaching the fake REST API, and to the full answer (embed and chart), through discord.py.

    .venv/bin/python benchmarks/discord_defer.py [--interactions 200] [--interval-ms 25]

The real desk on the shipped replay data (rules coordinator, lexicon engine), the real command
router and chart, a MemoryStore, and the Discord transport logged in to the fake Discord server
(bot/transports/fake_discord.py) with its gateway. `/signal` interactions (symbols in turn, each
from its own user, so no cooldown refuses one) are pushed through the gateway every
`--interval-ms`, first with the bot idle, then while signal cycles run back to back, each an hour
of market time after the last (one channel follows every symbol, so each cycle computes all).
Before them, 40 `/signal` commands one at a time (each sent once the last was answered) with the
caches filled. Targets (issue 8): defer p99 <= 0.2 s in both phases; full answer p95 <= 0.5 s
one at a time with the caches filled. The answers of the two phases (40 signals a second asked
for, each with its chart) queue behind the chart renderer: printed, not targeted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
from datetime import UTC, datetime, timedelta

import structlog

from bot.commands.base import BotStatus
from bot.commands.router import CommandRouter
from bot.config import BotConfig
from bot.render.chart_task import ChartRenderer
from bot.scheduling.cycle import SignalCycle
from bot.storage.memory import MemoryStore
from bot.transports.discord import DiscordTransport
from bot.transports.fake_discord import APP_ID, TOKEN, FakeDiscord, command_interaction
from intel.config import load_config
from intel.desk import SignalDesk, build_desk

MOMENT = datetime(2025, 10, 10, 20, 0, tzinfo=UTC)


def summary(label: str, samples_s: list[float]) -> str:
    ordered = sorted(samples_s)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000

    return (
        f"{label:<34} p50 {statistics.median(ordered) * 1000:7.1f} ms  p95 {rank(0.95):7.1f} ms"
        f"  p99 {rank(0.99):7.1f} ms  max {ordered[-1] * 1000:7.1f} ms  (n={len(ordered)})"
    )


async def no_status() -> BotStatus:
    raise RuntimeError("status is not asked in this benchmark")


async def phase(
    fake: FakeDiscord, desk: SignalDesk, count: int, interval_s: float, first_user: int
) -> tuple[list[float], list[float]]:
    """Push `count` /signal interactions; return (defer latencies, answer latencies) in s."""
    loop = asyncio.get_running_loop()
    sent: dict[str, float] = {}
    before = len(fake.matching(f"/webhooks/{APP_ID}/"))
    for n in range(count):
        symbol = desk.symbols[n % len(desk.symbols)].split("/")[0].lower()
        payload = command_interaction(
            "signal", [{"name": "symbol", "type": 3, "value": symbol}], user_id=first_user + n
        )
        sent[payload["token"]] = loop.time()
        await fake.dispatch("INTERACTION_CREATE", payload)
        await asyncio.sleep(interval_s)
    # One follow-up per answer (a signal fits one embed); every answer within a bound.
    await asyncio.wait_for(fake.wait_for(f"/webhooks/{APP_ID}/", before + count), 120)
    answered = first_answers(fake, sent)
    deferred = {r.path.split("/")[-2]: r.at_s for r in fake.matching("/callback")}
    return [deferred[t] - at for t, at in sent.items()], [
        answered[t] - at for t, at in sent.items()
    ]


def first_answers(fake: FakeDiscord, sent: dict[str, float]) -> dict[str, float]:
    """When the first follow-up of each interaction (by its token) arrived."""
    answered: dict[str, float] = {}
    for request in fake.matching(f"/webhooks/{APP_ID}/", "POST"):
        token = request.path.split("/")[3]
        if token in sent:
            answered.setdefault(token, request.at_s)
    return answered


async def one_at_a_time(fake: FakeDiscord, desk: SignalDesk, count: int) -> list[float]:
    """Full-answer latencies of `count` /signal commands, each sent once the last was answered."""
    answers = []
    for n in range(count):
        _, answered = await phase(fake, desk, 1, 0.0, 50_000 + n)
        answers.extend(answered)
    return answers


async def cycles(cycle: SignalCycle, moment: list[datetime], stop: asyncio.Event) -> int:
    """Cycles back to back, each an hour of market time later (every symbol computed)."""
    runs = 0
    while not stop.is_set():
        moment[0] += timedelta(hours=1)
        await cycle.run_once()
        await asyncio.sleep(0)  # a cycle with nothing to await must still let commands in
        runs += 1
    return runs


async def main(count: int, interval_s: float) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    config = load_config(env={}, model=BotConfig)
    fake = await FakeDiscord().start()
    store = MemoryStore()
    await store.open()
    await store.subscribe("discord", "1", [])  # a channel following every symbol: cycles work
    moment = [MOMENT - timedelta(days=2)]
    chart = ChartRenderer.from_config(config.chart)
    try:
        with fake.pointed():
            async with build_desk(config, market_clock=lambda: moment[0]) as desk:
                router = CommandRouter(desk, store, config, no_status, render_chart=chart)
                transport = DiscordTransport(TOKEN, config.discord, desk.symbols, store)
                await transport.start(router.handle)
                await asyncio.wait_for(fake.ready.wait(), 10)
                await one_at_a_time(fake, desk, len(desk.symbols))  # fills the caches
                warm = await one_at_a_time(fake, desk, 40)
                idle_defers, idle_answers = await phase(fake, desk, count, interval_s, 1)
                stop = asyncio.Event()
                cycle = SignalCycle(desk, store, config, chart, on_recorded=lambda: None)
                running = asyncio.create_task(cycles(cycle, moment, stop))
                busy_defers, busy_answers = await phase(fake, desk, count, interval_s, 10_000)
                stop.set()
                runs = await running
                await transport.close()
    finally:
        await store.close()
        await fake.close()
    print(f"{count} /signal interactions per phase, one every {interval_s * 1000:g} ms")
    print(summary("defer, idle", idle_defers))
    print(summary(f"defer, while cycles run ({runs} ran)", busy_defers))
    print(summary("full answer, one at a time, warm", warm))
    print(summary("full answer, idle phase (queued)", idle_answers))
    print(summary("full answer, cycles run (queued)", busy_answers))
    p99 = max(sorted(d)[round(0.99 * (len(d) - 1))] for d in (idle_defers, busy_defers))
    p95 = sorted(warm)[round(0.95 * (len(warm) - 1))]
    print(
        f"targets: defer p99 <= 200 ms: {'met' if p99 <= 0.2 else 'MISSED'} ({p99 * 1000:.1f});"
        f" warm answer p95 <= 500 ms: {'met' if p95 <= 0.5 else 'MISSED'} ({p95 * 1000:.1f})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactions", type=int, default=200)
    parser.add_argument("--interval-ms", type=float, default=25.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.interactions, args.interval_ms / 1000))
