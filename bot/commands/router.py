"""The command router: one registry of commands, and the one place where errors become replies.

Transports turn what people type into a `Request` (`parse_command_line` does the text part) and
hand it to `CommandRouter.handle`, which always answers: bad input as a one-line error reply,
a bug as a short generic line (logged with its traceback), never a traceback in a reply.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Protocol

import structlog

from bot.commands.alerts import AlertsCommands
from bot.commands.base import Reply, Request, StatusProvider
from bot.commands.help import HelpCommands
from bot.commands.registry import (
    MAX_ARGS,
    MAX_INPUT_CHARS,
    Command,
    Desk,
    error_reply,
)
from bot.commands.signal import SignalCommands, SignalGuard
from bot.commands.status import StatusCommands
from bot.commands.subscribe import SubscribeCommands
from bot.commands.watch import WatchCommands
from bot.config import BotConfig
from bot.render.chart_task import ChartFn, ChartRenderer
from bot.storage.base import SignalLog, SubscriptionStore, WatchlistStore
from bot.storage.whales import WhaleAlertStore
from intel.errors import NoSignalError, UserInputError
from intel.textfmt import quote_input

__all__ = ["INTERNAL_ERROR", "CommandRouter", "CommandStore", "parse_command_line"]

log = structlog.get_logger(__name__)

INTERNAL_ERROR = "internal error — sorry, please try again in a moment"


class CommandStore(SubscriptionStore, WatchlistStore, SignalLog, WhaleAlertStore, Protocol):
    """What the command groups read and write: no outbox, no meta."""


def parse_command_line(text: str) -> tuple[str, tuple[str, ...]]:
    """`/signal@MyBot eth` or `signal eth` -> ("signal", ("eth",)); UserInputError when unusable.

    The slash is optional and Telegram's `@botname` suffix is dropped; arguments keep their case
    (symbols are resolved later).
    """
    if len(text) > MAX_INPUT_CHARS:
        raise UserInputError(
            f"that is {len(text):,} characters; commands are short (at most {MAX_INPUT_CHARS})"
            " — try `help`"
        )
    words = text.split()
    name = words[0].removeprefix("/").split("@", 1)[0].lower() if words else ""
    if not name:
        raise UserInputError("empty command — try `help`")
    args = tuple(words[1:])
    if len(args) > MAX_ARGS:
        raise UserInputError(
            f"too many arguments ({len(args)}; at most {MAX_ARGS}) — `help {name}` shows usage"
        )
    return name, args


class CommandRouter:
    """Looks a request's command up in the registry and turns every outcome into a Reply."""

    def __init__(
        self,
        desk: Desk,
        store: CommandStore,
        config: BotConfig,
        status: StatusProvider,
        clock: Callable[[], float] = time.monotonic,
        *,
        render_chart: ChartFn | None = None,
        extra_commands: Iterable[Command] = (),
    ) -> None:
        """`render_chart` is the chart the cycle draws too; by default one built from config."""
        self._registry: dict[str, Command] = {}
        chart = render_chart or ChartRenderer.from_config(config.chart)
        guard = SignalGuard(desk, store, config.commands, chart, clock)
        groups = (
            SignalCommands(desk, guard),
            WatchCommands(desk, store),
            AlertsCommands(desk, store, whales=config.whale_alerts),
            SubscribeCommands(desk, store, whales=config.whale_alerts),
            StatusCommands(status),
            HelpCommands(self._registry),
        )
        for group in groups:
            for command in group.commands():
                self.register(command)
        # The slot for later groups (the backtesting issue's `performance` and `backtest`):
        # each is one Command passed here or to `register`; help lists it automatically.
        for command in extra_commands:
            self.register(command)

    @property
    def commands(self) -> Mapping[str, Command]:
        """The registry, read-only, in help order."""
        return MappingProxyType(self._registry)

    def register(self, command: Command) -> None:
        if command.name in self._registry:
            raise ValueError(f"command {command.name!r} is already registered")
        self._registry[command.name] = command

    async def handle(self, request: Request) -> Reply:
        """Answer one request; never raises for anything a person can type."""
        try:
            command = self._lookup(request)
            _check_size(request)
            return await command.handler(request)
        except (UserInputError, NoSignalError) as exc:
            return error_reply(str(exc))
        except Exception:
            log.exception(
                "command_failed",
                command=quote_input(request.command),
                transport=request.transport,
                user_id=request.user_id,
                arg_count=len(request.args),
            )
            return error_reply(INTERNAL_ERROR)

    def _lookup(self, request: Request) -> Command:
        name = request.command.strip().lower()
        command = self._registry.get(name)
        if command is not None:
            return command
        close = difflib.get_close_matches(name, list(self._registry), n=1, cutoff=0.6)
        hint = f"did you mean `{close[0]}`?" if close else "`help` lists every command"
        raise UserInputError(f"unknown command {quote_input(request.command)} — {hint}")


def _check_size(request: Request) -> None:
    """Transports that skip `parse_command_line` (slash-command options) get the same bounds."""
    if len(request.args) > MAX_ARGS:
        raise UserInputError(
            f"too many arguments ({len(request.args)}; at most {MAX_ARGS}) — "
            f"`help {request.command}` shows usage"
        )
    typed = [value for value in request.options.values() if isinstance(value, str)]
    if sum(len(arg) for arg in (*request.args, *typed)) > MAX_INPUT_CHARS:
        raise UserInputError(
            f"input too long (at most {MAX_INPUT_CHARS} characters) — try `help {request.command}`"
        )
