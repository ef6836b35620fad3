"""Instant whale alerts end to end: a large labelled transfer pushed by the fake Blockchain.com
(or served by the fake Whale Alert) on 127.0.0.1 leaves the outbox to a MemoryTransport at once,
once per txid (mempool then block, and after a restart), only to the chats that asked.

Expected figures come from the recorded transactions (tests/fixtures/blockchain_com, and Whale
Alert's own posts in ../shared/data/whales), computed here with plain arithmetic.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from bot.alerts.whales import WhaleAlerter, build_whale_message
from bot.app import build_message
from bot.commands.base import Request
from bot.commands.router import CommandRouter
from bot.commands.whales import whale_status_line
from bot.config import BotConfig, TransportLimits, WhaleAlertsConfig
from bot.delivery.sender import OutboxSender
from bot.logs import Redactor
from bot.render.discord import reply_contents
from bot.render.telegram import reply_messages
from bot.render.whales import WHALE_INTRO, whale_alert_text
from bot.scheduling.manual_clock import ManualClock
from bot.storage.base import DeliveryKind, OutboxItem, Store
from bot.storage.memory import MemoryStore
from bot.storage.memory_flows import MemoryFlowWindow
from bot.storage.sqlite import SqliteStore
from bot.storage.whales import (
    CurrentCall,
    WhaleAlert,
    whale_alert_from_json,
    whale_alert_to_json,
)
from bot.transports.memory import MemoryTransport
from intel.calibration import NO_EDGE_NOTE
from intel.models import Action
from intel.pipeline import SignalResult
from intel.sources.fakes.blockchain_com import FakeBlockchainCom
from intel.sources.fakes.whale_alert import FakeWhaleAlert
from intel.sources.onchain.large import LargeTransfer
from intel.symbols import resolve_symbol
from tests.factories import make_signal
from tests.test_commands import fixed_status
from tests.test_onchain_whales import (
    IN_TX,
    LABELS,
    OUT_BLOCK,
    OUT_TX,
    PRICE_USD,
    Clock,
    block_time,
    expected_flow,
    until,
    whale_source,
)
from tests.test_whale_alert import KEY, POSTS, as_api, posted_transfers, source_for

BTC = "BTC/USDT"
FAST = TransportLimits(overall_per_s=1000, per_chat_per_s=1000, per_group_per_min=60000)
OUT_COINS = expected_flow(OUT_TX)[1]  # out of "Exchange A": the larger of the two
IN_COINS = expected_flow(IN_TX)[1]  # into "Exchange B"
THRESHOLD_USD = OUT_COINS * PRICE_USD  # the outflow is at it, the inflow below it


class MiniDesk:
    """The desk as the commands see it; no command here computes a signal."""

    symbols = (BTC, "ETH/USDT")

    def resolve(self, text: str) -> str:
        return resolve_symbol(text, self.symbols)

    def now(self) -> datetime:
        return block_time(0)

    async def signal(self, symbol: str, at: datetime | None = None) -> SignalResult:
        raise AssertionError("no signal is asked for here")


def sender_for(store: Store, transport: MemoryTransport) -> OutboxSender:
    return OutboxSender(
        store,
        {transport.name: transport},
        {transport.name: FAST},
        concurrency=4,
        build_message=partial(build_message, Redactor([])),
        poll_interval_s=0.05,
        build_whale_message=partial(build_whale_message, Redactor([])),
    )


@asynccontextmanager
async def running(sender: OutboxSender) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(sender.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def ask_for_whales(store: Store) -> None:
    """c1 subscribes to whales, u1 turns on whale DMs; c2 follows signals only."""
    router = CommandRouter(MiniDesk(), store, BotConfig(), fixed_status)
    for request in (
        Request("telegram", "admin", "c1", "dm-admin", "subscribe", ("whales",), False, True),
        Request("telegram", "u1", "dm-u1", "dm-u1", "alerts", ("Whales",)),
        Request("telegram", "admin", "c2", "dm-admin", "subscribe", ("btc",), False, True),
    ):
        reply = await router.handle(request)
        assert not reply.is_error, reply.text


async def test_a_large_transfer_is_alerted_at_once_once_and_only_to_chats_that_asked(
    tmp_path: Path,
) -> None:
    assert OUT_COINS > IN_COINS  # the fixture's figures the threshold relies on
    store = SqliteStore(tmp_path / "bot.db")
    await store.open()
    transport = MemoryTransport("telegram")
    sender = sender_for(store, transport)
    alerter = WhaleAlerter(
        WhaleAlertsConfig(min_usd=THRESHOLD_USD), store, [BTC, "ETH/USDT"], sender.wake
    )
    clock = Clock(block_time(OUT_BLOCK) - timedelta(minutes=5))
    try:
        await ask_for_whales(store)
        await store.record_signal(make_signal(BTC, Action.BUY, 72), None, [], False)
        async with (
            FakeBlockchainCom(tip=OUT_BLOCK - 1) as fake,
            running(sender),
        ):
            async with whale_source(fake, clock, store.flow_window, backfill_blocks=0) as source:
                source.add_listener(alerter)
                await until(lambda: fake.subscribed == 1)
                await fake.push_tx(OUT_TX)  # in the mempool: alerted now, not at a cycle
                await until(lambda: len(transport.accepted) == 2)
                await fake.push_tx(IN_TX)  # below the threshold: counted, not alerted
                await fake.push_block(OUT_BLOCK)  # the same transaction again, in its block
                await until(lambda: source.window.counted(IN_TX["hash"]))
                await until(lambda: fake.requests["rawblock"] == 1)
                await asyncio.sleep(0.2)
            # A restart whose flow window lost the transfer (a crash between the alert and the
            # count): the store still knows its txid.
            async with whale_source(
                fake, clock, MemoryFlowWindow(), backfill_blocks=3
            ) as restarted:
                restarted.add_listener(alerter)
                await until(lambda: restarted.window.counted(OUT_TX["hash"]))
                await asyncio.sleep(0.2)
        assert await store.outbox_counts() == {"pending": 0, "sent": 2, "failed": 0}
        assert await store.chat_states(BTC) == {}  # what chats were told of signals: untouched
    finally:
        await store.close()
    assert sorted(sent.chat_id for sent in transport.accepted) == ["c1", "dm-u1"]
    message = transport.accepted[0].message
    assert message.intro == WHALE_INTRO
    text = message.reply.text
    usd_m = OUT_COINS * PRICE_USD / 1e6
    assert text.splitlines()[0] == (
        f"{OUT_COINS:,.2f} BTC (${usd_m:.1f}M) moved out of Exchange A — an exchange outflow."
    )
    assert "Current call on BTC/USDT: BUY 72/100" in text
    assert "in line with it" in text  # coins leaving exchanges agree with a BUY
    assert f"tx {OUT_TX['hash'][:8]}…{OUT_TX['hash'][-6:]}" in text
    assert set(LABELS.values()) == {"Exchange A", "Exchange B"}


async def test_alerts_whales_off_stops_the_dms(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "bot.db")
    await store.open()
    try:
        await ask_for_whales(store)
        router = CommandRouter(MiniDesk(), store, BotConfig(), fixed_status)
        off = Request("telegram", "u1", "dm-u1", "dm-u1", "alerts", ("whales", "off"))
        assert "Whale alerts off" in (await router.handle(off)).text
        bad = Request("telegram", "u1", "dm-u1", "dm-u1", "alerts", ("whales", "loud"))
        assert (await router.handle(bad)).is_error
        user = Request("telegram", "u2", "c1", "dm-u2", "unsubscribe", ("whales",), False, False)
        assert (await router.handle(user)).is_error  # admins only
        alert = WhaleAlert(transfer(1e9), None)
        assert await store.queue_whale_alert(alert, 5) == 1  # c1 only
        assert [r.chat_id for r in await store.pending_deliveries(10)] == ["c1"]
    finally:
        await store.close()


def transfer(usd: float, exchange: str | None = "Binance", inflow: bool = True) -> LargeTransfer:
    return LargeTransfer(
        "blockchain_com", "ab" * 32, "BTC", inflow, 1234.5678, usd, exchange, block_time(0)
    )


@pytest.mark.parametrize(
    ("action", "inflow", "meaning"),
    [
        (Action.BUY, True, "runs against it"),
        (Action.SELL, True, "in line with it"),
        (Action.SELL, False, "runs against it"),
        (Action.HOLD, True, "leans bearish"),
        (Action.HOLD, False, "leans bullish"),
    ],
)
def test_what_a_transfer_means_for_the_call(action: Action, inflow: bool, meaning: str) -> None:
    call = CurrentCall(BTC, action, 64, block_time(0))
    text = whale_alert_text(WhaleAlert(transfer(123.4e6, inflow=inflow), call))
    assert f"Current call on BTC/USDT: {action} 64/100" in text
    assert meaning in text
    assert "1,234.57 BTC ($123.4M)" in text
    assert ("into Binance" if inflow else "out of Binance") in text


def test_no_signal_yet_and_an_unnamed_exchange_are_said() -> None:
    text = whale_alert_text(WhaleAlert(transfer(2e8, exchange=None), None))
    assert "moved into an exchange" in text
    assert "No BTC signal yet" in text


@pytest.mark.parametrize(
    ("action", "confidence", "calibrated", "no_edge", "shown"),
    [
        (Action.BUY, 72, False, False, "BUY 72/100 (as of"),  # uncalibrated: the score as before
        (Action.BUY, 72, True, False, "BUY 72/100, right about 7 times in 10 historically"),
        (
            Action.SELL,
            41,
            True,
            True,
            "SELL 41/100, no demonstrated edge at this horizon (right about 4 times in 10 "
            "historically)",
        ),
        (Action.HOLD, 30, True, False, "HOLD 30/100, how far from a call, not a probability"),
    ],
)
def test_the_current_call_reads_as_on_every_other_surface(
    action: Action, confidence: int, calibrated: bool, no_edge: bool, shown: str
) -> None:
    call = CurrentCall(BTC, action, confidence, block_time(0), calibrated, no_edge)
    text = whale_alert_text(WhaleAlert(transfer(2e8), call))
    assert f"Current call on BTC/USDT: {shown}" in text


async def test_the_alerter_keeps_how_the_call_was_calibrated() -> None:
    store = MemoryStore()
    await store.open()
    try:
        signal = dataclasses.replace(
            make_signal(BTC, Action.SELL, 41), raw_confidence=63, notes=(NO_EDGE_NOTE,)
        )
        await store.record_signal(signal, None, [], False)
        await ask_for_whales(store)
        alerter = WhaleAlerter(WhaleAlertsConfig(min_usd=1e8), store, [BTC])
        await alerter(transfer(2e8))
        (row,) = await store.pending_deliveries(1)
        assert row.whale_alert_id is not None
        alert = await store.load_whale_alert(row.whale_alert_id)
    finally:
        await store.close()
    assert alert is not None
    assert alert.call is not None
    assert (alert.call.action, alert.call.confidence) == (Action.SELL, 41)
    assert (alert.call.calibrated, alert.call.no_edge) == (True, True)


async def test_the_alerter_prunes_alerts_older_than_keep_h(clock: ManualClock) -> None:
    store = MemoryStore(clock=clock)
    await store.open()
    try:
        await ask_for_whales(store)
        alerter = WhaleAlerter(WhaleAlertsConfig(min_usd=1e8, keep_h=2), store, [BTC])
        first = LargeTransfer("blockchain_com", "t1", "BTC", True, 2e3, 2e8, None, block_time(0))
        await alerter(first)
        rows = await store.pending_deliveries(10)
        for row in rows:
            await store.mark_sent(row.id)
        clock.advance(2 * 3600 - 1)
        await alerter(dataclasses.replace(first, txid="t2"))
        assert rows[0].whale_alert_id is not None
        assert await store.load_whale_alert(rows[0].whale_alert_id) is not None  # not 2 h old
        clock.advance(2)
        await alerter(dataclasses.replace(first, txid="t3"))
        assert await store.load_whale_alert(rows[0].whale_alert_id) is None
    finally:
        await store.close()


def test_a_stored_call_from_before_calibration_flags_still_loads() -> None:
    call = CurrentCall(BTC, Action.BUY, 72, block_time(0), calibrated=True, no_edge=True)
    alert = WhaleAlert(transfer(2e8), call)
    assert whale_alert_from_json(json.loads(json.dumps(whale_alert_to_json(alert)))) == alert
    old = whale_alert_to_json(alert)
    del old["call"]["calibrated"], old["call"]["no_edge"]  # as migration 7's first payloads
    loaded = whale_alert_from_json(old)
    assert loaded.call == CurrentCall(BTC, Action.BUY, 72, block_time(0))


@pytest.mark.parametrize(
    ("chats", "enabled", "line"),
    [
        (
            {DeliveryKind.CHANNEL: 2, DeliveryKind.DM: 1},
            True,
            "Whale alerts: 2 channels, 1 DM, from $250.0M",
        ),
        ({DeliveryKind.DM: 3}, True, "Whale alerts: 0 channels, 3 DMs, from $250.0M"),
        (
            {},
            True,
            "Whale alerts: no chat has asked (`subscribe whales`, `alerts whales`), from $250.0M",
        ),
        (
            {DeliveryKind.CHANNEL: 1},
            False,
            "Whale alerts: 1 channel, 0 DMs, from $250.0M; off (whale_alerts.enabled is false)",
        ),
    ],
)
def test_the_status_line_counts_the_chats_by_kind(
    chats: dict[DeliveryKind, int], enabled: bool, line: str
) -> None:
    assert whale_status_line(chats, WhaleAlertsConfig(enabled=enabled, min_usd=250e6)) == line


def test_an_exchange_name_is_escaped_and_mentions_nothing_on_each_platform() -> None:
    hostile = "<b>Evil</b> @everyone & Co " + "x" * 5000
    alert = WhaleAlert(transfer(2e8, exchange=hostile), None)
    message = build_whale_message(Redactor([]), _item(), alert)
    html = reply_messages(message.reply)
    assert all(len(part) <= 4096 for part in html)
    assert "&lt;b&gt;Evil&lt;/b&gt;" in "".join(html)
    assert "<b>Evil" not in "".join(html)
    contents = reply_contents(message.reply)
    assert all(len(part) <= 2000 for part in contents)


def _item() -> OutboxItem:
    return OutboxItem(1, None, "telegram", "c1", DeliveryKind.CHANNEL, "", 0, block_time(0), 1)


@pytest.mark.skipif(not POSTS.is_file(), reason="../shared/data is not here")
async def test_whale_alert_s_largest_exchange_transfer_is_alerted_once(tmp_path: Path) -> None:
    rows = [
        r for r in posted_transfers() if (r["to_kind"] == "tagged") != (r["from_kind"] == "tagged")
    ]
    largest = max(rows, key=lambda r: float(r["amount_usd"]))
    assert sum(float(r["amount_usd"]) >= float(largest["amount_usd"]) for r in rows) == 1
    now = datetime.fromisoformat(f"{largest['timestamp_utc'][:10]}T23:59:00+00:00")
    store = SqliteStore(tmp_path / "bot.db")
    await store.open()
    transport = MemoryTransport("telegram")
    sender = sender_for(store, transport)
    alerter = WhaleAlerter(
        WhaleAlertsConfig(min_usd=float(largest["amount_usd"])), store, [BTC], sender.wake
    )
    try:
        await ask_for_whales(store)
        async with (
            FakeWhaleAlert([as_api(r) for r in posted_transfers()], KEY, page_size=50) as fake,
            running(sender),
        ):
            source = source_for(fake, lambda: now, KEY)
            source.add_listener(alerter)
            await source.start()
            try:
                await until(lambda: len(transport.accepted) == 2)
                await asyncio.sleep(0.2)
            finally:
                await source.close()
    finally:
        await store.close()
    assert sorted(s.chat_id for s in transport.accepted) == ["c1", "dm-u1"]
    text = transport.accepted[0].message.reply.text
    amount, symbol = float(largest["amount"]), largest["symbol"]
    assert text.startswith(f"{amount:,.2f} {symbol} (${float(largest['amount_usd']) / 1e6:.1f}M)")
    tagged = largest["to_label"] if largest["to_kind"] == "tagged" else largest["from_label"]
    assert tagged in text.splitlines()[0]
