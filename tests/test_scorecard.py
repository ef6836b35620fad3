"""The scorecard's figures against hand computations on hand-made candles and signals."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from intel.models import Action, CandleSeries
from intel.scorecard import (
    base_rate,
    brier_score,
    build_scorecard,
    confidence_bucket,
    reliability,
    wilson_interval,
)
from tests.factories import make_signal

T0 = datetime(2025, 1, 1, tzinfo=UTC)
H = timedelta(hours=1)


def rising_then_falling(n: int = 200) -> CandleSeries:
    """Each bar opens where the last closed; +1 % a bar for 100 bars, then −1 % a bar."""
    steps = np.where(np.arange(n) < 100, 1.01, 0.99)
    close = 100.0 * np.cumprod(steps)
    open_ = np.concatenate([[100.0], close[:-1]])
    return CandleSeries(
        symbol="BTC/USDT",
        interval_s=3600,
        open_time_ms=int(T0.timestamp() * 1000) + np.arange(n, dtype=np.int64) * 3_600_000,
        open=open_,
        high=np.maximum(open_, close),
        low=np.minimum(open_, close),
        close=close,
        volume=np.ones(n),
    )


def call(action: Action, hour: int, confidence: int = 60, hours: int = 4, symbol="BTC/USDT"):
    base = make_signal(symbol=symbol, action=action, confidence=confidence)
    return dataclasses.replace(base, as_of=T0 + hour * H, timeframe_hours=hours)


@pytest.mark.parametrize(("right", "count"), [(45, 100), (0, 10), (10, 10), (489, 1090)])
def test_wilson_interval_solves_its_defining_equation(right, count):
    # The Wilson bounds are the roots in π of (p − π)² = z² π (1 − π) / n.
    z, p = 1.959963984540054, right / count
    roots = np.roots([1 + z * z / count, -(2 * p + z * z / count), p * p])
    low, high = wilson_interval(right, count)
    assert (low, high) == pytest.approx(tuple(sorted(roots.real)), abs=1e-9)


def test_buckets_and_reliability_and_brier():
    assert confidence_bucket(69) == (60, 70)
    assert confidence_bucket(100) == (90, 100)
    bins = reliability([62, 68, 71, 75, 79], [True, False, True, True, False])
    assert [(b.low, b.count) for b in bins] == [(60, 2), (70, 3)]
    assert bins[0].mean_confidence == pytest.approx(0.65)
    assert bins[1].hit_rate == pytest.approx(2 / 3)
    assert brier_score([0.6, 0.7], [True, False]) == pytest.approx((0.16 + 0.49) / 2)
    assert brier_score([], []) is None


def test_base_rate_counts_every_hour_of_the_span():
    series = rising_then_falling()
    # By hand: a 4 h call at hour h enters at open[h] and leaves at close[h + 3], so its move is
    # 1.01^a · 0.99^b − 1 with a rising bars of the four. BUY right through h = 97 (three up, one
    # down: +1.98 %); at 98 two and two (−0.01 %) is wrong. SELL right from 99 (−1.99 %).
    rate = base_rate(series, T0 + 90 * H, T0 + 109 * H, 4, Action.BUY, T0 + 300 * H)
    assert (rate.right, rate.count) == (8, 20)
    sell = base_rate(series, T0 + 90 * H, T0 + 109 * H, 4, Action.SELL, T0 + 300 * H)
    assert (sell.right, sell.count) == (11, 20)
    # Calls whose exit is after the clock are left out, not counted wrong.
    early = base_rate(series, T0 + 90 * H, T0 + 109 * H, 4, Action.BUY, T0 + 100 * H)
    assert (early.right, early.count) == (7, 7)


def test_scorecard_counts_holds_pending_and_overlaps():
    series = rising_then_falling()
    signals = [
        call(Action.BUY, 10, confidence=72),  # right, window 10..14
        call(Action.BUY, 12, confidence=65),  # right, overlaps the first
        call(Action.BUY, 14, confidence=60),  # right, enters as the first exits; overlaps the 2nd
        call(Action.SELL, 20, confidence=55),  # wrong (rising), window 20..24
        call(Action.SELL, 120, confidence=58),  # right (falling)
        call(Action.HOLD, 30),
        call(Action.BUY, 195, hours=12),  # exit past the clock: pending
    ]
    card = build_scorecard(signals, {"BTC/USDT": series}, T0 + 200 * H)
    assert (card.signals, card.holds, card.pending, card.no_price) == (7, 1, 1, 0)
    assert (card.hits.right, card.hits.count) == (4, 5)
    assert card.overlapping == 2
    # kept: hour 10 (exits 14), 14 (enters at 14), 20, 120; the one at 12 is skipped
    assert (card.non_overlapping.right, card.non_overlapping.count) == (3, 4)
    buy = 1.01**4 - 1 - 0.002
    sell_wrong = -(1.01**4 - 1) - 0.002
    sell_right = 1 - 0.99**4 - 0.002
    assert card.mean_return == pytest.approx((3 * buy + sell_wrong + sell_right) / 5)
    assert [(g.label, g.hits.count, g.too_small) for g in card.by_action] == [
        ("BUY", 3, True),
        ("SELL", 2, True),
    ]
    assert [g.label for g in card.by_bucket] == ["50–60", "60–70", "70–80"]
    assert card.brier == pytest.approx(
        ((0.72 - 1) ** 2 + (0.65 - 1) ** 2 + (0.60 - 1) ** 2 + 0.55**2 + (0.58 - 1) ** 2) / 5
    )
