"""The alert policy over a replayed day: the real desk, every hour of 2025-09-30, BTC and ETH.

That day BTC goes HOLD → SELL → HOLD → BUY and ETH HOLD → SELL → HOLD, with confidence drifting in
between: enough to exercise every rule. The signals are folded through the policy as the bot would
(the alert state and each user's DM state carried from hour to hour), then again through the
SQLite store with a restart halfway.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.alerts.policy import channel_alert, describe_change, plan_deliveries
from bot.config import BotConfig
from bot.storage.base import Delivery, DeliveryKind, DmState, StoredSignal, Subscription, Watcher
from bot.storage.sqlite import SqliteStore
from intel.config import load_config
from intel.desk import build_desk
from intel.models import Action, Signal
from tests.factories import make_signal

BTC, ETH = "BTC/USDT", "ETH/USDT"
DAY = datetime(2025, 9, 30, tzinfo=UTC)
STEP = 10
SUBSCRIPTIONS = (
    Subscription("console", "all-chat", ()),
    Subscription("discord", "btc-chat", (BTC,)),
    Subscription("telegram", "eth-chat", (ETH,)),
    Subscription("telegram", "gone-chat", (), active=False, disabled_reason="blocked"),
)
# user -> (threshold, watched symbols)
USERS = {
    "u50": (50, {BTC, ETH}),
    "u65": (65, {BTC, ETH}),
    "u90": (90, {BTC}),
    "off": (None, {BTC, ETH}),
    "eth-only": (55, {ETH}),
}
TRADES = (Action.BUY, Action.SELL)


def watchers_of(symbol: str) -> list[Watcher]:
    return [
        Watcher("telegram", user, f"dm-{user}", threshold)
        for user, (threshold, symbols) in USERS.items()
        if symbol in symbols
    ]


@pytest.fixture(scope="module")
def day_signals() -> dict[str, list[Signal]]:
    """Every hour of DAY for both symbols, from the real desk over the shipped replay data."""
    desk = build_desk(load_config(env={}, model=BotConfig))

    async def compute() -> dict[str, list[Signal]]:
        hours = [DAY + timedelta(hours=h) for h in range(24)]
        return {s: [(await desk.signal(s, at)).signal for at in hours] for s in (BTC, ETH)}

    return asyncio.run(compute())


@dataclass
class Fold:
    """The policy's memory as the store keeps it: alert state and DM states per symbol."""

    alerted: dict[str, StoredSignal] = field(default_factory=dict)
    dm_states: dict[str, dict[tuple[str, str], DmState]] = field(default_factory=dict)
    next_id: int = 1

    def step(self, signal: Signal) -> tuple[list[Delivery], bool, StoredSignal | None]:
        previous = self.alerted.get(signal.symbol)
        states = self.dm_states.setdefault(signal.symbol, {})
        deliveries, alerted = plan_deliveries(
            signal, previous, SUBSCRIPTIONS, watchers_of(signal.symbol), states, STEP
        )
        signal_id, self.next_id = self.next_id, self.next_id + 1
        if alerted:
            self.alerted[signal.symbol] = StoredSignal(signal_id, signal, None, True)
        for d in deliveries:
            if d.user_id is not None:
                states[("telegram", d.user_id)] = DmState(
                    signal.action, signal.confidence, signal_id
                )
        return deliveries, alerted, previous


def channel(deliveries: list[Delivery]) -> list[Delivery]:
    return [d for d in deliveries if d.kind is DeliveryKind.CHANNEL]


def dms(deliveries: list[Delivery]) -> list[Delivery]:
    return [d for d in deliveries if d.kind is DeliveryKind.DM]


def test_the_replayed_day_has_changes_to_announce(day_signals):
    for symbol in (BTC, ETH):
        actions = {s.action for s in day_signals[symbol]}
        assert {Action.HOLD, Action.SELL} <= actions, symbol


@pytest.mark.parametrize("symbol", [BTC, ETH])
def test_channel_alerts_follow_changes_only(day_signals, symbol):
    fold = Fold()
    alerts = 0
    for signal in day_signals[symbol]:
        deliveries, alerted, previous = fold.step(signal)
        intro = channel_alert(previous.signal if previous else None, signal, STEP)
        if previous is None:
            assert alerted  # the first signal becomes the alert state …
            assert (intro is not None) == (signal.action in TRADES)  # … alerting on BUY/SELL only
        elif signal.action != previous.signal.action:
            assert intro == f"{symbol}: {previous.signal.action.value} → {signal.action.value}"
        elif abs(signal.confidence - previous.signal.confidence) < STEP:
            assert intro is None
            assert not alerted
            assert not channel(deliveries)
            continue
        else:
            assert intro is not None
            assert "confidence" in intro
        if intro is None:
            continue
        alerts += 1
        expected = {
            ("console", "all-chat"),
            ("discord", "btc-chat") if symbol == BTC else ("telegram", "eth-chat"),
        }
        assert {(d.transport, d.chat_id) for d in channel(deliveries)} == expected
        assert all(d.intro == intro for d in channel(deliveries))
    assert 2 <= alerts < len(day_signals[symbol]) // 2  # news, not every cycle


@pytest.mark.parametrize("symbol", [BTC, ETH])
def test_dms_only_at_threshold_and_once_per_change(day_signals, symbol):
    fold = Fold()
    last_dm: dict[str, Signal] = {}
    for signal in day_signals[symbol]:
        previous_state = fold.alerted.get(symbol)
        deliveries, _alerted, _previous = fold.step(signal)
        users = [d.user_id for d in dms(deliveries)]
        assert len(users) == len(set(users))  # at most one DM per user per signal
        for d in dms(deliveries):
            threshold, watched = USERS[d.user_id]
            assert signal.action in TRADES
            assert symbol in watched
            assert threshold is not None
            assert signal.confidence >= threshold
            assert d.chat_id == f"dm-{d.user_id}"
            assert f"you watch {symbol} and your alert threshold is {threshold}" in d.intro
            before = last_dm.get(d.user_id)
            if before is not None:  # a repeat only after a real change
                moved = abs(before.confidence - signal.confidence) >= STEP
                came_back = (
                    previous_state is not None and previous_state.signal.action != before.action
                )
                assert before.action != signal.action or moved or came_back
            last_dm[d.user_id] = signal
    assert "off" not in last_dm
    assert "u90" not in last_dm
    assert last_dm, "the replayed day should DM someone"


def test_dm_repeats_after_the_signal_went_away_and_came_back():
    fold = Fold()
    seen = [
        fold.step(make_signal(BTC, action, conf))[0]
        for action, conf in (
            (Action.BUY, 70),
            (Action.BUY, 72),
            (Action.HOLD, 40),
            (Action.BUY, 70),
        )
    ]
    assert [len(dms(d)) for d in seen] == [2, 0, 0, 2]  # u50 and u65 each time
    assert "HOLD → BUY" in dms(seen[3])[0].intro


def test_describe_change_wording():
    now = make_signal(BTC, Action.BUY, 74)
    assert describe_change(Action.BUY, 62, now, STEP) == "confidence up 12 to 74"
    assert describe_change(Action.BUY, 80, now, STEP) is None
    assert describe_change(Action.HOLD, 74, now, STEP) == "HOLD → BUY"
    assert channel_alert(None, make_signal(BTC, Action.HOLD, 90), STEP) is None


async def record_hours(store: SqliteStore, signals: list[Signal]) -> list[Delivery]:
    """What the cycle does per symbol: plan from the stored state, record in one transaction."""
    sent: list[Delivery] = []
    for signal in signals:
        deliveries, alerted = plan_deliveries(
            signal,
            await store.last_alerted(signal.symbol),
            await store.subscriptions_for(signal.symbol),
            await store.watchers(signal.symbol),
            await store.dm_states(signal.symbol),
            STEP,
        )
        await store.record_signal(signal, None, deliveries, alerted)
        sent.extend(deliveries)
    return sent


async def open_store(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    await store.open()
    for sub in SUBSCRIPTIONS:
        await store.subscribe(sub.transport, sub.chat_id, sub.symbols)
        if not sub.active:
            await store.disable_chat(sub.transport, sub.chat_id, "blocked")
    for user, (threshold, symbols) in USERS.items():
        for symbol in sorted(symbols):
            await store.watch_add("telegram", user, f"dm-{user}", symbol)
        await store.set_threshold("telegram", user, f"dm-{user}", threshold)
    return store


@pytest.mark.parametrize("symbol", [BTC, ETH])
async def test_restart_neither_repeats_nor_drops(tmp_path, day_signals, symbol):
    signals = day_signals[symbol]
    fold = Fold()
    expected = [(d.transport, d.chat_id, d.intro) for s in signals for d in fold.step(s)[0]]

    store = await open_store(tmp_path / "bot.db")
    first = await record_hours(store, signals[:12])
    await store.close()  # the restart: only what the store kept survives
    store = await open_store(tmp_path / "bot.db")
    repeated = await record_hours(store, [signals[11]])  # the last hour again, as after a crash
    rest = await record_hours(store, signals[12:])
    await store.close()

    assert repeated == []
    assert sorted((d.transport, d.chat_id, d.intro) for d in first + rest) == sorted(expected)
