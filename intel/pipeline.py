"""One signal cycle: sources gathered concurrently, agents run concurrently, each with a timeout.

A failing source or agent yields a Signal with that modality unavailable and the reason: never a
crash, never a silent omission; the sources are gathered within `pipeline.overall_deadline_s`.
Only missing price candles make a signal impossible. The coordinator runs under an outer deadline;
if it fails or is late, the rules decide and the Signal's `notes` say why.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import structlog

from intel.agents.base import Agent
from intel.coordinator.base import Coordinator
from intel.coordinator.rules import RulesCoordinator
from intel.errors import NoSignalError
from intel.models import (
    AgentReport,
    CandleSeries,
    MarketSnapshot,
    Signal,
    SocialPost,
    Unavailable,
    WhaleFlows,
)
from intel.snapshot import SnapshotBuilder, SourceState
from intel.timeutil import utcnow

__all__ = ["SignalPipeline", "SignalResult"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class SignalResult:
    """The signal, the snapshot it was computed from (the chart draws the same data) and what
    its sources ask to be credited for (the footer)."""

    signal: Signal
    snapshot: MarketSnapshot
    credits: tuple[str, ...] = ()


class SignalPipeline:
    def __init__(
        self,
        builder: SnapshotBuilder,
        agents: Sequence[Agent],
        coordinator: Coordinator,
        fallback: RulesCoordinator,
        *,
        agent_timeout_s: float,
        coordinator_timeout_s: float,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._builder = builder
        self._agents = tuple(agents)
        self._coordinator = coordinator
        self._fallback = fallback
        self._agent_timeout_s = agent_timeout_s
        self._coordinator_timeout_s = coordinator_timeout_s
        self._clock = clock

    def source_health(self) -> dict[str, SourceState]:
        return self._builder.source_health()

    def credits(self) -> tuple[str, ...]:
        return self._builder.credits()

    async def probe(self, symbol: str, now: datetime) -> MarketSnapshot:
        """Fetch every source for `symbol` at `now` (updates health) without running agents."""
        return await self._builder.build(symbol, now)

    async def run(
        self, symbol: str, now: datetime, *, deadline: float | None = None
    ) -> SignalResult:
        snapshot = await self._builder.build(symbol, now, deadline=deadline)
        if isinstance(snapshot.candles, Unavailable):
            raise NoSignalError(f"no signal for {symbol}: {snapshot.candles.reason}")
        reports = await asyncio.gather(*(self._run_agent(a, snapshot) for a in self._agents))
        posts = () if isinstance(snapshot.posts, Unavailable) else snapshot.posts
        signal = await self._decide(
            symbol, now, {r.agent: r for r in reports}, snapshot.candles, posts
        )
        if isinstance(snapshot.whales, WhaleFlows) and snapshot.whales.notes:
            # How the flows were made (BTC standing in for another chain) is the signal's to say.
            signal = dataclasses.replace(signal, notes=(*signal.notes, *snapshot.whales.notes))
        credits = self._builder.credits(snapshot)  # only the sources whose data it used
        return SignalResult(signal=signal, snapshot=snapshot, credits=credits)

    async def _decide(
        self,
        symbol: str,
        now: datetime,
        reports: Mapping[str, AgentReport],
        candles: CandleSeries,
        posts: Sequence[SocialPost],
    ) -> Signal:
        """The coordinator's signal, or the rules' with a note when it fails or is late."""
        coordinator = self._coordinator
        created_at = self._clock()
        try:
            return await asyncio.wait_for(
                coordinator.decide(symbol, now, reports, candles, created_at, posts=posts),
                timeout=self._coordinator_timeout_s,
            )
        except TimeoutError:
            why = f"did not answer within {self._coordinator_timeout_s:g} s"
        except Exception as exc:  # the coordinator's failure must not cost the signal
            log.exception("coordinator_failed", coordinator=coordinator.name, symbol=symbol)
            why = f"failed ({type(exc).__name__})"
        log.warning("coordinator_fallback", coordinator=coordinator.name, symbol=symbol, why=why)
        signal = await self._fallback.decide(symbol, now, reports, candles, created_at)
        note = f"Fell back to the rules: the {coordinator.name} coordinator {why}"
        return dataclasses.replace(signal, notes=(*signal.notes, note))

    async def _run_agent(self, agent: Agent, snapshot: MarketSnapshot) -> AgentReport:
        try:
            return await asyncio.wait_for(agent.analyze(snapshot), timeout=self._agent_timeout_s)
        except TimeoutError:
            reason = f"{agent.name} agent timed out after {self._agent_timeout_s:g} s"
        except Exception as exc:  # one agent's bug must not take the others down
            log.exception("agent_failed", agent=agent.name, symbol=snapshot.symbol)
            reason = f"{agent.name} agent failed: {type(exc).__name__}: {exc}"
        return AgentReport.unavailable(agent.name, reason)
