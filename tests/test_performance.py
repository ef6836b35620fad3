"""`performance`: the scorecard of stored signals through the command router, over the real
replay desk and the in-memory store; expected figures come from the shipped candle file."""

from __future__ import annotations

import csv
import dataclasses
import gzip
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from bot.commands.performance import PerformanceCommands
from bot.commands.router import CommandRouter
from bot.config import BotConfig
from bot.storage.base import SignalOrigin
from intel.config import load_config
from intel.desk import build_desk
from intel.history import signals_over_history
from intel.models import Action, Signal
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from tests.test_commands import fixed_status, request

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CLOCK = datetime(2025, 6, 1, tzinfo=UTC)
CONFIG = load_config(env={}, model=BotConfig, overrides={"data.default_at": "2025-06-01T00:00Z"})


@pytest.fixture(scope="module")
def history() -> list[Signal]:
    import asyncio

    start = CLOCK - timedelta(days=31)
    return asyncio.run(signals_over_history(CONFIG, "btc", start, CLOCK, timedelta(hours=4)))


def recorded_btc() -> dict[int, tuple[float, float]]:
    path = DEFAULT_REPLAY_DIR / "candles" / "BTCUSDT_1h.csv.gz"
    with gzip.open(path, "rt") as handle:
        return {
            int(float(row["open_time_ms"])): (float(row["open"]), float(row["close"]))
            for row in csv.DictReader(handle)
        }


def by_hand(signals: list[Signal]) -> tuple[int, int, int]:
    """(right, scored, pending) from the candle file: entry at the open of the hour at as_of,
    exit at the close of the hour ending at as_of + timeframe, 0.20 % round-trip fees."""
    rows, right, scored, pending = recorded_btc(), 0, 0, 0
    for s in signals:
        if s.action is Action.HOLD:
            continue
        exit_at = s.as_of + timedelta(hours=s.timeframe_hours)
        if exit_at > CLOCK:
            pending += 1
            continue
        entry = rows[int(s.as_of.timestamp() * 1000)][0]
        exit_ = rows[int((exit_at - timedelta(hours=1)).timestamp() * 1000)][1]
        move = (exit_ / entry - 1) * (1 if s.action is Action.BUY else -1)
        scored += 1
        right += move > 0.002
    return right, scored, pending


async def test_performance_scores_sent_then_cycle_then_on_demand(store, clock, history):
    # One call still running at the clock: pending, never scored.
    running = dataclasses.replace(
        history[-1], action=Action.BUY, as_of=CLOCK - timedelta(hours=2), timeframe_hours=12
    )
    history = [*history[:-1], running]
    sent: list[Signal] = []
    previous = Action.HOLD
    for signal in history:
        alerted = signal.action is not previous
        previous = signal.action
        sent += [signal] if alerted else []
        await store.record_signal(signal, None, [], alerted=alerted)
    on_demand = history[-3:]
    for signal in on_demand:
        await store.record_signal(signal, None, [], alerted=False, origin=SignalOrigin.ON_DEMAND)
    desk = build_desk(CONFIG)
    router = CommandRouter(
        desk,
        store,
        CONFIG,
        fixed_status,
        clock=clock.monotonic,
        extra_commands=PerformanceCommands(desk, store).commands(),
    )
    reply = await router.handle(request("performance btc"))
    assert not reply.is_error, reply.text
    text = reply.text
    sent_right, sent_scored, _ = by_hand(sent)
    all_right, all_scored, all_pending = by_hand(history)
    assert all_scored >= 30, "the slice must hold enough calls to read"
    sent_block, cycle_block = text.split("Every scheduled signal")
    assert f"right {sent_right} of {sent_scored} " in sent_block
    assert f"right {all_right} of {all_scored} " in cycle_block
    holds = sum(s.action is Action.HOLD for s in history)
    assert all_pending == 1
    assert f"HOLDs {holds} (not bets, not scored) · pending {all_pending}" in cycle_block
    assert "Asked for in chat (shown apart): 3 signals" in text
    assert "chance at the same horizons" in text
    assert reply.chart_png is not None
    assert reply.chart_png.startswith(PNG_SIGNATURE)


async def test_performance_input_errors_and_empty_history(store, clock):
    desk = build_desk(CONFIG)
    router = CommandRouter(
        desk,
        store,
        CONFIG,
        fixed_status,
        extra_commands=PerformanceCommands(desk, store).commands(),
    )
    unknown = await router.handle(request("performance btx"))
    assert unknown.is_error
    assert "BTC/USDT" in unknown.text  # the hint names what would work
    extra = await router.handle(request("performance btc eth"))
    assert extra.is_error
    assert "performance [SYMBOL]" in extra.text
    empty = await router.handle(request("performance"))
    assert not empty.is_error
    assert "no call scored yet" in empty.text
    assert empty.chart_png is None
    assert "performance" in (await router.handle(request("help"))).text


async def test_a_user_waits_the_cooldown_between_performance_answers(store, clock):
    """Each answer reads the whole log and, live, the candles back to the oldest signal: one per
    user per `commands.performance_cooldown_s` (only an answer costs the wait)."""
    assert CONFIG.commands.performance_cooldown_s == 30.0
    desk = build_desk(CONFIG)
    seconds = [100.0]
    commands = PerformanceCommands(
        desk, store, CONFIG.commands.performance_cooldown_s, clock=lambda: seconds[0]
    )
    router = CommandRouter(desk, store, CONFIG, fixed_status, extra_commands=commands.commands())
    assert (await router.handle(request("performance btx"))).is_error  # costs nothing
    assert not (await router.handle(request("performance btc"))).is_error
    seconds[0] += 20.5
    again = await router.handle(request("performance eth"))
    assert again.is_error
    assert again.text.endswith("one performance report per 30 s — try again in 10 s")
    assert not (await router.handle(request("performance", user="u2"))).is_error  # per user
    seconds[0] += 9.5  # 30 s after the answer
    assert not (await router.handle(request("performance eth"))).is_error


def test_the_reliability_chart_draws_raw_and_calibrated_curves():
    import io

    from PIL import Image

    from bot.render.scorecard import render_reliability_chart
    from intel.scorecard import reliability

    raw = reliability([55, 62, 68, 74], [False, True, False, True])
    calibrated = reliability([38, 41, 44, 52], [False, True, False, True])
    one = render_reliability_chart([("shown", calibrated)], "t", 0.42)
    two = render_reliability_chart([("raw", raw), ("shown", calibrated)], "t", 0.42)
    assert one.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(two))
    assert image.size == (640, 500)

    # The raw curve adds red pixels (its colour) that the single curve does not have.
    def reds(png: bytes) -> int:
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
        return int(((pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)).sum())

    assert reds(two) > reds(one) + 50
