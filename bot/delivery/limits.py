"""Per-transport pacing: overall per second, per chat per second, per group per minute, and a
pause of the whole transport after the platform answers 429.

Every limit is shaped so that no sliding window sees more than the limit: a small burst
(absorbing timer jitter) and then an even pace.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from functools import partial

from aiolimiter import AsyncLimiter
from cachetools import LRUCache

from bot.config import TransportLimits

__all__ = ["ChatPacer", "TransportThrottle", "window_limiter"]

# A burst of 1% of the limit (plus the one send always allowed) absorbs timer jitter: with a
# bucket of one, every late wake-up is lost throughput. Below 100 sends per window it is one.
_BURST_FRACTION = 0.01


def _shape(limit: float, window_s: float) -> tuple[int, float]:
    """(burst, interval) such that burst + window/interval = limit + 1.

    A bucket of `burst` refilled once per interval admits fewer than burst + W/interval sends in
    any window W, so no window of `window_s` sees more than `limit` (rounded down) sends.
    """
    if limit < 1:  # e.g. 0.5 per second is 1 per 2 seconds
        window_s, limit = window_s / limit, 1.0
    whole = math.floor(limit)
    burst = 1 + math.floor(whole * _BURST_FRACTION)
    return burst, window_s / (whole + 1 - burst)


def window_limiter(limit: float, window_s: float) -> AsyncLimiter:
    """An aiolimiter bucket that keeps every sliding window of `window_s` within `limit`."""
    burst, interval_s = _shape(limit, window_s)
    return AsyncLimiter(max_rate=burst, time_period=burst * interval_s)


class ChatPacer:
    """The same shape as `window_limiter` for one chat (GCRA), but checked and taken separately.

    A chat's turn must be counted when its message leaves, after the wait for the overall
    limiter; aiolimiter can only take a turn while waiting for it, which let the overall wait
    eat into the per-chat spacing.
    """

    __slots__ = ("_interval_s", "_next_s", "_tolerance_s")

    def __init__(self, limit: float, window_s: float) -> None:
        burst, self._interval_s = _shape(limit, window_s)
        self._tolerance_s = (burst - 1) * self._interval_s
        self._next_s = -math.inf  # the theoretical time of the next send at the steady pace

    def wait_s(self, now: float) -> float:
        """How long until a send conforms (0: now)."""
        return max(0.0, self._next_s - self._tolerance_s - now)

    def take(self, now: float) -> Callable[[], None]:
        """Take a turn; the function returned gives it back (the platform refused the send)."""
        before = self._next_s
        after = self._next_s = max(before, now) + self._interval_s

        def give_back() -> None:
            if self._next_s == after:  # no turn taken since: as if this one never happened
                self._next_s = before

        return give_back


class TransportThrottle:
    """Everything that paces one transport; per-chat pacers live in a bounded LRU cache."""

    def __init__(self, limits: TransportLimits, *, chat_cache_size: int = 10_000) -> None:
        self._limits = limits
        self._overall = window_limiter(limits.overall_per_s, 1.0)
        self._per_chat: LRUCache[str, ChatPacer] = LRUCache(maxsize=chat_cache_size)
        self._per_group: LRUCache[str, ChatPacer] = LRUCache(maxsize=chat_cache_size)
        self._resume_at = 0.0  # event-loop time before which nothing is sent

    def pause(self, seconds: float) -> None:
        """Hold every send on this transport for `seconds` (the platform's retry_after)."""
        now = asyncio.get_running_loop().time()
        self._resume_at = max(self._resume_at, now + max(seconds, 0.0))

    async def wait_turn(self, chat_id: str, is_group: bool) -> Callable[[], None]:
        """Return when one message may go to `chat_id` now; its turn is taken. Call the function
        returned if the platform refused the message (a 429): a refused send does not count."""
        loop = asyncio.get_running_loop()
        pacers = [self._pacer(self._per_chat, chat_id, self._limits.per_chat_per_s, 1.0)]
        if is_group:
            pacers.append(
                self._pacer(self._per_group, chat_id, self._limits.per_group_per_min, 60.0)
            )
        while True:
            now = loop.time()
            delay = max(self._resume_at - now, *(p.wait_s(now) for p in pacers))
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            await self._overall.acquire()
            # The overall wait may have let a pause begin, or another row to this chat go first.
            now = loop.time()
            if now >= self._resume_at and not any(p.wait_s(now) for p in pacers):
                return partial(_call_each, [pacer.take(now) for pacer in pacers])

    @staticmethod
    def _pacer(
        cache: LRUCache[str, ChatPacer], chat_id: str, limit: float, window_s: float
    ) -> ChatPacer:
        pacer = cache.get(chat_id)
        if pacer is None:
            pacer = cache[chat_id] = ChatPacer(limit, window_s)
        return pacer


def _call_each(functions: Sequence[Callable[[], None]]) -> None:
    for function in functions:
        function()
