"""Telegram's overall and per-group limits for python-telegram-bot, through its public
`BaseRateLimiter` interface: every Bot API call that names a chat takes a turn from the overall
bucket (and a group's from that group's), and a 429 pauses every call for its retry_after.

Why not PTB's `AIORateLimiter`: it takes a call's turn first and waits out a pause after, so
the calls whose turns came while a 429 was on its way back all leave together when the pause
ends, over the limit, and draw the next 429 (measured in benchmarks/telegram_fanout.py, 600
chats x 3: a burst of about 30 calls and a 429 every 1.5-1.8 s, each pausing all sends for a
second; 1.35-1.49x the floor). Here a turn taken while a pause began is void and taken again
after it, so calls leave a pause at the paced rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any

import structlog
from aiolimiter import AsyncLimiter
from cachetools import LRUCache
from telegram._utils.types import JSONDict
from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

from bot.config import TransportLimits
from bot.delivery.limits import window_limiter

__all__ = ["PausingRateLimiter"]

Answer = bool | JSONDict | list[JSONDict]
# Telegram counts a pause from its answer; the call resumes a little after, as PTB's does.
_PAUSE_MARGIN_S = 0.1

log = structlog.get_logger(__name__)


class PausingRateLimiter(BaseRateLimiter[int]):
    """Overall and per-group buckets shaped as `window_limiter` shapes them (no sliding window
    over the limit), and one pause for every call after a 429; a call is retried up to
    `max_retries` times (a call's own `rate_limit_args` may say otherwise)."""

    def __init__(self, limits: TransportLimits, max_retries: int) -> None:
        self._overall = window_limiter(limits.overall_per_s, 1.0)
        self._per_group_per_min = limits.per_group_per_min
        self._groups: LRUCache[int | str, AsyncLimiter] = LRUCache(maxsize=10_000)
        self._max_retries = max_retries
        self._running = asyncio.Event()  # cleared while a 429 pauses every call
        self._running.set()
        self._paused_until = 0.0

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, Answer]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Answer:
        """Call once this call's turns come; on a 429, pause every call and try again."""
        retries = self._max_retries if rate_limit_args is None else rate_limit_args
        chat_id = data.get("chat_id")
        for attempt in range(retries + 1):
            await self._turn(chat_id)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                if attempt == retries:
                    raise
                log.info("telegram_flood_pause", endpoint=endpoint, retry_after=str(exc))
                await self._pause(_seconds(exc.retry_after) + _PAUSE_MARGIN_S)
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _turn(self, chat_id: object) -> None:
        """Wait for a turn from every bucket the call counts against, none of it in a pause."""
        if chat_id is None:  # getMe, answerCallbackQuery, …: no chat, no message limit
            await self._running.wait()
            return
        group = self._group(chat_id)
        while True:
            await self._running.wait()
            if group is not None:
                await group.acquire()
            await self._overall.acquire()
            if self._running.is_set():
                return
            # A pause began while this call waited: its turn would leave with the pause's
            # backlog, all at once. Void; take another once the pause is over.

    def _group(self, chat_id: object) -> AsyncLimiter | None:
        """A group's or channel's bucket (negative ids, or @username); None for a user."""
        key: int | str
        try:
            key = int(str(chat_id))
        except ValueError:
            key = str(chat_id)  # "@channelname"
        if isinstance(key, int) and key > 0:
            return None
        limiter = self._groups.get(key)
        if limiter is None:
            limiter = self._groups[key] = window_limiter(self._per_group_per_min, 60.0)
        return limiter

    async def _pause(self, seconds: float) -> None:
        """Hold every call until `seconds` from now (or a later pause's end)."""
        loop = asyncio.get_running_loop()
        until = self._paused_until = max(self._paused_until, loop.time() + seconds)
        self._running.clear()
        try:
            await asyncio.sleep(until - loop.time())
        finally:
            if self._paused_until == until:  # else a later pause ends it, when it is over
                self._running.set()


def _seconds(retry_after: timedelta | float) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)
