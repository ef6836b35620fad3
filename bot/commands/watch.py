"""`watch add|remove SYMBOL` and `watch list`: the symbols a user follows for DM alerts."""

from __future__ import annotations

import difflib

from bot.commands.alerts import EXAMPLE_THRESHOLD
from bot.commands.base import Reply, Request
from bot.commands.registry import Command, Desk, check_arg_count
from bot.storage.base import WatchlistStore
from intel.errors import UnknownSymbolError, UserInputError
from intel.symbols import base_asset, normalize_symbol
from intel.textfmt import quote_input

__all__ = ["WatchCommands"]

USAGE = "watch add|remove SYMBOL · watch list"
_ACTIONS = ("add", "remove", "list")


class WatchCommands:
    """The `watch` command group."""

    def __init__(self, desk: Desk, store: WatchlistStore) -> None:
        self._desk = desk
        self._store = store

    def commands(self) -> tuple[Command, ...]:
        return (
            Command(
                "watch",
                self.watch,
                "follow a symbol for DM alerts; `watch list` shows yours",
                f"watch add {base_asset(self._desk.symbols[-1]).lower()}",
                USAGE,
            ),
        )

    async def watch(self, request: Request) -> Reply:
        action = _action(request.args)
        if action == "list":
            check_arg_count(request.args[1:], USAGE)
            return await self._list(request)
        check_arg_count(request.args[1:], f"watch {action} SYMBOL", least=1, most=1)
        if action == "add":
            return await self._add(request, self._desk.resolve(request.args[1]))
        return await self._remove(request, await self._watched(request, request.args[1]))

    async def _watched(self, request: Request, text: str) -> str:
        """The symbol to unwatch: a covered one, or one the config has dropped since."""
        try:
            return self._desk.resolve(text)
        except UnknownSymbolError:
            symbol = normalize_symbol(text)
            if symbol in await self._store.watchlist(request.transport, request.user_id):
                return symbol
            raise

    async def _add(self, request: Request, symbol: str) -> Reply:
        added = await self._store.watch_add(
            request.transport, request.user_id, request.dm_chat_id, symbol
        )
        threshold = await self._store.threshold(request.transport, request.user_id)
        first = f"Now watching {symbol}." if added else f"You already watch {symbol}."
        if threshold is None:
            return Reply(
                text=f"{first} Set `alerts {EXAMPLE_THRESHOLD}` to get a DM when its signal "
                f"reaches {EXAMPLE_THRESHOLD}/100 confidence (any number 0–100 works)."
            )
        return Reply(
            text=f"{first} You get a DM when its signal reaches {threshold}/100 "
            f"(`alerts N` changes that, `alerts off` stops it)."
        )

    async def _remove(self, request: Request, symbol: str) -> Reply:
        removed = await self._store.watch_remove(request.transport, request.user_id, symbol)
        if not removed:
            return Reply(text=f"You weren't watching {symbol}; `watch list` shows what you watch.")
        return Reply(text=f"Stopped watching {symbol}. `watch list` shows the rest.")

    async def _list(self, request: Request) -> Reply:
        symbols = await self._store.watchlist(request.transport, request.user_id)
        if not symbols:
            example = base_asset(self._desk.symbols[0]).lower()
            return Reply(
                text=f"You watch nothing yet. Try `watch add {example}`; "
                f"covered: {', '.join(self._desk.symbols)}."
            )
        threshold = await self._store.threshold(request.transport, request.user_id)
        alerts = (
            f"alerts off — `alerts {EXAMPLE_THRESHOLD}` turns DMs on"
            if threshold is None
            else f"DM when a signal reaches {threshold}/100"
        )
        return Reply(text=f"You watch {', '.join(symbols)} · {alerts}.")


def _action(args: tuple[str, ...]) -> str:
    """The sub-command; a bare `watch` lists."""
    if not args:
        return "list"
    action = args[0].lower()
    if action in _ACTIONS:
        return action
    close = difflib.get_close_matches(action, _ACTIONS, n=1, cutoff=0.6)
    hint = f"did you mean `watch {close[0]}`?" if close else f"usage `{USAGE}`"
    raise UserInputError(f"unknown watch action {quote_input(args[0])} — {hint}")
