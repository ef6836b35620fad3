"""Whale agent: net exchange flow of large transfers in the window, read as an accumulation score
(coins leaving exchanges) or a distribution score (coins arriving to be sold)."""

from __future__ import annotations

from intel.agents.base import report_unavailable
from intel.config import WhalesAgentConfig
from intel.features import WhaleFeatures
from intel.models import AgentReport, MarketSnapshot, ReportStatus, Unavailable, WhaleFlows

__all__ = ["WhaleAgent"]


class WhaleAgent:
    name = "whales"

    def __init__(self, config: WhalesAgentConfig) -> None:
        self._config = config

    async def analyze(self, snapshot: MarketSnapshot) -> AgentReport:
        flows = snapshot.whales
        if isinstance(flows, Unavailable):
            return report_unavailable(self.name, flows, snapshot.as_of)
        features = _flow_features(flows)
        notes = [*flows.notes, f"data: {flows.credit}"]
        if features.transfer_count == 0:
            notes.insert(
                0, f"no whale transfers to or from exchanges in the last {features.window_h:g} h"
            )
        warming = flows.collected_h is not None and flows.collected_h < features.window_h
        return AgentReport(
            agent=self.name,
            status=ReportStatus.DEGRADED if warming else ReportStatus.OK,
            reason=(
                f"warming up: {flows.collected_h} h of {features.window_h:g} h collected"
                if warming
                else None
            ),
            score=self._accumulation_score(features),
            as_of=flows.as_of,
            age_s=(snapshot.as_of - flows.as_of).total_seconds(),
            features=features,
            notes=tuple(notes),
        )

    def _accumulation_score(self, features: WhaleFeatures) -> float:
        """100 × net / (gross + floor): the floor keeps one small transfer from reading as a
        strong signal; zero transfers read as 0."""
        gross = features.inflow_usd + features.outflow_usd
        denominator = gross + self._config.volume_floor_usd
        if denominator <= 0:
            return 0.0
        return max(-100.0, min(100.0, 100.0 * features.net_flow_usd / denominator))


def _flow_features(flows: WhaleFlows) -> WhaleFeatures:
    hours = flows.hours
    inflow = sum((hour.inflow_usd for hour in hours), 0.0)
    outflow = sum((hour.outflow_usd for hour in hours), 0.0)
    inflow_coins = [hour.inflow_coins for hour in hours if hour.inflow_coins is not None]
    outflow_coins = [hour.outflow_coins for hour in hours if hour.outflow_coins is not None]
    return WhaleFeatures(
        inflow_usd=inflow,
        outflow_usd=outflow,
        net_flow_usd=outflow - inflow,
        transfer_count=sum(hour.transfer_count for hour in hours),
        window_h=(flows.as_of - flows.window_start).total_seconds() / 3600.0,
        active_hours=len(hours),
        inflow_coins=sum(inflow_coins) if inflow_coins else None,
        outflow_coins=sum(outflow_coins) if outflow_coins else None,
    )
