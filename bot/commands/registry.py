"""What every command group shares: the registry entry, the desk interface and argument checks.

Handlers validate every argument before any store write and raise `UserInputError` with a one-line
message saying what would work; the router turns that into an error reply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.commands.base import Reply, Request
from intel.errors import UserInputError
from intel.pipeline import SignalResult

__all__ = [
    "MAX_ARGS",
    "MAX_INPUT_CHARS",
    "Command",
    "Desk",
    "Handler",
    "check_arg_count",
    "error_reply",
    "one_line",
    "resolve_symbols",
]

Handler = Callable[[Request], Awaitable[Reply]]
MAX_INPUT_CHARS = 500  # a command line; longer input is refused before it is parsed
MAX_ARGS = 16  # no command takes more (subscribe names at most every covered symbol)


@dataclass(frozen=True, slots=True)
class Command:
    """One registry entry: adding a command to the bot is adding one of these."""

    name: str
    handler: Handler
    summary: str  # one line for `help`
    example: str  # a command line that works as typed, e.g. "signal btc"
    usage: str  # the grammar, e.g. "signal SYMBOL"


class Desk(Protocol):
    """The part of `intel.desk.SignalDesk` the commands use."""

    @property
    def symbols(self) -> tuple[str, ...]: ...

    def resolve(self, text: str) -> str: ...

    def now(self) -> datetime: ...

    async def signal(self, symbol: str, at: datetime | None = None) -> SignalResult: ...


def one_line(text: str) -> str:
    """Collapse whitespace and newlines so an error reply is exactly one line."""
    return " ".join(text.split()) or "something went wrong"


def error_reply(message: str) -> Reply:
    return Reply(text=one_line(message), is_error=True)


def check_arg_count(args: Sequence[str], usage: str, *, least: int = 0, most: int = 0) -> None:
    """Raise UserInputError naming the usage when there are too few or too many arguments."""
    if len(args) < least:
        raise UserInputError(f"missing argument: usage `{usage}`")
    if len(args) > most:
        raise UserInputError(f"too many arguments: usage `{usage}`")


def resolve_symbols(desk: Desk, texts: Iterable[str]) -> tuple[str, ...]:
    """Canonical symbols in the order typed, duplicates dropped; the first bad one raises."""
    resolved: dict[str, None] = {}
    for text in texts:
        resolved[desk.resolve(text)] = None
    return tuple(resolved)
