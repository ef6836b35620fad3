"""Accuracy of the lexicon engine beside plain VADER on labelled finance text read from ../shared.

Optional: reads Financial PhraseBank AllAgree (CC BY-NC-SA, never copied into the repo) and the
held-out fifth of the Twitter Financial News training split (MIT) from `--data` (default
`../shared/data/sentiment`). A text is positive when its score (P(pos) − P(neg); VADER's compound)
is ≥ +0.05, negative when ≤ −0.05, else neutral — FinVADER's published protocol.

The Twitter Financial News fifth was set aside by hash before the lexicon was developed
(`is_held_out`) and never used to tune it; `--dev` prints the confusion and the misread texts of
the other four fifths, which is what the lexicon was built on.

    python scripts/eval_sentiment_phrasebank.py [--data DIR] [--dev [N]]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from intel.sentiment.lexicon import LexiconEngine

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "sentiment"
THRESHOLD = 0.05
HOLDOUT_SALT = "signaldesk-tfn-holdout-v1"
TFN_LABELS = {"0": "negative", "1": "positive", "2": "neutral"}  # Bearish, Bullish, Neutral

Labelled = list[tuple[str, str]]
Scorer = Callable[[Sequence[str]], list[float]]


def is_held_out(text: str) -> bool:
    """The fixed fifth set aside before development: SHA-256 of salt + text, first byte mod 5."""
    return hashlib.sha256((HOLDOUT_SALT + text).encode("utf-8")).digest()[0] % 5 == 0


def read_phrasebank(data: Path) -> Labelled:
    path = data / "financial_phrasebank" / "Sentences_AllAgree.txt"
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        sentence, _, label = line.rpartition("@")
        if sentence:
            rows.append((sentence.strip(), label.strip()))
    return rows


def read_tfn(data: Path, held_out: bool) -> Labelled:
    path = data / "twitter_financial_news" / "sent_train.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = [(row["text"], TFN_LABELS[row["label"]]) for row in csv.DictReader(handle)]
    return [(text, label) for text, label in rows if is_held_out(text) == held_out]


def label_of(score: float) -> str:
    if score >= THRESHOLD:
        return "positive"
    if score <= -THRESHOLD:
        return "negative"
    return "neutral"


def lexicon_scorer() -> Scorer:
    engine = LexiconEngine()
    return lambda texts: [s.score for s in engine.score(texts)]


def vader_scorer() -> Scorer:
    analyzer = SentimentIntensityAnalyzer()
    return lambda texts: [analyzer.polarity_scores(t)["compound"] for t in texts]


def accuracy(scorer: Scorer, rows: Labelled) -> float:
    predicted = [label_of(s) for s in scorer([text for text, _ in rows])]
    return sum(p == label for p, (_, label) in zip(predicted, rows, strict=True)) / len(rows)


def show_dev(rows: Labelled, limit: int) -> None:
    scores = lexicon_scorer()([text for text, _ in rows])
    confusion = Counter((label, label_of(s)) for (_, label), s in zip(rows, scores, strict=True))
    print("confusion (truth, predicted):", dict(sorted(confusion.items())))
    wrong = [(t, lab, s) for (t, lab), s in zip(rows, scores, strict=True) if label_of(s) != lab]
    for text, label, score in wrong[:limit]:
        print(f"{label:8} {score:+.2f}  {text[:150]}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--dev", type=int, nargs="?", const=60, metavar="N")
    args = parser.parse_args(argv)
    if not (args.data / "twitter_financial_news").is_dir():
        print(f"error: no labelled data under {args.data}", file=sys.stderr)
        return 3
    if args.dev is not None:
        show_dev(read_tfn(args.data, held_out=False), args.dev)
        return 0
    print(f"{'texts':44} {'rows':>5} {'neutral':>8} {'VADER':>6} {'lexicon':>8}")
    for name, rows in (
        ("Financial PhraseBank AllAgree", read_phrasebank(args.data)),
        ("Twitter Financial News, held-out fifth", read_tfn(args.data, held_out=True)),
    ):
        neutral = sum(label == "neutral" for _, label in rows) / len(rows)
        vader, ours = accuracy(vader_scorer(), rows), accuracy(lexicon_scorer(), rows)
        print(f"{name:44} {len(rows):>5} {neutral:>8.3f} {vader:>6.3f} {ours:>8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
