"""`subscribe [SYMBOL…]` / `unsubscribe`: channel alerts for the current chat, admins only."""

from __future__ import annotations

from bot.commands.base import Reply, Request
from bot.commands.registry import (
    MAX_ARGS,
    Command,
    Desk,
    check_arg_count,
    error_reply,
    resolve_symbols,
)
from bot.storage.base import SubscriptionStore
from intel.symbols import base_asset

__all__ = ["SubscribeCommands"]

SUBSCRIBE_USAGE = "subscribe [SYMBOL …]"
UNSUBSCRIBE_USAGE = "unsubscribe"
_REFUSAL = "only an admin of this chat can change its subscription"


class SubscribeCommands:
    """The `subscribe` / `unsubscribe` command group."""

    def __init__(self, desk: Desk, store: SubscriptionStore) -> None:
        self._desk = desk
        self._store = store

    def commands(self) -> tuple[Command, ...]:
        return (
            Command(
                "subscribe",
                self.subscribe,
                "post alerts in this chat, for the symbols named or all (admins)",
                f"subscribe {base_asset(self._desk.symbols[0]).lower()}",
                SUBSCRIBE_USAGE,
            ),
            Command(
                "unsubscribe",
                self.unsubscribe,
                "stop alerts in this chat (admins)",
                "unsubscribe",
                UNSUBSCRIBE_USAGE,
            ),
        )

    async def subscribe(self, request: Request) -> Reply:
        if not request.is_admin:
            return error_reply(_REFUSAL)
        check_arg_count(request.args, SUBSCRIBE_USAGE, most=MAX_ARGS)
        symbols = resolve_symbols(self._desk, request.args)
        subscription = await self._store.subscribe(request.transport, request.chat_id, symbols)
        covered = (
            ", ".join(subscription.symbols)
            if subscription.symbols
            else f"every symbol ({', '.join(self._desk.symbols)})"
        )
        return Reply(
            text=f"This chat now gets an alert when the signal changes for {covered}. "
            f"`unsubscribe` stops it; `status` shows the schedule."
        )

    async def unsubscribe(self, request: Request) -> Reply:
        if not request.is_admin:
            return error_reply(_REFUSAL)
        check_arg_count(request.args, UNSUBSCRIBE_USAGE)
        if not await self._store.unsubscribe(request.transport, request.chat_id):
            return Reply(text="This chat had no subscription; `subscribe` starts one.")
        return Reply(text="Unsubscribed: no more alerts here. `subscribe` starts them again.")
