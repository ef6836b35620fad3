"""A stand-in for a modality nobody can serve here: every call raises `NotConfiguredError`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NoReturn

from intel.errors import NotConfiguredError
from intel.lifecycle import NoResources
from intel.models import CandleSeries, FearGreedReading, OrderBookHistory, SocialPost, WhaleFlows

__all__ = ["NotConfiguredSource"]


class NotConfiguredSource(NoResources):
    """Fits every source protocol; `reason` is what the report and `status` show."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def _refuse(self) -> NoReturn:
        raise NotConfiguredError(self.reason)

    async def coverage(self, symbol: str) -> tuple[datetime, datetime]:
        self._refuse()

    async def candles(self, symbol: str, now: datetime, count: int) -> CandleSeries:
        self._refuse()

    async def books(self, symbol: str, now: datetime, window_s: float) -> OrderBookHistory:
        self._refuse()

    async def flows(self, symbol: str, now: datetime, window_h: int) -> WhaleFlows:
        self._refuse()

    async def posts(self, symbol: str, now: datetime, window_h: int) -> Sequence[SocialPost]:
        self._refuse()

    async def latest(self, now: datetime) -> FearGreedReading:
        self._refuse()
