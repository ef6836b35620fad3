"""The one definition of "right": entry at the next bar's open, exit at as_of + timeframe, net of
round-trip fees; pending past the market clock, and nothing recorded after the clock is read."""

from __future__ import annotations

import csv
import dataclasses
import gzip
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from intel.models import Action, CandleSeries
from intel.outcome import OutcomeStatus, score_signal, visible_candles
from intel.sources.replay_candles import ReplayCandleSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from tests.factories import make_signal

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def candles(opens: list[float], closes: list[float], start: datetime = T0) -> CandleSeries:
    n = len(opens)
    first_ms = int(start.timestamp() * 1000)
    o, c = np.array(opens, dtype=float), np.array(closes, dtype=float)
    return CandleSeries(
        symbol="BTC/USDT",
        interval_s=3600,
        open_time_ms=first_ms + np.arange(n, dtype=np.int64) * 3_600_000,
        open=o,
        high=np.maximum(o, c),
        low=np.minimum(o, c),
        close=c,
        volume=np.ones(n),
    )


def call(action: Action, as_of: datetime, hours: int):
    return dataclasses.replace(make_signal(action=action), as_of=as_of, timeframe_hours=hours)


# Bars open at T0 + k h. A call at T0 + 1 h enters at bar 1's open (100) and, with 2 h, exits at
# the close of bar 2 (the bar closing at T0 + 3 h).
OPENS = [90.0, 100.0, 101.0, 102.0, 103.0, 104.0]


@pytest.mark.parametrize(
    ("action", "exit_close", "status", "net"),
    [
        (Action.BUY, 100.3, OutcomeStatus.RIGHT, 0.003 - 0.002),
        (Action.BUY, 100.1, OutcomeStatus.WRONG, 0.001 - 0.002),  # up, but less than the fees
        (Action.SELL, 99.7, OutcomeStatus.RIGHT, 0.003 - 0.002),
        (Action.SELL, 99.9, OutcomeStatus.WRONG, 0.001 - 0.002),
        (Action.SELL, 100.5, OutcomeStatus.WRONG, -0.005 - 0.002),
    ],
)
def test_right_means_beyond_the_round_trip_fees(action, exit_close, status, net):
    series = candles(OPENS, [95.0, 100.2, exit_close, 103.0, 104.0, 105.0])
    outcome = score_signal(call(action, T0 + timedelta(hours=1), 2), series, T0 + timedelta(days=1))
    assert outcome.status is status
    assert outcome.entry_price == 100.0
    assert outcome.entry_time == T0 + timedelta(hours=1)
    assert outcome.exit_price == exit_close
    assert outcome.exit_time == T0 + timedelta(hours=3)
    assert outcome.net_return == pytest.approx(net)


def test_entry_is_never_the_bar_that_produced_the_signal():
    # as_of T0 + 1 h 30 min: the next bar opens at T0 + 2 h (101), not the one open at T0 + 1 h.
    series = candles(OPENS, [95.0, 100.2, 101.5, 103.0, 104.0, 105.0])
    as_of = T0 + timedelta(hours=1, minutes=30)
    outcome = score_signal(call(Action.BUY, as_of, 2), series, T0 + timedelta(days=1))
    assert outcome.entry_price == 101.0
    assert outcome.entry_time == T0 + timedelta(hours=2)
    # exit at T0 + 3 h 30 min: the last bar closed by then closed at T0 + 3 h (101.5)
    assert outcome.exit_price == 101.5


def test_hold_is_not_a_call():
    series = candles(OPENS, OPENS)
    outcome = score_signal(call(Action.HOLD, T0, 2), series, T0 + timedelta(days=1))
    assert outcome.status is OutcomeStatus.NOT_A_CALL


def test_a_call_past_the_market_clock_is_pending_and_reads_nothing_after_it():
    closes = [95.0, 100.2, 100.6, 103.0, 104.0, 105.0]
    as_of = T0 + timedelta(hours=1)
    clock = T0 + timedelta(hours=3)  # the exit moment exactly: scored
    honest = score_signal(call(Action.BUY, as_of, 2), candles(OPENS, closes), clock)
    # Bars after the clock replaced by nonsense: the outcome must not change.
    garbage = candles([*OPENS[:3], 1e9, 1e-9, np.nan], [*closes[:3], np.nan, 1e9, 0.0])
    assert score_signal(call(Action.BUY, as_of, 2), garbage, clock) == honest
    assert honest.status is OutcomeStatus.RIGHT
    early = clock - timedelta(minutes=1)
    pending = score_signal(call(Action.BUY, as_of, 2), candles(OPENS, closes), early)
    assert pending.status is OutcomeStatus.PENDING
    assert pending.net_return is None


def test_a_gap_in_the_candles_is_no_price():
    series = candles(OPENS, OPENS, start=T0 + timedelta(days=2))
    outcome = score_signal(call(Action.BUY, T0, 2), series, T0 + timedelta(days=5))
    assert outcome.status is OutcomeStatus.NO_PRICE


def test_visible_candles_are_those_closed_by_the_clock():
    series = candles(OPENS, OPENS)
    assert len(visible_candles(series, T0 + timedelta(hours=2, minutes=59))) == 2
    assert len(visible_candles(series, T0 + timedelta(hours=3))) == 3


def _recorded_rows(symbol: str) -> dict[int, tuple[float, float]]:
    """open_time_ms -> (open, close), read from the shipped CSV independently of the source."""
    path = DEFAULT_REPLAY_DIR / "candles" / f"{symbol.replace('/', '')}_1h.csv.gz"
    with gzip.open(path, "rt") as handle:
        return {
            int(float(row["open_time_ms"])): (float(row["open"]), float(row["close"]))
            for row in csv.DictReader(handle)
        }


def test_a_recorded_call_matches_the_shipped_prices():
    as_of = datetime(2025, 3, 10, 8, tzinfo=UTC)
    rows = _recorded_rows("BTC/USDT")
    entry_open = rows[int(as_of.timestamp() * 1000)][0]
    exit_close = rows[int((as_of + timedelta(hours=11)).timestamp() * 1000)][1]
    series = ReplayCandleSource(DEFAULT_REPLAY_DIR).history("BTC/USDT")
    outcome = score_signal(call(Action.SELL, as_of, 12), series, as_of + timedelta(days=2))
    expected = (entry_open - exit_close) / entry_open - 0.002
    assert outcome.net_return == pytest.approx(expected)
    assert (outcome.status is OutcomeStatus.RIGHT) == (expected > 0)
