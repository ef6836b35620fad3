"""Signals over history equal the desk's own signals at each moment; the information
coefficient against an independent rank correlation."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from intel.config import Config, Secrets
from intel.desk import build_desk
from intel.errors import NoSignalError, UserInputError
from intel.history import signals_over_history
from intel.information import information_coefficients
from intel.models import AgentReport, CandleSeries, ReportStatus
from tests.factories import make_signal

START = datetime(2025, 10, 7, tzinfo=UTC)


async def test_signals_over_history_are_the_desks_signals_at_each_moment():
    config = Config()
    signals = await signals_over_history(
        config, "eth", START, START + timedelta(hours=12), timedelta(hours=4)
    )
    assert [s.as_of for s in signals] == [START + timedelta(hours=h) for h in (0, 4, 8, 12)]
    async with build_desk(config) as desk:
        for signal in signals:
            again = (await desk.signal("ETH/USDT", signal.as_of)).signal
            assert dataclasses.replace(again, created_at=signal.created_at) == signal


async def test_signals_over_history_refuse_moments_outside_the_candles_and_bad_input():
    config = Config()
    before = datetime(2017, 8, 17, 3, tzinfo=UTC)  # before the first BTC candle closed
    with pytest.raises(NoSignalError, match="recorded candles cover 2017-08-17T05:00:00Z"):
        await signals_over_history(
            config, "BTC/USDT", before, before + timedelta(hours=3), timedelta(hours=1)
        )
    with pytest.raises(UserInputError):
        await signals_over_history(config, "btc", START, START, timedelta(0))
    with pytest.raises(UserInputError):
        await signals_over_history(config, "btc", START + timedelta(hours=1), START, timedelta(1))


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean rank), computed by sorting."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        ranks[values == value] = ranks[values == value].mean()
    return ranks


def test_information_coefficient_is_the_rank_correlation_on_spaced_moments():
    n = 400
    rng = np.random.default_rng(7)
    close = 100 * np.cumprod(1 + rng.normal(0, 0.01, n))
    open_ = np.concatenate([[100.0], close[:-1]])
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    candles = CandleSeries(
        "BTC/USDT",
        3600,
        int(t0.timestamp() * 1000) + np.arange(n, dtype=np.int64) * 3_600_000,
        open_,
        np.maximum(open_, close),
        np.minimum(open_, close),
        close,
        np.ones(n),
    )
    base = make_signal()
    scores = rng.normal(0, 30, n)
    signals = []
    for hour in range(n - 30):
        report = AgentReport("whales", ReportStatus.OK, float(scores[hour]))
        reports = {**base.reports, "whales": report}
        signals.append(dataclasses.replace(base, as_of=t0 + timedelta(hours=hour), reports=reports))
    found = information_coefficients(signals, candles, t0 + timedelta(hours=n), ("whales",), (4,))
    (ic,) = found
    hours = np.arange(0, n - 30, 4)  # every 4th hour from the first
    forward = close[hours + 3] / open_[hours] - 1
    x, y = _ranks(scores[hours]), _ranks(forward)
    expected = np.corrcoef(x, y)[0, 1]
    assert ic.pairs == len(hours)
    assert ic.ic == pytest.approx(expected)
    assert ic.low < ic.ic < ic.high
    half = np.arctanh(ic.high) - np.arctanh(ic.ic)
    assert half == pytest.approx(1.959963984540054 * 1.06 / np.sqrt(len(hours) - 3))


async def test_signals_over_history_are_the_rules_even_with_an_llm_key_configured():
    # A Groq key and `coordinator.kind: llm` would make a live desk ask the LLM; history must
    # not (one request per step of history): every signal comes from the rules, with no note.
    config = Config().model_copy(
        update={
            "coordinator": Config().coordinator.model_copy(update={"kind": "llm"}),
            "secrets": Secrets(groq_api_key="gsk_never_used"),
        }
    )
    signals = await signals_over_history(
        config, "BTC/USDT", START, START + timedelta(hours=4), timedelta(hours=4)
    )
    assert [s.coordinator for s in signals] == ["rules", "rules"]
    assert not [note for s in signals for note in s.notes if "LLM" in note]
