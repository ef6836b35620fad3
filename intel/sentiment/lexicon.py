"""The lexicon engine: VADER (MIT) reading crypto and market talk through word lists of our own.

Three layers, all data in `intel/data/lexicon/`:
1. `phrases.tsv`: multi-word expressions ("buy the dip", "bull trap", "ETF outflows", "price
   target raised") become one token each with a valence of their own (see `phrases.py`);
2. `crypto_terms.tsv`: single words added to VADER's lexicon or overriding its everyday sense;
3. VADER's own rules (negation, boosters, capitals, "but", punctuation) over the result.

VADER's compound is `s / sqrt(s² + 15)` of the summed valence `s`. A text whose |s| is below
`DEAD_ZONE` (one weak word in a news line) counts as neutral: the compound is recomputed from
`sign(s)·max(|s| − DEAD_ZONE, 0)`. The result `c` on −1..+1 is the engine's score;
probabilities are `positive = max(c, 0)`, `negative = max(−c, 0)`, `neutral = 1 − |c|` so that
`score = P(pos) − P(neg)` (the Sentiment JSON contract), and the label is positive at c ≥ 0.05,
negative at c ≤ −0.05 (VADER's documented thresholds), else neutral.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from intel.lifecycle import NoResources
from intel.sentiment.base import Label, SentimentScore
from intel.sentiment.phrases import PhraseTable, load_phrases

__all__ = ["LexiconEngine", "load_crypto_terms"]

CRYPTO_TERMS = Path(__file__).resolve().parent.parent / "data" / "lexicon" / "crypto_terms.tsv"
COMPOUND_THRESHOLD = 0.05
VADER_ALPHA = 15.0  # VADER's normalisation constant
DEAD_ZONE = 1.0
# Longer texts are cut: a post's opening carries its mood, and scoring time stays bounded.
MAX_TEXT_CHARS = 5_000
NEUTRAL = SentimentScore(label="neutral", positive=0.0, negative=0.0, neutral=1.0)


def load_crypto_terms(path: Path = CRYPTO_TERMS) -> dict[str, float]:
    terms: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        token, valence = line.split("\t")
        terms[token.strip().lower()] = float(valence)
    return terms


class LexiconEngine(NoResources):
    """In-process and small: the lexicon loads with the object, nothing to open or close.

    `extra_terms` replaces the crypto word list and `phrases` the phrase table (None: the
    shipped files); `LexiconEngine(extra_terms={}, phrases=False)` is plain VADER.
    """

    name = "lexicon"

    def __init__(
        self,
        extra_terms: dict[str, float] | None = None,
        phrases: PhraseTable | bool = True,
    ) -> None:
        self._analyzer = SentimentIntensityAnalyzer()
        self._analyzer.lexicon.update(load_crypto_terms() if extra_terms is None else extra_terms)
        self._phrases = load_phrases() if phrases is True else phrases or None
        if self._phrases is not None:
            self._analyzer.lexicon.update(self._phrases.valences)

    def score(self, texts: Sequence[str]) -> list[SentimentScore]:
        return [self._score_one(text) for text in texts]

    def _score_one(self, text: str) -> SentimentScore:
        text = text[:MAX_TEXT_CHARS]
        if not text.strip():
            return NEUTRAL
        if self._phrases is not None:
            text = self._phrases.rewrite(text)
        compound = _dead_zone(self._analyzer.polarity_scores(text)["compound"])
        label: Label = "neutral"
        if compound >= COMPOUND_THRESHOLD:
            label = "positive"
        elif compound <= -COMPOUND_THRESHOLD:
            label = "negative"
        return SentimentScore(
            label=label,
            positive=max(compound, 0.0),
            negative=max(-compound, 0.0),
            neutral=1.0 - abs(compound),
        )


def _dead_zone(compound: float) -> float:
    """VADER's compound with `DEAD_ZONE` taken off the summed valence it was normalised from."""
    bounded = max(-0.9999, min(0.9999, compound))
    summed = bounded * math.sqrt(VADER_ALPHA / (1.0 - bounded * bounded))
    kept = math.copysign(max(abs(summed) - DEAD_ZONE, 0.0), summed)
    return kept / math.sqrt(kept * kept + VADER_ALPHA)
