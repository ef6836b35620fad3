"""`MemoryTransport`: the fake beside `Transport` (as httpx ships `MockTransport`), for tests and
the fan-out benchmark.

It records every call and every accepted message, can take a platform's round trip, and can
enforce a platform's limits as a chat platform does: past `PlatformLimits` in any sliding window
a send is refused with `RateLimitedError` and a retry_after, and sends to `blocked_chats` fail for
good. Inbound commands are injected with `command`, through the handler given to `start`.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.commands.base import Reply, Request
from bot.transports.base import (
    CommandHandler,
    OutMessage,
    PermanentDeliveryError,
    RateLimitedError,
    TransientDeliveryError,
)

__all__ = ["MemoryTransport", "PlatformLimits", "SentMessage"]


@dataclass(frozen=True, slots=True)
class PlatformLimits:
    """What the fake platform allows in any sliding window; None: no such limit."""

    overall_per_s: float | None = None
    per_chat_per_s: float | None = None
    per_group_per_min: float | None = None  # sends to a group chat (`OutMessage.is_group`)
    retry_after_s: float | None = None  # answer this instead of the time a slot frees up
    # A platform measures arrival, not departure: sends this close to a window's edge count as
    # outside it.
    tolerance_s: float = 0.0


@dataclass(frozen=True, slots=True)
class SentMessage:
    """A message the platform accepted, at `at_s` on the event loop's clock."""

    at_s: float
    chat_id: str
    message: OutMessage


class MemoryTransport:
    """A recording `Transport`. A send reaches the platform `latency_s / 2` after the call and
    its answer comes after the other half; a transport closed meanwhile loses the answer."""

    def __init__(
        self,
        name: str = "memory",
        *,
        latency_s: float = 0.0,
        limits: PlatformLimits | None = None,
        failures: Mapping[str, Sequence[Exception]] | None = None,
        blocked_chats: Iterable[str] = (),
    ) -> None:
        self.name = name
        self.latency_s = latency_s
        self.limits = limits or PlatformLimits()
        self.failures = {chat: list(errors) for chat, errors in (failures or {}).items()}
        self.blocked_chats = set(blocked_chats)
        self.accepted: list[SentMessage] = []
        self.calls: list[tuple[float, str]] = []  # (loop time, chat_id) of every send
        self.events: list[str] = []  # start, stop, close, send (called), sent (answered)
        self.rejected = 0  # 429s answered
        self.in_flight = 0
        self.max_in_flight = 0
        self.started = asyncio.Event()
        self._handler: CommandHandler | None = None
        self._closed = False
        self._changed = asyncio.Event()
        self._overall: deque[float] = deque()
        self._per_chat: dict[str, deque[float]] = {}

    # -- the Transport protocol --------------------------------------------------------------

    async def start(self, handler: CommandHandler) -> None:
        self._handler = handler
        self.events.append("start")
        self.started.set()

    async def stop(self) -> None:
        self.events.append("stop")

    async def close(self) -> None:
        self._closed = True
        self.events.append("close")

    async def send(self, chat_id: str, message: OutMessage) -> None:
        loop = asyncio.get_running_loop()
        self.calls.append((loop.time(), chat_id))
        self.events.append("send")
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self._changed.set()
        try:
            await asyncio.sleep(self.latency_s / 2)
            try:
                self._deliver(chat_id, message, loop.time())
            finally:
                await asyncio.sleep(self.latency_s / 2)
            if self._closed:
                raise TransientDeliveryError("the connection closed before the platform answered")
            self.events.append("sent")
        finally:
            self.in_flight -= 1
            self._changed.set()

    # -- for tests ---------------------------------------------------------------------------

    async def command(self, request: Request) -> Reply:
        """A command from a user, answered through the handler given to `start`."""
        if self._handler is None:
            raise RuntimeError(f"transport {self.name} is not started")
        return await self._handler(request)

    async def wait_calls(self, count: int = 1) -> None:
        """Return once `send` was called at least `count` times (wrap it in a timeout)."""
        while len(self.calls) < count:
            self._changed.clear()
            await self._changed.wait()

    async def wait_accepted(self, count: int = 1) -> None:
        """Return once at least `count` messages were accepted (wrap it in a timeout)."""
        while len(self.accepted) < count:
            self._changed.clear()
            await self._changed.wait()

    def chats(self) -> list[str]:
        """The chat of every accepted message, in order of acceptance."""
        return [sent.chat_id for sent in self.accepted]

    # -- the platform ------------------------------------------------------------------------

    def _deliver(self, chat_id: str, message: OutMessage, now: float) -> None:
        if self._closed:
            raise TransientDeliveryError(f"transport {self.name} is closed")
        if self.failures.get(chat_id):
            raise self.failures[chat_id].pop(0)
        if chat_id in self.blocked_chats:
            raise PermanentDeliveryError(f"Forbidden: bot was blocked in chat {chat_id}")
        self._admit(chat_id, message.is_group, now)
        self.accepted.append(SentMessage(now, chat_id, message))

    def _admit(self, chat_id: str, is_group: bool, now: float) -> None:
        """Count the send in every window it falls in, or refuse it with a 429."""
        limits = self.limits
        chat = self._per_chat.setdefault(chat_id, deque())
        windows = [(self._overall, limits.overall_per_s, 1.0), (chat, limits.per_chat_per_s, 1.0)]
        if is_group:
            windows.append((chat, limits.per_group_per_min, 60.0))
        longest_s = 60.0 if limits.per_group_per_min is not None else 1.0
        _prune(self._overall, now - 1.0 + limits.tolerance_s)
        _prune(chat, now - longest_s + limits.tolerance_s)
        for sent, limit, window_s in windows:
            if limit is None:
                continue
            recent = [t for t in sent if t > now - window_s + limits.tolerance_s]
            if len(recent) >= limit:
                self.rejected += 1
                frees_at = recent[-max(int(limit), 1)] + window_s - limits.tolerance_s
                retry_after_s = limits.retry_after_s
                if retry_after_s is None:  # in 10 ms steps, rounded up, as platforms answer
                    retry_after_s = math.ceil((frees_at - now) * 100) / 100
                raise RateLimitedError(retry_after_s)
        self._overall.append(now)
        chat.append(now)


def _prune(times: deque[float], older_than: float) -> None:
    while times and times[0] <= older_than:
        times.popleft()
