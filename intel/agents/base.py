"""The agent contract, written once.

Required: a `name` (the key of its report in the Signal: "whales", "orderbook", "sentiment") and
`async analyze(snapshot) -> AgentReport`. An agent reads only the domain types in the snapshot,
never a source or the network; when its modality is `Unavailable` it returns an unavailable report
carrying that reason and age, instead of raising. It does not time itself out: the pipeline does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from intel.models import AgentReport, MarketSnapshot, Unavailable

__all__ = ["Agent", "report_unavailable"]


class Agent(Protocol):
    name: str

    async def analyze(self, snapshot: MarketSnapshot) -> AgentReport: ...


def report_unavailable(agent: str, missing: Unavailable, now: datetime) -> AgentReport:
    return AgentReport.unavailable(agent, missing.reason, last_seen=missing.last_seen, now=now)
