"""A bot process for the crash test: one alert fanned out through the real store and sender.

    python -m tests.crash_harness --db PATH --log PATH --run-id N [--recipients 400]

On its first start it records one signal with `--recipients` deliveries (one transaction, so a
crash leaves all or nothing); every start then drains the outbox through a fake transport that
appends "run_id outbox_id chat_id" to `--log` and fsyncs it halfway through send (the moment
"the platform accepted it"), before returning. Exits 0 when nothing is pending.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from bot.commands.base import Reply
from bot.config import BotConfig, TransportLimits
from bot.delivery import OutboxSender
from bot.storage.base import Delivery, DeliveryKind, OutboxItem, StoredSignal
from bot.storage.sqlite import SqliteStore
from bot.transports.base import CommandHandler, OutMessage
from tests.factories import make_signal

TRANSPORT = "fake"
UNLIMITED = TransportLimits(overall_per_s=100_000, per_chat_per_s=1000, per_group_per_min=60_000)


class CountingTransport:
    """Accepts every message after `send_s` and appends it, fsynced, to a log file."""

    name = TRANSPORT

    def __init__(self, log_path: Path, run_id: int, send_s: float) -> None:
        self._fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._run_id = run_id
        self._send_s = send_s

    async def start(self, handler: CommandHandler) -> None:
        pass

    async def stop(self) -> None:
        os.close(self._fd)

    async def send(self, chat_id: str, message: OutMessage) -> None:
        # Half the round trip before the platform has the message, half for its answer: a kill
        # in the second half is a message delivered but not yet marked sent.
        await asyncio.sleep(self._send_s / 2)
        line = f"{self._run_id} {message.extra['outbox_id']} {chat_id}\n".encode()
        await asyncio.to_thread(self._append, line)
        await asyncio.sleep(self._send_s / 2)

    def _append(self, line: bytes) -> None:
        os.write(self._fd, line)  # one write with O_APPEND: lines never interleave
        os.fsync(self._fd)


def recipients(count: int) -> list[Delivery]:
    """Two DMs for every channel."""
    return [
        Delivery(TRANSPORT, f"c{i}", DeliveryKind.CHANNEL, "BTC turned BUY")
        if i % 3 == 0
        else Delivery(TRANSPORT, f"dm-u{i}", DeliveryKind.DM, "above your 60", f"u{i}")
        for i in range(count)
    ]


def build_message(item: OutboxItem, stored: StoredSignal) -> OutMessage:
    return OutMessage(
        intro=item.intro,
        reply=Reply(text=stored.signal.thesis),
        is_group=item.kind is DeliveryKind.CHANNEL,
        extra={"outbox_id": str(item.id)},
    )


async def run(args: argparse.Namespace) -> None:
    store = SqliteStore(args.db)
    await store.open()
    transport = CountingTransport(args.log, args.run_id, args.send_s)
    try:
        signal = make_signal()
        if await store.last_signal(signal.symbol) is None:
            await store.record_signal(signal, None, recipients(args.recipients), alerted=True)
        sender = OutboxSender(
            store,
            {TRANSPORT: transport},
            {TRANSPORT: UNLIMITED},
            concurrency=args.concurrency,
            build_message=build_message,
            poll_interval_s=0.05,
        )
        while (await store.outbox_counts())["pending"]:
            await sender.drain_once()
    finally:
        await transport.stop()
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--run-id", type=int, required=True)
    parser.add_argument("--recipients", type=int, default=400)
    parser.add_argument("--send-s", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=BotConfig().delivery.concurrency)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
