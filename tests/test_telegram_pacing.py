"""The Telegram rate limiter through PTB's rate-limiter interface: calls stand for Bot API
requests (the callback is what PTB would call), timed on the event loop's clock."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.config import TransportLimits
from bot.transports.telegram_pacing import PausingRateLimiter

FAST = 1e9  # a limit that never waits


class Calls:
    """Records when each call started; the first call of `flooded` answers 429 after `slow_s`."""

    def __init__(self, flooded: str | None = None, slow_s: float = 0.0, retry_s: float = 0.3):
        self.started: list[tuple[str, float]] = []
        self._flooded, self._slow_s, self._retry_s = flooded, slow_s, retry_s

    def callback(self, name: str) -> Any:
        async def call() -> bool:
            self.started.append((name, asyncio.get_running_loop().time()))
            if name == self._flooded:
                self._flooded = None  # only the first attempt is refused
                await asyncio.sleep(self._slow_s)
                raise RetryAfter(timedelta(seconds=self._retry_s))
            return True

        return call


async def run(limiter: PausingRateLimiter, calls: Calls, name: str, chat_id: str) -> Any:
    data = {"chat_id": chat_id}
    return await limiter.process_request(calls.callback(name), (), {}, "sendMessage", data, None)


async def test_calls_leave_a_pause_at_the_paced_rate_not_all_at_once():
    """20/s: a turn every 50 ms. The 429 arrives 0.12 s after call 0 was sent, and pauses all
    for 0.3 s (+0.1). Turns that came meanwhile are void: no call starts during the pause,
    and after it they start 50 ms apart, not together."""
    limiter = PausingRateLimiter(TransportLimits(overall_per_s=20, per_group_per_min=FAST), 3)
    calls = Calls(flooded="0", slow_s=0.12)
    loop = asyncio.get_running_loop()
    began = loop.time()
    results = await asyncio.gather(*(run(limiter, calls, str(n), str(n + 1)) for n in range(8)))
    assert results == [True] * 8
    starts = [at - began for _, at in calls.started]
    pause = (0.12, 0.12 + 0.3 + 0.1)
    assert not [at for at in starts if pause[0] + 0.01 < at < pause[1] - 0.01]
    after = sorted(at for at in starts if at >= pause[1] - 0.01)
    assert len(after) >= 5  # the refused call again, and those whose turns fell in the pause
    assert min(b - a for a, b in itertools.pairwise(after)) >= 0.05 - 0.01
    assert [name for name, _ in calls.started].count("0") == 2  # refused once, then sent


async def test_a_group_has_its_own_bucket_and_a_user_none():
    # 99 a minute: no burst (under 100), one every 60/99 s.
    limiter = PausingRateLimiter(TransportLimits(overall_per_s=FAST, per_group_per_min=99), 3)
    calls = Calls()
    await asyncio.gather(*(run(limiter, calls, f"g{n}", "-1001") for n in range(2)))
    await asyncio.gather(*(run(limiter, calls, f"u{n}", "42") for n in range(3)))
    (first, second), users = (
        [at for name, at in calls.started if name.startswith("g")],
        [at for name, at in calls.started if name.startswith("u")],
    )
    assert second - first >= 60 / 99 - 0.01
    assert max(users) - min(users) < 0.05


async def test_a_call_refused_more_often_than_it_may_retry_raises():
    limiter = PausingRateLimiter(TransportLimits(), max_retries=1)
    attempts = []

    async def refused() -> bool:
        attempts.append(1)
        raise RetryAfter(timedelta(seconds=0.05))

    with pytest.raises(RetryAfter):
        await limiter.process_request(refused, (), {}, "sendMessage", {"chat_id": 5}, None)
    assert len(attempts) == 2
