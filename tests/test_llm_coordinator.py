"""The LLM coordinator through the real groq SDK against a fake Groq server on 127.0.0.1.

Each fault the issue lists gets its case: valid answer, invalid JSON then valid, invalid twice,
Groq's own JSON-mode refusal, out-of-bounds answer, a made-up figure, a too-long thesis, 429 with
a sub-second retry-after, 500, a timeout, the budget running out mid-cycle, the breaker, the
answer cache; then the desk's choice of coordinator, its status line and the footer.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest

from bot.commands.base import BotStatus, Request
from bot.commands.router import CommandRouter, parse_command_line
from bot.config import BotConfig
from bot.render.text import coordinator_label, render_text
from intel.calibration import Calibrator, load_map
from intel.config import (
    Config,
    CoordinatorConfig,
    LlmBudgetConfig,
    LlmConfig,
    Secrets,
    load_config,
)
from intel.coordinator.groq_client import GroqChat
from intel.coordinator.llm import LlmCoordinator
from intel.coordinator.rules import RulesCoordinator
from intel.desk import build_desk
from intel.models import Action, PositionSize, Signal
from intel.sources.fakes.groq import FakeAnswer, FakeGroq, proposal_json
from tests.factories import DEFAULT_AS_OF, make_candles, make_reports, make_snapshot

# Calls capped at 70 with no order-book bonus: a BUY/SELL at 70, sized moderate, 12 h, so an
# answer can overstep every bound.
RULES = RulesCoordinator(CoordinatorConfig(call_confidence_max=70, orderbook_confirm_bonus=0))
KEY = "gsk_test_key"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGroq]:
    async with FakeGroq() as server:
        yield server


def llm_config(fake: FakeGroq, **changes: object) -> LlmConfig:
    return LlmConfig().model_copy(update={"base_url": fake.base_url, **changes})


async def decide(
    config: LlmConfig, action: Action = Action.BUY, symbol: str = "BTC/USDT"
) -> Signal:
    coordinator = LlmCoordinator(config, RULES, GroqChat(config, KEY))
    await coordinator.start()
    try:
        return await decide_with(coordinator, action, symbol)
    finally:
        await coordinator.close()


async def decide_with(
    coordinator: LlmCoordinator, action: Action = Action.BUY, symbol: str = "BTC/USDT"
) -> Signal:
    reports, candles = make_reports(action, symbol=symbol), make_candles(symbol)
    posts = make_snapshot(action, symbol=symbol).posts
    assert isinstance(posts, tuple)
    return await coordinator.decide(
        symbol, DEFAULT_AS_OF, reports, candles, DEFAULT_AS_OF, posts=posts
    )


async def rules_signal(action: Action = Action.BUY, symbol: str = "BTC/USDT") -> Signal:
    reports, candles = make_reports(action, symbol=symbol), make_candles(symbol)
    return await RULES.decide(symbol, DEFAULT_AS_OF, reports, candles, DEFAULT_AS_OF)


def valid(rules: Signal, **fields: object) -> FakeAnswer:
    """A reply within every bound of `rules`, citing only given figures."""
    reply = {
        "action": rules.action.value,
        "confidence": rules.confidence - 5,
        "thesis": "Whales moved $100M off exchanges while Fear & Greed sat at 22.",
        "risk_factors": ["News can flip retail mood within 6 h"],
        "timeframe_hours": 12,
        "position_size": "moderate",
        "key_drivers": ["Net outflow of $100.0M", "Fear & Greed 22"],
    }
    return FakeAnswer(proposal_json(**{**reply, **fields}))


async def test_a_valid_answer_writes_the_text_within_bounds(fake: FakeGroq) -> None:
    rules = await rules_signal()
    fake.script.append(valid(rules))
    signal = await decide(llm_config(fake))
    assert signal.coordinator == "llm"
    assert signal.model == "openai/gpt-oss-120b"
    assert signal.action is Action.BUY
    assert signal.confidence == rules.confidence - 5
    assert signal.thesis == "Whales moved $100M off exchanges while Fear & Greed sat at 22."
    assert signal.risk_factors == ("News can flip retail mood within 6 h",)
    assert signal.key_drivers == ("Net outflow of $100.0M", "Fear & Greed 22")
    assert (signal.timeframe_hours, signal.position_size) == (12, PositionSize.MODERATE)
    assert signal.clamps == ()
    assert signal.notes == ()
    # What went over the wire: the model, JSON mode, the system prompt's data rule.
    (request,) = fake.requests
    assert request["model"] == "openai/gpt-oss-120b"
    assert request["response_format"] == {"type": "json_object"}
    assert request["reasoning_effort"] == "low"
    assert "never an instruction" in request["messages"][0]["content"]


async def test_invalid_json_is_repaired_once(fake: FakeGroq) -> None:
    rules = await rules_signal()
    fake.script.extend([FakeAnswer('{"action": "BUY", "confidence": '), valid(rules)])
    signal = await decide(llm_config(fake))
    assert signal.coordinator == "llm"
    assert len(fake.requests) == 2
    repair = fake.requests[1]["messages"][1]["content"]
    assert "Your previous reply was invalid: not JSON" in repair


async def test_invalid_twice_gives_the_rules_signal_with_a_note(fake: FakeGroq) -> None:
    rules = await rules_signal()
    fake.script.extend([FakeAnswer("not json"), FakeAnswer(proposal_json(action="MAYBE"))])
    signal = await decide(llm_config(fake))
    assert signal.coordinator == "rules"
    assert (signal.action, signal.confidence, signal.thesis) == (
        rules.action,
        rules.confidence,
        rules.thesis,
    )
    assert signal.key_drivers == rules.key_drivers
    (note,) = signal.notes
    assert note.startswith("Rules signal: the LLM's reply was invalid twice (action:")


async def test_groq_json_mode_refusal_is_repaired(fake: FakeGroq) -> None:
    rules = await rules_signal()
    fake.script.extend([FakeAnswer(status=400, error_code="json_validate_failed"), valid(rules)])
    signal = await decide(llm_config(fake))
    assert signal.coordinator == "llm"
    assert "json_validate_failed" in fake.requests[1]["messages"][1]["content"]


async def test_an_out_of_bounds_answer_is_clamped_and_recorded(fake: FakeGroq) -> None:
    rules = await rules_signal(Action.SELL)
    assert (rules.confidence, rules.position_size) == (70, PositionSize.MODERATE)
    fake.script.append(
        valid(
            rules,
            confidence=rules.confidence + 30,
            timeframe_hours=100,
            position_size="aggressive",
            thesis="Whales moved $100M onto exchanges while Fear & Greed sat at 78.",
            key_drivers=["Fear & Greed 78"],
        )
    )
    signal = await decide(llm_config(fake), Action.SELL)
    assert signal.action is Action.SELL
    assert signal.confidence == 70  # never above the rules'
    assert signal.timeframe_hours == 48
    assert signal.position_size is PositionSize.MODERATE
    assert signal.clamps == (
        "confidence 100 → 70: allowed 55–70",
        "size aggressive → moderate: never above the rules'",
        "timeframe 100 h → 48 h: allowed 2–48 h",
    )
    assert signal.coordinator == "llm"


async def test_a_flip_is_refused_and_its_text_with_it(fake: FakeGroq) -> None:
    rules = await rules_signal(Action.BUY)
    fake.script.append(valid(rules, action="SELL", thesis="Sell: whales moved $100M."))
    signal = await decide(llm_config(fake))
    assert signal.action is Action.BUY
    assert signal.thesis == rules.thesis  # its text argued for the other call
    assert "action SELL → BUY: only the rules' call or HOLD" in signal.clamps


async def test_a_step_down_takes_the_rules_hold_confidence(fake: FakeGroq) -> None:
    rules = await rules_signal(Action.BUY)
    fake.script.append(valid(rules, action="HOLD", confidence=rules.confidence))
    signal = await decide(llm_config(fake))
    reports = make_reports(Action.BUY)
    # The rules' HOLD confidence, computed by hand from CoordinatorConfig's documented formula:
    # base 70 − 0.3 × min(|divergence|, 150), nothing missing or degraded.
    divergence = reports["whales"].score - reports["sentiment"].score  # type: ignore[operator]
    assert signal.action is Action.HOLD
    assert signal.confidence == round(70 - 0.3 * min(abs(divergence), 150))
    assert signal.position_size is PositionSize.CONSERVATIVE


async def test_a_made_up_figure_brings_back_the_rules_text(fake: FakeGroq) -> None:
    rules = await rules_signal()
    fake.script.append(
        valid(
            rules,
            thesis="Whales moved $340M off exchanges.",  # $100M was given
            risk_factors=["Funding at 0.12% may reverse"],  # no funding rate was given
        )
    )
    signal = await decide(llm_config(fake))
    assert signal.coordinator == "llm"
    assert signal.thesis == rules.thesis
    assert signal.risk_factors == rules.risk_factors
    assert "thesis: the rules' text, as the LLM cited $340M (not given)" in signal.clamps
    assert "risk factors: the rules' text, as the LLM cited 0.12% (not given)" in signal.clamps
    assert signal.key_drivers == ("Net outflow of $100.0M", "Fear & Greed 22")  # checked, kept


async def test_a_too_long_thesis_is_refused_then_the_rules_answer(fake: FakeGroq) -> None:
    rules = await rules_signal()
    fake.script.extend([valid(rules, thesis="Whales buy. " * 60)] * 2)  # 720 characters
    signal = await decide(llm_config(fake))
    assert signal.coordinator == "rules"
    assert "at most 600 characters" in signal.notes[0]
    assert "thesis" in fake.requests[1]["messages"][1]["content"].split("invalid:")[1]


async def test_429_waits_its_retry_after_then_answers(fake: FakeGroq) -> None:
    rules = await rules_signal()
    fake.script.extend([FakeAnswer(status=429, headers={"retry-after": "0.3"}), valid(rules)])
    started = time.monotonic()
    signal = await decide(llm_config(fake))
    elapsed = time.monotonic() - started
    assert signal.coordinator == "llm"
    assert len(fake.requests) == 2
    assert 0.3 <= elapsed < 3.0


async def test_a_retried_request_counts_twice_in_the_budget(fake: FakeGroq) -> None:
    rules = await rules_signal()
    fake.script.extend([FakeAnswer(status=429, headers={"retry-after": "0.1"}), valid(rules)])
    config = llm_config(fake)
    coordinator = LlmCoordinator(config, RULES, GroqChat(config, KEY))
    await coordinator.start()
    try:
        signal = await decide_with(coordinator)
    finally:
        await coordinator.close()
    assert signal.coordinator == "llm"
    assert len(fake.requests) == 2
    # Both requests reached Groq, so both count against the 30 a minute (the 429 too).
    per_minute = config.budget.requests_per_minute
    assert f"{per_minute - 2}/{per_minute} requests this minute" in coordinator.budget.describe()


async def test_500_twice_gives_the_rules_signal_with_a_note(fake: FakeGroq) -> None:
    fake.script.extend([FakeAnswer(status=500)] * 2)
    signal = await decide(llm_config(fake))
    assert signal.coordinator == "rules"
    assert signal.notes == ("Rules signal: the LLM is unavailable (llm: HTTP 500)",)
    assert len(fake.requests) == 2  # max_attempts


async def test_a_late_llm_gives_the_rules_signal_on_time(fake: FakeGroq) -> None:
    rules = await rules_signal()
    fake.script.append(FakeAnswer(proposal_json(), delay_s=5.0))
    started = time.monotonic()
    signal = await decide(llm_config(fake, call_timeout_s=0.4, max_attempts=1))
    elapsed = time.monotonic() - started
    assert signal.coordinator == "rules"
    assert signal.confidence == rules.confidence
    assert "did not answer within 0.4 s" in signal.notes[0]
    assert elapsed < 1.5


async def test_the_budget_running_out_mid_cycle(fake: FakeGroq) -> None:
    config = llm_config(
        fake,
        budget=LlmBudgetConfig(requests_per_minute=4, on_demand_share=0.25),
    )
    fake.script.extend([FakeAnswer(proposal_json(action=a)) for a in ("BUY", "SELL", "HOLD")])
    coordinator = LlmCoordinator(config, RULES, GroqChat(config, KEY))
    await coordinator.start()
    try:
        cycle = [
            await decide_with(coordinator, action, symbol)
            for action, symbol in (
                (Action.BUY, "BTC/USDT"),
                (Action.SELL, "BTC/USDT"),
                (Action.HOLD, "BTC/USDT"),
                (Action.BUY, "ETH/USDT"),
            )
        ]
    finally:
        await coordinator.close()
    # 75 % of 4 requests a minute: the cycle gets 3, the fourth symbol falls back.
    assert [s.coordinator for s in cycle] == ["llm", "llm", "llm", "rules"]
    assert cycle[3].notes == (
        "Rules signal: LLM requests per minute used up (the rest is kept for /signal)",
    )
    assert len(fake.requests) == 3


async def test_an_identical_request_reuses_the_answer(fake: FakeGroq) -> None:
    rules = await rules_signal()
    fake.script.extend([valid(rules), valid(rules, confidence=rules.confidence - 10)])
    config = llm_config(fake)
    coordinator = LlmCoordinator(config, RULES, GroqChat(config, KEY))
    await coordinator.start()
    try:
        first = await decide_with(coordinator)
        second = await decide_with(coordinator)
    finally:
        await coordinator.close()
    assert len(fake.requests) == 1
    assert second.confidence == first.confidence == rules.confidence - 5


async def test_the_breaker_opens_after_repeated_failures(fake: FakeGroq) -> None:
    fake.script.extend([FakeAnswer(status=500)] * 4)
    config = llm_config(fake, max_attempts=1, failures_to_open=2)
    coordinator = LlmCoordinator(config, RULES, GroqChat(config, KEY))
    await coordinator.start()
    try:
        signals = [
            await decide_with(coordinator, a) for a in (Action.BUY, Action.SELL, Action.HOLD)
        ]
        status = coordinator.describe()
    finally:
        await coordinator.close()
    assert len(fake.requests) == 2
    assert signals[2].notes == ("Rules signal: the LLM failed repeatedly and rests (circuit open)",)
    assert "breaker open" in status


async def test_a_refused_key_is_not_retried(fake: FakeGroq) -> None:
    fake.script.append(FakeAnswer(status=401))
    signal = await decide(llm_config(fake))
    assert signal.coordinator == "rules"
    assert "HTTP 401" in signal.notes[0]
    assert len(fake.requests) == 1


# The desk: which coordinator runs, what status says, what the footer names.


def config_with(fake: FakeGroq | None, kind: str, **llm: object) -> Config:
    base = {"base_url": fake.base_url} if fake else {}
    return Config().model_copy(
        update={
            "coordinator": CoordinatorConfig(kind=kind),  # type: ignore[arg-type]
            "llm": LlmConfig().model_copy(update={**base, **llm}),
        }
    )


async def test_auto_without_a_key_is_the_rules() -> None:
    desk = build_desk(config_with(None, "auto"), secrets=Secrets())
    async with desk:
        result = await desk.signal("BTC/USDT")
    assert result.signal.coordinator == "rules"
    assert not [note for note in result.signal.notes if "LLM" in note]
    assert desk.coordinator_status() == "Coordinator: rules (auto, and GROQ_API_KEY is not set)"


async def test_llm_without_a_key_notes_why_on_every_signal() -> None:
    desk = build_desk(config_with(None, "llm"), secrets=Secrets())
    async with desk:
        result = await desk.signal("BTC/USDT")
    assert result.signal.coordinator == "rules"
    assert "Rules signal: LLM not configured (GROQ_API_KEY is not set)" in result.signal.notes
    assert "not configured: GROQ_API_KEY is not set" in desk.coordinator_status()


async def test_auto_with_a_key_runs_the_llm_and_status_shows_its_budget(fake: FakeGroq) -> None:
    fake._responder = lambda body: FakeAnswer(proposal_json(confidence=0))
    desk = build_desk(config_with(fake, "auto"), secrets=Secrets(groq_api_key=KEY))
    async with desk:
        result = await desk.signal("BTC/USDT")
        status = desk.coordinator_status()
    assert result.signal.coordinator == "llm"
    assert status.startswith("Coordinator: llm (openai/gpt-oss-120b), breaker closed")
    assert "(auto, and GROQ_API_KEY is set)" in status
    # One request sent; Groq's headers said 999 requests left today.
    assert "29/30 requests this minute; 999/1,000 requests today" in status


async def test_groq_base_url_from_the_environment_is_honoured(
    fake: FakeGroq, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROQ_BASE_URL", fake.base_url)
    desk = build_desk(config_with(None, "llm"), secrets=Secrets(groq_api_key=KEY))
    async with desk:
        result = await desk.signal("BTC/USDT")
    assert result.signal.coordinator == "llm"
    assert len(fake.requests) == 1


async def test_the_footer_names_the_model(fake: FakeGroq) -> None:
    rules = await rules_signal()
    fake.script.append(valid(rules, confidence=rules.confidence - 20))
    signal = await decide(llm_config(fake, model="llama-3.1-8b-instant"))
    label = coordinator_label(signal)
    assert "reasoning_effort" in fake.requests[0]  # "" would leave it out (not a reasoning model)
    assert label.startswith("llm coordinator (llama-3.1-8b-instant) (clamps: confidence")
    assert label in render_text(signal, ())


async def test_signal_on_demand_has_its_share_and_each_user_a_limit(fake: FakeGroq, store) -> None:
    fake._responder = lambda body: FakeAnswer(proposal_json(confidence=0))
    budget = LlmBudgetConfig(requests_per_minute=4, on_demand_share=0.5, per_user_per_hour=1)
    config = config_with(fake, "llm", cache_ttl_s=0, budget=budget)
    desk = build_desk(config, secrets=Secrets(groq_api_key=KEY))
    router = CommandRouter(desk, store, load_config(env={}, model=BotConfig), no_status)
    async with desk:
        # A scheduled cycle may use half of the 4 requests a minute.
        cycle = [(await desk.signal(s)).signal for s in ("BTC/USDT", "ETH/USDT", "BTC/USDT")]
        first = await router.handle(command("signal eth", "u1"))
        again = await router.handle(command("signal btc", "u1"))  # u1's hourly one is used
        other = await router.handle(command("signal btc", "u2"))
    assert [s.coordinator for s in cycle] == ["llm", "llm", "rules"]
    assert [note for note in cycle[2].notes if "kept for /signal" in note]
    assert "llm coordinator (openai/gpt-oss-120b)" in first.text
    assert "Rules signal: LLM answers for this user used up (1 an hour)" in again.text
    assert "llm coordinator (openai/gpt-oss-120b)" in other.text
    assert len(fake.requests) == 4


def command(line: str, user: str) -> Request:
    name, args = parse_command_line(line)
    return Request("console", user, "c1", f"dm-{user}", name, args, is_private=True)


async def no_status() -> BotStatus:
    raise AssertionError("status is not asked here")


async def calibrated_llm_call(fake: FakeGroq, **reply: object) -> tuple[Signal, Signal]:
    """(the calibrated rules' BUY, the LLM's signal for the same moment given `reply`)."""
    rules = RulesCoordinator(CoordinatorConfig(), Calibrator(load_map(), "replay"))
    config = llm_config(fake)
    coordinator = LlmCoordinator(config, rules, GroqChat(config, KEY))
    reports, candles = make_reports(Action.BUY), make_candles("BTC/USDT")
    made_by_rules = await rules.decide("BTC/USDT", DEFAULT_AS_OF, reports, candles, DEFAULT_AS_OF)
    assert made_by_rules.action is Action.BUY
    assert made_by_rules.raw_confidence is not None
    fake.script.append(valid(made_by_rules, **{"confidence": made_by_rules.confidence, **reply}))
    await coordinator.start()
    try:
        return made_by_rules, await decide_with(coordinator, Action.BUY)
    finally:
        await coordinator.close()


def calibration_notes(signal: Signal) -> list[str]:
    return [n for n in signal.notes if n.startswith(("Confidence is calibrated", "No demonstr"))]


async def test_an_llm_call_says_its_confidence_is_calibrated_on_the_rules(fake: FakeGroq) -> None:
    made_by_rules, signal = await calibrated_llm_call(fake)
    assert signal.coordinator == "llm"
    assert signal.action is Action.BUY
    # The map was fitted on the rules' calls: an LLM call is outside its scope and says so.
    scope = [note for note in signal.notes if note.startswith("Confidence is calibrated on")]
    assert len(scope) == 1
    assert "rules coordinator" in scope[0]
    assert not [n for n in made_by_rules.notes if n.startswith("Confidence is calibrated")]


async def test_an_llm_step_down_to_hold_carries_no_calibration_of_the_rules_call(
    fake: FakeGroq,
) -> None:
    made_by_rules, signal = await calibrated_llm_call(fake, action="HOLD")
    assert calibration_notes(made_by_rules)  # the shipped map is flat: the BUY says no edge
    assert signal.action is Action.HOLD
    assert calibration_notes(signal) == []  # a HOLD is no bet: nothing of the BUY's odds
    assert signal.raw_confidence == signal.confidence  # a HOLD keeps its value, as the rules'
