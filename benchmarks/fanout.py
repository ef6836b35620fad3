"""Fan-out benchmark: one alert to many distinct chats through a fake platform that enforces a
scaled rate limit and answers 429 + retry_after when it is exceeded.

    .venv/bin/python benchmarks/fanout.py [--recipients 2000] [--rate 300] [--concurrency N]

Uses the real SqliteStore (a temporary file, WAL, synchronous=FULL), the real OutboxSender
(concurrency from the default config unless given) and a real signal: BTC/USDT computed once by
the desk at the configured default moment. The platform is the shared `MemoryTransport`: it sees
a message `latency_ms / 2` after send() is called and answers after the other half; it allows
`--rate` messages in any sliding second overall and one per second per chat.
Prints the total time against the limit's minimum (recipients / rate; target <= 1.1x), the 429s
received, lost messages (target 0) and duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import structlog

from bot.commands.base import Reply
from bot.config import BotConfig, TransportLimits
from bot.delivery import OutboxSender
from bot.storage.base import Delivery, DeliveryKind, OutboxItem, StoredSignal
from bot.storage.sqlite import SqliteStore
from bot.transports.base import OutMessage
from bot.transports.memory import MemoryTransport, PlatformLimits
from intel.config import load_config
from intel.desk import build_desk
from intel.models import Signal

TRANSPORT = "platform"
SYMBOL = "BTC/USDT"


async def real_signal() -> Signal:
    """The desk's BTC/USDT signal at the configured default moment (recorded data)."""
    config = load_config(env={}, model=BotConfig)
    result = await build_desk(config).signal(SYMBOL, config.data.default_at)
    return result.signal


def build_message(item: OutboxItem, stored: StoredSignal) -> OutMessage:
    return OutMessage(
        intro=item.intro,
        reply=Reply(text=stored.signal.thesis),
        is_group=item.kind is DeliveryKind.CHANNEL,
    )


def deliveries(count: int) -> list[Delivery]:
    return [
        Delivery(TRANSPORT, f"c{i}", DeliveryKind.CHANNEL, "BTC turned BUY")
        if i % 3 == 0
        else Delivery(TRANSPORT, f"dm-u{i}", DeliveryKind.DM, "above your 60", f"u{i}")
        for i in range(count)
    ]


async def benchmark(args: argparse.Namespace, directory: Path) -> dict[str, float]:
    store = SqliteStore(directory / "bench.db")
    await store.open()
    try:
        wanted = deliveries(args.recipients)
        await store.record_signal(await real_signal(), None, wanted, alerted=True)
        platform = MemoryTransport(
            TRANSPORT,
            latency_s=args.latency_ms / 1000,
            limits=PlatformLimits(overall_per_s=args.rate, per_chat_per_s=1),
        )
        limits = TransportLimits(
            overall_per_s=args.rate, per_chat_per_s=1, per_group_per_min=20 * args.rate / 30
        )
        sender = OutboxSender(
            store,
            {TRANSPORT: platform},
            {TRANSPORT: limits},
            concurrency=args.concurrency,
            build_message=build_message,
            poll_interval_s=0.05,
        )
        started = time.perf_counter()
        await asyncio.wait_for(sender.drain_once(), timeout=args.timeout_s)
        elapsed = time.perf_counter() - started
        counts = await store.outbox_counts()
    finally:
        await store.close()
    chats = platform.chats()
    return {
        "elapsed_s": elapsed,
        "minimum_s": args.recipients / args.rate,
        "rejected_429": platform.rejected,
        "lost": len({d.chat_id for d in wanted} - set(chats)),
        "duplicates": len(chats) - len(set(chats)),
        "pending": counts["pending"],
        "failed": counts["failed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--recipients", type=int, default=2000, choices=range(1, 20_001), metavar="1..20000"
    )
    parser.add_argument("--rate", type=int, default=300, help="messages per second overall")
    parser.add_argument("--concurrency", type=int, default=BotConfig().delivery.concurrency)
    parser.add_argument("--latency-ms", type=float, default=10.0, help="a send's round trip")
    parser.add_argument("--timeout-s", type=float, default=120.0)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings up
    with tempfile.TemporaryDirectory() as directory:
        result = asyncio.run(benchmark(args, Path(directory)))
    ratio = result["elapsed_s"] / result["minimum_s"]
    print(
        f"fan-out of 1 alert to {args.recipients} chats, limit {args.rate}/s overall and 1/s "
        f"per chat, concurrency {args.concurrency}, round trip {args.latency_ms:g} ms"
    )
    print(f"  total time      {result['elapsed_s']:.2f} s")
    print(f"  minimum         {result['minimum_s']:.2f} s  (recipients / rate)")
    print(f"  ratio           {ratio:.3f}x  (target <= 1.1)")
    print(f"  429s received   {result['rejected_429']}")
    print(f"  lost            {result['lost']}  (target 0)")
    print(f"  duplicates      {result['duplicates']}")
    print(f"  outbox after    pending {result['pending']}, failed {result['failed']}")


if __name__ == "__main__":
    main()
