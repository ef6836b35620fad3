"""The sentiment-engine interface shared by the lexicon engine and FinBERT."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from intel.lifecycle import Lifecycle

__all__ = ["SentimentEngine", "SentimentScore"]

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
                "positive": round(self.positive, 4),
                "negative": round(self.negative, 4),
                "neutral": round(self.neutral, 4),
            },
            "score": round(self.score, 4),
            "engine": engine,
        }


class SentimentEngine(Lifecycle, Protocol):
    """Scores a batch of texts; blocking (call it from a worker thread inside the event loop).

    `start` loads what the engine needs (a model, once); `close` releases it.
    """

    name: str

    def score(self, texts: Sequence[str]) -> list[SentimentScore]: ...
