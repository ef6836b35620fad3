"""`/backtest` and `/performance` through the real discord.py against the fake REST server: typed
options reach the commands as their words, autocomplete answers, the defer comes first, and
the backtest's follow-up carries its chart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.commands.backtest import BacktestCommands
from bot.commands.base import Request
from bot.commands.performance import PerformanceCommands
from bot.config import BotConfig
from bot.storage.memory import MemoryStore
from bot.transports.discord import DiscordTransport
from bot.transports.fake_discord import APP_ID, FakeDiscord, command_interaction
from intel.config import load_config
from intel.desk import build_desk
from tests.test_discord_transport import (
    COMMANDS,
    MOMENT,
    contents,
    follow_ups,
    option,
    run,
    start_transport,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = await FakeDiscord().start()
    with server.pointed():
        yield server
    await server.close()


@pytest.fixture
async def served(fake: FakeDiscord, store: MemoryStore) -> AsyncIterator[Any]:
    """Starts a transport whose router has `backtest` and `performance` (as the bot's has);
    `await served(seen)` collects every request the command layer gets in `seen`."""
    config = load_config(env={}, model=BotConfig)
    desk = build_desk(config, market_clock=lambda: MOMENT)
    backtests = BacktestCommands(desk, config)
    extra = (*backtests.commands(), *PerformanceCommands(desk, store).commands())
    opened: list[DiscordTransport] = []

    async def start(seen: list[Request] | None = None) -> DiscordTransport:
        transport = await start_transport(store, seen=seen, extra_commands=extra)
        opened.append(transport)
        return transport

    yield start
    for transport in opened:
        await transport.close()
    await backtests.close()


def uploaded(fake: FakeDiscord, name: str) -> dict[str, Any]:
    put = fake.matching(f"/applications/{APP_ID}/commands", "PUT")[-1]
    found: dict[str, Any] = next(command for command in put.json if command["name"] == name)
    return found


async def test_both_are_typed_slash_commands_and_the_sync_notices_them(fake, store, served) -> None:
    await (await start_transport(store)).close()  # the bot before: no backtest, performance
    await (await served()).close()
    first, second = fake.matching(f"/applications/{APP_ID}/commands", "PUT")
    assert {command["name"] for command in first.json} == COMMANDS
    assert {command["name"] for command in second.json} == COMMANDS | {"backtest", "performance"}
    shapes = {
        name: [(o["name"], o["type"], o["required"], o["autocomplete"]) for o in command["options"]]
        for name in ("backtest", "performance")
        for command in [uploaded(fake, name)]
    }
    assert shapes == {
        "backtest": [("symbol", 3, True, True), ("period", 3, True, True)],
        "performance": [("symbol", 3, False, True)],
    }
    await served()  # the same set again: nothing uploaded
    assert len(fake.matching("/commands", "PUT")) == 2


async def test_backtest_defers_then_follows_up_with_its_summary_and_chart(
    fake, store, served
) -> None:
    seen: list[Request] = []
    transport = await served(seen)
    payload = command_interaction("backtest", [option("symbol", "eth"), option("period", "2w")])
    await run(transport, payload)
    [request] = seen
    assert (request.command, request.args) == ("backtest", ("eth", "2w"))
    [defer] = fake.matching("/callback")
    assert defer.json["type"] == 5  # "thinking…"
    sent = follow_ups(fake)
    assert sent
    assert all(defer.at_s < answer.at_s for answer in sent)
    # 2w before the market moment 2025-10-10 20:00 UTC, on the hour
    assert "Backtest ETH/USDT, 2025-09-26 20:00 → 2025-10-10 20:00 UTC" in contents(fake)
    assert "buy-and-hold: " in contents(fake)
    [(filename, png)] = [file for answer in sent for file in answer.files]
    assert filename == "chart.png"
    assert png.startswith(PNG_SIGNATURE)
    assert all(answer.json["allowed_mentions"]["parse"] == [] for answer in sent)


@pytest.mark.parametrize("period", ["90", "3q", "2025-10-12..2024-11-05"])
async def test_a_bad_period_gets_the_commands_message_and_no_chart(
    fake, store, served, period: str
) -> None:
    transport = await served()
    payload = command_interaction("backtest", [option("symbol", "btc"), option("period", period)])
    await run(transport, payload)
    [answer] = follow_ups(fake)
    assert answer.json["content"].startswith(("unknown period", "period "))
    assert "use 90d" in answer.json["content"] or "not before the end" in answer.json["content"]
    assert answer.files == ()


async def test_performance_takes_an_optional_symbol(fake, store, served) -> None:
    seen: list[Request] = []
    transport = await served(seen)
    await run(transport, command_interaction("performance", [option("symbol", "eth")]))
    await run(transport, command_interaction("performance"))
    assert [(r.command, r.args) for r in seen] == [("performance", ("eth",)), ("performance", ())]
    assert len(fake.matching("/callback")) == 2
    first, second = follow_ups(fake)
    assert first.json["content"].startswith("Performance · ETH/USDT · market moment")
    assert second.json["content"].startswith("Performance · BTC/USDT, ETH/USDT")


@pytest.mark.parametrize(
    ("command", "typed", "choices"),
    [
        ("backtest", option("symbol", "et", focused=True), [("ETH/USDT", "eth")]),
        ("backtest", option("period", "9", focused=True), [("90d · the last 90 days", "90d")]),
        ("backtest", option("period", "2024-", focused=True), []),  # free text stays allowed
        ("performance", option("symbol", "bt", focused=True), [("BTC/USDT", "btc")]),
    ],
)
async def test_autocomplete_answers_symbols_and_periods(
    fake, store, served, command: str, typed: dict[str, Any], choices: list[tuple[str, str]]
) -> None:
    transport = await served()
    await run(transport, command_interaction(command, [typed], kind=4))
    [answer] = fake.matching("/callback")
    assert answer.json["type"] == 8
    assert [(c["name"], c["value"]) for c in answer.json["data"]["choices"]] == choices
