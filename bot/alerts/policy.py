"""The alert policy: pure decisions on who hears of a symbol's steady call, and why.

Only the steady call speaks (`bot.alerts.calls`: a call that lasted the dwell), and only in a
cycle whose signal shows it, so the message and its attached signal agree. Each chat and each user
has its own memory of what it was last told about the symbol (`DmState`):

- a chat told nothing yet gets the current call stated ("SELL call at confidence 62/100", with what
  the number means under calibration: `bot.render.text.confidence_phrase`), never a
  delta from a state it never saw; a steady HOLD is not news to a chat told nothing;
- a chat told another action gets the change ("SELL → HOLD"); a chat told the same BUY/SELL gets
  a confidence move of at least `alerts.confidence_step`; a HOLD's confidence moving is not news;
- a watcher gets one DM per call change, once the call's confidence reaches their threshold, and
  one DM when a BUY/SELL they were told about ends or turns, whatever the confidence, so nobody
  is left holding a stale call. `alerts off` (no threshold) stops both.

An alert that waited for the dwell says when its call was first seen. The store writes each
recipient's new memory in the same transaction as the signal, so a restart neither repeats nor
drops one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.render.text import confidence_phrase
from bot.storage.base import (
    Call,
    CallState,
    Delivery,
    DeliveryKind,
    DmState,
    Subscription,
    Watcher,
)
from intel.models import Action, Signal

__all__ = ["channel_change", "plan_deliveries"]

TRADE_ACTIONS = frozenset({Action.BUY, Action.SELL})
Key = tuple[str, str]  # (transport, chat_id) or (transport, user_id)


def plan_deliveries(
    current: Signal,
    state: CallState,
    subscriptions: Sequence[Subscription],
    chat_states: Mapping[Key, DmState],
    watchers: Sequence[Watcher],
    dm_states: Mapping[Key, DmState],
    step: int,
) -> list[Delivery]:
    """Every message `current` causes, given the symbol's call state after it."""
    steady = state.steady
    if steady is None or steady.action != current.action:
        return []  # no steady call yet, or this cycle's signal does not show it
    deliveries = _channel_deliveries(current, steady, subscriptions, chat_states, step)
    deliveries.extend(_dm_deliveries(current, steady, watchers, dm_states))
    return deliveries


def channel_change(told: DmState | None, current: Signal, steady: Call, step: int) -> str | None:
    """What a chat told `told` hears now that `steady` shows in `current`, or None."""
    if told is None:
        if current.action not in TRADE_ACTIONS:
            return None
        return f"{current.action.value} call at {confidence_phrase(current)}{_waited(steady)}"
    if told.action != current.action:
        change = f"{told.action.value} → {current.action.value}"
        return f"{change} at {confidence_phrase(current)}{_waited(steady)}"
    if current.action not in TRADE_ACTIONS:
        return None
    steady_delta = steady.confidence - told.confidence
    delta = current.confidence - told.confidence
    if abs(steady_delta) < step or abs(delta) < step or (delta > 0) != (steady_delta > 0):
        return None
    direction = "up" if delta > 0 else "down"
    now = confidence_phrase(current).removeprefix("confidence ")
    return f"{current.action.value} confidence {direction} {abs(delta)} to {now}"


def _waited(steady: Call) -> str:
    """When the call was first computed: an announced call waited for the dwell (or, to a chat
    just subscribed, has stood for a while)."""
    return f" · call first seen {steady.first_seen:%Y-%m-%d %H:%M} UTC"


def _channel_deliveries(
    current: Signal,
    steady: Call,
    subscriptions: Sequence[Subscription],
    chat_states: Mapping[Key, DmState],
    step: int,
) -> list[Delivery]:
    seen: set[Key] = set()
    deliveries = []
    for sub in subscriptions:
        key = (sub.transport, sub.chat_id)
        if key in seen or not _covers(sub, current.symbol):
            continue
        seen.add(key)
        change = channel_change(chat_states.get(key), current, steady, step)
        if change is not None:
            intro = f"{current.symbol}: {change}"
            deliveries.append(Delivery(sub.transport, sub.chat_id, DeliveryKind.CHANNEL, intro))
    return deliveries


def _covers(subscription: Subscription, symbol: str) -> bool:
    return subscription.active and (not subscription.symbols or symbol in subscription.symbols)


def _dm_deliveries(
    current: Signal, steady: Call, watchers: Sequence[Watcher], dm_states: Mapping[Key, DmState]
) -> list[Delivery]:
    seen: set[Key] = set()
    deliveries = []
    for watcher in watchers:
        key = (watcher.transport, watcher.user_id)
        if key in seen or watcher.threshold is None:
            continue
        seen.add(key)
        change = _dm_change(current, dm_states.get(key), watcher.threshold)
        if change is None:
            continue
        intro = f"{current.symbol}: {change}{_waited(steady)}"
        deliveries.append(
            Delivery(watcher.transport, watcher.dm_chat_id, DeliveryKind.DM, intro, watcher.user_id)
        )
    return deliveries


def _dm_change(current: Signal, told: DmState | None, threshold: int) -> str | None:
    """Why this user hears of `current` now, or None when they already did (or need not)."""
    if told is not None and told.action == current.action:
        return None  # once per call change
    reached = current.action in TRADE_ACTIONS and current.confidence >= threshold
    told_call = told.action if told is not None and told.action in TRADE_ACTIONS else None
    if reached:
        before = f"{told_call.value} → " if told_call is not None else ""
        return (
            f"{before}{current.action.value} call reached your alert threshold {threshold}/100:"
            f" {confidence_phrase(current)}"
        )
    if told_call is not None:
        return (
            f"the {told_call.value} call you were told about has ended: now"
            f" {current.action.value} at {confidence_phrase(current)}"
        )
    return None
