"""LLM proposes, rules bound: the one place that decides what of an LLM's answer stands.

Given the rules' signal (whatever confidence it carries, calibrated or not) and the confidence the
rules give a HOLD on the same assessment:

    action      the rules' action, or HOLD; anything else becomes the rules' action
    confidence  within [rules − confidence_drop_max, rules] (it may lower, never raise);
                a step down to HOLD takes the rules' HOLD confidence instead
    size        never more aggressive than the rules' (a HOLD: conservative, as the rules size it)
    timeframe   within [timeframe_min_h, timeframe_max_h]

Every change is recorded as a clamp: a short sentence saying what was asked and what stands.
"""

from __future__ import annotations

from dataclasses import dataclass

from intel.config import LlmBoundsConfig
from intel.coordinator.reply import Proposal
from intel.models import Action, PositionSize, Signal

__all__ = ["Bounded", "apply_bounds"]

_SIZE_ORDER = (PositionSize.CONSERVATIVE, PositionSize.MODERATE, PositionSize.AGGRESSIVE)


@dataclass(frozen=True, slots=True)
class Bounded:
    """The proposal's decision fields after the bounds, and the clamps that changed them."""

    action: Action
    confidence: int
    timeframe_hours: int
    position_size: PositionSize
    clamps: tuple[str, ...]


def apply_bounds(
    rules: Signal, hold_confidence: int, proposal: Proposal, bounds: LlmBoundsConfig
) -> Bounded:
    """`proposal` bounded by the rules' signal `rules` (see the module docstring)."""
    clamps: list[str] = []
    action = _bounded_action(rules.action, Action(proposal.action), clamps)
    if action is Action.HOLD and rules.action is not Action.HOLD:
        confidence = hold_confidence  # the rules' own confidence for a HOLD on this assessment
        if proposal.confidence != confidence:
            clamps.append(f"confidence {proposal.confidence} → {confidence}: a step down to HOLD")
        size = PositionSize.CONSERVATIVE
        if proposal.position_size != size.value:
            clamps.append(f"size {proposal.position_size} → {size.value}: a HOLD")
    else:
        confidence = _bounded_confidence(rules.confidence, proposal.confidence, bounds, clamps)
        size = _bounded_size(rules.position_size, PositionSize(proposal.position_size), clamps)
    timeframe = _bounded_timeframe(proposal.timeframe_hours, bounds, clamps)
    return Bounded(action, confidence, timeframe, size, tuple(clamps))


def _bounded_action(rules: Action, proposed: Action, clamps: list[str]) -> Action:
    if proposed in (rules, Action.HOLD):
        return proposed
    clamps.append(f"action {proposed.value} → {rules.value}: only the rules' call or HOLD")
    return rules


def _bounded_confidence(
    rules: int, proposed: int, bounds: LlmBoundsConfig, clamps: list[str]
) -> int:
    floor = max(0, rules - bounds.confidence_drop_max)
    bounded = min(rules, max(floor, proposed))
    if bounded != proposed:
        clamps.append(f"confidence {proposed} → {bounded}: allowed {floor}–{rules}")
    return bounded


def _bounded_size(rules: PositionSize, proposed: PositionSize, clamps: list[str]) -> PositionSize:
    if _SIZE_ORDER.index(proposed) <= _SIZE_ORDER.index(rules):
        return proposed
    clamps.append(f"size {proposed.value} → {rules.value}: never above the rules'")
    return rules


def _bounded_timeframe(proposed: int, bounds: LlmBoundsConfig, clamps: list[str]) -> int:
    bounded = min(bounds.timeframe_max_h, max(bounds.timeframe_min_h, proposed))
    if bounded != proposed:
        clamps.append(
            f"timeframe {proposed} h → {bounded} h: allowed "
            f"{bounds.timeframe_min_h}–{bounds.timeframe_max_h} h"
        )
    return bounded
