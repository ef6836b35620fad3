"""Large transfers as a whale source counts them, for instant whale alerts.

A whale source (Blockchain.com, Whale Alert) hands each exchange inflow or outflow it is about
to count to the listeners added with `add_listener`, before it counts it: a crash between the
two hands it over again after the restart (the txid is not counted yet), so a listener sees a
transfer at least once and de-duplicates by `txid` itself. The bot's whale alerter is one
listener; intel never imports the bot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import structlog

__all__ = ["LargeTransfer", "LargeTransferFeed", "LargeTransferListener", "TransferListeners"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class LargeTransfer:
    """One labelled transfer into (`inflow`) or out of an exchange.

    `txid` is the provider's key (a Bitcoin txid; Whale Alert's `chain:hash`); `amount_coins` in
    `asset`, `amount_usd` at the provider's or the source's price when it was seen; `exchange`
    the receiving exchange of an inflow, the sending one of an outflow (None: unnamed)."""

    provider: str
    txid: str
    asset: str
    inflow: bool
    amount_coins: float
    amount_usd: float
    exchange: str | None
    seen_at: datetime


LargeTransferListener = Callable[[LargeTransfer], Awaitable[None]]


@runtime_checkable
class LargeTransferFeed(Protocol):
    """A whale source that tells listeners of each transfer it counts."""

    def add_listener(self, listener: LargeTransferListener) -> None: ...


class TransferListeners:
    """The listeners of one source; one that fails is logged and never stops the count."""

    def __init__(self) -> None:
        self._listeners: list[LargeTransferListener] = []

    def add_listener(self, listener: LargeTransferListener) -> None:
        self._listeners.append(listener)

    async def tell(self, transfer: LargeTransfer) -> None:
        for listener in self._listeners:
            try:
                await listener(transfer)
            except Exception:  # a failed alert must not lose the flow it is part of
                log.exception("large_transfer_listener_failed", txid=transfer.txid)
