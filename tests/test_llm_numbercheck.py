"""The number check: an LLM text may cite only figures it was given (at the precision it shows,
with k/M/bn/% understood), the documented derivations, durations, the timeframe and confidence.

Expected outcomes are worked out by hand in each case's comment, never by the checker.
"""

from __future__ import annotations

import pytest

from intel.coordinator.numbercheck import cited_figures, unmatched_figures

GIVEN = {
    "whales.net_flow_usd": 1_234_567_890.0,
    "market.price": 62_150.0,
    "orderbook.imbalance_0_5pct": 0.35,
    "market.hourly_volatility_pct": 1.27,
    "sentiment.fear_greed": 22.0,
    "orderbook.support_size_quote": 1_234.0,
    "whales.outflow_coins": -12_300_000.0,
}


@pytest.mark.parametrize(
    "text",
    [
        "Whales moved $1.2 bn off exchanges.",  # 1.2345… bn shown to one decimal
        "Whales moved $1.23bn off exchanges.",  # 1.2346 → 1.23
        "Whales moved $1,234.6M off exchanges.",  # 1,234.5679 M → 1,234.6
        "Net flow of 1,234,567,890 USD.",  # exactly as given
        "Price near 62,150 and support of $1.2k.",  # 1,234 → 1.2 k
        "Price near $62.2k.",  # 62.15 k → 62.2 (half up: within half a unit)
        "The bids lead with a 35% imbalance.",  # the fraction 0.35 as a percentage
        "Hourly volatility is 1.3 %.",  # 1.27 % shown to one decimal
        "Fear & Greed reads 22.",
        "Coins out: -12.3M.",  # sign ignored: -12,300,000
        "Over the last 24 h, within 6-hour swings, for 3 days.",  # durations
        "ERC20 tokens and L2 rollups do not count as figures.",  # glued to letters
        "No figures at all.",
    ],
)
def test_given_figures_pass(text: str) -> None:
    assert unmatched_figures(text, GIVEN) == []


@pytest.mark.parametrize(
    ("text", "invented"),
    [
        ("Whales moved $1.3 bn off exchanges.", ["$1.3 bn"]),  # 1.2345 is not 1.3 at 1 decimal
        ("Whales moved $1.24bn off exchanges.", ["$1.24bn"]),  # 1.2346 is 1.23 at 2 decimals
        ("Price near 62,151.", ["62,151"]),  # one off at whole-number precision
        ("Price near $62.3k.", ["$62.3k"]),
        ("The bids lead with a 36% imbalance.", ["36%"]),
        ("Fear & Greed reads 23, a 500% rally ahead.", ["23", "500%"]),
        ("Expect 100x and then 7 more.", ["7"]),  # 100x is a name; 7 is a figure
        ("Coins out: -12.4M.", ["12.4M"]),  # the sign is read, not shown
    ],
)
def test_other_figures_are_caught(text: str, invented: list[str]) -> None:
    assert unmatched_figures(text, GIVEN) == invented


def test_timeframe_and_confidence_pass_only_as_signalled() -> None:
    text = "Confidence 72 over a 12 hour horizon; confidence 72 again."
    assert unmatched_figures(text, {}, allowed=(72, 12)) == []
    assert unmatched_figures("Confidence 73.", {}, allowed=(72, 12)) == ["73"]
    # An allowed value is exact: no suffix reading turns 72 into 72k.
    assert unmatched_figures("A 72k position.", {}, allowed=(72,)) == ["72k"]


def test_documented_derivations_pass_and_others_do_not() -> None:
    given = {
        "whales.outflow_usd": 125_000_000.0,
        "whales.inflow_usd": 25_000_000.0,
        "market.price": 62_150.0,
        "market.price_24h_ago": 61_000.0,
    }
    # 125 M − 25 M = 100 M; (125 − 25) / 25 = 400 %; (62,150 − 61,000) / 61,000 = 1.885… %;
    # 62,150 − 61,000 = 1,150.
    text = "Net $100M out, outflows 400% above inflows, price up 1.9% (1,150) in 24 h."
    assert unmatched_figures(text, given) == []
    # 125 M + 25 M = 150 M is a sum, not in the list; 125 / 62,150 has no meaning.
    assert unmatched_figures("Gross flow $150M.", given) == ["$150M"]
    assert unmatched_figures("Price up 2.5%.", given) == ["2.5%"]


def test_cited_figures_read_suffix_precision_and_scale() -> None:
    (bn,) = cited_figures("$1.20 billion")
    assert (bn.value, bn.decimals, bn.scale, bn.percent) == (1.2, 2, 1e9, False)
    (pct,) = cited_figures("down 4.5 percent")
    assert (pct.value, pct.decimals, pct.percent) == (4.5, 1, True)
    (hours,) = cited_figures("for 48 hours")
    assert hours.duration
