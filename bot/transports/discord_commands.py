"""The slash commands of the Discord transport: hand-written ones with typed options for the
bot's own commands and for `backtest` and `performance`, and a generic one for any other registry
command.

A registry command without a definition here still works on Discord: `add_registry_commands`
gives it a slash command named after it, described by its summary, with its words as one
optional text option (`/name arguments:…`), handed to the command layer as `args` exactly as a
console line would be. A definition here replaces that with typed options (`/alerts
threshold:70` reaches the command as the int 70 in `Request.options`; `/backtest symbol:btc
period:90d` reaches it as the words `btc 90d` in `args`, parsed as a console line's, so a bad
period gets the same message). `backtest` and `performance` are defined here but added only
when the registry has them (`_TYPED`), so the slash commands always match the registry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any, Literal, Protocol, TypeAlias

import discord
from discord import app_commands

from bot.commands.base import OptionValue
from bot.commands.registry import Command

__all__ = ["PERIOD_SUGGESTIONS", "SlashAnswers", "add_commands", "add_registry_commands"]

_Autocomplete: TypeAlias = Callable[
    [discord.Interaction, str], Coroutine[Any, Any, list[app_commands.Choice[str]]]
]
_DESCRIPTION_MAX = 100  # Discord's limit for a command's and an option's description
# Offered while typing `/backtest period:`; suggestions only: any period `backtest` parses,
# `2024-11-05..2025-10-12` included, may be typed instead (autocomplete, not fixed choices).
PERIOD_SUGGESTIONS = (
    ("2w", "2w · the last 2 weeks"),
    ("90d", "90d · the last 90 days"),
    ("6m", "6m · the last 6 months (30-day months)"),
    ("1y", "1y · the last 365 days"),
)


class SlashAnswers(Protocol):
    """What the commands need from the transport."""

    tree: app_commands.CommandTree[discord.Client]

    def answer(
        self,
        interaction: discord.Interaction,
        command: str,
        args: tuple[str, ...],
        options: Mapping[str, OptionValue] | None = None,
    ) -> Awaitable[None]: ...

    def symbol_choices(self, typed: str) -> list[app_commands.Choice[str]]: ...


def add_registry_commands(transport: SlashAnswers, commands: Iterable[Command]) -> None:
    """A slash command for each registry command the tree does not have yet: typed options
    where this module defines them (`_TYPED`), else the generic one."""
    for command in commands:
        if transport.tree.get_command(command.name) is None:
            typed = _TYPED.get(command.name)
            slash = typed(transport) if typed else _generic(transport, command)
            transport.tree.add_command(slash)


def _generic(transport: SlashAnswers, command: Command) -> app_commands.Command[Any, ..., None]:
    name = command.name

    async def run(interaction: discord.Interaction, arguments: str | None = None) -> None:
        await transport.answer(interaction, name, tuple((arguments or "").split()))

    usage = f"as typed after the name: {command.usage}"
    described = app_commands.describe(arguments=_fit(usage))(run)
    return app_commands.Command(name=name, description=_fit(command.summary), callback=described)


def _fit(text: str) -> str:
    """Within Discord's description limit; the full text is in `help`."""
    return text if len(text) <= _DESCRIPTION_MAX else text[: _DESCRIPTION_MAX - 1] + "…"


def add_commands(transport: SlashAnswers) -> None:
    """Register the bot's own commands as slash commands with typed options."""
    tree = transport.tree
    answer = transport.answer

    symbols_typed = _symbols_typed(transport)

    async def several_typed(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        done, _, last = current.rpartition(" ")
        prefix = f"{done} " if done else ""
        return [
            app_commands.Choice(name=f"{prefix}{c.name}", value=f"{prefix}{c.value}")
            for c in transport.symbol_choices(last)
        ]

    @tree.command(name="signal", description="A signal for one symbol now, with its chart")
    @app_commands.describe(symbol="e.g. btc or ETH/USDT")
    @app_commands.autocomplete(symbol=symbols_typed)
    async def signal(interaction: discord.Interaction, symbol: str) -> None:
        await answer(interaction, "signal", (symbol,))

    @tree.command(name="watch", description="Your watchlist: add or remove a symbol, or list it")
    @app_commands.autocomplete(symbol=symbols_typed)
    async def watch(
        interaction: discord.Interaction,
        action: Literal["add", "remove", "list"],
        symbol: str | None = None,
    ) -> None:
        await answer(interaction, "watch", (action,) if symbol is None else (action, symbol))

    @tree.command(name="alerts", description="DM me when a watched signal reaches a confidence")
    @app_commands.describe(threshold="confidence 0-100", off="stop the DMs")
    async def alerts(
        interaction: discord.Interaction,
        threshold: app_commands.Range[int, 0, 100] | None = None,
        off: bool = False,
    ) -> None:
        options: dict[str, OptionValue] = {"off": True} if off else {}
        if threshold is not None:
            options["threshold"] = threshold
        await answer(interaction, "alerts", (), options)

    @tree.command(name="subscribe", description="Post alerts in this channel (Manage Server)")
    @app_commands.describe(symbols="symbols separated by spaces; none: every symbol")
    @app_commands.autocomplete(symbols=several_typed)
    async def subscribe(interaction: discord.Interaction, symbols: str | None = None) -> None:
        await answer(interaction, "subscribe", tuple((symbols or "").split()))

    @tree.command(name="unsubscribe", description="Stop alerts in this channel (Manage Server)")
    @app_commands.describe(symbols="symbols separated by spaces; none: all of them")
    @app_commands.autocomplete(symbols=several_typed)
    async def unsubscribe(interaction: discord.Interaction, symbols: str | None = None) -> None:
        await answer(interaction, "unsubscribe", tuple((symbols or "").split()))

    @tree.command(name="status", description="Sources, last and next cycle, deliveries")
    async def status(interaction: discord.Interaction) -> None:
        await answer(interaction, "status", ())

    @tree.command(name="help", description="Every command with an example")
    async def help_(interaction: discord.Interaction, command: str | None = None) -> None:
        await answer(interaction, "help", () if command is None else (command,))


def _symbols_typed(transport: SlashAnswers) -> _Autocomplete:
    async def symbols_typed(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return transport.symbol_choices(current)

    return symbols_typed


async def _periods_typed(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    typed = current.strip().lower()
    return [
        app_commands.Choice(name=label, value=value)
        for value, label in PERIOD_SUGGESTIONS
        if value.startswith(typed)
    ]


def _backtest(transport: SlashAnswers) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(
        name="backtest", description="The strategy over a period beside buy-and-hold"
    )
    @app_commands.describe(
        symbol="e.g. btc or ETH/USDT", period="90d, 2w, 6m, 1y or 2024-11-05..2025-10-12"
    )
    @app_commands.autocomplete(symbol=_symbols_typed(transport), period=_periods_typed)
    async def backtest(interaction: discord.Interaction, symbol: str, period: str) -> None:
        await transport.answer(interaction, "backtest", (symbol, period))

    return backtest


def _performance(transport: SlashAnswers) -> app_commands.Command[Any, ..., None]:
    @app_commands.command(name="performance", description="How often the bot's calls were right")
    @app_commands.describe(symbol="one symbol; none: every symbol")
    @app_commands.autocomplete(symbol=_symbols_typed(transport))
    async def performance(interaction: discord.Interaction, symbol: str | None = None) -> None:
        await transport.answer(interaction, "performance", () if symbol is None else (symbol,))

    return performance


# Registry commands that come from groups outside the router's own (`extra_commands`), given
# typed options when registered; their words reach the commands as `args`, so a bad period
# gets the same message as on the console.
_TYPED: dict[str, Callable[[SlashAnswers], app_commands.Command[Any, ..., None]]] = {
    "backtest": _backtest,
    "performance": _performance,
}
