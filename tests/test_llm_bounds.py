"""The rules' bounds on an LLM proposal, the LLM budget, and the reply schema.

Bounds are checked as properties over every proposal hypothesis can make (the invariants are the
issue's words, written independently of `apply_bounds`) and on worked examples.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intel.config import LlmBoundsConfig, LlmBudgetConfig
from intel.coordinator.bounds import apply_bounds
from intel.coordinator.budget import BudgetExhaustedError, LlmBudget, on_demand
from intel.coordinator.reply import InvalidReplyError, Proposal, clean_text, parse_reply
from intel.models import Action, PositionSize
from intel.sources.fakes.groq import proposal_json
from tests.factories import make_signal

BOUNDS = LlmBoundsConfig()
SIZES = ["conservative", "moderate", "aggressive"]


def proposal(**fields: object) -> Proposal:
    return parse_reply(proposal_json(**fields))


@settings(max_examples=300, deadline=None)
@given(
    rules_action=st.sampled_from([Action.BUY, Action.SELL, Action.HOLD]),
    rules_confidence=st.integers(0, 100),
    rules_size=st.sampled_from(SIZES),
    hold_confidence=st.integers(0, 100),
    action=st.sampled_from(["BUY", "SELL", "HOLD"]),
    confidence=st.integers(-50, 500),
    size=st.sampled_from(SIZES),
    timeframe=st.integers(-10, 10_000),
)
def test_every_proposal_ends_within_the_bounds(
    rules_action, rules_confidence, rules_size, hold_confidence, action, confidence, size, timeframe
) -> None:
    rules = dataclasses.replace(
        make_signal(action=Action.BUY),
        action=rules_action,
        confidence=rules_confidence,
        position_size=PositionSize(rules_size),
    )
    asked = proposal(
        action=action, confidence=confidence, position_size=size, timeframe_hours=timeframe
    )
    out = apply_bounds(rules, hold_confidence, asked, BOUNDS)
    assert out.action in (rules_action, Action.HOLD)  # never a flip, never a new call
    if out.action is rules_action:
        assert max(0, rules_confidence - 15) <= out.confidence <= rules_confidence
        assert SIZES.index(out.position_size.value) <= SIZES.index(rules_size)
    else:  # stepped down to HOLD: the rules' HOLD confidence, the rules' HOLD size
        assert out.confidence == hold_confidence
        assert out.position_size is PositionSize.CONSERVATIVE
    assert 2 <= out.timeframe_hours <= 48
    changed = (
        out.action.value != action
        or out.confidence != confidence
        or out.position_size.value != size
        or out.timeframe_hours != timeframe
    )
    assert bool(out.clamps) == changed  # every change is recorded, and only changes


def test_worked_examples() -> None:
    rules = dataclasses.replace(
        make_signal(action=Action.BUY), confidence=80, position_size=PositionSize.MODERATE
    )
    keep = apply_bounds(
        rules, 40, proposal(action="BUY", confidence=70, position_size="moderate"), BOUNDS
    )
    assert (keep.action, keep.confidence, keep.clamps) == (Action.BUY, 70, ())
    flip = apply_bounds(
        rules,
        40,
        proposal(action="SELL", confidence=99, position_size="aggressive", timeframe_hours=1),
        BOUNDS,
    )
    assert (flip.action, flip.confidence, flip.position_size, flip.timeframe_hours) == (
        Action.BUY,
        80,
        PositionSize.MODERATE,
        2,
    )
    assert flip.clamps == (
        "action SELL → BUY: only the rules' call or HOLD",
        "confidence 99 → 80: allowed 65–80",
        "size aggressive → moderate: never above the rules'",
        "timeframe 1 h → 2 h: allowed 2–48 h",
    )
    low = apply_bounds(
        rules, 40, proposal(action="BUY", confidence=10, position_size="moderate"), BOUNDS
    )
    assert (low.confidence, low.clamps) == (65, ("confidence 10 → 65: allowed 65–80",))
    hold = apply_bounds(rules, 40, proposal(action="HOLD", confidence=40), BOUNDS)
    assert (hold.action, hold.confidence, hold.clamps) == (Action.HOLD, 40, ())


def test_reply_schema_caps_and_repair_reasons() -> None:
    with pytest.raises(InvalidReplyError, match="not JSON"):
        parse_reply("{'action': 'BUY'")
    with pytest.raises(InvalidReplyError, match="thesis"):
        parse_reply(proposal_json(thesis="x" * 601))
    with pytest.raises(InvalidReplyError, match="risk_factors"):
        parse_reply(proposal_json(risk_factors=["a"] * 6))
    with pytest.raises(InvalidReplyError, match="action"):
        parse_reply(proposal_json(action="STRONG BUY"))
    with pytest.raises(InvalidReplyError, match="not a JSON object"):
        parse_reply(json.dumps(["BUY"]))
    assert parse_reply(proposal_json(thesis="x" * 600, action="buy")).action == "BUY"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("@everyone BUY now", "everyone BUY now"),
        ("@@here go", "here go"),
        ("<b>bold</b> and <@123456> and <#chan>", "bold and and"),
        ("**strong** _em_ `code` ~~gone~~ > quote", "strong em code gone quote"),
        ("[click](https://evil.example) now https://x.example/y", "click now"),
        ("zero\u200bwidth\u2060 and \u202eRTL and \x07bell", "zerowidth and RTL and bell"),
        ("ｆｕｌｌ　width", "full width"),  # NFKC folds look-alike forms
    ],
)
def test_clean_text_leaves_plain_sentences(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spend_until_refused(budget: LlmBudget, tokens: int, limit: int = 100) -> int:
    for count in range(limit):
        try:
            budget.spend(tokens)
        except BudgetExhaustedError:
            return count
    return limit


def test_a_cycle_leaves_the_on_demand_share_and_users_have_a_limit() -> None:
    clock = Clock()
    config = LlmBudgetConfig(requests_per_minute=30, on_demand_share=0.25, per_user_per_hour=5)
    budget = LlmBudget(config, clock)
    # 75 % of 30 requests = 22.5: a scheduled cycle gets 22 this minute.
    assert spend_until_refused(budget, 10) == 22
    with pytest.raises(BudgetExhaustedError, match="kept for /signal"):
        budget.spend(10)
    with on_demand("telegram:alice"):
        assert spend_until_refused(budget, 10) == 5  # her hourly limit, not the minute's 8
    with on_demand("telegram:bob"):
        assert spend_until_refused(budget, 10) == 3  # the 8 left this minute, less alice's 5
    clock.now += 60  # the minute window slides past
    assert spend_until_refused(budget, 10) == 22
    assert "8/30 requests this minute" in budget.describe()
    assert "948/1,000 requests today" in budget.describe()  # 22 + 5 + 3 + 22 sent today


def test_tokens_are_budgeted_per_minute() -> None:
    budget = LlmBudget(LlmBudgetConfig(tokens_per_minute=8000, on_demand_share=0.25), Clock())
    # 75 % of 8,000 = 6,000 tokens: six requests of 1,000.
    assert spend_until_refused(budget, 1000) == 6


def test_rate_limit_headers_lower_what_is_left_until_their_reset() -> None:
    clock = Clock()
    budget = LlmBudget(LlmBudgetConfig(on_demand_share=0.25), clock)
    budget.observe(
        {
            "x-ratelimit-remaining-requests": "3",  # Groq: requests per day
            "x-ratelimit-reset-requests": "2m0.5s",
            "x-ratelimit-remaining-tokens": "7000",
        }
    )
    # 3 left today is below the 250 kept for /signal: the cycle gets none, /signal gets 3.
    assert spend_until_refused(budget, 10) == 0
    with on_demand("discord:carol"):
        assert spend_until_refused(budget, 10) == 3
    clock.now += 121  # past the reset (and the minute): the headers no longer bind
    assert spend_until_refused(budget, 10) == 22


def test_the_providers_limit_replaces_the_configured_one() -> None:
    budget = LlmBudget(LlmBudgetConfig(tokens_per_minute=8000, on_demand_share=0.25), Clock())
    budget.observe({"x-ratelimit-limit-tokens": "20000", "x-ratelimit-remaining-tokens": "20000"})
    # A paid tier: 75 % of 20,000 = 15,000 tokens, fifteen requests of 1,000.
    assert spend_until_refused(budget, 1000) == 15
    assert "5,000/20,000 tokens this minute" in budget.describe()
