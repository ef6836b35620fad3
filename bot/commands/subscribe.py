"""`subscribe [SYMBOL…]` / `unsubscribe [SYMBOL…]`: channel alerts for this chat, admins only.

Bare `subscribe` follows every symbol; named symbols are added (an every-symbol subscription
covers them already). `unsubscribe SYMBOL…` removes symbols, bare `unsubscribe` everything. Each
reply shows the resulting list and the current call for each symbol, the chat's starting point.
"""

from __future__ import annotations

from typing import Protocol

from bot.commands.base import Reply, Request
from bot.commands.registry import (
    MAX_ARGS,
    Command,
    Desk,
    check_arg_count,
    error_reply,
    resolve_symbols,
)
from bot.commands.whales import WhaleCommands, is_whales
from bot.config import WhaleAlertsConfig
from bot.render.text import confidence_reading, format_moment
from bot.storage.base import SignalLog, Subscription, SubscriptionStore
from bot.storage.whales import WhaleAlertStore
from intel.errors import UnknownSymbolError
from intel.symbols import base_asset, normalize_symbol

__all__ = ["SubscribeCommands", "SubscriptionCommandStore"]

SUBSCRIBE_USAGE = "subscribe [SYMBOL …] · subscribe whales"
UNSUBSCRIBE_USAGE = "unsubscribe [SYMBOL …] · unsubscribe whales"
_REFUSAL = "only an admin of this chat can change its subscription"
_ENDED = "no more alerts here. `subscribe` starts them again."


class SubscriptionCommandStore(SubscriptionStore, SignalLog, WhaleAlertStore, Protocol):
    """The subscriptions, the signal log for each symbol's current call, whale alerts."""


class SubscribeCommands:
    """The `subscribe` / `unsubscribe` command group."""

    def __init__(
        self,
        desk: Desk,
        store: SubscriptionCommandStore,
        *,
        whales: WhaleAlertsConfig | None = None,
    ) -> None:
        self._desk = desk
        self._store = store
        self._whales = WhaleCommands(store, whales or WhaleAlertsConfig())

    def commands(self) -> tuple[Command, ...]:
        example = base_asset(self._desk.symbols[0]).lower()
        return (
            Command(
                "subscribe",
                self.subscribe,
                "post alerts in this chat: every symbol, or add the symbols named; "
                "`subscribe whales` for instant whale alerts (admins)",
                f"subscribe {example}",
                SUBSCRIBE_USAGE,
            ),
            Command(
                "unsubscribe",
                self.unsubscribe,
                "stop alerts in this chat for the symbols named, or for all; `unsubscribe whales` "
                "stops whale alerts (admins)",
                f"unsubscribe {example}",
                UNSUBSCRIBE_USAGE,
            ),
        )

    async def subscribe(self, request: Request) -> Reply:
        if not request.is_admin:
            return error_reply(_REFUSAL)
        if is_whales(request.args):
            check_arg_count(request.args, "subscribe whales", most=1)
            return await self._whales.channel(request, on=True)
        check_arg_count(request.args, SUBSCRIBE_USAGE, most=MAX_ARGS)
        symbols = resolve_symbols(self._desk, request.args)
        before = await self._store.subscription(request.transport, request.chat_id)
        after = await self._store.subscribe(
            request.transport, request.chat_id, symbols, thread_id=request.thread_id
        )
        head = _subscribe_head(before, symbols)
        return Reply(text=f"{head}\n{await self._overview(after)}")

    async def unsubscribe(self, request: Request) -> Reply:
        if not request.is_admin:
            return error_reply(_REFUSAL)
        if is_whales(request.args):
            check_arg_count(request.args, "unsubscribe whales", most=1)
            return await self._whales.channel(request, on=False)
        check_arg_count(request.args, UNSUBSCRIBE_USAGE, most=MAX_ARGS)
        before = await self._store.subscription(request.transport, request.chat_id)
        if before is None:
            return Reply(text="This chat had no subscription; `subscribe` starts one.")
        symbols = self._followed(before, request.args)
        after = await self._store.unsubscribe(
            request.transport, request.chat_id, symbols, every_symbol=self._desk.symbols
        )
        if not symbols:
            return Reply(text=f"Unsubscribed: {_ENDED}")
        if after is None:
            return Reply(
                text=f"Removed {', '.join(symbols)}; that was the last one, so the "
                f"subscription has ended: {_ENDED}"
            )
        covered = set(before.symbols or self._desk.symbols)
        missing = [symbol for symbol in symbols if symbol not in covered]
        head = (
            f"This chat did not follow {', '.join(missing)}, so nothing changed."
            if missing == list(symbols)
            else f"Removed {', '.join(s for s in symbols if s in covered)}."
        )
        return Reply(text=f"{head}\n{await self._overview(after)}")

    def _followed(self, subscription: Subscription, texts: tuple[str, ...]) -> tuple[str, ...]:
        """The symbols to remove: covered ones, or ones the config has dropped since."""
        resolved: dict[str, None] = {}
        for text in texts:
            try:
                resolved[self._desk.resolve(text)] = None
            except UnknownSymbolError:
                if normalize_symbol(text) not in subscription.symbols:
                    raise
                resolved[normalize_symbol(text)] = None
        return tuple(resolved)

    async def _overview(self, subscription: Subscription) -> str:
        """What the chat now follows, and the current call for each of those symbols."""
        symbols = subscription.symbols or self._desk.symbols
        covered = (
            ", ".join(symbols) if subscription.symbols else f"every symbol ({', '.join(symbols)})"
        )
        lines = [
            f"This chat now gets an alert when the signal changes for {covered}. Current calls:"
        ]
        lines.extend([f"  {symbol}: {await self._call(symbol)}" for symbol in symbols])
        lines.append("`unsubscribe [SYMBOL …]` stops some or all; `status` shows the schedule.")
        return "\n".join(lines)

    async def _call(self, symbol: str) -> str:
        stored = await self._store.last_signal(symbol)  # the last cycle signal, as alerts use
        if stored is None:
            return "no signal yet"
        signal = stored.signal
        reading = confidence_reading(signal)
        shown = f"{signal.action} {signal.confidence}/100" + (f", {reading}" if reading else "")
        return f"{shown} (as of {format_moment(signal.as_of)})"


def _subscribe_head(before: Subscription | None, symbols: tuple[str, ...]) -> str:
    """What `subscribe` changed, given the subscription before it."""
    if before is None:
        return "Subscribed."
    if not before.active:
        return f"Alerts here had stopped ({before.disabled_reason}); they start again now."
    if not before.symbols:
        return "This chat already follows every symbol, so nothing changed."
    if not symbols:
        return "This chat now follows every symbol."
    added = [symbol for symbol in symbols if symbol not in before.symbols]
    if not added:
        return f"This chat already follows {', '.join(symbols)}, so nothing changed."
    return f"Added {', '.join(added)}."
