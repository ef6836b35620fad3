"""No invented numbers: every figure an LLM text cites must be one it was given.

A cited figure is a number as written in the text ("$1.2 bn", "-12.3M", "35 %", "62,150"). It
matches a given figure when, read at the precision shown and scaled by its unit suffix, it equals
the given value within half a unit of its last digit shown: "$1.2 bn" (1.2 × 10⁹, one decimal)
matches 1,234,567,890 because |1.2345… − 1.2| ≤ 0.05. Signs are ignored (a text says "an outflow
of $12M" for a net flow of −12,000,000). Suffixes: k/K/thousand = 10³, M/mn/million = 10⁶,
B/bn/billion = 10⁹; a percentage matches a given figure as is, or a fraction (|v| ≤ 1) × 100.

Also allowed, and nothing else:
- durations: a number followed by a time unit ("24 h", "6-hour", "3 days");
- the signal's own timeframe and confidence (after the bounds);
- differences and percentages of two given figures, only those in `DERIVATIONS`:
  difference a − b, change (a − b) / b × 100 % and share a / b × 100 % of the pairs listed there.

Numbers glued to letters ("L2", "ERC20", "gpt-oss-120b") are names, not figures.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

__all__ = ["DERIVATIONS", "CitedFigure", "Derivation", "cited_figures", "unmatched_figures"]

DerivationKind = Literal["difference", "change_pct", "share_pct"]


@dataclass(frozen=True, slots=True)
class Derivation:
    """A figure the LLM may compute from two given ones (names as in the prompt's figures)."""

    kind: DerivationKind
    a: str
    b: str


# The documented list (README: "No invented numbers"); names are the prompt's figure names.
DERIVATIONS: tuple[Derivation, ...] = (
    Derivation("difference", "whales.outflow_usd", "whales.inflow_usd"),  # net exchange flow
    Derivation("change_pct", "whales.outflow_usd", "whales.inflow_usd"),  # outflow vs inflow
    Derivation("share_pct", "whales.outflow_usd", "whales.gross_flow_usd"),
    Derivation("difference", "whales.score", "sentiment.score"),  # the divergence
    Derivation("difference", "orderbook.bid_depth_quote", "orderbook.ask_depth_quote"),
    Derivation("share_pct", "orderbook.bid_depth_quote", "orderbook.ask_depth_quote"),
    Derivation("change_pct", "market.price", "market.price_24h_ago"),  # 24 h price change
    Derivation("difference", "market.price", "market.price_24h_ago"),
)

_SCALES: Mapping[str, float] = {
    "k": 1e3,
    "thousand": 1e3,
    "m": 1e6,
    "mn": 1e6,
    "mln": 1e6,
    "million": 1e6,
    "b": 1e9,
    "bn": 1e9,
    "billion": 1e9,
    "%": 1.0,
    "percent": 1.0,
}
_DURATION_UNITS = r"hours?|hrs?|h|minutes?|mins?|min|days?|d|weeks?|wks?|w|seconds?|secs?|s"
_NUMBER = re.compile(
    r"(?<![\w.])"  # not glued to a word or another number
    r"[$€£]?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s?(?P<suffix>%|percent\b|thousand\b|million\b|billion\b|mln\b|mn\b|bn\b|[kKmMbB]\b))?"
    r"(?P<duration>[\s-]?(?:" + _DURATION_UNITS + r")\b)?"
    r"(?![\w])",
)


@dataclass(frozen=True, slots=True)
class CitedFigure:
    """One number in a text: its value as written, the decimals shown, and its scale."""

    text: str
    value: float
    decimals: int
    scale: float
    percent: bool
    duration: bool


def cited_figures(text: str) -> list[CitedFigure]:
    """Every number in `text`, read with its suffix (see the module docstring)."""
    found = []
    for match in _NUMBER.finditer(text):
        digits = match["num"].replace(",", "")
        suffix = (match["suffix"] or "").lower()
        found.append(
            CitedFigure(
                text=match.group(0).strip(),
                value=float(digits),
                decimals=len(digits.split(".")[1]) if "." in digits else 0,
                scale=_SCALES.get(suffix, 1.0),
                percent=suffix in ("%", "percent"),
                duration=bool(match["duration"]) and not suffix,
            )
        )
    return found


def unmatched_figures(
    text: str, given: Mapping[str, float], allowed: Iterable[float] = ()
) -> list[str]:
    """The figures `text` cites that are neither given, derived (DERIVATIONS), a duration nor
    one of `allowed` (the timeframe and confidence); empty when every figure checks out."""
    values = [*given.values(), *_derived(given)]
    exact = [float(v) for v in allowed]
    return [
        cited.text
        for cited in cited_figures(text)
        if not cited.duration
        and not _matches_any(cited, values)
        and not (cited.scale == 1.0 and not cited.percent and cited.value in exact)
    ]


def _derived(given: Mapping[str, float]) -> list[float]:
    values = []
    for rule in DERIVATIONS:
        a, b = given.get(rule.a), given.get(rule.b)
        if a is None or b is None:
            continue
        if rule.kind == "difference":
            values.append(a - b)
        elif b != 0:
            values.append((a - b) / b * 100 if rule.kind == "change_pct" else a / b * 100)
    return values


def _matches_any(cited: CitedFigure, values: list[float]) -> bool:
    tolerance = 0.5 * 10.0**-cited.decimals + 1e-9  # half a unit of the last digit shown
    for value in values:
        if not math.isfinite(value):
            continue
        candidates = [abs(value)]
        if cited.percent and abs(value) <= 1.0:
            candidates.append(abs(value) * 100)
        if any(abs(c / cited.scale - cited.value) <= tolerance for c in candidates):
            return True
    return False
