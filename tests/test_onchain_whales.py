"""Live whale flows from the fake Blockchain.com (REST and websocket) on 127.0.0.1.

The fake serves real recorded transactions re-serialised into Blockchain.com's block format
(tests/fixtures/blockchain_com). The exchange labels here are made up for the test (a few of
those transactions' addresses named "Exchange A/B"); the expected flows are computed from the
fixture's JSON with plain arithmetic, never by the code under test.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.storage.memory_flows import MemoryFlowWindow
from bot.storage.sqlite import SqliteStore
from intel.agents.whales import WhaleAgent
from intel.config import (
    BlockchainComConfig,
    Config,
    OnChainConfig,
    SourcePolicyConfig,
    WhalesAgentConfig,
)
from intel.desk import build_desk, replay_sources
from intel.errors import NotConfiguredError, SourceError
from intel.models import MarketSnapshot, ReportStatus, Unavailable
from intel.sources.fakes.blockchain_com import FakeBlockchainCom, load_blocks
from intel.sources.onchain.labels import ExchangeLabels
from intel.sources.onchain.rest import BlockchainComRest
from intel.sources.onchain.source import BlockchainComWhaleSource
from intel.sources.onchain.window import FlowWindowStore
from intel.sources.resilience import SourceGuard

BLOCKS = load_blocks()
PRICE_USD = 100_000.0
HOUR_S = 3600
OUT_BLOCK, QUIET_BLOCK, IN_BLOCK = (
    14,
    15,
    16,
)  # the outflow, a block with no labelled tx, the inflow
OUT_TX = BLOCKS[OUT_BLOCK]["tx"][0]
IN_TX = BLOCKS[IN_BLOCK]["tx"][0]
IN_ADDRESS = max(IN_TX["out"], key=lambda o: o["value"])["addr"]
LABELS = {i["prev_out"]["addr"]: "Exchange A" for i in OUT_TX["inputs"]} | {
    IN_ADDRESS: "Exchange B"
}


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def block_time(index: int) -> datetime:
    return datetime.fromtimestamp(BLOCKS[index]["time"], UTC)


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def expected_flow(tx: dict[str, Any]) -> tuple[str, float]:
    """('in' | 'out' | '', coins) by the plain rule, for transactions that are not mixed."""
    spent = {i["prev_out"]["addr"] for i in tx["inputs"]}
    labelled_out = sum(o["value"] for o in tx["out"] if o["addr"] in LABELS)
    from_exchange = bool(spent & LABELS.keys())
    assert not (from_exchange and labelled_out), "the test's labels must not make mixed txs"
    if from_exchange:
        return "out", sum(o["value"] for o in tx["out"]) / 1e8
    return ("in", labelled_out / 1e8) if labelled_out else ("", 0.0)


async def price(moment: datetime) -> float:
    return PRICE_USD


def config(fake: FakeBlockchainCom, **changes: Any) -> OnChainConfig:
    blockchain_com = BlockchainComConfig(
        rest_url=fake.rest_url,
        ws_url=fake.ws_url,
        timeout_s=1,
        policy=SourcePolicyConfig(
            call_timeout_s=1,
            max_attempts=3,
            backoff_initial_s=0.01,
            backoff_max_s=0.02,
            retry_deadline_s=3,
        ),
        reconnect_initial_s=0.05,
        reconnect_max_s=0.2,
        rest_poll_s=0.05,
    )
    return OnChainConfig(
        address_file=Path("labels.csv"),
        min_btc=100,
        min_usd=1_000_000,
        backfill_blocks=3,
        blockchain_com=blockchain_com,
    ).model_copy(update=changes)


def unstarted_source(
    fake: FakeBlockchainCom,
    clock: Callable[[], datetime],
    store: FlowWindowStore | None = None,
    **changes: Any,
) -> BlockchainComWhaleSource:
    cfg = config(fake, **changes)
    return BlockchainComWhaleSource(
        cfg,
        window_h=24,
        labels=ExchangeLabels(dict(LABELS)),
        rest=BlockchainComRest(cfg.blockchain_com),
        guard=SourceGuard("blockchain_com", cfg.blockchain_com.policy),
        price_usd=price,
        store=store,
        clock=clock,
    )


@asynccontextmanager
async def whale_source(
    fake: FakeBlockchainCom,
    clock: Callable[[], datetime],
    store: FlowWindowStore | None = None,
    **changes: Any,
) -> AsyncIterator[BlockchainComWhaleSource]:
    source = unstarted_source(fake, clock, store, **changes)
    await source.start()
    try:
        yield source
    finally:
        await source.close()


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait for a background task's effect, polling (bounded in time)."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the effect has no event to wait on
            await asyncio.sleep(0.01)


def counted(source: BlockchainComWhaleSource) -> int:
    return sum(1 for tx in (OUT_TX, IN_TX) if source.window.counted(tx["hash"]))


async def test_backfill_labels_and_aggregates_the_recorded_blocks_by_hour() -> None:
    clock = Clock(block_time(IN_BLOCK) + timedelta(hours=2))
    async with (
        FakeBlockchainCom(tip=IN_BLOCK) as fake,
        whale_source(fake, clock) as source,
    ):
        await until(lambda: counted(source) == 2)
        flows = await source.flows("BTC/USDT", clock(), 24)
    assert fake.requests == {"latestblock": 1, "rawblock": 3}
    expected: dict[datetime, list[float]] = {}
    for index in (OUT_BLOCK, QUIET_BLOCK, IN_BLOCK):
        for tx in BLOCKS[index]["tx"]:
            kind, coins = expected_flow(tx)
            if kind and coins >= 100:
                row = expected.setdefault(hour_of(block_time(index)), [0.0, 0.0, 0])
                row[0 if kind == "in" else 1] += coins
                row[2] += 1
    got = [(h.hour_start, h.inflow_coins, h.outflow_coins, h.transfer_count) for h in flows.hours]
    assert got == [
        (hour, pytest.approx(inflow), pytest.approx(outflow), count)
        for hour, (inflow, outflow, count) in sorted(expected.items())
    ]
    assert [h.inflow_usd + h.outflow_usd for h in flows.hours] == pytest.approx(
        [(row[0] + row[1]) * PRICE_USD for _, row in sorted(expected.items())]
    )
    assert flows.as_of == hour_of(clock())


async def test_a_transaction_seen_in_the_mempool_and_then_in_a_block_counts_once() -> None:
    first_seen = block_time(OUT_BLOCK) - timedelta(hours=3)
    clock = Clock(first_seen)
    async with (
        FakeBlockchainCom(tip=OUT_BLOCK - 1) as fake,
        whale_source(fake, clock, backfill_blocks=0) as source,
    ):
        await until(lambda: fake.subscribed == 1)
        await fake.push_tx(OUT_TX)
        await until(lambda: counted(source) == 1)
        clock.at = block_time(OUT_BLOCK) + timedelta(hours=1)
        await fake.push_block(OUT_BLOCK)
        await until(lambda: fake.requests["rawblock"] == 1)
        await fake.push_block(OUT_BLOCK)  # announced twice: already seen, not fetched again
        await asyncio.sleep(0.05)
        flows = await source.flows("BTC/USDT", clock(), 24)
    assert fake.requests["rawblock"] == 1
    _, coins = expected_flow(OUT_TX)
    # It counts in the hour it was first seen (the mempool), not in its block's hour.
    assert [(h.hour_start, h.outflow_coins, h.transfer_count) for h in flows.hours] == [
        (hour_of(first_seen), pytest.approx(coins), 1)
    ]


async def test_a_restart_keeps_the_window_and_never_counts_a_transaction_twice(
    tmp_path: Path,
) -> None:
    clock = Clock(block_time(IN_BLOCK) + timedelta(minutes=90))
    store = SqliteStore(tmp_path / "bot.db")
    await store.open()
    try:
        async with FakeBlockchainCom(tip=IN_BLOCK) as fake:
            async with whale_source(fake, clock, store.flow_window) as source:
                await until(lambda: counted(source) == 2)
                before = await source.flows("BTC/USDT", clock(), 24)
            clock.at += timedelta(hours=1)
            async with whale_source(fake, clock, store.flow_window) as source:
                await until(lambda: fake.requests["rawblock"] == 6)  # backfilled again
                await asyncio.sleep(0.05)
                after = await source.flows("BTC/USDT", clock(), 24)
    finally:
        await store.close()
    assert sum(h.transfer_count for h in before.hours) == 2
    assert after.hours == before.hours  # the same two transfers, not four
    # Collected: the whole hours from the oldest backfilled block up to the last sign of life.
    first_whole = hour_of(block_time(OUT_BLOCK)) + timedelta(hours=1)
    assert after.collected_h == (hour_of(clock()) - first_whole) // timedelta(hours=1)


async def test_a_half_full_window_reports_warming_up_with_its_figure() -> None:
    clock = Clock(block_time(IN_BLOCK) + timedelta(hours=5, minutes=10))
    async with FakeBlockchainCom(tip=IN_BLOCK) as fake, whale_source(fake, clock) as source:
        await until(lambda: counted(source) == 2)
        flows = await source.flows("BTC/USDT", clock(), 24)
    first_whole = hour_of(block_time(OUT_BLOCK)) + timedelta(hours=1)
    collected = (hour_of(clock()) - first_whole) // timedelta(hours=1)
    missing = Unavailable("not in this test")
    snapshot = MarketSnapshot("BTC/USDT", clock(), missing, missing, flows, missing, missing)
    report = await WhaleAgent(WhalesAgentConfig()).analyze(snapshot)
    assert report.status is ReportStatus.DEGRADED
    assert report.reason == f"warming up: {collected} h of 24 h collected"
    assert report.score is not None


async def test_a_one_shot_desk_signal_right_after_start_gets_the_backfilled_flows() -> None:
    # `signal --live`: the desk starts the source and asks at once; the backfill is under way.
    clock = Clock(block_time(IN_BLOCK) + timedelta(hours=5, minutes=10))
    async with FakeBlockchainCom(tip=IN_BLOCK) as fake:
        fake.faults.latency_s = 0.1  # the backfill takes a while: it cannot win the race
        sources = dataclasses.replace(replay_sources(), whales=unstarted_source(fake, clock))
        desk = build_desk(Config(symbols=("BTC/USDT",)), sources=sources, market_clock=clock)
        async with desk:
            report = (await desk.signal("BTC/USDT")).signal.reports["whales"]
    first_whole = hour_of(block_time(OUT_BLOCK)) + timedelta(hours=1)
    collected = (hour_of(clock()) - first_whole) // timedelta(hours=1)
    assert (report.status, report.reason) == (
        ReportStatus.DEGRADED,
        f"warming up: {collected} h of 24 h collected",
    )


async def test_other_assets_are_refused_or_served_btc_as_a_proxy_when_configured() -> None:
    clock = Clock(block_time(IN_BLOCK) + timedelta(hours=2))
    async with FakeBlockchainCom(tip=IN_BLOCK) as fake:
        async with whale_source(fake, clock) as source:
            await until(lambda: counted(source) == 2)
            with pytest.raises(NotConfiguredError, match="no whale-flow provider covers ETH"):
                await source.flows("ETH/USDT", clock(), 24)
        async with whale_source(fake, clock, btc_proxy_for_other_assets=True) as source:
            await until(lambda: counted(source) == 2)
            eth = await source.flows("ETH/USDT", clock(), 24)
            btc = await source.flows("BTC/USDT", clock(), 24)
    assert eth.hours == btc.hours
    assert eth.notes == ("BTC exchange flows stand in as a market-wide proxy for ETH",)


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 429])
async def test_server_errors_and_rate_limits_are_retried(status: int) -> None:
    clock = Clock(block_time(IN_BLOCK) + timedelta(hours=2))
    async with FakeBlockchainCom(tip=IN_BLOCK) as fake:
        fake.faults.status, fake.faults.failures_left = status, 2
        fake.faults.retry_after_s = 0 if status == 429 else None
        async with whale_source(fake, clock) as source:
            await until(lambda: counted(source) == 2)
    assert fake.requests["latestblock"] == 3  # two refusals, then the answer


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("malformed_json", "malformed JSON"), ("latency_s", "did not answer within 1 s")],
)
async def test_a_backfill_that_keeps_failing_says_why(fault: str, reason: str) -> None:
    clock = Clock(block_time(IN_BLOCK) + timedelta(hours=2))
    async with FakeBlockchainCom(tip=IN_BLOCK) as fake:
        setattr(fake.faults, fault, True if fault == "malformed_json" else 1.5)
        fake.faults.ws_refuse = True
        async with whale_source(fake, clock, rest_poll_s=60) as source:
            await until(lambda: any("backfill" in p for p in source.problems), timeout_s=8)
            with pytest.raises(SourceError, match=reason):
                await source.flows("BTC/USDT", clock(), 24)


async def test_a_missing_older_block_costs_only_that_block() -> None:
    clock = Clock(block_time(IN_BLOCK) + timedelta(hours=2))
    async with FakeBlockchainCom(tip=IN_BLOCK) as fake:
        fake.faults.missing = {BLOCKS[QUIET_BLOCK]["hash"]}
        async with whale_source(fake, clock) as source:
            await until(lambda: fake.requests["rawblock"] == 2)
            await asyncio.sleep(0.05)
    # The walk back stopped at the missing block: the inflow above it still counts.
    assert source.window.counted(IN_TX["hash"])
    assert not source.window.counted(OUT_TX["hash"])


async def test_bad_feed_messages_are_skipped_and_counted() -> None:
    clock = Clock(block_time(OUT_BLOCK))
    no_outputs = copy.deepcopy(OUT_TX) | {"out": []}
    async with (
        FakeBlockchainCom(tip=OUT_BLOCK - 1) as fake,
        whale_source(fake, clock, backfill_blocks=0) as source,
    ):
        await until(lambda: fake.subscribed == 1)
        await fake.push_tx(no_outputs)
        await fake.push_raw("{not json")
        await fake.push_tx(OUT_TX)
        await until(lambda: counted(source) == 1)
        notes = source.skipped_records("BTC/USDT")
    assert len(notes) == 1
    assert "skipped 2 bad records (first at message 1" in notes[0]
    assert "has no outputs" in notes[0]


async def test_while_the_socket_is_down_new_blocks_come_over_rest() -> None:
    clock = Clock(block_time(IN_BLOCK) + timedelta(hours=2))
    async with FakeBlockchainCom(tip=QUIET_BLOCK) as fake:
        fake.faults.ws_refuse = True
        async with whale_source(fake, clock, backfill_blocks=1) as source:
            await until(lambda: fake.requests["rawblock"] >= 1)
            fake.tip = IN_BLOCK
            await until(lambda: source.window.counted(IN_TX["hash"]))
        assert fake.ws_connections == 0


async def test_the_socket_reconnects_after_a_drop() -> None:
    clock = Clock(block_time(OUT_BLOCK))
    async with (
        FakeBlockchainCom(tip=OUT_BLOCK - 1) as fake,
        whale_source(fake, clock, backfill_blocks=0, rest_poll_s=60) as source,
    ):
        await until(lambda: fake.subscribed == 1)
        await fake.drop_sockets()
        await until(lambda: fake.ws_connections == 2 and fake.subscribed == 1)
        await fake.push_tx(OUT_TX)
        await until(lambda: counted(source) == 1)


async def test_a_socket_that_goes_quiet_is_replaced() -> None:
    clock = Clock(block_time(OUT_BLOCK))
    async with FakeBlockchainCom(tip=OUT_BLOCK - 1) as fake:
        fake.faults.ws_mute = True
        blockchain_com = config(fake).blockchain_com.model_copy(update={"stale_s": 0.3})
        async with whale_source(
            fake, clock, backfill_blocks=0, rest_poll_s=60, blockchain_com=blockchain_com
        ):
            await until(lambda: fake.ws_connections >= 2)
        # Pinged every stale_s / 3 and unanswered for longer than stale_s: dropped and redialled.
        assert fake.ws_connections >= 2


async def test_the_memory_store_keeps_a_window_over_a_restart() -> None:
    store = MemoryFlowWindow()
    clock = Clock(block_time(IN_BLOCK) + timedelta(hours=2))
    async with FakeBlockchainCom(tip=IN_BLOCK) as fake:
        async with whale_source(fake, clock, store) as source:
            await until(lambda: counted(source) == 2)
        fake.faults.status = 503  # the second run cannot backfill: only the store can help
        async with whale_source(fake, clock, store) as source:
            assert counted(source) == 2


class FailingOnce(MemoryFlowWindow):
    """The bot's in-memory flow store whose first write fails, as a full disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def save_flow_hour(self, *args: Any, **kwargs: Any) -> bool:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")
        return await super().save_flow_hour(*args, **kwargs)


async def test_a_store_error_in_the_first_backfill_is_logged_and_the_feed_goes_on() -> None:
    store = FailingOnce()
    clock = Clock(block_time(IN_BLOCK) + timedelta(hours=2))
    async with FakeBlockchainCom(tip=IN_BLOCK) as fake:
        with capture_logs() as logs:
            async with whale_source(fake, clock, store, rest_poll_s=60) as source:
                await until(lambda: fake.subscribed == 1)  # the socket after the backfill
                problems = source.problems
    assert store.failures == 0
    (failed,) = [entry for entry in logs if entry["event"] == "onchain_backfill_failed"]
    assert (failed["log_level"], failed["exc_info"]) == ("error", True)
    assert "backfill error" in problems
