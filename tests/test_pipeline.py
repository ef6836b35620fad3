"""Failure isolation in the signal pipeline, and the Signal's JSON contract.

The pipeline is composed as `intel.desk.build_desk` composes it, over the real replay sources,
with one source or agent swapped for a small test double that fails, raises or hangs.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from intel.agents.orderbook import OrderBookAgent
from intel.agents.sentiment import SentimentAgent
from intel.agents.whales import WhaleAgent
from intel.config import Config
from intel.coordinator.base import Coordinator
from intel.coordinator.fake import FakeCoordinator
from intel.coordinator.rules import RulesCoordinator
from intel.desk import build_desk, replay_sources
from intel.errors import NoSignalError, SourceError
from intel.features import SentimentFeatures, WhaleFeatures
from intel.models import Action, AgentReport, MarketSnapshot, ReportStatus, Signal
from intel.pipeline import SignalPipeline
from intel.sentiment.lexicon import LexiconEngine
from intel.serialize import signal_from_json, signal_to_json
from intel.snapshot import SnapshotBuilder
from intel.timeutil import parse_time
from tests.contract import REPORT_KEYS, SIGNAL_KEYS

# ETH at this moment has all three modalities (the book is Kraken's, so "degraded").
SYMBOL = "ETH/USDT"
NOW = parse_time("2025-10-06T16:00Z")
CREATED = datetime(2025, 10, 6, 16, 0, 5, tzinfo=UTC)
TIMEOUT_S = 0.2
ENGINE = LexiconEngine()
REPLAY = replay_sources()
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)")


def config() -> Config:
    cfg = Config()
    pipeline = cfg.pipeline.model_copy(
        update={
            "source_timeout_s": TIMEOUT_S,
            "agent_timeout_s": TIMEOUT_S,
            "coordinator_timeout_s": TIMEOUT_S,
        }
    )
    return cfg.model_copy(update={"pipeline": pipeline})


def pipeline(
    agents: dict[str, object] | None = None,
    coordinator: Coordinator | None = None,
    **sources: object,
) -> SignalPipeline:
    """`build_desk`'s pipeline, with any source, agent or the coordinator replaced by keyword."""
    cfg = config()
    default_agents = {
        "whales": WhaleAgent(cfg.agents.whales),
        "orderbook": OrderBookAgent(cfg.agents.orderbook),
        "sentiment": SentimentAgent(cfg.agents.sentiment, ENGINE),
    }
    rules = RulesCoordinator(cfg.coordinator)
    return SignalPipeline(
        SnapshotBuilder(replace(REPLAY, **sources), cfg),  # type: ignore[arg-type]
        tuple({**default_agents, **(agents or {})}.values()),  # type: ignore[arg-type]
        coordinator or rules,
        rules,
        agent_timeout_s=cfg.pipeline.agent_timeout_s,
        coordinator_timeout_s=cfg.pipeline.coordinator_timeout_s,
        clock=lambda: CREATED,
    )


async def signal_with(
    agents: dict[str, object] | None = None,
    coordinator: Coordinator | None = None,
    **sources: object,
) -> Signal:
    return (await pipeline(agents, coordinator, **sources).run(SYMBOL, NOW)).signal


@pytest.fixture(scope="module")
def baseline() -> Signal:
    return asyncio.run(signal_with())


# --- test doubles ---------------------------------------------------------------------------


class Failing:
    """Any source method: raises the given error, or sleeps far past the timeout."""

    def __init__(self, error: BaseException | None) -> None:
        self.error = error
        self.cancelled = False

    async def _fail(self, *_args: object) -> object:
        if self.error is not None:
            raise self.error
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise AssertionError("not cancelled")

    candles = books = flows = posts = latest = _fail


class BrokenAgent:
    def __init__(self, name: str, hang: bool) -> None:
        self.name = name
        self.hang = hang

    async def analyze(self, snapshot: MarketSnapshot) -> AgentReport:
        if self.hang:
            await asyncio.sleep(30)
        raise ValueError(f"{self.name} exploded on {snapshot.symbol}")


FAILURES = {
    "source-error": (lambda: SourceError("the whale feed is down"), "the whale feed is down"),
    "bug": (lambda: RuntimeError("oops"), "source failed: RuntimeError"),
    "hang": (lambda: None, f"source timed out after {TIMEOUT_S:g} s"),
}


def assert_intact(signal: Signal, baseline: Signal, *names: str) -> None:
    for name in names:
        assert signal.reports[name] == baseline.reports[name], name


# --- failure isolation ------------------------------------------------------------------------


async def test_baseline_has_every_modality(baseline) -> None:
    assert set(baseline.reports) == {"whales", "orderbook", "sentiment"}
    assert all(r.status is not ReportStatus.UNAVAILABLE for r in baseline.reports.values())


@pytest.mark.parametrize("failure", FAILURES, ids=list(FAILURES))
async def test_a_failing_whale_source_leaves_a_signal_without_whales(baseline, failure) -> None:
    make_error, expected = FAILURES[failure]
    source = Failing(make_error())
    started = asyncio.get_running_loop().time()
    signal = await signal_with(whales=source)
    assert asyncio.get_running_loop().time() - started < 5
    whales = signal.reports["whales"]
    assert whales.status is ReportStatus.UNAVAILABLE
    assert whales.score is None
    assert expected in (whales.reason or "")
    if failure != "source-error":
        assert "whale flows" in (whales.reason or "")
    if failure == "hang":
        assert source.cancelled
    assert_intact(signal, baseline, "orderbook", "sentiment")
    assert signal.action is Action.HOLD  # no whales, no divergence to act on
    assert any("whales unavailable" in risk for risk in signal.risk_factors)


@pytest.mark.parametrize("failure", FAILURES, ids=list(FAILURES))
async def test_a_failing_order_book_source_is_isolated(baseline, failure) -> None:
    make_error, expected = FAILURES[failure]
    signal = await signal_with(orderbook=Failing(make_error()))
    book = signal.reports["orderbook"]
    assert book.status is ReportStatus.UNAVAILABLE
    assert expected in (book.reason or "")
    if failure != "source-error":
        assert "order book" in (book.reason or "")
    assert_intact(signal, baseline, "whales", "sentiment")


@pytest.mark.parametrize("failure", ["bug", "hang"])
async def test_failing_post_source_degrades_sentiment_to_fear_and_greed(baseline, failure) -> None:
    make_error, expected = FAILURES[failure]
    signal = await signal_with(posts=Failing(make_error()))
    sentiment = signal.reports["sentiment"]
    assert sentiment.status is ReportStatus.DEGRADED
    assert "Reddit" in (sentiment.reason or "")
    assert expected in (sentiment.reason or "")
    fear_greed = baseline.reports["sentiment"].features_as(SentimentFeatures)
    assert fear_greed is not None
    assert fear_greed.fear_greed is not None
    assert sentiment.score == fear_greed.fear_greed.mood
    assert_intact(signal, baseline, "whales", "orderbook")


@pytest.mark.parametrize("hang", [False, True], ids=["raises", "hangs"])
@pytest.mark.parametrize("name", ["whales", "orderbook", "sentiment"])
async def test_a_broken_agent_is_isolated(baseline, name, hang) -> None:
    signal = await signal_with({name: BrokenAgent(name, hang)})
    report = signal.reports[name]
    assert report.status is ReportStatus.UNAVAILABLE
    assert report.score is None
    reason = report.reason or ""
    if hang:
        assert f"{name} agent timed out after {TIMEOUT_S:g} s" in reason
    else:
        assert f"{name} agent failed: ValueError" in reason
        assert "exploded" in reason
    others = [n for n in ("whales", "orderbook", "sentiment") if n != name]
    assert_intact(signal, baseline, *others)
    assert any(f"{name} unavailable" in risk for risk in signal.risk_factors)


async def test_several_failures_at_once_still_give_a_signal() -> None:
    signal = await signal_with(
        {"sentiment": BrokenAgent("sentiment", hang=True)},
        whales=Failing(None),
        orderbook=Failing(RuntimeError("x")),
    )
    assert all(r.status is ReportStatus.UNAVAILABLE for r in signal.reports.values())
    assert signal.action is Action.HOLD
    assert 0 <= signal.confidence <= 100


@pytest.mark.parametrize("failure", FAILURES, ids=list(FAILURES))
async def test_missing_candles_mean_no_signal(failure) -> None:
    make_error, _ = FAILURES[failure]
    with pytest.raises(NoSignalError, match=f"no signal for {SYMBOL}"):
        await signal_with(candles=Failing(make_error()))


async def test_candles_older_than_their_maximum_age_mean_no_signal() -> None:
    _, last_close = await REPLAY.candles.coverage(SYMBOL)
    with pytest.raises(NoSignalError, match="price candles"):
        await pipeline().run(SYMBOL, last_close + timedelta(hours=3))


# --- the coordinator: its deadline and the rules' fallback ---------------------------------


def without_notes(signal: Signal) -> Signal:
    return replace(signal, notes=())


def baseline_rules() -> RulesCoordinator:
    return RulesCoordinator(config().coordinator)


async def test_a_coordinator_that_answers_in_time_is_used(baseline) -> None:
    fake = FakeCoordinator(baseline_rules(), name="llm")
    signal = await signal_with(coordinator=fake)
    assert fake.calls == 1
    assert signal.coordinator == "llm"
    assert signal.notes == ()
    assert replace(signal, coordinator="rules") == baseline


async def test_a_failing_coordinator_falls_back_to_the_rules_with_a_note(baseline) -> None:
    fake = FakeCoordinator(baseline_rules(), name="llm", error=RuntimeError("key sk-123 refused"))
    signal = await signal_with(coordinator=fake)
    assert fake.calls == 1
    assert signal.coordinator == "rules"
    assert signal.notes == ("Fell back to the rules: the llm coordinator failed (RuntimeError)",)
    assert without_notes(signal) == baseline
    assert "sk-123" not in json.dumps(signal_to_json(signal))  # error text may carry secrets


async def test_a_late_coordinator_is_cut_off_at_the_deadline_and_the_rules_decide(baseline) -> None:
    fake = FakeCoordinator(baseline_rules(), name="llm", delay_s=30)
    started = asyncio.get_running_loop().time()
    signal = await signal_with(coordinator=fake)
    assert asyncio.get_running_loop().time() - started < 5
    assert fake.cancelled
    assert signal.notes == (
        f"Fell back to the rules: the llm coordinator did not answer within {TIMEOUT_S:g} s",
    )
    assert without_notes(signal) == baseline


async def test_cancelling_a_signal_cancels_the_coordinator_without_a_fallback() -> None:
    fake = FakeCoordinator(baseline_rules(), delay_s=30)
    slow = pipeline(coordinator=fake)
    task = asyncio.create_task(slow.run(SYMBOL, NOW))
    await asyncio.wait_for(fake.deciding.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fake.cancelled


# --- the Signal's JSON ------------------------------------------------------------------------


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_contract(data: dict) -> None:
    assert set(data) >= SIGNAL_KEYS  # "More keys may be added."
    assert data["symbol"] == SYMBOL
    assert data["action"] in {"BUY", "SELL", "HOLD"}
    assert type(data["confidence"]) is int
    assert 0 <= data["confidence"] <= 100
    assert isinstance(data["thesis"], str)
    assert data["thesis"]
    assert isinstance(data["risk_factors"], list)
    assert all(isinstance(r, str) for r in data["risk_factors"])
    assert type(data["timeframe_hours"]) is int
    assert 2 <= data["timeframe_hours"] <= 48
    assert data["position_size"] in {"conservative", "moderate", "aggressive"}
    assert is_number(data["divergence"])
    assert -200 <= data["divergence"] <= 200
    assert data["coordinator"] == "rules"
    assert data["clamps"] == []
    assert data["notes"] == []
    for key in ("as_of", "created_at"):
        assert ISO_UTC.fullmatch(data[key]), data[key]
    assert set(data["reports"]) == {"whales", "orderbook", "sentiment"}
    for name, report in data["reports"].items():
        assert set(report) >= REPORT_KEYS, name
        assert report["score"] is None or (
            is_number(report["score"]) and -100 <= report["score"] <= 100
        )
        assert report["status"] in {"ok", "degraded", "unavailable"}
        assert report["reason"] is None or isinstance(report["reason"], str)
        assert report["as_of"] is None or ISO_UTC.fullmatch(report["as_of"])
        assert report["age_s"] is None or is_number(report["age_s"])
        assert isinstance(report["features"], dict)
        assert all(isinstance(k, str) and is_number(v) for k, v in report["features"].items())
    assert data["reports"]["sentiment"]["engine"] == "lexicon"


def test_signal_json_has_the_contract_keys_and_types(baseline) -> None:
    data = json.loads(json.dumps(signal_to_json(baseline), allow_nan=False))
    check_contract(data)
    assert data["as_of"] == "2025-10-06T16:00:00Z"
    assert data["created_at"] == "2025-10-06T16:00:05Z"


async def test_signal_json_of_a_degraded_signal_keeps_the_contract() -> None:
    signal = await signal_with(
        {"orderbook": BrokenAgent("orderbook", hang=False)}, whales=Failing(SourceError("down"))
    )
    data = json.loads(json.dumps(signal_to_json(signal), allow_nan=False))
    check_contract(data)
    assert data["reports"]["whales"]["score"] is None
    assert data["reports"]["whales"]["status"] == "unavailable"
    assert data["reports"]["whales"]["reason"] == "down"


def test_non_finite_numbers_never_reach_the_json(baseline) -> None:
    flows = baseline.reports["whales"].features_as(WhaleFeatures)
    assert flows is not None
    odd = replace(
        baseline.reports["whales"],
        score=math.nan,
        features=replace(flows, inflow_usd=math.nan, outflow_usd=math.inf, inflow_coins=1.5),
    )
    data = signal_to_json(replace(baseline, reports={**baseline.reports, "whales": odd}))
    json.dumps(data, allow_nan=False)
    assert data["reports"]["whales"]["score"] is None
    figures = data["reports"]["whales"]["features"]
    assert "inflow_usd" not in figures
    assert "outflow_usd" not in figures
    assert figures["inflow_coins"] == 1.5
    assert figures["net_flow_usd"] == flows.net_flow_usd


def test_signal_notes_round_trip_and_stored_signals_without_them_still_load(baseline) -> None:
    noted = replace(baseline, notes=("Fell back to the rules: the llm coordinator failed (X)",))
    data = json.loads(json.dumps(signal_to_json(noted)))
    assert data["notes"] == ["Fell back to the rules: the llm coordinator failed (X)"]
    assert signal_from_json(data).notes == noted.notes
    del data["notes"]  # as signals stored before this field existed
    old = signal_from_json(data)
    assert old.notes == ()
    assert signal_to_json(old) == signal_to_json(baseline)


def test_signal_json_round_trips(baseline) -> None:
    data = signal_to_json(baseline)
    again = signal_from_json(json.loads(json.dumps(data)))
    assert signal_to_json(again) == data
    assert again.action is baseline.action
    assert again.as_of == baseline.as_of
    assert again.created_at == baseline.created_at
    assert again.risk_factors == baseline.risk_factors
    assert again.reports["sentiment"].engine == "lexicon"
    assert again.reports["orderbook"].status is baseline.reports["orderbook"].status


async def test_a_signal_credits_only_the_sources_whose_data_it_used() -> None:
    # Before the recorded whale window (2024-11-04) there are no whale flows: no whale credit.
    async with build_desk(Config()) as desk:
        early = await desk.signal("BTC/USDT", datetime(2024, 8, 9, 0, 5, tzinfo=UTC))
        later = await desk.signal("BTC/USDT", datetime(2025, 10, 6, 16, tzinfo=UTC))
    assert early.signal.reports["whales"].status is ReportStatus.UNAVAILABLE
    assert "whale flows: Whale Alert" not in early.credits
    assert "Fear & Greed: Alternative.me" in early.credits
    assert later.signal.reports["whales"].status is not ReportStatus.UNAVAILABLE
    assert "whale flows: Whale Alert" in later.credits
