"""Alert-noise benchmark: the demo window replayed hour by hour through the real cycle, alert
policy, store and outbox, counting what a subscribed channel and two watchers receive.

    .venv/bin/python benchmarks/alerts.py [--sqlite]

From `data.default_at` to `demo.until` (config.yaml), one cycle per market hour, on the real desk
over the shipped replay data, with a `MemoryStore` (or a temporary SQLite file with `--sqlite`)
and a `MemoryTransport` named "console" behind the real `OutboxSender`. One channel subscribes to
every symbol; two users watch every symbol with DM thresholds 50 and 70. Charts are not drawn
(they change no decision). Every message the transport accepts is classified by the signal it
carries, so the figures do not depend on the wording of the alerts. Prints, per symbol: channel
alerts and alerts per day, flips back (a call announced, then the call before it announced again
within 6 market hours), HOLD-confidence alerts (a HOLD announced after a HOLD), DMs; and the
targets: <= 2 channel alerts per symbol per day on average, 0 flips back, 0 HOLD-confidence
alerts, >= 1 alert per symbol.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from itertools import pairwise
from pathlib import Path

import structlog

from bot.app import build_message
from bot.config import BotConfig, TransportLimits
from bot.delivery import OutboxSender
from bot.logs import Redactor
from bot.scheduling.cycle import SignalCycle
from bot.scheduling.manual_clock import ManualClock
from bot.storage.base import Store
from bot.storage.memory import MemoryStore
from bot.storage.sqlite import SqliteStore
from bot.transports.memory import MemoryTransport, SentMessage
from intel.config import load_config
from intel.desk import build_desk
from intel.models import Action, MarketSnapshot, Signal

TRANSPORT = "console"
CHANNEL = "channel"
WATCHERS = {"u50": 50, "u70": 70}  # user -> DM threshold
FLIP_BACK_WINDOW = timedelta(hours=6)
HOUR_S = 3600.0


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted message: who got it, and the call it carried."""

    chat_id: str
    symbol: str
    action: Action
    confidence: int
    market_at: datetime


async def no_chart(signal: Signal, snapshot: MarketSnapshot) -> bytes | None:
    return None


async def replay(config: BotConfig, store: Store) -> list[Received]:
    """Every hourly cycle of the demo window; the messages the transport accepted, in order."""
    clock = ManualClock(config.data.default_at)
    transport = MemoryTransport(TRANSPORT)
    fast = TransportLimits(overall_per_s=10_000, per_chat_per_s=10_000, per_group_per_min=10_000)
    async with build_desk(config, market_clock=clock) as desk:
        await store.open()
        await store.subscribe(TRANSPORT, CHANNEL, ())
        for user, threshold in WATCHERS.items():
            for symbol in desk.symbols:
                await store.watch_add(TRANSPORT, user, f"dm-{user}", symbol)
            await store.set_threshold(TRANSPORT, user, f"dm-{user}", threshold)
        sender = OutboxSender(
            store,
            {TRANSPORT: transport},
            {TRANSPORT: fast},
            concurrency=1,  # one at a time: messages are accepted in the order they were queued
            build_message=partial(build_message, Redactor(())),
            poll_interval_s=1.0,
        )
        cycle = SignalCycle(desk, store, config, no_chart, sender.wake)
        while clock.now() <= config.demo.until:
            await cycle.run_once()
            await sender.drain_once()
            clock.advance(HOUR_S)
        await store.close()
    return [_received(message) for message in transport.accepted]


def _received(sent: SentMessage) -> Received:
    signal = sent.message.reply.signal
    assert signal is not None  # every outbox message carries its signal
    return Received(sent.chat_id, signal.symbol, signal.action, signal.confidence, signal.as_of)


def report(received: list[Received], symbols: tuple[str, ...], days: float) -> bool:
    """Print the figures per symbol and overall; True when every target is met."""
    per_chat: dict[tuple[str, str], list[Received]] = defaultdict(list)
    for message in received:
        per_chat[message.chat_id, message.symbol].append(message)
    print(f"{'symbol':<10} {'channel':>8} {'per day':>8} {'flips':>6} {'HOLD-conf':>10} {'DMs':>5}")
    totals = {"channel": 0, "flips": 0, "hold_conf": 0}
    quiet_not_mute = True
    for symbol in symbols:
        channel = per_chat[CHANNEL, symbol]
        flips = sum(flips_back(per_chat[chat, symbol]) for chat in _chats(per_chat))
        hold_conf = sum(hold_confidence(per_chat[chat, symbol]) for chat in _chats(per_chat))
        dms = sum(len(per_chat[f"dm-{user}", symbol]) for user in WATCHERS)
        print(
            f"{symbol:<10} {len(channel):>8} {len(channel) / days:>8.2f} {flips:>6}"
            f" {hold_conf:>10} {dms:>5}"
        )
        totals["channel"] += len(channel)
        totals["flips"] += flips
        totals["hold_conf"] += hold_conf
        quiet_not_mute = quiet_not_mute and bool(channel)
    per_day = totals["channel"] / days / len(symbols)
    print(
        f"\n{days:.2f} market days · channel alerts per symbol per day {per_day:.2f} (target <= 2)"
        f" · flips back within 6 h {totals['flips']} (target 0)"
        f" · HOLD-confidence alerts {totals['hold_conf']} (target 0)"
        f" · every symbol alerted at least once: {quiet_not_mute}"
    )
    return per_day <= 2 and totals["flips"] == 0 and totals["hold_conf"] == 0 and quiet_not_mute


def _chats(per_chat: dict[tuple[str, str], list[Received]]) -> set[str]:
    return {chat for chat, _ in per_chat}


def flips_back(messages: list[Received]) -> int:
    """Calls announced that go back to the call before them within `FLIP_BACK_WINDOW`."""
    count = 0
    for before, turn, back in zip(messages, messages[1:], messages[2:], strict=False):
        changed = turn.action != before.action and back.action == before.action
        if changed and back.market_at - turn.market_at <= FLIP_BACK_WINDOW:
            count += 1
    return count


def hold_confidence(messages: list[Received]) -> int:
    """HOLDs announced to a chat whose previous message for the symbol was already a HOLD."""
    return sum(
        before.action is Action.HOLD and after.action is Action.HOLD
        for before, after in pairwise(messages)
    )


async def main(use_sqlite: bool) -> bool:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    config = load_config(env={}, model=BotConfig)
    days = (config.demo.until - config.data.default_at).total_seconds() / 86400
    with tempfile.TemporaryDirectory() as tmp:
        store: Store = SqliteStore(Path(tmp) / "bench.db") if use_sqlite else MemoryStore()
        received = await replay(config, store)
    print(
        f"demo window {config.data.default_at:%Y-%m-%d %H:%M}"
        f" → {config.demo.until:%Y-%m-%d %H:%M} UTC"
    )
    return report(received, config.symbols, days)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite", action="store_true", help="a temporary SQLite store")
    met = asyncio.run(main(parser.parse_args().sqlite))
    raise SystemExit(0 if met else 1)
