"""`help [COMMAND]`: every command with one line and an example, and how to connect chats."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from bot.commands.base import Reply, Request
from bot.commands.registry import Command, check_arg_count
from intel.errors import UserInputError
from intel.textfmt import quote_input

__all__ = ["CHATS_NOTE", "HelpCommands"]

USAGE = "help [COMMAND]"
_FIRST_STEPS = ("signal", "watch", "alerts")
# Only what this build does: each chat platform connects when its token is set.
CHATS_NOTE = (
    "Chats: this console, Discord when DISCORD_TOKEN is set (README: Discord) and Telegram when "
    "TELEGRAM_TOKEN is set (README: Telegram)."
)


class HelpCommands:
    """The `help` command; reads the live registry so every registered command shows up."""

    def __init__(self, registry: Mapping[str, Command]) -> None:
        self._registry = registry

    def commands(self) -> tuple[Command, ...]:
        return (
            Command("help", self.help, "this list; `help watch` for one command", "help", USAGE),
        )

    async def help(self, request: Request) -> Reply:
        check_arg_count(request.args, USAGE, most=1)
        if request.args:
            return Reply(text=self._one(request.args[0]))
        lines = ["Commands:"]
        lines.extend(
            f"  {c.name} — {c.summary} (e.g. `{c.example}`)" for c in self._registry.values()
        )
        lines.extend(["", self._first_steps(), CHATS_NOTE])
        return Reply(text="\n".join(lines))

    def _first_steps(self) -> str:
        steps = [
            f"`{self._registry[name].example}`" for name in _FIRST_STEPS if name in self._registry
        ]
        return f"New here? Try {', then '.join(steps)}." if steps else "New here? Try `help`."

    def _one(self, text: str) -> str:
        name = text.lower().lstrip("/")
        command = self._registry.get(name)
        if command is None:
            close = difflib.get_close_matches(name, list(self._registry), n=1, cutoff=0.6)
            hint = f"did you mean `help {close[0]}`?" if close else "`help` lists every command"
            raise UserInputError(f"no command {quote_input(text)} — {hint}")
        return f"{command.usage} — {command.summary}. Example: `{command.example}`"
