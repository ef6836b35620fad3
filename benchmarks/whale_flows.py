"""Whale-flow benchmark: labelling and aggregation throughput, the 24 h window's memory, and the
feed's latency from the fake Blockchain.com to the window.

    .venv/bin/python benchmarks/whale_flows.py [--block-txs 3000]

1. Throughput: one block of `--block-txs` transactions, made of the recorded real transactions
   in tests/fixtures/blockchain_com repeated (each copy with its own txid), is parsed from
   Blockchain.com's JSON, labelled against an address file and aggregated into the window, as a
   `block` message makes the source do. Labels: the Dune spellbook's exchange addresses when
   ../shared/data is here (else every input address of every third transaction, so the path
   through the window is taken either way). Prints transactions per second and the block's time.
2. Memory: a 24 h window filled with `--per-hour` counted whale transfers every hour (plus the
   watched-hour marks), measured with tracemalloc, in KiB.
3. Latency: a recorded whale transaction pushed as a `utx` message by the fake server on
   127.0.0.1 until the source has counted it in its window (median of `--pushes`).
4. Instant alert: the same pushes until each one's whale alert leaves the outbox (a SQLite
   store, one channel that asked for whale alerts, the outbox sender, a MemoryTransport).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import json
import statistics
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from bot.alerts.whales import WhaleAlerter, build_whale_message
from bot.app import build_message
from bot.config import TransportLimits, WhaleAlertsConfig
from bot.delivery.sender import OutboxSender
from bot.logs import Redactor
from bot.storage.base import DeliveryKind
from bot.storage.sqlite import SqliteStore
from bot.storage.whales import WhaleAlertChat
from bot.transports.memory import MemoryTransport
from intel.config import BlockchainComConfig, OnChainConfig, SourcePolicyConfig
from intel.sources.fakes.blockchain_com import FakeBlockchainCom, load_blocks
from intel.sources.onchain.labels import ExchangeLabels, FlowKind, label_transfer
from intel.sources.onchain.rest import BlockchainComRest
from intel.sources.onchain.source import BlockchainComWhaleSource
from intel.sources.onchain.window import FlowWindow, FlowWindowStore
from intel.sources.onchain.wire import parse_block, parse_tx
from intel.sources.resilience import SourceGuard

DUNE = (
    Path(__file__).resolve().parents[2]
    / "shared/data/blockchain/cex_bitcoin_addresses_dune_spellbook.csv"
)
PRICE_USD = 100_000.0


def big_block(count: int) -> dict[str, Any]:
    recorded = [tx for block in load_blocks() for tx in block["tx"]]
    txs = []
    for n in range(count):
        tx = copy.deepcopy(recorded[n % len(recorded)])
        tx["hash"] = hashlib.sha256(f"{tx['hash']}{n}".encode()).hexdigest()
        txs.append(tx)
    head = load_blocks()[-1]
    return {k: v for k, v in head.items() if k != "tx"} | {"tx": txs, "n_tx": count}


def labels_for(block: dict[str, Any]) -> tuple[ExchangeLabels, str]:
    if DUNE.is_file():
        return ExchangeLabels.from_csv(DUNE), "Dune spellbook"
    owners = {i["prev_out"]["addr"]: "Exchange" for tx in block["tx"][::3] for i in tx["inputs"]}
    return ExchangeLabels(owners), "every third transaction's inputs"


async def throughput(count: int) -> None:
    raw = big_block(count)
    text = json.dumps(raw)
    labels, which = labels_for(raw)
    window = FlowWindow("bench", "BTC", 25, None)
    started = time.perf_counter()
    block = parse_block(json.loads(text))
    counted = 0
    for tx in block.txs:
        transfer = label_transfer(tx, labels)
        if transfer.kind in (FlowKind.INFLOW, FlowKind.OUTFLOW) and transfer.amount_btc >= 100:
            inflow = transfer.kind is FlowKind.INFLOW
            usd = transfer.amount_btc * PRICE_USD
            counted += await window.add(tx.txid, tx.seen_at, transfer.amount_btc, usd, inflow)
    elapsed = time.perf_counter() - started
    print(f"labels: {which} ({len(labels)} addresses)")
    print(
        f"block of {count} txs ({len(text) / 1e6:.1f} MB JSON): {elapsed * 1000:.0f} ms, "
        f"{count / elapsed:,.0f} txs/s parsed+labelled+aggregated, {counted} whale transfers"
    )


async def window_memory(per_hour: int) -> None:
    start = datetime(2025, 12, 19, tzinfo=UTC)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    window = FlowWindow("bench", "BTC", 25, None)
    for hour in range(24):
        moment = start + timedelta(hours=hour)
        for n in range(per_hour):
            txid = hashlib.sha256(f"{hour}-{n}".encode()).hexdigest()
            await window.add(txid, moment, 250.0, 25e6, n % 2 == 0)
    await window.mark_watched(start, start + timedelta(hours=24))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    held = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    print(
        f"24 h window, {per_hour} whale transfers/h ({window.memory_items()} items): "
        f"{held / 1024:.0f} KiB"
    )


def outflow_txs(pushes: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Recorded transactions that the labels returned with them make exchange outflows."""
    recorded = [tx for block in load_blocks() for tx in block["tx"]][:pushes]
    owners = {i["prev_out"]["addr"]: "Exchange" for tx in recorded for i in tx["inputs"]}
    # Only what these labels make an outflow (a chain of transfers reads as exchange-internal).
    txs = [
        tx
        for tx in recorded
        if label_transfer(parse_tx(tx), ExchangeLabels(owners)).kind is FlowKind.OUTFLOW
    ]
    return txs, owners


async def feed_source(
    fake: FakeBlockchainCom, owners: dict[str, str], store: FlowWindowStore | None = None
) -> BlockchainComWhaleSource:
    """The source on the fake's websocket (no backfill), started and subscribed."""
    cfg = BlockchainComConfig(
        rest_url=fake.rest_url, ws_url=fake.ws_url, policy=SourcePolicyConfig()
    )
    config = OnChainConfig(address_file=Path("-"), min_btc=0, min_usd=0, blockchain_com=cfg)

    async def price(_: datetime) -> float:
        return PRICE_USD

    source = BlockchainComWhaleSource(
        config.model_copy(update={"backfill_blocks": 0}),
        window_h=24,
        labels=ExchangeLabels(owners),
        rest=BlockchainComRest(cfg),
        guard=SourceGuard("bench", cfg.policy),
        price_usd=price,
        store=store,
    )
    await source.start()
    async with asyncio.timeout(10):
        while fake.subscribed == 0:  # noqa: ASYNC110 - a socket has no event to await
            await asyncio.sleep(0.005)
    return source


async def latency(pushes: int) -> None:
    txs, owners = outflow_txs(pushes)
    times: list[float] = []
    async with FakeBlockchainCom(tip=0) as fake:
        source = await feed_source(fake, owners)
        try:
            for tx in txs:
                started = time.perf_counter()
                await fake.push_tx(tx)
                async with asyncio.timeout(10):
                    while not source.window.counted(tx["hash"]):  # noqa: ASYNC110
                        await asyncio.sleep(0.0005)
                times.append(time.perf_counter() - started)
        finally:
            await source.close()
    print(
        f"utx pushed at the fake server -> counted in the window: median "
        f"{statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
        f"({len(times)} pushes)"
    )


async def alert_latency(pushes: int) -> None:
    """A large transfer pushed at the fake server until its instant alert leaves the outbox
    (accepted by a MemoryTransport), through a SQLite store on disk, one subscribed channel."""
    txs, owners = outflow_txs(pushes)
    times: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        store = SqliteStore(Path(folder) / "bench.db")
        await store.open()
        transport = MemoryTransport("telegram")
        fast = TransportLimits(overall_per_s=1e6, per_chat_per_s=1e6, per_group_per_min=1e8)
        redactor = Redactor([])
        sender = OutboxSender(
            store,
            {"telegram": transport},
            {"telegram": fast},
            concurrency=4,
            build_message=partial(build_message, redactor),
            poll_interval_s=1.0,  # the alert wakes the sender: no poll is waited for
            build_whale_message=partial(build_whale_message, redactor),
        )
        chat = WhaleAlertChat("telegram", "c1", DeliveryKind.CHANNEL)
        await store.set_whale_alerts(chat, True)
        alerts = WhaleAlertsConfig(min_usd=1, max_per_chat_h=60)
        stop = asyncio.Event()
        task = asyncio.create_task(sender.run(stop))
        try:
            async with FakeBlockchainCom(tip=0) as fake:
                source = await feed_source(fake, owners, store.flow_window)
                source.add_listener(WhaleAlerter(alerts, store, ["BTC/USDT"], sender.wake))
                try:
                    for tx in txs:
                        sent = len(transport.accepted)
                        started = time.perf_counter()
                        await fake.push_tx(tx)
                        async with asyncio.timeout(10):
                            while len(transport.accepted) == sent:  # noqa: ASYNC110
                                await asyncio.sleep(0.0005)
                        times.append(time.perf_counter() - started)
                finally:
                    await source.close()
        finally:
            stop.set()
            await task
            await store.close()
    print(
        f"large transfer pushed at the fake server -> its whale alert leaves the outbox: "
        f"median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms "
        f"({len(times)} alerts, SQLite store)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--block-txs", type=int, default=3000)
    parser.add_argument("--per-hour", type=int, default=60)
    parser.add_argument("--pushes", type=int, default=50)
    args = parser.parse_args()
    await throughput(args.block_txs)
    await window_memory(args.per_hour)
    await latency(args.pushes)
    await alert_latency(args.pushes)


if __name__ == "__main__":
    asyncio.run(main())
