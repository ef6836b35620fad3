"""Every surface says what a calibrated confidence is: a BUY/SELL as its track record (with "no
demonstrated edge" when the calibration map shows none), a HOLD never as a probability, and the
tenths rounded half up (45 -> 5, not Python's banker's 4)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from matplotlib.text import Text

from bot.alerts.policy import channel_change, plan_deliveries
from bot.render.chart import build_figure
from bot.render.text import calls_right_in_10, confidence_label
from bot.storage.base import Call, CallState, DmState, Watcher
from intel.calibration import NO_EDGE_NOTE
from intel.models import Action, Signal
from tests.factories import make_signal, make_snapshot

FIRST_SEEN = datetime(2025, 10, 7, 0, tzinfo=UTC)
SEEN = " · call first seen 2025-10-07 00:00 UTC"
NO_EDGE_41 = "no demonstrated edge at this horizon (right about 4 times in 10 historically)"


def calibrated(action: Action, confidence: int, *, edge: bool) -> Signal:
    """A signal as the calibrated rules coordinator makes it (raw 80 mapped to `confidence`)."""
    signal = make_signal("BTC/USDT", action, confidence)
    notes = signal.notes if edge else (*signal.notes, NO_EDGE_NOTE)
    return dataclasses.replace(signal, raw_confidence=80, notes=notes)


@pytest.mark.parametrize(
    ("confidence", "tens"), [(0, 0), (44, 4), (45, 5), (55, 6), (65, 7), (95, 10), (100, 10)]
)
def test_tenths_round_half_up(confidence: int, tens: int) -> None:
    assert calls_right_in_10(confidence) == tens
    signal = calibrated(Action.SELL, confidence, edge=True)
    assert confidence_label(signal).startswith(f"right about {tens} times in 10 historically")


@pytest.mark.parametrize(
    ("signal", "said"),
    [
        (calibrated(Action.BUY, 41, edge=False), f"BUY call at confidence 41/100, {NO_EDGE_41}"),
        (
            calibrated(Action.SELL, 65, edge=True),
            "SELL call at confidence 65/100, right about 7 times in 10 historically",
        ),
        (make_signal("BTC/USDT", Action.BUY, 41), "BUY call at confidence 41/100"),  # raw score
    ],
)
def test_a_first_channel_alert_says_what_the_number_is(signal: Signal, said: str) -> None:
    steady = Call(signal.action, signal.confidence, FIRST_SEEN)
    assert channel_change(None, signal, steady, step=10) == said + SEEN


def test_a_change_to_hold_is_never_read_as_a_probability() -> None:
    hold = calibrated(Action.HOLD, 40, edge=False)
    told = DmState(Action.SELL, 60, 1)
    steady = Call(Action.HOLD, 40, FIRST_SEEN)
    assert channel_change(told, hold, steady, step=10) == (
        "SELL → HOLD at confidence 40/100 (how far from a call, not a probability)" + SEEN
    )


def test_a_confidence_move_says_what_the_new_number_is() -> None:
    sell = calibrated(Action.SELL, 75, edge=True)
    steady = Call(Action.SELL, 75, FIRST_SEEN)
    assert channel_change(DmState(Action.SELL, 60, 1), sell, steady, step=10) == (
        "SELL confidence up 15 to 75/100, right about 8 times in 10 historically"
    )


def dm_intro(signal: Signal, told: DmState | None, threshold: int) -> str:
    steady = Call(signal.action, signal.confidence, FIRST_SEEN)
    state = CallState(latest=steady, run_cycles=3, steady=steady, steady_since=FIRST_SEEN)
    watcher = Watcher("console", "u1", "dm1", threshold)
    key = ("console", "u1")
    deliveries = plan_deliveries(signal, state, (), {}, (watcher,), {key: told} if told else {}, 10)
    assert len(deliveries) == 1
    return deliveries[0].intro


def test_a_dm_names_the_threshold_and_what_the_confidence_means() -> None:
    assert dm_intro(calibrated(Action.BUY, 41, edge=False), None, 40) == (
        f"BTC/USDT: BUY call reached your alert threshold 40/100: confidence 41/100, {NO_EDGE_41}"
        + SEEN
    )
    ended = dm_intro(calibrated(Action.HOLD, 30, edge=False), DmState(Action.BUY, 41, 1), 40)
    assert ended == (
        "BTC/USDT: the BUY call you were told about has ended: now HOLD at confidence 30/100"
        " (how far from a call, not a probability)" + SEEN
    )


@pytest.mark.parametrize(
    ("signal", "marker"),
    [
        (calibrated(Action.BUY, 41, edge=False), "BUY 41/100\nno demonstrated edge"),
        (calibrated(Action.SELL, 65, edge=True), "SELL 65/100\nright ~7 times in 10"),
        (calibrated(Action.HOLD, 40, edge=False), "HOLD 40/100\nnot a probability"),
        (make_signal("BTC/USDT", Action.BUY, 41), "BUY 41/100"),
    ],
)
def test_the_chart_marker_says_what_the_number_is(signal: Signal, marker: str) -> None:
    figure = build_figure(signal, make_snapshot(signal.action))
    assert marker in [text.get_text() for text in figure.findobj(Text)]
