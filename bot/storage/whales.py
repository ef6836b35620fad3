"""Instant whale alerts in the store: the chats that asked for them, each alerted transfer (once
per txid, across restarts) and its outbox rows.

A whale alert is its own row (`whale_alerts`, unique by txid) that outbox rows point to instead
of a signal, so it is delivered like every alert (at least once, retried, rate-limited by the
sender) without touching any chat's signal alert state. `queue_whale_alert` writes the alert and
its rows in one transaction; a chat already sent `max_per_chat_h` whale alerts in the last hour
gets no row for this one (the per-chat rate limit: a burst of transfers must not flood a chat).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from intel.models import Action
from intel.sources.onchain.large import LargeTransfer
from intel.timeutil import from_ms, to_ms

if TYPE_CHECKING:  # bot.storage.base composes `WhaleAlertStore` into `Store`
    from bot.storage.base import DeliveryKind

__all__ = [
    "CurrentCall",
    "WhaleAlert",
    "WhaleAlertChat",
    "WhaleAlertStore",
    "whale_alert_from_json",
    "whale_alert_to_json",
]

HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class CurrentCall:
    """The symbol's latest stored cycle signal when the alert was queued."""

    symbol: str
    action: Action
    confidence: int
    as_of: datetime
    # How to read `confidence` (bot.render.text.call_reading): the signal was calibrated (it
    # had a raw_confidence), and its calibration showed no edge. False in payloads from before.
    calibrated: bool = False
    no_edge: bool = False


@dataclass(frozen=True, slots=True)
class WhaleAlert:
    transfer: LargeTransfer
    call: CurrentCall | None  # None: no signal for the asset yet


@dataclass(frozen=True, slots=True)
class WhaleAlertChat:
    """A chat that asked for whale alerts: a channel (`subscribe whales`) or a DM (`alerts
    whales`, with the asking user's id)."""

    transport: str
    chat_id: str
    kind: DeliveryKind
    user_id: str | None = None


def whale_alert_to_json(alert: WhaleAlert) -> dict[str, Any]:
    t, call = alert.transfer, alert.call
    return {
        "provider": t.provider,
        "txid": t.txid,
        "asset": t.asset,
        "inflow": t.inflow,
        "amount_coins": t.amount_coins,
        "amount_usd": t.amount_usd,
        "exchange": t.exchange,
        "seen_at_ms": to_ms(t.seen_at),
        "call": None
        if call is None
        else {
            "symbol": call.symbol,
            "action": call.action.value,
            "confidence": call.confidence,
            "as_of_ms": to_ms(call.as_of),
            "calibrated": call.calibrated,
            "no_edge": call.no_edge,
        },
    }


def whale_alert_from_json(data: dict[str, Any]) -> WhaleAlert:
    """KeyError / ValueError for a payload this code did not write."""
    transfer = LargeTransfer(
        provider=str(data["provider"]),
        txid=str(data["txid"]),
        asset=str(data["asset"]),
        inflow=bool(data["inflow"]),
        amount_coins=float(data["amount_coins"]),
        amount_usd=float(data["amount_usd"]),
        exchange=None if data["exchange"] is None else str(data["exchange"]),
        seen_at=from_ms(int(data["seen_at_ms"])),
    )
    raw = data["call"]
    call = (
        None
        if raw is None
        else CurrentCall(
            str(raw["symbol"]),
            Action(raw["action"]),
            int(raw["confidence"]),
            from_ms(raw["as_of_ms"]),
            calibrated=bool(raw.get("calibrated", False)),
            no_edge=bool(raw.get("no_edge", False)),
        )
    )
    return WhaleAlert(transfer, call)


class WhaleAlertStore(Protocol):
    """Who gets whale alerts, and the alerts queued for them."""

    async def set_whale_alerts(self, chat: WhaleAlertChat, on: bool) -> bool:
        """Turn whale alerts on (re-enabling a chat a failure disabled) or off for the chat;
        True when that changed something."""
        ...

    async def whale_alerts_on(self, transport: str, chat_id: str) -> bool: ...

    async def queue_whale_alert(self, alert: WhaleAlert, max_per_chat_h: int) -> int | None:
        """Record the alert and an outbox row for each enabled chat under its hourly limit, in
        one write; None, writing nothing, when its txid was alerted before. Returns the rows."""
        ...

    async def load_whale_alert(self, alert_id: int) -> WhaleAlert | None: ...

    async def whale_alert_chats(self) -> dict[DeliveryKind, int]:
        """How many chats of each kind get whale alerts now (a disabled one does not)."""
        ...

    async def prune_whale_alerts(self, keep_s: float) -> int:
        """Delete the alerts queued more than `keep_s` ago whose outbox rows are all finished
        (sent or failed), with those rows, as one write; returns the alerts deleted. An alert
        with a pending row stays until it is delivered, as a chart does (migration 4)."""
        ...
