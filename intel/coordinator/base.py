"""The coordinator interface: agent reports and candles in, one Signal out.

Required: `name` (the Signal's `coordinator` field) and `async decide(...)`, plus the `Lifecycle`
(an LLM coordinator opens its client in `start`). A coordinator need not guard its own deadline or
failures: the pipeline bounds `decide` with `pipeline.coordinator_timeout_s` and falls back to the
rules coordinator, noting why on the Signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from intel.lifecycle import Lifecycle
from intel.models import AgentReport, CandleSeries, Signal, SocialPost

__all__ = ["Coordinator"]


class Coordinator(Lifecycle, Protocol):
    name: str

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
        """The signal for `symbol` at market moment `as_of`, computed at `created_at`.

        `posts`: the snapshot's Reddit posts, untrusted text an LLM may quote as data."""
        ...
