"""The outbox sender against the shared fakes (MemoryTransport, MemoryStore, ManualClock): limits,
429s, failures, absent transports, stop."""

from __future__ import annotations

import asyncio
import bisect
import itertools
import random
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta

import pytest
from structlog.testing import capture_logs

from bot.commands.base import Reply
from bot.config import TransportLimits
from bot.delivery import ChatPacer, OutboxSender, window_limiter
from bot.scheduling.manual_clock import ManualClock
from bot.storage.base import Delivery, DeliveryKind, OutboxItem, StoredSignal
from bot.storage.memory import MemoryStore
from bot.transports.base import OutMessage, RateLimitedError, TransientDeliveryError
from bot.transports.memory import MemoryTransport, PlatformLimits
from tests.factories import make_signal

FAST = TransportLimits(overall_per_s=1000, per_chat_per_s=1000, per_group_per_min=60000)
TOLERANCE_S = 0.002  # a platform measures arrival times; ours are a few microseconds apart


def platform(limits: TransportLimits, **options: float) -> PlatformLimits:
    """The same limits, enforced by the fake platform with a 429 when exceeded."""
    return PlatformLimits(
        overall_per_s=limits.overall_per_s,
        per_chat_per_s=limits.per_chat_per_s,
        per_group_per_min=limits.per_group_per_min,
        tolerance_s=TOLERANCE_S,
        **options,
    )


def build_message(item: OutboxItem, stored: StoredSignal) -> OutMessage:
    reply = Reply(text=stored.signal.thesis, signal=stored.signal)
    return OutMessage(intro=item.intro, reply=reply, is_group=item.kind is DeliveryKind.CHANNEL)


async def eventually(predicate: Callable[[], bool], timeout_s: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.005)


@pytest.fixture
async def store(clock: ManualClock) -> AsyncIterator[MemoryStore]:
    """The shared fixture's store, with a 30 s backoff base."""
    opened = MemoryStore(backoff_base_s=30.0, clock=clock)
    await opened.open()
    yield opened
    await opened.close()


def sender_for(
    store: MemoryStore,
    *transports: MemoryTransport,
    concurrency: int = 4,
    limits: TransportLimits = FAST,
    batch_size: int = 100,
) -> OutboxSender:
    return OutboxSender(
        store,
        {t.name: t for t in transports},
        {t.name: limits for t in transports},
        concurrency=concurrency,
        build_message=build_message,
        poll_interval_s=0.05,
        batch_size=batch_size,
    )


async def fan_out(
    store: MemoryStore,
    chats: Sequence[str],
    *,
    transport: str = "telegram",
    kind: DeliveryKind = DeliveryKind.DM,
) -> int:
    deliveries = [
        Delivery(transport, chat, kind, f"to {chat}", chat if kind is DeliveryKind.DM else None)
        for chat in chats
    ]
    return await store.record_signal(make_signal(), None, deliveries, alerted=True)


async def test_drain_sends_every_row_once_and_marks_it_sent(store: MemoryStore) -> None:
    transport = MemoryTransport("telegram")
    chats = [f"u{i}" for i in range(25)]
    await fan_out(store, chats)
    sender = sender_for(store, transport)
    assert await sender.drain_once() == 25
    assert sorted(transport.chats()) == sorted(chats)
    assert transport.accepted[0].message.reply.signal == make_signal()
    assert transport.accepted[0].message.intro == "to u0"
    assert await store.outbox_counts() == {"pending": 0, "sent": 25, "failed": 0}
    assert await sender.drain_once() == 0


async def test_concurrency_bound_is_respected(store: MemoryStore) -> None:
    transport = MemoryTransport("telegram", latency_s=0.02)
    await fan_out(store, [f"u{i}" for i in range(30)])
    assert await sender_for(store, transport, concurrency=3).drain_once() == 30
    assert transport.max_in_flight == 3


async def test_overall_and_per_chat_limits_are_honoured(store: MemoryStore) -> None:
    limits = TransportLimits(overall_per_s=40, per_chat_per_s=4, per_group_per_min=60000)
    transport = MemoryTransport("telegram", limits=platform(limits))
    for _ in range(3):  # three alerts to one chat: the per-chat limit binds
        await fan_out(store, ["busy"])
    await fan_out(store, [f"u{i}" for i in range(24)])
    started = asyncio.get_running_loop().time()
    assert await sender_for(store, transport, concurrency=8, limits=limits).drain_once() == 27
    elapsed = asyncio.get_running_loop().time() - started
    assert transport.rejected == 0
    assert 26 / 40 - 0.02 <= elapsed < 1.5  # paced at 40 per second (upper bound: slow CI)
    busy = [sent.at_s for sent in transport.accepted if sent.chat_id == "busy"]
    assert min(b - a for a, b in itertools.pairwise(busy)) >= 0.25 - TOLERANCE_S


async def test_a_chat_waiting_for_its_turn_does_not_hold_up_the_others(
    store: MemoryStore,
) -> None:
    limits = TransportLimits(overall_per_s=1000, per_chat_per_s=2, per_group_per_min=60000)
    transport = MemoryTransport("telegram", limits=platform(limits))
    for _ in range(3):
        await fan_out(store, ["busy"])
    await fan_out(store, [f"u{i}" for i in range(10)])
    assert await sender_for(store, transport, concurrency=2, limits=limits).drain_once() == 13
    chats = transport.chats()
    assert chats.index("busy", 1) > max(chats.index(f"u{i}") for i in range(10))
    assert transport.rejected == 0


async def test_group_limit_per_minute_is_honoured(store: MemoryStore) -> None:
    # 240 a minute: a burst of 3, then about 4 a second; a DM to the same chat is not paced.
    limits = TransportLimits(overall_per_s=1000, per_chat_per_s=1000, per_group_per_min=240)
    transport = MemoryTransport("telegram", limits=platform(limits))
    for _ in range(5):
        await fan_out(store, ["group"], kind=DeliveryKind.CHANNEL)
    sender = sender_for(store, transport, limits=limits)
    started = asyncio.get_running_loop().time()
    assert await sender.drain_once() == 5
    elapsed = asyncio.get_running_loop().time() - started
    assert 2 * 60 / 238 - 0.02 <= elapsed < 1.5
    assert transport.rejected == 0
    for _ in range(5):
        await fan_out(store, ["group"])
    started = asyncio.get_running_loop().time()
    assert await sender.drain_once() == 5
    assert asyncio.get_running_loop().time() - started < 0.4


async def test_429_pauses_the_transport_and_retries_the_same_row(store: MemoryStore) -> None:
    limits = TransportLimits(overall_per_s=1000, per_chat_per_s=1000, per_group_per_min=60000)
    strict = TransportLimits(overall_per_s=5, per_chat_per_s=1000, per_group_per_min=60000)
    transport = MemoryTransport(
        "telegram", limits=platform(strict, retry_after_s=0.3)
    )  # stricter than we think
    await fan_out(store, [f"u{i}" for i in range(8)])
    sender = sender_for(store, transport, concurrency=1, limits=limits)
    with capture_logs() as logs:
        assert await sender.drain_once() == 8
    assert sorted(transport.chats()) == sorted(f"u{i}" for i in range(8))
    assert transport.rejected == sender.stats.rate_limited >= 1
    assert sender.stats.transient_failures == 0
    rejected_at = next(t for t, chat in transport.calls if chat == "u5")
    after = [t for t, chat in transport.calls if t > rejected_at]
    assert after[0] - rejected_at >= 0.3 - TOLERANCE_S  # nothing at all during the pause
    assert transport.chats()[5] == "u5"  # the same row, retried in place
    assert any(e["event"] == "delivery_rate_limited" and e["retry_after_s"] == 0.3 for e in logs)
    assert await store.outbox_counts() == {"pending": 0, "sent": 8, "failed": 0}


async def test_a_refused_send_does_not_use_up_the_chats_turn(store: MemoryStore) -> None:
    limits = TransportLimits(overall_per_s=1000, per_chat_per_s=1, per_group_per_min=60000)
    transport = MemoryTransport("telegram", failures={"u1": [RateLimitedError(0.05)]})
    await fan_out(store, ["u1"])
    started = asyncio.get_running_loop().time()
    assert await sender_for(store, transport, limits=limits).drain_once() == 1
    assert asyncio.get_running_loop().time() - started < 0.5  # not a second for the chat


async def test_permanent_failure_disables_the_chat_and_is_not_retried(
    store: MemoryStore, clock: ManualClock
) -> None:
    await store.subscribe("telegram", "kicked", [])
    await store.subscribe("telegram", "fine", [])
    transport = MemoryTransport("telegram", blocked_chats={"kicked"})
    await fan_out(store, ["kicked", "fine"], kind=DeliveryKind.CHANNEL)
    sender = sender_for(store, transport)
    with capture_logs() as logs:
        assert await sender.drain_once() == 1
    clock.advance(timedelta(days=1).total_seconds())
    assert await sender.drain_once() == 0
    assert [chat for _, chat in transport.calls].count("kicked") == 1
    sub = await store.subscription("telegram", "kicked")
    assert sub is not None
    assert not sub.active
    assert "bot was blocked" in (sub.disabled_reason or "")
    assert await store.outbox_counts() == {"pending": 0, "sent": 1, "failed": 1}
    (event,) = [e for e in logs if e["event"] == "delivery_failed_permanently"]
    assert event["chat_id"] == "kicked"
    assert "bot was blocked" in event["reason"]


@pytest.mark.parametrize("error", [TransientDeliveryError("HTTP 502"), ValueError("bug")])
async def test_transient_failure_backs_off_then_succeeds(
    store: MemoryStore, clock: ManualClock, error: Exception
) -> None:
    transport = MemoryTransport("telegram", failures={"u1": [error]})
    await fan_out(store, ["u1", "u2"])
    sender = sender_for(store, transport)
    with capture_logs() as logs:
        assert await sender.drain_once() == 1
    assert await sender.drain_once() == 0  # not due before its backoff
    assert await store.pending_deliveries(10) == []
    clock.advance(31)
    assert await sender.drain_once() == 1
    assert sorted(transport.chats()) == ["u1", "u2"]
    assert sender.stats.transient_failures == 1
    (event,) = [e for e in logs if e["event"].startswith("delivery_failed")]
    assert event["chat_id"] == "u1"
    assert str(error) in event["reason"]
    if isinstance(error, ValueError):
        assert event["exc_info"] is True  # an unexpected error carries its traceback
    assert await store.outbox_counts() == {"pending": 0, "sent": 2, "failed": 0}


async def test_rows_for_an_absent_transport_stay_pending(store: MemoryStore) -> None:
    transport = MemoryTransport("telegram")
    await fan_out(store, [f"d{i}" for i in range(12)], transport="discord")
    await fan_out(store, ["t1", "t2", "t3"])
    sender = sender_for(store, transport, batch_size=5)  # absent rows fill the first windows
    with capture_logs() as logs:
        assert await sender.drain_once() == 3
        assert await sender.drain_once() == 0
    assert sorted(transport.chats()) == ["t1", "t2", "t3"]
    assert await store.outbox_counts() == {"pending": 12, "sent": 3, "failed": 0}
    warnings = [e for e in logs if e["event"] == "transport_not_running"]
    assert [e["transport"] for e in warnings] == ["discord"]  # logged once


async def test_run_wakes_on_demand_and_stops_letting_sends_finish(store: MemoryStore) -> None:
    transport = MemoryTransport("telegram", latency_s=0.3)
    sender = OutboxSender(
        store,
        {"telegram": transport},
        {"telegram": FAST},
        concurrency=2,
        build_message=build_message,
        poll_interval_s=60.0,
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(sender.run(stop))
    await asyncio.sleep(0.05)
    await fan_out(store, [f"u{i}" for i in range(10)])
    sender.wake()
    await eventually(lambda: transport.in_flight == 2)
    stop.set()
    stopped_at = asyncio.get_running_loop().time()
    await asyncio.wait_for(runner, timeout=2)
    assert asyncio.get_running_loop().time() - stopped_at < 0.4
    assert len(transport.calls) == len(transport.accepted) == 2  # none cut off mid-send
    assert await store.outbox_counts() == {"pending": 8, "sent": 2, "failed": 0}


async def test_stop_abandons_a_row_waiting_out_a_long_429(store: MemoryStore) -> None:
    transport = MemoryTransport("telegram", failures={"u1": [RateLimitedError(30.0)]})
    sender = sender_for(store, transport)
    await fan_out(store, ["u1"])
    stop = asyncio.Event()
    runner = asyncio.create_task(sender.run(stop))
    await eventually(lambda: bool(transport.calls))
    stop.set()
    await asyncio.wait_for(runner, timeout=1)
    assert transport.accepted == []
    assert await store.outbox_counts() == {"pending": 1, "sent": 0, "failed": 0}


@pytest.mark.parametrize(
    ("limit", "window_s"), [(300, 1.0), (30, 1.0), (1, 1.0), (20, 60.0), (0.5, 1.0), (1000, 1.0)]
)
def test_window_limiter_never_exceeds_the_limit_in_a_window(limit: float, window_s: float) -> None:
    limiter = window_limiter(limit, window_s)
    burst, leak_per_s = limiter.max_rate, limiter.max_rate / limiter.time_period
    effective_window = window_s / limit if limit < 1 else window_s
    # Fewer than burst + leak·window sends fit in a window: at most floor(limit) (or one).
    assert burst + leak_per_s * effective_window == pytest.approx(max(int(limit), 1) + 1)
    assert leak_per_s * effective_window >= 0.98 * max(int(limit), 1)  # at most 2% slower


@pytest.mark.parametrize(("limit", "window_s"), [(1, 1.0), (4, 1.0), (20, 60.0), (300, 1.0)])
def test_chat_pacer_never_exceeds_the_limit_in_a_window(limit: float, window_s: float) -> None:
    pacer, now, sent = ChatPacer(limit, window_s), 0.0, list[float]()
    rng = random.Random(7)
    while len(sent) < 3 * limit + 5:  # a greedy sender that wakes a little late, at random
        now += pacer.wait_s(now) + rng.choice([0.0, 0.0, 1e-4])
        pacer.take(now)
        sent.append(now)
    # (a nanosecond off each window: float sums put the 301st send at 0.9999999999 s)
    busiest = max(bisect.bisect_left(sent, t + window_s - 1e-9) - i for i, t in enumerate(sent))
    assert busiest == limit
    assert sent[-1] - sent[0] <= (len(sent) / limit + 1) * window_s  # and not much slower
