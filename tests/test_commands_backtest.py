"""The chat `backtest` command: periods, validation, and a real worker process that runs one
backtest at a time without delaying any other command."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from datetime import UTC, datetime

import pytest

from bot.commands.backtest import BacktestCommands, parse_period, run_chat_backtest
from bot.commands.router import CommandRouter
from bot.config import BotConfig
from intel.config import load_config
from intel.desk import build_desk
from intel.errors import UserInputError
from intel.timeutil import parse_time

from .test_commands import ask, fixed_status

NOW = datetime(2025, 10, 6, 16, 30, tzinfo=UTC)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("90d", "2025-07-08T16:00Z", "2025-10-06T16:00Z"),
        ("2w", "2025-09-22T16:00Z", "2025-10-06T16:00Z"),
        ("6m", "2025-04-09T16:00Z", "2025-10-06T16:00Z"),
        ("1Y", "2024-10-06T16:00Z", "2025-10-06T16:00Z"),
        ("2024-11-05..2025-10-12", "2024-11-05T00:00Z", "2025-10-12T00:00Z"),
    ],
)
def test_periods_as_people_type_them(text, start, end) -> None:
    assert parse_period(text, NOW) == (parse_time(start), parse_time(end))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("90", "unknown period '90'"),
        ("0d", "at least 1 day"),
        ("3q", "unknown period"),
        ("2025-10-12..2024-11-05", "not before the end"),
        ("2024-13-01..2025-01-01", "bad time"),
    ],
)
def test_bad_periods_say_what_would_work(text, fragment) -> None:
    with pytest.raises(UserInputError, match=fragment):
        parse_period(text, NOW)


def test_the_worker_job_summarises_beside_buy_and_hold() -> None:
    config = load_config(env={}, model=BotConfig)
    start, end = parse_time("2025-03-01"), parse_time("2025-03-15")
    summary = run_chat_backtest(config, "BTC/USDT", start, end)
    assert summary.chart_png.startswith(PNG_SIGNATURE)
    lines = summary.text.splitlines()
    assert lines[1].startswith("divergence: ")
    assert lines[2].startswith("buy-and-hold: ")
    assert "Not financial advice" in lines[-1]


@pytest.fixture
def config() -> BotConfig:
    return load_config(env={}, model=BotConfig, overrides={"backtest.chat_cooldown_s": 600})


async def test_a_backtest_runs_in_a_worker_process_and_never_delays_other_commands(
    config, store
) -> None:
    desk = build_desk(config)
    seconds = [0.0]
    backtests = BacktestCommands(desk, config, clock=lambda: seconds[0])
    router = CommandRouter(desk, store, config, fixed_status, extra_commands=backtests.commands())
    try:
        running = asyncio.create_task(ask(router, "backtest btc 2025-03-01..2025-03-15"))
        await asyncio.sleep(0.05)
        # While it runs: help answers at once, a second backtest is told to wait.
        assert "backtest btc 90d" in (await ask(router, "help")).text
        assert not running.done()
        busy = await ask(router, "backtest eth 30d", user="u2")
        assert busy.is_error
        assert "another backtest is running" in busy.text
        workers = [p.pid for p in multiprocessing.active_children()]
        assert workers
        assert os.getpid() not in workers
        reply = await asyncio.wait_for(running, timeout=120)
        assert not reply.is_error
        assert reply.chart_png.startswith(PNG_SIGNATURE)
        assert "buy-and-hold" in reply.text
        seconds[0] = 599.0  # the same user within the cooldown
        again = await ask(router, "backtest btc 30d")
        assert again.is_error
        assert "try again in 1 s" in again.text
    finally:
        await backtests.close()


async def test_bad_input_is_answered_before_any_work(config, store) -> None:
    desk = build_desk(config)
    backtests = BacktestCommands(desk, config)
    router = CommandRouter(desk, store, config, fixed_status, extra_commands=backtests.commands())
    for line, fragment in [
        ("backtest btc", "missing argument"),
        ("backtest doge 90d", "unknown symbol"),
        ("backtest btc 90x", "unknown period"),
        ("backtest btc 2012-01-01..2013-01-01", "outside the data"),
        ("backtest btc 20y", "outside the data"),
    ]:
        reply = await ask(router, line)
        assert reply.is_error
        assert fragment in reply.text
    assert not multiprocessing.active_children()  # nothing was started


async def test_closing_during_a_backtest_ends_its_worker_at_once(config, store) -> None:
    """Stopping the bot must not wait for a running backtest (a year takes far longer than 2 s):
    close() returns promptly, no worker process remains, and the asker is told why."""
    desk = build_desk(config)
    backtests = BacktestCommands(desk, config)
    router = CommandRouter(desk, store, config, fixed_status, extra_commands=backtests.commands())
    running = asyncio.create_task(ask(router, "backtest btc 1y"))
    for _ in range(200):  # at most 10 s for the worker to start
        if multiprocessing.active_children():
            break
        await asyncio.sleep(0.05)
    workers = multiprocessing.active_children()
    assert workers
    await asyncio.sleep(1.0)  # the job is under way
    started = time.monotonic()
    await backtests.close()
    assert time.monotonic() - started < 2.0
    for worker in workers:
        worker.join(timeout=0.5)  # reaps it if it is gone; returns at once if still running
        assert not worker.is_alive()
    assert not multiprocessing.active_children()
    reply = await asyncio.wait_for(running, timeout=5)
    assert reply.is_error
    assert "stopped because the bot is shutting down" in reply.text
