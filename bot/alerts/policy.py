"""The alert policy: pure decisions on what changed, who hears of it, and why.

Channel alerts follow the symbol's *alert state*: the last signal that alerted
(`Store.last_alerted`). A new signal alerts when its action differs from that state, or when its
confidence moved by at least `step` since; small drifts accumulate against the state instead of
resetting it every cycle, so a slow move is announced once it adds up, and a jitter never is.

The first signal ever for a symbol (no alert state yet) alerts only when it is BUY or SELL: a HOLD
says "nothing to do", which is what a quiet channel already says. It still becomes the state
(`alerted` is True), so that later confidence moves are measured from it.

DMs go to watchers of the symbol whose threshold the confidence reaches, for BUY and SELL only, once
per signal change per user: each user's `DmState` (what they were last DM'd) must differ by action
or by at least `step` of confidence, or the symbol's alert state must have moved elsewhere since
that DM (BUY → HOLD → BUY tells them again). The store remembers `DmState`s in the same transaction
as the signal, so a restart neither repeats nor drops a DM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.storage.base import Delivery, DeliveryKind, DmState, StoredSignal, Subscription, Watcher
from intel.models import Action, Signal

__all__ = ["channel_alert", "describe_change", "plan_deliveries"]

TRADE_ACTIONS = frozenset({Action.BUY, Action.SELL})


def describe_change(
    previous_action: Action | None, previous_confidence: int | None, current: Signal, step: int
) -> str | None:
    """What changed from a remembered (action, confidence) to `current`, or None below `step`."""
    if previous_action is None or previous_confidence is None:
        return f"new {current.action.value} signal at confidence {current.confidence}"
    if previous_action != current.action:
        return f"{previous_action.value} → {current.action.value}"
    delta = current.confidence - previous_confidence
    if abs(delta) < step:
        return None
    direction = "up" if delta > 0 else "down"
    return f"confidence {direction} {abs(delta)} to {current.confidence}"


def channel_alert(previous: Signal | None, current: Signal, step: int) -> str | None:
    """The channel intro ("BTC/USDT: HOLD → BUY") when `current` is news, else None.

    `previous` is the symbol's alert state, not merely the last computed signal.
    """
    if previous is None:
        if current.action not in TRADE_ACTIONS:
            return None
        change = describe_change(None, None, current, step)
    else:
        change = describe_change(previous.action, previous.confidence, current, step)
    return None if change is None else f"{current.symbol}: {change}"


def plan_deliveries(
    current: Signal,
    previous_alerted: StoredSignal | None,
    subscriptions: Sequence[Subscription],
    watchers: Sequence[Watcher],
    dm_states: Mapping[tuple[str, str], DmState],
    step: int,
) -> tuple[list[Delivery], bool]:
    """Every message `current` causes, and whether it becomes the symbol's alert state.

    `dm_states` is keyed by (transport, user_id), as `Store.dm_states` returns it.
    """
    previous = previous_alerted.signal if previous_alerted is not None else None
    intro = channel_alert(previous, current, step)
    alerted = intro is not None or previous_alerted is None
    deliveries = _channel_deliveries(current.symbol, intro, subscriptions) if intro else []
    deliveries.extend(_dm_deliveries(current, previous_alerted, watchers, dm_states, step))
    return deliveries, alerted


def _covers(subscription: Subscription, symbol: str) -> bool:
    return subscription.active and (not subscription.symbols or symbol in subscription.symbols)


def _channel_deliveries(
    symbol: str, intro: str, subscriptions: Sequence[Subscription]
) -> list[Delivery]:
    seen: set[tuple[str, str]] = set()
    deliveries = []
    for sub in subscriptions:
        key = (sub.transport, sub.chat_id)
        if key in seen or not _covers(sub, symbol):
            continue
        seen.add(key)
        deliveries.append(Delivery(sub.transport, sub.chat_id, DeliveryKind.CHANNEL, intro))
    return deliveries


def _dm_deliveries(
    current: Signal,
    previous_alerted: StoredSignal | None,
    watchers: Sequence[Watcher],
    dm_states: Mapping[tuple[str, str], DmState],
    step: int,
) -> list[Delivery]:
    if current.action not in TRADE_ACTIONS:
        return []
    seen: set[tuple[str, str]] = set()
    deliveries = []
    for watcher in watchers:
        key = (watcher.transport, watcher.user_id)
        if key in seen or watcher.threshold is None or current.confidence < watcher.threshold:
            continue
        seen.add(key)
        change = _dm_change(current, previous_alerted, dm_states.get(key), step)
        if change is None:
            continue
        intro = (
            f"{current.symbol}: {change} · you watch {current.symbol} and your alert "
            f"threshold is {watcher.threshold}"
        )
        deliveries.append(
            Delivery(
                watcher.transport,
                watcher.dm_chat_id,
                DeliveryKind.DM,
                intro,
                user_id=watcher.user_id,
            )
        )
    return deliveries


def _dm_change(
    current: Signal, previous_alerted: StoredSignal | None, state: DmState | None, step: int
) -> str | None:
    """Why this user hears of `current` now, or None when they already did."""
    if state is None:
        return describe_change(None, None, current, step)
    change = describe_change(state.action, state.confidence, current, step)
    if change is not None:
        return change
    if previous_alerted is None or previous_alerted.id <= state.signal_id:
        return None
    # The alert state moved elsewhere after this user's DM (BUY → HOLD → BUY): news again.
    moved_from = previous_alerted.signal.action
    return None if moved_from == state.action else f"{moved_from.value} → {current.action.value}"
