"""A stand-in `Coordinator` for tests: late, failing, or answering through another coordinator.

Like httpx's `MockTransport`, it lives beside the interface it fakes, so every test that needs a
misbehaving coordinator uses this one.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime

from intel.coordinator.base import Coordinator
from intel.lifecycle import NoResources
from intel.models import AgentReport, CandleSeries, Signal, SocialPost

__all__ = ["FakeCoordinator"]


class FakeCoordinator(NoResources):
    """Waits `delay_s`, then raises `error` if given, else answers as `inner` under its own name.

    `calls` counts decisions asked for, `deciding` is set once one began; `cancelled` tells
    whether a wait was cut short.
    """

    def __init__(
        self,
        inner: Coordinator,
        *,
        name: str = "fake",
        delay_s: float = 0.0,
        error: Exception | None = None,
    ) -> None:
        self.name = name
        self._inner = inner
        self._delay_s = delay_s
        self._error = error
        self.calls = 0
        self.deciding = asyncio.Event()
        self.cancelled = False

    async def decide(
        self,
        symbol: str,
        as_of: datetime,
        reports: Mapping[str, AgentReport],
        candles: CandleSeries,
        created_at: datetime,
        *,
        posts: Sequence[SocialPost] = (),
    ) -> Signal:
        self.calls += 1
        self.deciding.set()
        try:
            await asyncio.sleep(self._delay_s)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self._error is not None:
            raise self._error
        signal = await self._inner.decide(symbol, as_of, reports, candles, created_at, posts=posts)
        return dataclasses.replace(signal, coordinator=self.name)
