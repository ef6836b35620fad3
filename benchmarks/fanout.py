"""Fan-out benchmark: one alert to many distinct chats through a fake platform that enforces a
scaled rate limit and answers 429 + retry_after when it is exceeded.

    .venv/bin/python benchmarks/fanout.py [--recipients 2000] [--rate 300] [--concurrency N]

Uses the real SqliteStore (a temporary file, WAL, synchronous=FULL) and the real OutboxSender
(concurrency from the default config unless given).
The platform sees a message `latency_ms / 2` after send() is called and answers after the other
half; it allows `--rate` messages in any sliding second overall and one per second per chat.
Prints the total time against the limit's minimum (recipients / rate; target <= 1.1x), the 429s
received, lost messages (target 0) and duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

import structlog

from bot.commands.base import Reply
from bot.config import BotConfig, TransportLimits
from bot.delivery import OutboxSender
from bot.storage.base import Delivery, DeliveryKind, OutboxItem, StoredSignal
from bot.storage.sqlite import SqliteStore
from bot.transports.base import CommandHandler, OutMessage, RateLimitedError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.factories import make_signal

TRANSPORT = "platform"


class ScaledPlatform:
    """A fake transport enforcing sliding-window limits the way a chat platform does."""

    name = TRANSPORT

    def __init__(self, overall_per_s: int, per_chat_per_s: int, latency_s: float) -> None:
        self._overall_per_s = overall_per_s
        self._per_chat_per_s = per_chat_per_s
        self._latency_s = latency_s
        self._recent: deque[float] = deque()  # acceptance times within the last second
        self._per_chat: dict[str, deque[float]] = {}
        self.accepted: list[tuple[float, str]] = []
        self.rejected = 0

    async def start(self, handler: CommandHandler) -> None:
        pass

    async def stop(self) -> None:
        pass

    async def send(self, chat_id: str, message: OutMessage) -> None:
        await asyncio.sleep(self._latency_s / 2)
        try:
            self._admit(chat_id, asyncio.get_running_loop().time())
        finally:
            await asyncio.sleep(self._latency_s / 2)

    def _admit(self, chat_id: str, now: float) -> None:
        chat = self._per_chat.setdefault(chat_id, deque())
        for window, limit in ((self._recent, self._overall_per_s), (chat, self._per_chat_per_s)):
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) >= limit:
                self.rejected += 1
                retry_after = math.ceil((window[0] + 1.0 - now) * 100) / 100  # 10 ms steps
                raise RateLimitedError(retry_after)
        self._recent.append(now)
        chat.append(now)
        self.accepted.append((now, chat_id))


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
        await store.record_signal(make_signal(), None, wanted, alerted=True)
        platform = ScaledPlatform(args.rate, 1, args.latency_ms / 1000)
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
    chats = [chat for _, chat in platform.accepted]
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
