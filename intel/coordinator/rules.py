"""The deterministic rules coordinator: agent reports + candles in, Signal out.

    retail mood  = the sentiment report's score (Reddit and Fear & Greed, −100..+100)
    divergence   = whale accumulation score − retail mood   (−200..+200)
    BUY          = whales accumulate (score ≥ threshold) while retail is fearful (mood ≤ −threshold)
    SELL         = whales distribute (score ≤ −threshold) while retail is greedy (mood ≥ threshold)
    HOLD         = anything else
|divergence| > high_divergence gives high confidence (≥ 70); the order book confirms (+) or leans
against (−); each missing or degraded modality lowers confidence. Timeframe and sizing follow
confidence and hourly volatility. Every constant is a `CoordinatorConfig` key. The LLM coordinator
is bounded by these same rules.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import numpy as np

from intel.calibration import Calibrator
from intel.config import CoordinatorConfig
from intel.coordinator.thesis import key_drivers, risk_factors, write_thesis
from intel.lifecycle import NoResources
from intel.models import (
    Action,
    AgentReport,
    CandleSeries,
    PositionSize,
    ReportStatus,
    Signal,
    SocialPost,
)

__all__ = ["Assessment", "RulesCoordinator", "hourly_volatility_pct"]

AGENTS = ("whales", "orderbook", "sentiment")

RetailTone = Literal["fearful", "greedy", "neutral"]
DivergenceLevel = Literal["high", "moderate", "low"]


@dataclass(frozen=True, slots=True)
class Assessment:
    """The rules' intermediate figures, shared by the thesis writer and (later) the LLM bounds."""

    action: Action
    whale_score: float | None
    retail_mood: float | None
    orderbook_score: float | None
    divergence: float
    high_divergence: bool
    orderbook_effect: int
    missing: tuple[str, ...]
    degraded: tuple[str, ...]
    volatility_pct: float
    high_volatility: bool
    retail_tone: RetailTone  # the mood against the configured threshold, as the thesis words it
    divergence_level: DivergenceLevel
    whale_threshold: float  # the configured thresholds, so the thesis can say which side fell short
    mood_threshold: float


class RulesCoordinator(NoResources):
    """The `Coordinator` needing no network or credentials; the pipeline's fallback too."""

    name = "rules"

    def __init__(self, config: CoordinatorConfig, calibrator: Calibrator | None = None) -> None:
        self._config = config
        self._calibrator = calibrator

    def calibration_notes(
        self, signal: Signal, reports: Mapping[str, AgentReport]
    ) -> tuple[str, ...]:
        """What the calibration says of `signal` as made by its own coordinator (the LLM's is
        outside the map's scope: fitted on the rules); () without calibration or for a HOLD."""
        if self._calibrator is None or signal.raw_confidence is None:
            return ()
        raw = signal.raw_confidence
        return self._calibrator.calibrate(signal.action, raw, signal.coordinator, reports)[1]

    async def decide(
        self,
        symbol: str,
        as_of: datetime,
        reports: Mapping[str, AgentReport],
        candles: CandleSeries,
        created_at: datetime,
        *,
        posts: Sequence[SocialPost] = (),  # the rules read only the sentiment agent's figures
    ) -> Signal:
        assessment = self.assess(reports, candles)
        raw = self._confidence(assessment)
        shown, raw_confidence = raw, None
        notes: tuple[str, ...] = ()
        timeframe_hours = self._timeframe(raw, assessment.high_volatility)
        position_size = self._position_size(assessment, raw)
        if self._calibrator is not None:
            # A HOLD keeps its value (no bet to calibrate); its raw_confidence marks it as made
            # under calibration, so surfaces never show it as a probability.
            raw_confidence = raw
            if assessment.action is not Action.HOLD:
                shown, notes = self._calibrator.calibrate(
                    assessment.action, raw, self.name, reports
                )
                timeframe_hours, position_size = self._calibrated_terms(assessment, raw, shown)
        return Signal(
            symbol=symbol,
            action=assessment.action,
            confidence=shown,
            raw_confidence=raw_confidence,
            notes=notes,
            thesis=write_thesis(assessment, reports),
            risk_factors=tuple(risk_factors(assessment, reports)),
            timeframe_hours=timeframe_hours,
            position_size=position_size,
            divergence=round(assessment.divergence, 1),
            high_divergence=assessment.high_divergence,
            coordinator=self.name,
            clamps=(),
            as_of=as_of,
            created_at=created_at,
            reports=reports,
            price=float(candles.close[-1]),
            key_drivers=tuple(key_drivers(assessment)),
        )

    def hold_confidence(self, assessment: Assessment) -> int:
        """The confidence the rules give a HOLD on `assessment` (an LLM's step down takes it)."""
        hold = dataclasses.replace(assessment, action=Action.HOLD, orderbook_effect=0)
        return self._confidence(hold)

    def assess(self, reports: Mapping[str, AgentReport], candles: CandleSeries) -> Assessment:
        cfg = self._config
        whale = _score(reports.get("whales"))
        mood = _score(reports.get("sentiment"))
        book = _score(reports.get("orderbook"))
        divergence = (whale or 0.0) - (mood or 0.0)
        action = Action.HOLD
        if whale is not None and mood is not None:
            if whale >= cfg.whale_threshold and mood <= -cfg.mood_threshold:
                action = Action.BUY
            elif whale <= -cfg.whale_threshold and mood >= cfg.mood_threshold:
                action = Action.SELL
        volatility = hourly_volatility_pct(candles)
        return Assessment(
            action=action,
            whale_score=whale,
            retail_mood=mood,
            orderbook_score=book,
            divergence=divergence,
            high_divergence=abs(divergence) > cfg.high_divergence,
            orderbook_effect=self._orderbook_effect(action, book),
            missing=tuple(n for n in AGENTS if _status(reports.get(n)) is ReportStatus.UNAVAILABLE),
            degraded=tuple(n for n in AGENTS if _status(reports.get(n)) is ReportStatus.DEGRADED),
            volatility_pct=volatility,
            high_volatility=volatility > cfg.high_volatility_pct,
            retail_tone=self._retail_tone(mood),
            divergence_level=self._divergence_level(divergence),
            whale_threshold=cfg.whale_threshold,
            mood_threshold=cfg.mood_threshold,
        )

    def _divergence_level(self, divergence: float) -> DivergenceLevel:
        if abs(divergence) > self._config.high_divergence:
            return "high"
        return "moderate" if abs(divergence) > self._config.moderate_divergence else "low"

    def _retail_tone(self, mood: float | None) -> RetailTone:
        if mood is not None and mood <= -self._config.mood_threshold:
            return "fearful"
        if mood is not None and mood >= self._config.mood_threshold:
            return "greedy"
        return "neutral"

    def _orderbook_effect(self, action: Action, book: float | None) -> int:
        """+1 the book confirms the call, −1 it leans against, 0 neutral or no call."""
        if book is None or action is Action.HOLD:
            return 0
        aligned = book if action is Action.BUY else -book
        if aligned >= self._config.orderbook_confirm:
            return 1
        if aligned <= -self._config.orderbook_confirm:
            return -1
        return 0

    def _confidence(self, a: Assessment) -> int:
        cfg = self._config
        divergence = abs(a.divergence)
        if a.action is Action.HOLD:
            capped = min(divergence, cfg.hold_divergence_cap)
            base = cfg.hold_confidence_base - cfg.hold_confidence_per_divergence * capped
        else:
            call = cfg.call_confidence_base + cfg.call_confidence_per_divergence * divergence
            base = min(cfg.call_confidence_max, call)
        if a.orderbook_effect > 0:
            base += cfg.orderbook_confirm_bonus
        elif a.orderbook_effect < 0:
            base -= cfg.orderbook_against_penalty
        base -= cfg.missing_penalty * len(a.missing) + cfg.degraded_penalty * len(a.degraded)
        return int(max(0, min(100, round(base))))

    def _calibrated_terms(
        self, a: Assessment, raw: int, calibrated: int
    ) -> tuple[int, PositionSize]:
        """Timeframe and size of a calibrated call, by the map's cut-offs (the configured ones
        re-expressed on the calibrated scale when the map was fitted). With no demonstrated
        edge the timeframe still follows the raw confidence (a horizon, not a claim) and the
        size is conservative."""
        assert self._calibrator is not None
        calibration = self._calibrator.map
        cut = calibration.cutoffs
        if calibration.flat or not cut:
            return self._timeframe(raw, a.high_volatility), PositionSize.CONSERVATIVE
        timeframe = self._timeframe(
            calibrated, a.high_volatility, cut["timeframe_24h"], cut["timeframe_12h"]
        )
        size = self._position_size(a, calibrated, cut["moderate_size"], cut["aggressive_size"])
        return timeframe, size

    def _timeframe(
        self,
        confidence: int,
        high_volatility: bool,
        cut_24h: int | None = None,
        cut_12h: int | None = None,
    ) -> int:
        cfg = self._config
        if confidence >= (cfg.timeframe_24h_confidence if cut_24h is None else cut_24h):
            hours = 24
        else:
            at_12h = cfg.timeframe_12h_confidence if cut_12h is None else cut_12h
            hours = 12 if confidence >= at_12h else 6
        if high_volatility:
            hours //= 2
        return max(2, min(48, hours))

    def _position_size(
        self,
        a: Assessment,
        confidence: int,
        cut_moderate: int | None = None,
        cut_aggressive: int | None = None,
    ) -> PositionSize:
        cfg = self._config
        moderate = cfg.moderate_size_confidence if cut_moderate is None else cut_moderate
        if a.action is Action.HOLD or confidence < moderate:
            return PositionSize.CONSERVATIVE
        calm = not a.high_volatility and not a.missing
        aggressive = cfg.aggressive_size_confidence if cut_aggressive is None else cut_aggressive
        if confidence >= aggressive and calm:
            return PositionSize.AGGRESSIVE
        return PositionSize.MODERATE


def hourly_volatility_pct(candles: CandleSeries, hours: int = 24) -> float:
    """Standard deviation of the last `hours` hourly log returns, in percent."""
    closes = candles.close[-(hours + 1) :]
    if len(closes) < 3:
        return 0.0
    returns = np.diff(np.log(closes))
    return float(np.std(returns, ddof=1) * 100.0)


def _score(report: AgentReport | None) -> float | None:
    if report is None or report.score is None or math.isnan(report.score):
        return None
    return report.score


def _status(report: AgentReport | None) -> ReportStatus:
    return ReportStatus.UNAVAILABLE if report is None else report.status
