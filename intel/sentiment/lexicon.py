"""The lexicon engine: VADER (MIT) with crypto and trading slang of our own added.

Probabilities are VADER's positive/negative/neutral proportions of the text; the label follows
VADER's documented rule on the compound score (≥ 0.05 positive, ≤ −0.05 negative).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from intel.lifecycle import NoResources
from intel.sentiment.base import Label, SentimentScore

__all__ = ["LexiconEngine", "load_crypto_terms"]

CRYPTO_TERMS = Path(__file__).resolve().parent.parent / "data" / "lexicon" / "crypto_terms.tsv"
COMPOUND_THRESHOLD = 0.05


def load_crypto_terms(path: Path = CRYPTO_TERMS) -> dict[str, float]:
    terms: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        token, valence = line.split("\t")
        terms[token.strip().lower()] = float(valence)
    return terms


class LexiconEngine(NoResources):
    """In-process and small: the lexicon loads with the object, nothing to open or close."""

    name = "lexicon"

    def __init__(self, extra_terms: dict[str, float] | None = None) -> None:
        self._analyzer = SentimentIntensityAnalyzer()
        self._analyzer.lexicon.update(load_crypto_terms() if extra_terms is None else extra_terms)

    def score(self, texts: Sequence[str]) -> list[SentimentScore]:
        return [self._score_one(text) for text in texts]

    def _score_one(self, text: str) -> SentimentScore:
        if not text.strip():
            return SentimentScore(label="neutral", positive=0.0, negative=0.0, neutral=1.0)
        polarity = self._analyzer.polarity_scores(text)
        compound = polarity["compound"]
        label: Label = "neutral"
        if compound >= COMPOUND_THRESHOLD:
            label = "positive"
        elif compound <= -COMPOUND_THRESHOLD:
            label = "negative"
        return SentimentScore(
            label=label,
            positive=polarity["pos"],
            negative=polarity["neg"],
            neutral=polarity["neu"],
        )
