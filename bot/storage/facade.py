"""`StoreFacade`: the whole `Store` joined from its per-concern parts, as each backend builds it.

A backend composes one shared connection (or in-memory tables) with small classes, one per
protocol in `bot.storage.base`, and passes them here; the facade only forwards, so every method
name of the old single-class store keeps working for callers that take the whole `Store`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bot.storage.base import (
    AlertStateStore,
    CallState,
    Delivery,
    DeliveryKind,
    DmState,
    MetaStore,
    OutboxItem,
    OutboxStore,
    SignalLog,
    SignalOrigin,
    StoredSignal,
    Subscription,
    SubscriptionStore,
    Watcher,
    WatchlistStore,
)
from bot.storage.whales import WhaleAlert, WhaleAlertChat, WhaleAlertStore
from intel.models import Signal

__all__ = ["StoreFacade"]


class StoreFacade:
    """Forwards each `Store` method to the part that owns it; subclasses add open and close."""

    whale_alert_store: WhaleAlertStore  # set by each backend

    def __init__(
        self,
        subscriptions: SubscriptionStore,
        watchlists: WatchlistStore,
        signal_log: SignalLog,
        outbox: OutboxStore,
        meta: MetaStore,
        alert_states: AlertStateStore,
    ) -> None:
        # Public: a consumer may be handed just the part it needs.
        self.subscription_store = subscriptions
        self.watchlist_store = watchlists
        self.signal_log = signal_log
        self.outbox = outbox
        self.meta = meta
        self.alert_states = alert_states  # the signal log's part that writes it, in both backends

    # -- SubscriptionStore -------------------------------------------------------------------

    async def subscribe(
        self,
        transport: str,
        chat_id: str,
        symbols: Sequence[str],
        thread_id: str | None = None,
    ) -> Subscription:
        return await self.subscription_store.subscribe(transport, chat_id, symbols, thread_id)

    async def unsubscribe(
        self,
        transport: str,
        chat_id: str,
        symbols: Sequence[str] = (),
        every_symbol: Sequence[str] = (),
    ) -> Subscription | None:
        return await self.subscription_store.unsubscribe(transport, chat_id, symbols, every_symbol)

    async def subscription(self, transport: str, chat_id: str) -> Subscription | None:
        return await self.subscription_store.subscription(transport, chat_id)

    async def subscriptions_for(self, symbol: str) -> list[Subscription]:
        return await self.subscription_store.subscriptions_for(symbol)

    async def disable_chat(self, transport: str, chat_id: str, reason: str) -> None:
        await self.subscription_store.disable_chat(transport, chat_id, reason)

    async def followed_symbols(self) -> set[str]:
        return await self.subscription_store.followed_symbols()

    # -- WatchlistStore ----------------------------------------------------------------------

    async def watch_add(self, transport: str, user_id: str, dm_chat_id: str, symbol: str) -> bool:
        return await self.watchlist_store.watch_add(transport, user_id, dm_chat_id, symbol)

    async def watch_remove(self, transport: str, user_id: str, symbol: str) -> bool:
        return await self.watchlist_store.watch_remove(transport, user_id, symbol)

    async def watchlist(self, transport: str, user_id: str) -> list[str]:
        return await self.watchlist_store.watchlist(transport, user_id)

    async def set_threshold(
        self, transport: str, user_id: str, dm_chat_id: str, threshold: int | None
    ) -> None:
        await self.watchlist_store.set_threshold(transport, user_id, dm_chat_id, threshold)

    async def threshold(self, transport: str, user_id: str) -> int | None:
        return await self.watchlist_store.threshold(transport, user_id)

    async def watchers(self, symbol: str) -> list[Watcher]:
        return await self.watchlist_store.watchers(symbol)

    async def dm_states(self, symbol: str) -> dict[tuple[str, str], DmState]:
        return await self.watchlist_store.dm_states(symbol)

    # -- SignalLog ---------------------------------------------------------------------------

    async def record_signal(
        self,
        signal: Signal,
        chart_png: bytes | None,
        deliveries: Sequence[Delivery],
        alerted: bool,
        origin: str = SignalOrigin.CYCLE,
        call_state: CallState | None = None,
    ) -> int:
        return await self.signal_log.record_signal(
            signal, chart_png, deliveries, alerted, origin, call_state
        )

    async def last_signal(self, symbol: str) -> StoredSignal | None:
        return await self.signal_log.last_signal(symbol)

    async def last_alerted(self, symbol: str) -> StoredSignal | None:
        return await self.signal_log.last_alerted(symbol)

    async def load_signal(self, signal_id: int) -> StoredSignal | None:
        return await self.signal_log.load_signal(signal_id)

    async def signals(
        self, symbol: str, since: datetime | None = None, until: datetime | None = None
    ) -> list[StoredSignal]:
        return await self.signal_log.signals(symbol, since, until)

    # -- AlertStateStore -------------------------------------------------------------------

    async def call_state(self, symbol: str) -> CallState | None:
        return await self.alert_states.call_state(symbol)

    async def chat_states(self, symbol: str) -> dict[tuple[str, str], DmState]:
        return await self.alert_states.chat_states(symbol)

    # -- OutboxStore -------------------------------------------------------------------------

    async def pending_deliveries(self, limit: int) -> list[OutboxItem]:
        return await self.outbox.pending_deliveries(limit)

    async def mark_sent(self, item_id: int) -> None:
        await self.outbox.mark_sent(item_id)

    async def mark_failed(self, item_id: int, reason: str, permanent: bool) -> None:
        await self.outbox.mark_failed(item_id, reason, permanent)

    async def outbox_counts(self) -> dict[str, int]:
        return await self.outbox.outbox_counts()

    # -- MetaStore ---------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        return await self.meta.get_meta(key)

    async def set_meta(self, key: str, value: str) -> None:
        await self.meta.set_meta(key, value)

    # -- WhaleAlertStore ---------------------------------------------------------------------

    async def set_whale_alerts(self, chat: WhaleAlertChat, on: bool) -> bool:
        return await self.whale_alert_store.set_whale_alerts(chat, on)

    async def whale_alerts_on(self, transport: str, chat_id: str) -> bool:
        return await self.whale_alert_store.whale_alerts_on(transport, chat_id)

    async def queue_whale_alert(self, alert: WhaleAlert, max_per_chat_h: int) -> int | None:
        return await self.whale_alert_store.queue_whale_alert(alert, max_per_chat_h)

    async def load_whale_alert(self, alert_id: int) -> WhaleAlert | None:
        return await self.whale_alert_store.load_whale_alert(alert_id)

    async def whale_alert_chats(self) -> dict[DeliveryKind, int]:
        return await self.whale_alert_store.whale_alert_chats()

    async def prune_whale_alerts(self, keep_s: float) -> int:
        return await self.whale_alert_store.prune_whale_alerts(keep_s)
