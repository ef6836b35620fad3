"""The outbox sender: drains pending deliveries through the transports, honouring their limits.

A row is marked sent only after `Transport.send` returned, so a crash between the two resends it
(at most `concurrency` duplicates per crash, never a loss). Up to `concurrency` rows are in
progress at once, at most one per chat. What happens after a failure:

    RateLimitedError          pause the whole transport for retry_after, retry the same row
    TransientDeliveryError    mark_failed(permanent=False): the store retries it after a backoff
    PermanentDeliveryError    mark_failed(permanent=True): the row fails, its chat is disabled
    any other exception       treated as transient, logged with its traceback
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog
from cachetools import LRUCache

from bot.config import TransportLimits
from bot.delivery.limits import TransportThrottle
from bot.storage.base import OutboxItem, OutboxStore, SignalLog, StoredSignal
from bot.storage.whales import WhaleAlert, WhaleAlertStore
from bot.transports.base import (
    OutMessage,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
    Transport,
)

__all__ = ["MessageBuilder", "OutboxSender", "SenderStats", "SenderStore", "WhaleMessageBuilder"]

log = structlog.get_logger(__name__)

MessageBuilder = Callable[[OutboxItem, StoredSignal], OutMessage]
WhaleMessageBuilder = Callable[[OutboxItem, WhaleAlert], OutMessage]


class SenderStore(OutboxStore, SignalLog, WhaleAlertStore, Protocol):
    """The outbox, and the signal log (or whale alerts) to load each row's content from."""


@dataclass(slots=True)
class SenderStats:
    """Running totals since the sender was built (for logs, tests and benchmarks)."""

    sent: int = 0
    rate_limited: int = 0
    transient_failures: int = 0
    permanent_failures: int = 0


class OutboxSender:
    """Sends outbox rows with at most `concurrency` in flight; see the module docstring."""

    def __init__(
        self,
        store: SenderStore,
        transports: Mapping[str, Transport],
        limits: Mapping[str, TransportLimits],
        *,
        concurrency: int,
        build_message: MessageBuilder,
        poll_interval_s: float,
        build_whale_message: WhaleMessageBuilder | None = None,
        batch_size: int = 100,
        chat_cache_size: int = 10_000,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._store = store
        self._transports = transports  # read on every row: a transport may come and go
        self._limits = limits
        self._build_message = build_message
        self._build_whale_message = build_whale_message
        self._poll_interval_s = poll_interval_s
        self._batch_size = batch_size
        self._chat_cache_size = chat_cache_size
        self._slots = asyncio.Semaphore(concurrency)
        self._throttles: dict[str, TransportThrottle] = {}
        self._signals: LRUCache[int, StoredSignal] = LRUCache(maxsize=32)
        self._tasks: dict[asyncio.Task[bool], tuple[str, str]] = {}  # → (transport, chat_id)
        self._in_flight: set[asyncio.Task[bool] | None] = set()  # handed to send: never cancel
        self._absent: set[str] = set()  # transports already reported missing
        self._drain_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stop: asyncio.Event | None = None
        self.stats = SenderStats()

    def wake(self) -> None:
        """Drain now rather than at the next poll (call after recording a signal)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until `stop` is set; then sends already handed to a transport finish."""
        self._stop = stop
        watcher = asyncio.create_task(self._cancel_waiting_when(stop))
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    await self.drain_once()
                except Exception:
                    log.exception("outbox_drain_failed")  # the store failed: try again later
                await self._idle(stop)
        finally:
            watcher.cancel()
            self._stop = None

    async def drain_once(self) -> int:
        """Send every row due now; return how many were marked sent."""
        async with self._drain_lock:
            attempted: set[int] = set()
            sent_before = self.stats.sent
            try:
                while not self._stopping():
                    batch = await self._next_batch(attempted)
                    if not batch:
                        if not self._tasks:
                            break
                        await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
                        continue
                    await self._start(batch, attempted)
            finally:
                self._cancel_waiting()
                await asyncio.gather(*self._tasks, return_exceptions=True)
            return self.stats.sent - sent_before

    async def _start(self, batch: list[OutboxItem], attempted: set[int]) -> None:
        for item in batch:
            await self._slots.acquire()
            if self._stopping():
                self._slots.release()
                return
            if (item.transport, item.chat_id) in self._tasks.values():
                # One row per chat at a time: a second would only hold a slot waiting for the
                # chat's next turn while other chats could be sent to. It comes in a later batch.
                self._slots.release()
                continue
            attempted.add(item.id)
            task = asyncio.create_task(self._deliver(item))
            self._tasks[task] = (item.transport, item.chat_id)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[bool]) -> None:
        del self._tasks[task]
        self._in_flight.discard(task)
        self._slots.release()
        if not task.cancelled() and (exc := task.exception()) is not None:
            # The store failed to record an outcome: the row stays pending and is sent again.
            log.error("outbox_update_failed", reason=_reason(exc), exc_info=exc)

    async def _next_batch(self, attempted: set[int]) -> list[OutboxItem]:
        limit = self._batch_size
        while True:
            rows = await self._store.pending_deliveries(limit)
            busy = set(self._tasks.values())
            fresh = [
                r
                for r in rows
                if r.id not in attempted
                and self._is_running(r.transport)
                and (r.transport, r.chat_id) not in busy
            ]
            if fresh or len(rows) < limit:
                return fresh
            limit *= 2  # the window is full of rows we skip: look further

    def _is_running(self, transport: str) -> bool:
        if transport in self._transports:
            self._absent.discard(transport)
            return True
        if transport not in self._absent:
            self._absent.add(transport)
            log.warning(
                "transport_not_running",
                transport=transport,
                detail="its outbox rows stay pending until it runs",
            )
        return False

    async def _deliver(self, item: OutboxItem) -> bool:
        """Send one row and record the outcome; True when it was marked sent."""
        try:
            await self._send_until_accepted(item, await self._message(item))
        except PermanentDeliveryError as exc:
            self.stats.permanent_failures += 1
            log.warning(
                "delivery_failed_permanently",
                **_fields(item),
                reason=str(exc),
                action="chat disabled",
            )
            await self._store.mark_failed(item.id, _reason(exc), permanent=True)
            return False
        except Exception as exc:  # TransientDeliveryError, or anything unforeseen: retry later
            self.stats.transient_failures += 1
            if isinstance(exc, TransientDeliveryError):
                log.warning(
                    "delivery_failed", **_fields(item), reason=str(exc), action="retry later"
                )
            else:  # a bug rather than a network hiccup: logged as an error, with its traceback
                log.exception(
                    "delivery_failed_unexpectedly",
                    **_fields(item),
                    reason=str(exc),
                    action="retry later",
                )
            await self._store.mark_failed(item.id, _reason(exc), permanent=False)
            return False
        await self._store.mark_sent(item.id)
        self.stats.sent += 1
        return True

    async def _send_until_accepted(self, item: OutboxItem, message: OutMessage) -> None:
        throttle = self._throttle(item.transport)
        while True:
            give_back_turn = await throttle.wait_turn(item.chat_id, message.is_group)
            transport = self._transports[item.transport]
            self._in_flight.add(asyncio.current_task())
            try:
                await transport.send(item.chat_id, message)
                return
            except RateLimitedError as exc:
                # Nothing was delivered: the row may be cancelled again while it waits.
                self._in_flight.discard(asyncio.current_task())
                self.stats.rate_limited += 1
                log.warning(
                    "delivery_rate_limited",
                    **_fields(item),
                    retry_after_s=exc.retry_after_s,
                    action="transport paused",
                )
                give_back_turn()  # a refused message did not use up the chat's turn
                throttle.pause(exc.retry_after_s)

    def _throttle(self, transport: str) -> TransportThrottle:
        if transport not in self._throttles:
            limits = self._limits.get(transport, TransportLimits())
            self._throttles[transport] = TransportThrottle(
                limits, chat_cache_size=self._chat_cache_size
            )
        return self._throttles[transport]

    async def _message(self, item: OutboxItem) -> OutMessage:
        if item.signal_id is not None:
            return self._build_message(item, await self._signal(item.signal_id))
        if item.whale_alert_id is not None and self._build_whale_message is not None:
            alert = await self._store.load_whale_alert(item.whale_alert_id)
            if alert is not None:
                return self._build_whale_message(item, alert)
        raise LookupError(f"outbox row {item.id} has no signal or whale alert to send")

    async def _signal(self, signal_id: int) -> StoredSignal:
        stored = self._signals.get(signal_id)
        if stored is None:
            stored = await self._store.load_signal(signal_id)
            if stored is None:
                raise LookupError(f"signal {signal_id} is not in the store")
            self._signals[signal_id] = stored
        return stored

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def _cancel_waiting(self) -> None:
        """Cancel rows still waiting for their turn; those handed to a transport finish."""
        for task in self._tasks.keys() - self._in_flight:
            task.cancel()

    async def _cancel_waiting_when(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._cancel_waiting()

    async def _idle(self, stop: asyncio.Event) -> None:
        waiters = {asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())}
        try:
            await asyncio.wait(
                waiters, timeout=self._poll_interval_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()


def _fields(item: OutboxItem) -> dict[str, object]:
    return {
        "outbox_id": item.id,
        "signal_id": item.signal_id,
        "transport": item.transport,
        "chat_id": item.chat_id,
        "kind": item.kind.value,
        "attempts": item.attempts,
    }


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
