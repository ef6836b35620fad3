"""The alert policy keeps alerts steady when LLM reruns differ: the same market read each hour,
an LLM answering differently each time (confidence anywhere in its band, a step down to HOLD now
and then), through the real cycle and store. People hear of the call once, as with the rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.config import BotConfig
from bot.scheduling.cycle import SignalCycle
from bot.scheduling.manual_clock import ManualClock
from bot.storage.memory import MemoryStore
from intel.config import CoordinatorConfig, LlmBudgetConfig, LlmConfig, load_config
from intel.coordinator.base import Coordinator
from intel.coordinator.groq_client import GroqChat
from intel.coordinator.llm import LlmCoordinator
from intel.coordinator.rules import RulesCoordinator
from intel.models import Action, MarketSnapshot, Signal
from intel.pipeline import SignalResult
from intel.sources.fakes.groq import FakeAnswer, FakeGroq, proposal_json
from tests.factories import make_candles, make_reports

START = datetime(2025, 10, 7, 0, tzinfo=UTC)
CONFIG = load_config(env={}, model=BotConfig)  # dwell 3 cycles, step 10
RULES = RulesCoordinator(CoordinatorConfig(call_confidence_max=70, orderbook_confirm_bonus=0))
REPORTS, CANDLES = make_reports(Action.BUY), make_candles()
# Reruns on the same figures (rules: BUY at 70): every answer within the bounds, none alike.
RERUNS = [("BUY", 68), ("BUY", 56), ("BUY", 65), ("HOLD", 30), ("BUY", 69), ("BUY", 55)]
RERUNS += [("BUY", 62), ("HOLD", 40), ("BUY", 58), ("BUY", 70), ("BUY", 57), ("BUY", 66)]


class CoordinatorDesk:
    """Every hour the same reports, decided afresh by `coordinator` at the market moment."""

    symbols = ("BTC/USDT",)

    def __init__(self, clock: ManualClock, coordinator: Coordinator) -> None:
        self.clock = clock
        self.coordinator = coordinator

    def now(self) -> datetime:
        return self.clock.now()

    async def signal(self, symbol: str, at: datetime | None = None) -> SignalResult:
        moment = at or self.now()
        signal = await self.coordinator.decide(symbol, moment, REPORTS, CANDLES, moment)
        return SignalResult(signal, None)  # type: ignore[arg-type]  # no chart drawn


async def no_chart(signal: Signal, snapshot: MarketSnapshot) -> bytes | None:
    return None


async def channel_messages(coordinator: Coordinator, hours: int) -> list[tuple[int, str]]:
    clock = ManualClock(START)
    store = MemoryStore(clock=clock)
    await store.open()
    try:
        await store.subscribe("console", "chan", ())
        desk = CoordinatorDesk(clock, coordinator)
        cycle = SignalCycle(desk, store, CONFIG, no_chart, lambda: None, clock)  # type: ignore[arg-type]
        messages = []
        for hour in range(hours):
            await cycle.run_once()
            for item in await store.pending_deliveries(100):
                messages.append((hour, item.intro))
                await store.mark_sent(item.id)
            clock.advance(3600)
        return messages
    finally:
        await store.close()


@pytest.fixture
async def varying_llm() -> AsyncIterator[tuple[FakeGroq, LlmCoordinator]]:
    async with FakeGroq() as fake:
        fake.limits["tokens"] = 100_000
        fake.script.extend(
            FakeAnswer(proposal_json(action=a, confidence=c, position_size="conservative"))
            for a, c in RERUNS
        )
        # The market clock runs 12 hours in milliseconds: a minute's budget must hold them all.
        budget = LlmBudgetConfig(requests_per_minute=100, tokens_per_minute=100_000)
        config = LlmConfig(base_url=fake.base_url, cache_ttl_s=0, budget=budget)
        coordinator = LlmCoordinator(config, RULES, GroqChat(config, "gsk_test"))
        await coordinator.start()
        yield fake, coordinator
        await coordinator.close()


async def test_llm_reruns_that_differ_announce_the_call_once(
    varying_llm: tuple[FakeGroq, LlmCoordinator],
) -> None:
    fake, coordinator = varying_llm
    messages = await channel_messages(coordinator, len(RERUNS))
    assert len(fake.requests) == len(RERUNS)  # every hour the LLM answered afresh
    # BUY 68, 56, 65: steady after three cycles, announced at the third one's confidence. The
    # HOLDs never last the dwell; no confidence stays 10 away from 65 for three cycles.
    assert messages == [
        (2, "BTC/USDT: BUY call at confidence 65/100 · call first seen 2025-10-07 00:00 UTC")
    ]


async def test_the_rules_alone_announce_the_same_call_once() -> None:
    messages = await channel_messages(RULES, len(RERUNS))
    first = START.strftime("%Y-%m-%d %H:%M UTC")
    assert messages == [(2, f"BTC/USDT: BUY call at confidence 70/100 · call first seen {first}")]
    assert timedelta(hours=2) == timedelta(hours=messages[0][0])
