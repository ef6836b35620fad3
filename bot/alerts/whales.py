"""Instant whale alerts: a large labelled transfer into or out of an exchange, queued at once
for the chats that asked for it (`subscribe whales`, `alerts whales`) and sent by the outbox
sender like every alert.

`WhaleAlerter` is the listener a whale source calls with each transfer before counting it
(`intel.sources.onchain.large`). It keeps those at or above `whale_alerts.min_usd`, names the
asset's latest stored cycle signal as the current call (read only: what each chat was last told
about signals is untouched, so the signal alert policy never sees a whale alert), and queues it in
one store write that de-duplicates by txid and applies the per-chat hourly limit. Quiet hours are
not applied: a whale alert is news of the moment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

from bot.commands.base import Reply
from bot.config import WhaleAlertsConfig
from bot.logs import Redactor
from bot.render.whales import WHALE_INTRO, whale_alert_text
from bot.storage.base import DeliveryKind, OutboxItem, SignalLog
from bot.storage.whales import HOUR_S, CurrentCall, WhaleAlert, WhaleAlertStore
from bot.transports.base import OutMessage
from intel.calibration import NO_EDGE_NOTE
from intel.sources.onchain.large import LargeTransfer
from intel.symbols import base_asset

__all__ = ["WhaleAlertSink", "WhaleAlerter", "build_whale_message"]

log = structlog.get_logger(__name__)


class WhaleAlertSink(WhaleAlertStore, SignalLog, Protocol):
    """Where whale alerts are queued, and the signal log for the current call."""


class WhaleAlerter:
    """The listener; `symbols` are the bot's (the first whose base asset is the transfer's names
    the call), `queued` is called after rows were queued (the sender's wake)."""

    def __init__(
        self,
        config: WhaleAlertsConfig,
        store: WhaleAlertSink,
        symbols: Sequence[str],
        queued: Callable[[], None] = lambda: None,
    ) -> None:
        self._config = config
        self._store = store
        self._symbols = tuple(symbols)
        self._queued = queued

    async def __call__(self, transfer: LargeTransfer) -> None:
        if transfer.amount_usd < self._config.min_usd:
            return
        alert = WhaleAlert(transfer, await self._current_call(transfer.asset))
        rows = await self._store.queue_whale_alert(alert, self._config.max_per_chat_h)
        if rows is None:
            return  # alerted before (mempool then block, or before a restart)
        log.info("whale_alert_queued", txid=transfer.txid, usd=transfer.amount_usd, rows=rows)
        # Pruned as the table grows, so it stays bounded without a task of its own.
        await self._store.prune_whale_alerts(self._config.keep_h * HOUR_S)
        if rows:
            self._queued()

    async def _current_call(self, asset: str) -> CurrentCall | None:
        symbol = next((s for s in self._symbols if base_asset(s) == asset), None)
        stored = None if symbol is None else await self._store.last_signal(symbol)
        if stored is None:
            return None
        signal = stored.signal
        return CurrentCall(
            signal.symbol,
            signal.action,
            signal.confidence,
            signal.as_of,
            calibrated=signal.raw_confidence is not None,
            no_edge=NO_EDGE_NOTE in signal.notes,
        )


def build_whale_message(redactor: Redactor, item: OutboxItem, alert: WhaleAlert) -> OutMessage:
    """An outbox row of a whale alert as a message: the intro and the alert's text."""
    return OutMessage(
        intro=WHALE_INTRO,
        reply=Reply(text=redactor.redact(whale_alert_text(alert))),
        is_group=item.kind == DeliveryKind.CHANNEL,
        extra={"kind": item.kind.value},
    )
