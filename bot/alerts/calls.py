"""A symbol's steady call: the dwell and hysteresis that keep a call hovering at a threshold from
flipping the alerts (pure: the cycle stores the `CallState` this returns, with the signal).

Signals stay a pure function of the market snapshot; steadiness lives here, after the coordinator,
whichever coordinator produced the signal. Every cycle signal extends the run of its action or
starts a new one. A run that lasted `alerts.dwell_cycles` cycles in a row becomes the *steady*
call, which the alerts announce, provided the steady call before it has stood `min_hold_hours`
market hours (so an announced call is never taken back sooner). A call that flips back within the
dwell never becomes steady, so it is never announced. The steady call's confidence moves the same
way: only once it stood at least `confidence_step` above (or below) for `dwell_cycles` cycles.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from bot.config import AlertsConfig
from bot.storage.base import Call, CallState
from intel.models import Signal

__all__ = ["advance_call", "steady_changed"]


def advance_call(state: CallState | None, signal: Signal, rules: AlertsConfig) -> CallState:
    """The call state after the cycle computed `signal` (a cycle signal, in market-time order)."""
    at = signal.as_of
    if state is None or state.latest.action != signal.action:
        latest, run_cycles = Call(signal.action, signal.confidence, at), 1
    else:
        latest = replace(state.latest, confidence=signal.confidence)
        run_cycles = state.run_cycles + 1
    steady = state.steady if state is not None else None
    since = state.steady_since if state is not None else None
    if steady is None or steady.action != latest.action:
        if run_cycles >= rules.dwell_cycles and _held(since, at, rules):
            return CallState(latest, run_cycles, latest, at)  # the call turns
        return CallState(latest, run_cycles, steady, since)
    assert state is not None  # a steady call implies a state
    moved = _moved(state.moved_cycles, signal.confidence - steady.confidence, rules)
    if abs(moved) >= rules.dwell_cycles:
        steady = replace(steady, confidence=signal.confidence)
        moved = 0
    return CallState(latest, run_cycles, steady, since, moved)


def steady_changed(before: CallState | None, after: CallState) -> bool:
    """Whether the steady call (its action or its confidence) changed: the symbol's alert state
    moved (`StoredSignal.alerted`)."""
    return after.steady is not None and (before is None or before.steady != after.steady)


def _held(since: datetime | None, at: datetime, rules: AlertsConfig) -> bool:
    return since is None or at - since >= timedelta(hours=rules.min_hold_hours)


def _moved(moved_cycles: int, delta: int, rules: AlertsConfig) -> int:
    """Cycles in a row the confidence stood a step above (+) or below (-) the steady call's."""
    if delta >= rules.confidence_step:
        return moved_cycles + 1 if moved_cycles > 0 else 1
    if delta <= -rules.confidence_step:
        return moved_cycles - 1 if moved_cycles < 0 else -1
    return 0
