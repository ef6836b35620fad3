"""Instant whale alerts as text: what moved, how much in coins and dollars, which exchange, and
what it means for the current call. Pure; each transport escapes and splits the text as it does
every reply (Telegram HTML, Discord with no mentions allowed, within each platform's limits)."""

from __future__ import annotations

from bot.render.text import call_reading, format_moment
from bot.storage.whales import CurrentCall, WhaleAlert
from intel.models import Action
from intel.sources.onchain.large import LargeTransfer
from intel.textfmt import format_usd

__all__ = ["WHALE_INTRO", "format_coins", "whale_alert_text"]

WHALE_INTRO = "🐋 Whale alert"
PROVIDERS = {"blockchain_com": "Blockchain.com", "whale_alert": "Whale Alert"}


def format_coins(amount: float, asset: str) -> str:
    """Coins to two decimals with thousands separators: '12,345.68 BTC'."""
    return f"{amount:,.2f} {asset}"


def whale_alert_text(alert: WhaleAlert) -> str:
    """Four lines: the transfer, what such a flow usually means, the current call against it,
    and when and where it was seen (the txid shortened)."""
    t = alert.transfer
    exchange = t.exchange or "an exchange"
    where = f"into {exchange}" if t.inflow else f"out of {exchange}"
    kind = "exchange inflow" if t.inflow else "exchange outflow"
    size = f"{format_coins(t.amount_coins, t.asset)} ({format_usd(t.amount_usd)})"
    meaning = (
        "Coins sent to an exchange are usually there to be sold: selling pressure."
        if t.inflow
        else "Coins taken off an exchange are usually held: less supply for sale."
    )
    return "\n".join(
        (
            f"{size} moved {where} — an {kind}.",
            meaning,
            _call_line(t, alert.call),
            f"Seen {format_moment(t.seen_at)} · tx {_short(t.txid)} · "
            f"{PROVIDERS.get(t.provider, t.provider)}",
        )
    )


def _call_line(transfer: LargeTransfer, call: CurrentCall | None) -> str:
    if call is None:
        return f"No {transfer.asset} signal yet: this transfer is not weighed against a call."
    reading = call_reading(
        call.action, call.confidence, calibrated=call.calibrated, no_edge=call.no_edge
    )
    told = f"Current call on {call.symbol}: {call.action} {call.confidence}/100"
    told += (f", {reading}" if reading else "") + f" (as of {format_moment(call.as_of)})"
    leaning = Action.SELL if transfer.inflow else Action.BUY
    if call.action is Action.HOLD:
        return f"{told}; this transfer leans {'bearish' if transfer.inflow else 'bullish'}."
    if call.action is leaning:
        return f"{told}; this transfer is in line with it."
    return f"{told}; this transfer runs against it."


def _short(txid: str) -> str:
    body = txid.rsplit(":", 1)[-1]  # Whale Alert's keys are chain:hash
    return body if len(body) <= 16 else f"{body[:8]}…{body[-6:]}"
