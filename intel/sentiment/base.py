"""The sentiment-engine interface shared by the lexicon engine and FinBERT."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from intel.lifecycle import Lifecycle

__all__ = [
    "DescribedEngine",
    "SentimentEngine",
    "SentimentScore",
    "describe_engine",
    "engine_notice",
]

Label = Literal["positive", "negative", "neutral"]


@dataclass(frozen=True, slots=True)
class SentimentScore:
    label: Label
    positive: float
    negative: float
    neutral: float

    @property
    def score(self) -> float:
        """P(positive) − P(negative), on −1..+1."""
        return self.positive - self.negative

    def to_json(self, engine: str) -> dict[str, object]:
        return {
            "label": self.label,
            "probabilities": {
                "positive": _rounded(self.positive),
                "negative": _rounded(self.negative),
                "neutral": _rounded(self.neutral),
            },
            "score": _rounded(self.score),
            "engine": engine,
        }


def _rounded(value: float) -> float:
    """To 4 places, and never -0.0 (max(-0.0, 0) is -0.0; JSON would print the sign)."""
    return round(value, 4) + 0.0


class SentimentEngine(Lifecycle, Protocol):
    """Scores a batch of texts; blocking (call it from a worker thread inside the event loop).

    `start` loads what the engine needs (a model, once); `close` releases it.
    """

    @property
    def name(self) -> str:
        """The engine that scores (a stand-in names the engine actually in use)."""
        ...

    def score(self, texts: Sequence[str]) -> list[SentimentScore]: ...


@runtime_checkable
class DescribedEngine(Protocol):
    """An engine that may stand in for another (FinBERT falling back to the lexicon) says so."""

    @property
    def notice(self) -> str | None:
        """What a reader must know about the scores (the fallback), or None."""
        ...

    def describe(self) -> str:
        """One line for `status`: which engine, loaded or not, or the fallback and why."""
        ...


def engine_notice(engine: SentimentEngine) -> str | None:
    """The engine's notice for a report's notes; None for engines that never stand in."""
    return engine.notice if isinstance(engine, DescribedEngine) else None


def describe_engine(engine: SentimentEngine) -> str:
    """The engine's `status` line: its own description, else its name."""
    return engine.describe() if isinstance(engine, DescribedEngine) else engine.name
