"""Calibrated confidence: the map, the calibrator's notes, the rules using it, the shipped map by
default, the fit's figures and `python -m bot calibrate` on a slice of the shipped history."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import numpy as np
import pytest

from bot.cli import main
from bot.config import BotConfig
from intel.calibration import (
    DEFAULT_MAP_PATH,
    NO_EDGE_NOTE,
    CalibrationMap,
    Calibrator,
    FitScope,
    load_map,
    save_map,
)
from intel.calibration_fit import (
    CallSet,
    auc_interval,
    expected_calibration_error,
    fit_map,
    purged_split,
)
from intel.config import CoordinatorConfig, load_config
from intel.coordinator.rules import RulesCoordinator
from intel.desk import build_desk
from intel.errors import ConfigError
from intel.models import Action, PositionSize
from tests.factories import DEFAULT_AS_OF, make_candles, make_reports

SCOPE = FitScope(
    start="2024-11-05T00:00:00Z",
    end="2025-05-27T00:00:00Z",
    symbols=("BTC/USDT",),
    modalities=("candles", "whales", "fear_greed"),
    coordinator="rules",
    sentiment_engine="lexicon",
)
CUTOFFS = {"timeframe_24h": 55, "timeframe_12h": 45, "moderate_size": 45, "aggressive_size": 55}


def linear_map(flat: bool = False) -> CalibrationMap:
    """P(right) 0.40 at raw 50 rising to 0.60 at raw 70, clipped outside."""
    return CalibrationMap((50.0, 70.0), (0.40, 0.60), SCOPE, flat, CUTOFFS)


def test_the_map_interpolates_and_clips():
    calibration = linear_map()
    assert calibration.apply(60) == 50
    assert calibration.apply(65) == 55
    assert calibration.apply(20) == 40
    assert calibration.apply(95) == 60


def test_a_hold_keeps_its_confidence_and_a_call_outside_the_scope_says_so():
    replay = Calibrator(linear_map(), "replay")
    reports = make_reports(Action.SELL)
    assert replay.calibrate(Action.HOLD, 66, "rules", reports) == (66, ())
    assert replay.calibrate(Action.SELL, 60, "rules", reports) == (50, ())
    live = Calibrator(linear_map(), "live")
    shown, notes = live.calibrate(Action.SELL, 60, "rules", reports)
    assert shown == 50
    assert len(notes) == 1
    assert "calibrated on replay history with fewer modalities" in notes[0]
    _, llm_notes = replay.calibrate(Action.BUY, 60, "llm", reports)
    assert "fewer modalities" in llm_notes[0]
    _, flat_notes = Calibrator(linear_map(flat=True), "replay").calibrate(
        Action.BUY, 60, "rules", reports
    )
    assert flat_notes == (NO_EDGE_NOTE,)


def test_the_rules_show_calibrated_confidence_and_keep_the_raw_value():
    reports, candles = make_reports(Action.SELL), make_candles()
    plain = RulesCoordinator(CoordinatorConfig())
    calibrated = RulesCoordinator(CoordinatorConfig(), Calibrator(linear_map(), "replay"))
    raw = plain.assess(reports, candles)
    before = _decide(plain, reports, candles)
    after = _decide(calibrated, reports, candles)
    assert raw.action is Action.SELL
    assert before.raw_confidence is None
    assert after.raw_confidence == before.confidence
    expected = round(100 * float(np.interp(before.confidence, (50, 70), (0.40, 0.60))))
    assert after.confidence == expected
    # Cut-offs on the calibrated scale: 24 h from 55, moderate from 45, aggressive from 55.
    assert after.timeframe_hours == (24 if expected >= 55 else 12 if expected >= 45 else 6)
    flat = RulesCoordinator(CoordinatorConfig(), Calibrator(linear_map(flat=True), "replay"))
    no_edge = _decide(flat, reports, candles)
    assert no_edge.position_size is PositionSize.CONSERVATIVE
    assert no_edge.timeframe_hours == before.timeframe_hours  # a horizon, not a claim
    assert NO_EDGE_NOTE in no_edge.notes


def test_cutoffs_decide_timeframe_and_size_on_the_calibrated_scale():
    reports, candles = make_reports(Action.SELL), make_candles()
    plain = RulesCoordinator(CoordinatorConfig())
    raw = _decide(plain, reports, candles).confidence
    assessment = plain.assess(reports, candles)
    calm = not assessment.high_volatility and not assessment.missing
    sizes = {
        0.56: PositionSize.AGGRESSIVE if calm else PositionSize.MODERATE,
        0.50: PositionSize.MODERATE,
        0.30: PositionSize.CONSERVATIVE,
    }
    for shown, hours in ((0.56, 24), (0.50, 12), (0.30, 6)):
        level = CalibrationMap((0.0, 100.0), (shown, shown), SCOPE, False, CUTOFFS)
        coordinator = RulesCoordinator(CoordinatorConfig(), Calibrator(level, "replay"))
        signal = _decide(coordinator, reports, candles)
        assert (signal.raw_confidence, signal.timeframe_hours) == (raw, hours)
        assert signal.position_size is sizes[shown]


def _decide(coordinator, reports, candles):
    import asyncio

    return asyncio.run(
        coordinator.decide("BTC/USDT", DEFAULT_AS_OF, reports, candles, DEFAULT_AS_OF)
    )


async def test_the_shipped_map_is_used_by_default():
    document = json.loads(DEFAULT_MAP_PATH.read_text(encoding="utf-8"))
    moment = datetime(2025, 10, 7, 11, tzinfo=UTC)  # an ETH SELL in the demo window
    async with build_desk(BotConfig()) as desk:
        signal = (await desk.signal("ETH/USDT", moment)).signal
    assert signal.action is Action.SELL
    assert signal.raw_confidence is not None
    expected = np.interp(signal.raw_confidence, document["raw_knots"], document["probabilities"])
    assert signal.confidence == round(100 * float(expected))
    off = load_config(env={}, model=BotConfig, overrides={"calibration.enabled": False})
    async with build_desk(off) as desk:
        raw = (await desk.signal("ETH/USDT", moment)).signal
    assert raw.raw_confidence is None
    assert raw.confidence == signal.raw_confidence


def test_a_map_round_trips_and_a_bad_one_is_a_config_error(tmp_path: Path):
    path = tmp_path / "map.json"
    save_map(linear_map(), path)
    assert load_map(path) == linear_map()
    document = json.loads(path.read_text())
    for broken in (
        {**document, "version": 99},
        {**document, "raw_knots": [70.0, 50.0]},
        {**document, "probabilities": [0.4, 1.5]},
        {"version": 1},
    ):
        path.write_text(json.dumps(broken))
        with pytest.raises(ConfigError, match=r"calibration\.map_path"):
            load_map(path)
    with pytest.raises(ConfigError, match=r"calibration\.map_path"):
        load_map(tmp_path / "missing.json")


def test_expected_calibration_error_by_hand():
    p = np.array([0.15, 0.15, 0.62, 0.68, 0.68, 1.0])
    y = np.array([False, True, True, True, False, True])
    # bin 1: conf 0.15, right 0.5 → 0.35 × 2/6; bin 6: conf 0.66, right 2/3 → 0.00667 × 3/6;
    # bin 9 (1.0 falls in the last): conf 1.0, right 1 → 0.
    expected = 0.35 * 2 / 6 + abs(2 / 3 - (0.62 + 0.68 + 0.68) / 3) * 3 / 6
    assert expected_calibration_error(p, y) == pytest.approx(expected)


def test_auc_interval_matches_hanley_and_mcneil_table():
    # Hanley & McNeil (1982), Table 1: AUC 0.8 with 50 positives and 50 negatives, SE 0.0447.
    low, high = auc_interval(0.8, 50, 50)
    assert (high - low) / 2 / 1.959963984540054 == pytest.approx(0.0447, abs=5e-4)


def _calls(hours: list[int], raw: list[float], right: list[bool]) -> CallSet:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    return CallSet(
        np.array(raw),
        np.array(right),
        tuple(start + timedelta(hours=h) for h in hours),
        tuple("sideways" for _ in hours),
    )


def test_purged_split_leaves_a_gap_of_the_longest_horizon():
    hours = list(range(0, 1000, 5))
    calls = _calls(hours, [0.5] * len(hours), [True] * len(hours))
    fit, later = purged_split(calls, fit_share=0.5)
    assert fit.as_of[-1] <= calls.as_of[0] + (calls.as_of[-1] - calls.as_of[0]) / 2
    assert later.as_of[0] - fit.as_of[-1] > timedelta(hours=48)
    assert len(fit.raw) + len(later.raw) < len(calls.raw)  # the gap's calls are dropped


def test_fit_map_joins_level_centroids():
    # Raw 40 and 44: 1 of 4 right; raw 60 and 64: 3 of 4 right — two isotonic levels.
    raw = [0.40, 0.40, 0.44, 0.44, 0.60, 0.60, 0.64, 0.64]
    right = [True, False, False, False, True, True, True, False]
    calibration = fit_map(_calls(list(range(8)), raw, right), SCOPE, CoordinatorConfig())
    assert calibration.raw_knots == pytest.approx((42.0, 62.0))
    assert calibration.probabilities == pytest.approx((0.25, 0.75))
    assert calibration.apply(52) == 50
    assert calibration.cutoffs["timeframe_24h"] == 75  # raw 75 is above the last knot


def test_calibrate_command_on_a_slice(tmp_path: Path, capsys):
    out = tmp_path / "map.json"
    code = main(
        ["calibrate", "--from", "2025-03-01", "--to", "2025-04-20", "--out", str(out), "--json"]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    calibration = load_map(out)
    assert calibration.scope.coordinator == "rules"
    assert "whales" in calibration.scope.modalities
    figures = report["figures"]["all"]
    assert figures["before"]["calls"] == figures["after"]["calls"] == report["evaluation"]["calls"]
    base, share = report["base_rate_fit"], figures["after"]["share_right"]
    # Always forecasting b scores b² − 2·b·s + s on calls right a share s of the time.
    assert figures["after"]["brier_base_rate"] == pytest.approx(
        base * base - 2 * base * share + share
    )
    for side in ("before", "after"):
        assert 0 <= figures[side]["ece"] <= 1
        skill = 1 - figures[side]["brier"] / figures[side]["brier_base_rate"]
        assert figures[side]["brier_skill"] == pytest.approx(skill)
    assert set(report["figures"]) == {"all", "rising", "falling", "sideways"}
    assert main(["calibrate", "--from", "2025-04-20", "--to", "2025-03-01"]) == 2
    assert "at least a week" in capsys.readouterr().err


async def test_surfaces_show_calibrated_calls_as_a_record_and_holds_never_as_a_probability():
    from bot.render.text import render_text
    from intel.serialize import signal_from_json, signal_to_json

    async with build_desk(BotConfig()) as desk:
        sell = (await desk.signal("ETH/USDT", datetime(2025, 10, 7, 11, tzinfo=UTC))).signal
        hold = (await desk.signal("BTC/USDT", datetime(2025, 10, 7, 18, tzinfo=UTC))).signal
    assert hold.action is Action.HOLD
    assert hold.raw_confidence == hold.confidence  # a HOLD keeps its value
    header = render_text(hold).splitlines()[0]
    assert f"hold {hold.confidence}/100 (how far from a call, not a probability)" in header
    assert "right about" not in render_text(hold)
    tens = Decimal(sell.confidence).scaleb(-1).quantize(Decimal(1), ROUND_HALF_UP)
    assert f"right about {tens} times in 10 historically" in render_text(sell).splitlines()[0]
    for signal in (sell, hold):
        document = signal_to_json(signal)
        assert document["calibrated"] is True
        assert document["raw_confidence"] == signal.raw_confidence
        again = signal_from_json(document)
        assert (again.confidence, again.raw_confidence) == (
            signal.confidence,
            signal.raw_confidence,
        )


async def test_dm_thresholds_apply_to_the_confidence_users_see():
    """The alert benchmark's first 30 market hours (the console demo's first five minutes):
    the channel is alerted, and a DM goes to a watcher only when the *shown* (calibrated)
    confidence reaches their threshold — never on the raw value."""
    from bot.storage.memory import MemoryStore
    from tests.test_alert_policy import load_benchmark

    bench = load_benchmark()
    base = BotConfig()
    config = load_config(
        env={},
        model=BotConfig,
        overrides={"demo.until": (base.data.default_at + timedelta(hours=30)).isoformat()},
    )
    received = await bench.replay(config, MemoryStore())
    channel = [r for r in received if r.chat_id == bench.CHANNEL]
    assert {r.symbol for r in channel} == {"BTC/USDT", "ETH/USDT"}
    assert channel[0].market_at - base.data.default_at <= timedelta(hours=5)
    for user, threshold in bench.WATCHERS.items():
        dms = [r for r in received if r.chat_id == f"dm-{user}"]
        calls = [r for r in dms if r.action is not Action.HOLD]
        assert all(r.confidence >= threshold for r in calls)
        reaching = [r for r in channel if r.action is not Action.HOLD and r.confidence >= threshold]
        assert bool(calls) == bool(reaching), user
