"""`subscribe whales` / `unsubscribe whales` (a channel, admins) and `alerts whales [off]` (a DM):
instant whale alerts for this chat (see `bot.alerts.whales`)."""

from __future__ import annotations

from collections.abc import Mapping

from bot.commands.base import Reply, Request
from bot.config import WhaleAlertsConfig
from bot.storage.base import DeliveryKind
from bot.storage.whales import WhaleAlertChat, WhaleAlertStore
from intel.textfmt import format_usd

__all__ = ["WHALES", "WhaleCommands", "is_whales", "whale_status_line"]

WHALES = "whales"


def is_whales(args: tuple[str, ...]) -> bool:
    """The command's first argument is `whales` (any case)."""
    return bool(args) and args[0].strip().lower() == WHALES


class WhaleCommands:
    """Turns whale alerts on and off for the chat a command came from."""

    def __init__(self, store: WhaleAlertStore, config: WhaleAlertsConfig) -> None:
        self._store = store
        self._config = config

    def _what(self) -> str:
        return (
            f"a single transfer of {format_usd(self._config.min_usd)} or more into or out of "
            "an exchange"
        )

    async def channel(self, request: Request, on: bool) -> Reply:
        chat = WhaleAlertChat(request.transport, request.chat_id, DeliveryKind.CHANNEL)
        changed = await self._store.set_whale_alerts(chat, on)
        if on:
            head = "Whale alerts on" if changed else "Whale alerts were already on"
            return Reply(
                text=f"{head}: this chat hears at once of {self._what()}"
                f"{self._disabled_note()}. `unsubscribe whales` stops them."
            )
        if not changed:
            return Reply(text="This chat had no whale alerts; `subscribe whales` starts them.")
        return Reply(text="Whale alerts off here. `subscribe whales` starts them again.")

    async def dm(self, request: Request, on: bool) -> Reply:
        chat = WhaleAlertChat(
            request.transport, request.dm_chat_id, DeliveryKind.DM, user_id=request.user_id
        )
        await self._store.set_whale_alerts(chat, on)
        if not on:
            return Reply(text="Whale alerts off: no more whale DMs. `alerts whales` turns them on.")
        return Reply(
            text=f"Whale alerts on: a DM as soon as {self._what()}{self._disabled_note()}. "
            "`alerts whales off` stops them."
        )

    def _disabled_note(self) -> str:
        if self._config.enabled:
            return ""
        return " (once whale_alerts.enabled is turned on in this bot's configuration)"


def whale_status_line(chats: Mapping[DeliveryKind, int], config: WhaleAlertsConfig) -> str:
    """`status`'s line: "Whale alerts: 2 channels, 1 DM, from $100.0M" (the chats that get
    them now), or why none are sent."""
    channels, dms = chats.get(DeliveryKind.CHANNEL, 0), chats.get(DeliveryKind.DM, 0)
    who = (
        f"{_count(channels, 'channel')}, {_count(dms, 'DM')}"
        if channels or dms
        else "no chat has asked (`subscribe whales`, `alerts whales`)"
    )
    line = f"Whale alerts: {who}, from {format_usd(config.min_usd)}"
    return line if config.enabled else f"{line}; off (whale_alerts.enabled is false)"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
