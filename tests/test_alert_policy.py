"""The alert policy through the real cycle: dwell and hysteresis, HOLD confidence, per-chat state,
DMs on reach and on end, no repeats across a restart; and the demo window's alert budget.

A scripted desk hands the cycle chosen signals hour by hour (`STEPS`), so each rule is tested on
the sequence that provokes it; expectations are the messages a person should get, written out.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

from bot.config import BotConfig
from bot.scheduling.cycle import SignalCycle
from bot.scheduling.manual_clock import ManualClock
from bot.storage.base import Store
from bot.storage.memory import MemoryStore
from bot.storage.sqlite import SqliteStore
from intel.config import load_config
from intel.desk import build_desk
from intel.models import Action, MarketSnapshot, Signal
from intel.pipeline import SignalResult
from intel.serialize import signal_to_json
from tests.factories import make_signal

BTC, ETH = "BTC/USDT", "ETH/USDT"
START = datetime(2025, 10, 7, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
S, H, B = Action.SELL, Action.HOLD, Action.BUY
CONFIG = load_config(env={}, model=BotConfig)  # dwell 3 cycles, hold 6 h, step 10


class ScriptedDesk:
    """Hands the cycle the next scripted (action, confidence) for BTC at the market moment."""

    symbols = (BTC,)

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.call: tuple[Action, int] = (H, 50)

    def now(self) -> datetime:
        return self.clock.now()

    async def signal(self, symbol: str, at: datetime | None = None) -> SignalResult:
        action, confidence = self.call
        signal = make_signal(symbol, action, confidence, as_of=at or self.now())
        return SignalResult(signal, None)  # type: ignore[arg-type]  # the chart is not drawn


async def no_chart(signal: Signal, snapshot: MarketSnapshot) -> bytes | None:
    return None


async def run(
    store: Store, clock: ManualClock, calls: Iterable[tuple[Action, int]]
) -> list[tuple[int, str, str]]:
    """One hourly cycle per call; every message queued, as (hour, chat, intro), hour from START."""
    desk = ScriptedDesk(clock)
    cycle = SignalCycle(desk, store, CONFIG, no_chart, lambda: None, clock)  # type: ignore[arg-type]
    messages = []
    for desk.call in calls:
        await cycle.run_once()
        hour = int((clock.now() - START) / HOUR)
        for item in await store.pending_deliveries(100):
            messages.append((hour, item.chat_id, item.intro))
            await store.mark_sent(item.id)
        clock.advance(3600)
    return messages


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


async def subscribe_channel(store: Store, chat_id: str = "chan") -> None:
    await store.subscribe("console", chat_id, ())


def channel_only(messages: list[tuple[int, str, str]]) -> list[tuple[int, str]]:
    return [(hour, intro) for hour, chat, intro in messages if not chat.startswith("dm-")]


async def test_a_call_is_announced_after_the_dwell_and_says_when_it_was_first_seen(store, clock):
    await subscribe_channel(store)
    messages = await run(store, clock, [(S, 62), (S, 61), (S, 64), (S, 63)])
    assert channel_only(messages) == [
        (2, "BTC/USDT: SELL call at confidence 64/100 · call first seen 2025-10-07 00:00 UTC")
    ]


async def test_a_call_that_flips_back_within_the_dwell_is_never_announced(store, clock):
    await subscribe_channel(store)
    hovering = [(S, 58), (H, 40), (S, 57), (S, 57), (H, 44), (S, 59), (H, 45)] * 3
    assert await run(store, clock, hovering) == []


async def test_an_announced_call_stands_its_minimum_hold(store, clock):
    await subscribe_channel(store)
    calls = [(S, 62)] * 3 + [(H, 40)] * 8  # HOLD steady after 3 cycles, at hour 5; held to 8
    messages = channel_only(await run(store, clock, calls))
    assert [hour for hour, _ in messages] == [2, 8]  # 6 market hours after the SELL was
    assert messages[1][1].startswith("BTC/USDT: SELL → HOLD at confidence 40/100")
    assert "call first seen 2025-10-07 03:00 UTC" in messages[1][1]


async def test_a_hold_confidence_moving_is_not_news(store, clock):
    await subscribe_channel(store)
    assert await run(store, clock, [(H, 40)] * 4 + [(H, 62)] * 4) == []  # nor a first HOLD
    calls = [(S, 62)] * 3 + [(H, 40)] * 6 + [(H, 62)] * 4 + [(H, 30)] * 4
    messages = channel_only(await run(store, clock, calls))
    assert [intro.split(" at ")[0] for _, intro in messages] == [
        "BTC/USDT: SELL call",
        "BTC/USDT: SELL → HOLD",
    ]


async def test_a_trade_confidence_move_is_news_once_it_holds(store, clock):
    await subscribe_channel(store)
    calls = [(S, 60)] * 3 + [(S, 75), (S, 60), (S, 76)] + [(S, 75)] * 3 + [(S, 74)] * 3
    assert channel_only(await run(store, clock, calls)) == [
        (2, "BTC/USDT: SELL call at confidence 60/100 · call first seen 2025-10-07 00:00 UTC"),
        (7, "BTC/USDT: SELL confidence up 15 to 75/100"),  # the jitter at hours 3-4 was not
    ]


async def test_the_first_alert_a_chat_gets_states_the_call_and_state_is_per_chat(store, clock):
    await subscribe_channel(store, "early")
    first = await run(store, clock, [(S, 51)] * 3)
    await subscribe_channel(store, "late")  # joins while the SELL stands
    later = await run(store, clock, [(S, 38)] * 4 + [(H, 30)] * 3)
    assert [(hour, chat) for hour, chat, _ in first] == [(2, "early")]
    assert [(hour, chat, intro) for hour, chat, intro in later if chat == "late"] == [
        (
            3,
            "late",
            "BTC/USDT: SELL call at confidence 38/100 · call first seen 2025-10-07 00:00 UTC",
        ),
        (
            9,
            "late",
            "BTC/USDT: SELL → HOLD at confidence 30/100 · call first seen 2025-10-07 07:00 UTC",
        ),
    ]
    assert [(hour, intro) for hour, chat, intro in later if chat == "early"] == [
        (5, "BTC/USDT: SELL confidence down 13 to 38/100"),  # told 51, so a delta makes sense here
        (9, "BTC/USDT: SELL → HOLD at confidence 30/100 · call first seen 2025-10-07 07:00 UTC"),
    ]


async def watch(store: Store, user: str, threshold: int | None) -> None:
    await store.watch_add("console", user, f"dm-{user}", BTC)
    await store.set_threshold("console", user, f"dm-{user}", threshold)


def dms_to(messages: list[tuple[int, str, str]], user: str) -> list[tuple[int, str]]:
    return [(hour, intro) for hour, chat, intro in messages if chat == f"dm-{user}"]


async def test_a_dm_once_per_call_when_it_reaches_the_threshold(store, clock):
    await watch(store, "u70", 70)
    await watch(store, "off", None)
    calls = [(S, 60)] * 3 + [(S, 65), (S, 72), (S, 85), (S, 86), (S, 88), (S, 72)]
    messages = await run(store, clock, calls)
    assert dms_to(messages, "u70") == [
        (
            4,
            "BTC/USDT: SELL call reached your alert threshold 70/100: confidence 72/100"
            " · call first seen 2025-10-07 00:00 UTC",
        )
    ]
    assert dms_to(messages, "off") == []


async def test_one_dm_when_a_call_the_user_was_told_about_ends(store, clock):
    await watch(store, "u50", 50)
    await watch(store, "u90", 90)  # never told about the SELL: its end is no news to them
    calls = [(S, 62)] * 3 + [(H, 40)] * 10 + [(S, 55)] * 3
    messages = await run(store, clock, calls)
    assert [hour for hour, _ in dms_to(messages, "u50")] == [2, 8, 15]
    assert dms_to(messages, "u50")[1][1] == (
        "BTC/USDT: the SELL call you were told about has ended: now HOLD at confidence 40/100"
        " · call first seen 2025-10-07 03:00 UTC"
    )
    assert dms_to(messages, "u90") == []


async def test_a_restart_neither_repeats_nor_drops_an_alert(tmp_path: Path) -> None:
    calls = [(S, 62)] * 3 + [(S, 75)] * 3 + [(H, 40)] * 8 + [(B, 80)] * 3
    expected_clock, restarted_clock = ManualClock(START), ManualClock(START)
    memory = MemoryStore(clock=expected_clock)
    await memory.open()
    await subscribe_channel(memory)
    await watch(memory, "u50", 50)
    expected = await run(memory, expected_clock, calls)

    path = tmp_path / "bot.db"
    got = []
    for part in (calls[:7], calls[7:]):  # the bot stops after 7 hours, and starts again
        store = SqliteStore(path, clock=restarted_clock)
        await store.open()
        await subscribe_channel(store)
        await watch(store, "u50", 50)
        got += await run(store, restarted_clock, part)
        await store.close()
    assert len(expected) == 7  # SELL, confidence, HOLD, BUY to the channel; 3 DMs
    assert got == expected


async def test_the_cycle_stores_the_desks_signal_unchanged(store, clock):
    """Steadiness lives in the alert policy: `signal --at T` equals what the bot computed."""
    await subscribe_channel(store)
    moment = datetime(2025, 10, 7, 5, tzinfo=UTC)  # BTC hovers at the whale threshold here
    clock_at = ManualClock(moment)
    desk = build_desk(CONFIG, market_clock=clock_at)
    cycle = SignalCycle(desk, store, CONFIG, no_chart, lambda: None, clock_at)
    for _ in range(6):
        await cycle.run_once()
        clock_at.advance(3600)
    stored = [s.signal for s in await store.signals(BTC)]
    fresh = [(await desk.signal(BTC, s.as_of)).signal for s in stored]
    assert len(stored) == 6
    assert [signal_to_json(s) | {"created_at": None} for s in stored] == [
        signal_to_json(s) | {"created_at": None} for s in fresh
    ]


def load_benchmark() -> ModuleType:
    path = Path(__file__).parent.parent / "benchmarks" / "alerts.py"
    spec = importlib.util.spec_from_file_location("alerts_benchmark", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


async def test_the_demo_window_meets_the_alert_budget() -> None:
    """benchmarks/alerts.py's replay: <= 2 channel alerts per symbol per day, no flip back within
    6 market hours, no HOLD-confidence alert, and every symbol alerted at least once."""
    bench = load_benchmark()
    received = await bench.replay(CONFIG, MemoryStore())
    days = (CONFIG.demo.until - CONFIG.data.default_at).total_seconds() / 86400
    channel = [r for r in received if r.chat_id == bench.CHANNEL]
    for symbol in CONFIG.symbols:
        mine = [r for r in channel if r.symbol == symbol]
        assert 1 <= len(mine) <= 2 * days, symbol
        assert bench.flips_back(mine) == 0
        assert bench.hold_confidence(mine) == 0
