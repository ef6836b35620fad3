"""`alerts 0-100` / `alerts off`: DM me when a watched symbol's signal reaches this confidence;
`alerts whales` / `alerts whales off`: DM me instant whale alerts (`bot.commands.whales`)."""

from __future__ import annotations

import re
from typing import Protocol, runtime_checkable

from bot.commands.base import OptionValue, Reply, Request
from bot.commands.registry import Command, Desk, check_arg_count
from bot.commands.whales import WhaleCommands, is_whales
from bot.config import WhaleAlertsConfig
from bot.storage.base import WatchlistStore
from bot.storage.whales import WhaleAlertStore
from intel.errors import UserInputError
from intel.symbols import base_asset
from intel.textfmt import quote_input

__all__ = ["AlertsCommandStore", "AlertsCommands", "parse_threshold"]

# The threshold the replies and welcomes suggest: one that calibrated calls reach (the shipped
# map tops out at 55; `alerts` above the ceiling says so).
EXAMPLE_THRESHOLD = 50
USAGE = "alerts 0-100 · alerts off · alerts whales [off]"
WHALES_USAGE = "alerts whales [off]"
_RANGE = f"must be a whole number from 0 to 100, e.g. `alerts {EXAMPLE_THRESHOLD}`, or `alerts off`"
# ASCII digits only: int() would also take '٦٠' or '６０', which nobody means as a threshold.
_INTEGER = re.compile(r"[+-]?[0-9]+%?")


def parse_threshold(text: OptionValue) -> int | None:
    """`off` -> None; an integer 0..100 (a trailing % allowed) -> that; anything else raises,
    saying whether it is not a whole number or a whole number out of range. A typed int (a
    platform's integer option) is range-checked as it is, never re-parsed from text."""
    if isinstance(text, int) and not isinstance(text, bool):
        if not 0 <= text <= 100:
            raise UserInputError(f"{text} is out of range — the threshold {_RANGE}")
        return text
    if not isinstance(text, str):
        raise UserInputError(
            f"{quote_input(str(text))} is not a whole number — the threshold {_RANGE}"
        )
    cleaned = text.strip().lower()
    if cleaned == "off":
        return None
    if not _INTEGER.fullmatch(cleaned):
        raise UserInputError(f"{quote_input(text)} is not a whole number — the threshold {_RANGE}")
    value = int(cleaned.rstrip("%"))
    if not 0 <= value <= 100:
        raise UserInputError(f"{quote_input(text)} is out of range — the threshold {_RANGE}")
    return value


@runtime_checkable
class CalibratedDesk(Protocol):
    """A desk whose BUY/SELL confidence is calibrated: it knows the highest value a call shows."""

    def confidence_ceiling(self) -> int | None: ...


class AlertsCommandStore(WatchlistStore, WhaleAlertStore, Protocol):
    """Thresholds on the watchlist, and who gets whale alerts."""


class AlertsCommands:
    """The `alerts` command group."""

    def __init__(
        self,
        desk: Desk,
        store: AlertsCommandStore,
        *,
        whales: WhaleAlertsConfig | None = None,
    ) -> None:
        self._desk = desk
        self._store = store
        self._whales = WhaleCommands(store, whales or WhaleAlertsConfig())

    def commands(self) -> tuple[Command, ...]:
        return (
            Command(
                "alerts",
                self.alerts,
                "DM me when a watched symbol's signal reaches this confidence, 0-100 (or `off`); "
                "`alerts whales` for instant whale alerts",
                f"alerts {EXAMPLE_THRESHOLD}",
                USAGE,
            ),
        )

    async def alerts(self, request: Request) -> Reply:
        if is_whales(request.args):
            check_arg_count(request.args, WHALES_USAGE, most=2)
            rest = [arg.strip().lower() for arg in request.args[1:]]
            if rest not in ([], ["off"]):
                raise UserInputError(
                    f"{quote_input(request.args[1])} is not `off`: usage `{WHALES_USAGE}`"
                )
            return await self._whales.dm(request, on=not rest)
        check_arg_count(request.args, USAGE, most=1)
        given = _given(request)
        if given is None:
            return await self._show(request)
        threshold = parse_threshold(given)
        await self._store.set_threshold(
            request.transport, request.user_id, request.dm_chat_id, threshold
        )
        watched = await self._store.watchlist(request.transport, request.user_id)
        if threshold is None:
            return Reply(
                text=f"Alerts off: no more DMs. `alerts {EXAMPLE_THRESHOLD}` turns them back on."
            )
        done = f"Alerts on: a DM when a watched symbol's signal reaches {threshold}/100."
        done += self._unreachable(threshold)
        if not watched:
            example = base_asset(self._desk.symbols[0]).lower()
            return Reply(text=f"{done} You watch nothing yet — `watch add {example}` to start.")
        return Reply(text=f"{done} Watching {', '.join(watched)}.")

    def _unreachable(self, threshold: int) -> str:
        """A warning when calibrated calls never reach `threshold` (else ""): no DM would come."""
        if not isinstance(self._desk, CalibratedDesk):
            return ""
        ceiling = self._desk.confidence_ceiling()
        if ceiling is None or threshold <= ceiling:
            return ""
        return (
            f" Note: calls are calibrated on the bot's track record and reach at most "
            f"{ceiling}/100 today, so none will reach {threshold} — `alerts {ceiling}` would."
        )

    async def _show(self, request: Request) -> Reply:
        threshold = await self._store.threshold(request.transport, request.user_id)
        if threshold is None:
            return Reply(
                text=f"Alerts are off. `alerts {EXAMPLE_THRESHOLD}` sends a DM when a watched "
                f"symbol's signal reaches {EXAMPLE_THRESHOLD}/100 confidence."
            )
        return Reply(
            text=f"Alerts at {threshold}/100. `alerts N` changes it, `alerts off` stops them."
        )


def _given(request: Request) -> OptionValue | None:
    """The threshold asked for: the typed options `off` / `threshold`, else the word typed."""
    if request.options.get("off") is True:
        return "off"
    typed = request.options.get("threshold")
    if typed is not None:
        return typed
    return request.args[0] if request.args else None
