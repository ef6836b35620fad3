"""The lexicon sentiment engine and the sentiment agent on the recorded replay data."""

from __future__ import annotations

import csv
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from intel.agents.sentiment import SentimentAgent, fear_greed_mood
from intel.config import Config, SentimentAgentConfig
from intel.desk import replay_sources
from intel.features import SentimentFeatures
from intel.models import AgentReport, FearGreedReading, MarketSnapshot, ReportStatus, Unavailable
from intel.sentiment.base import SentimentScore
from intel.sentiment.lexicon import LexiconEngine, load_crypto_terms
from intel.snapshot import SnapshotBuilder
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.timeutil import parse_time, to_ms

CRYPTO = LexiconEngine()
VADER = SentimentIntensityAnalyzer()
NOW = parse_time("2025-10-06T16:00Z")


def one(engine: LexiconEngine, text: str) -> SentimentScore:
    (result,) = engine.score([text])
    return result


# --- the lexicon engine ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "I got rekt on this trade",
        "this coin is a rug",
        "got rugged again",
    ],
)
def test_crypto_slang_reads_more_negative_than_plain_vader(text) -> None:
    crypto, plain = one(CRYPTO, text), VADER.polarity_scores(text)["compound"]
    assert crypto.score < plain
    assert crypto.label == "negative"


@pytest.mark.parametrize(
    "text", ["hodl", "just hodl and relax", "BTC to the moon", "Bitcoin is going to the moon!"]
)
def test_crypto_slang_reads_more_positive_than_plain_vader(text) -> None:
    crypto, plain = one(CRYPTO, text), VADER.polarity_scores(text)["compound"]
    assert crypto.score > plain
    assert crypto.label == "positive"


def test_the_crypto_terms_file_is_loaded() -> None:
    terms = load_crypto_terms()
    assert terms["rekt"] < 0 < terms["hodl"]
    assert terms["rug"] < 0 < terms["moon"]
    assert terms["fud"] < 0


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_neutral(text) -> None:
    result = one(CRYPTO, text)
    assert result.label == "neutral"
    assert (result.positive, result.negative, result.neutral) == (0.0, 0.0, 1.0)
    assert result.score == 0.0


def test_a_batch_keeps_its_order() -> None:
    texts = ["great gains, bullish", "", "rug pull scam, rekt"]
    labels = [s.label for s in CRYPTO.score(texts)]
    assert labels == ["positive", "neutral", "negative"]
    assert CRYPTO.score([]) == []


@settings(max_examples=150, deadline=None)
@given(
    st.text(max_size=200)
    | st.lists(
        st.sampled_from(
            [
                "moon",
                "rekt",
                "hodl",
                "fud",
                "rug",
                "great",
                "terrible",
                "the",
                "ETH",
                "not",
                "very",
                "!",
                "?",
                "🚀",
                "but",
            ]
        ),
        max_size=20,
    ).map(" ".join)
)
def test_probabilities_and_score_follow_the_contract(text) -> None:
    result = one(CRYPTO, text)
    probabilities = (result.positive, result.negative, result.neutral)
    assert all(0.0 <= p <= 1.0 for p in probabilities)
    assert sum(probabilities) == pytest.approx(1.0, abs=0.01)
    assert result.score == pytest.approx(result.positive - result.negative)
    assert -1.0 <= result.score <= 1.0
    assert result.label in {"positive", "negative", "neutral"}
    data = result.to_json("lexicon")
    assert set(data) >= {"label", "probabilities", "score", "engine"}
    assert set(data["probabilities"]) == {"positive", "negative", "neutral"}
    assert data["score"] == pytest.approx(
        data["probabilities"]["positive"] - data["probabilities"]["negative"], abs=1e-3
    )


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("This is wonderful, I love it", "positive"),
        ("This is awful and I hate it", "negative"),
        ("The transaction settled at noon", "neutral"),
    ],
)
def test_clear_texts_get_the_matching_label_and_sign(text, label) -> None:
    result = one(CRYPTO, text)
    assert result.label == label
    sign = {"positive": 1, "negative": -1, "neutral": 0}[label]
    assert (result.score > 0) - (result.score < 0) == sign


# --- the sentiment agent on recorded data ---------------------------------------------------


def recorded_fear_greed(day: str) -> int:
    with (DEFAULT_REPLAY_DIR / "fear_greed.csv").open(newline="") as handle:
        rows = {int(row["timestamp"]): int(row["value"]) for row in csv.DictReader(handle)}
    return rows[to_ms(parse_time(day)) // 1000]


@pytest.fixture(scope="module")
def btc_snapshot() -> MarketSnapshot:
    import asyncio

    return asyncio.run(SnapshotBuilder(replay_sources(), Config()).build("BTC/USDT", NOW))


def agent(**changes: object) -> SentimentAgent:
    return SentimentAgent(SentimentAgentConfig().model_copy(update=changes), CRYPTO)


def figures(report: AgentReport) -> SentimentFeatures:
    found = report.features_as(SentimentFeatures)
    assert found is not None
    return found


async def test_the_agent_reads_reddit_and_fear_greed(btc_snapshot) -> None:
    report = await agent().analyze(btc_snapshot)
    assert report.agent == "sentiment"
    assert report.status is ReportStatus.OK
    assert report.reason is None
    assert report.engine == "lexicon"
    reddit, fear_greed = figures(report).reddit, figures(report).fear_greed
    assert reddit is not None
    assert fear_greed is not None
    assert reddit.post_count > 0
    assert reddit.post_count == len(btc_snapshot.posts)
    assert fear_greed.value == recorded_fear_greed("2025-10-06")
    assert fear_greed.mood == fear_greed_mood(recorded_fear_greed("2025-10-06"))
    assert report.score is not None
    assert -100 <= report.score <= 100
    expected = 0.5 * reddit.mood + 0.5 * fear_greed.mood
    assert report.score == pytest.approx(expected, abs=0.1)
    assert report.as_of is not None
    assert report.as_of <= NOW
    assert report.age_s == (NOW - report.as_of).total_seconds()


async def test_without_posts_the_agent_degrades_to_fear_greed_alone(btc_snapshot) -> None:
    snapshot = replace(btc_snapshot, posts=Unavailable("Reddit is down"))
    report = await agent().analyze(snapshot)
    value = recorded_fear_greed("2025-10-06")
    assert report.status is ReportStatus.DEGRADED
    assert "Reddit is down" in (report.reason or "")
    assert report.score == fear_greed_mood(value)
    assert figures(report).reddit is None
    fear_greed = figures(report).fear_greed
    assert fear_greed is not None
    assert fear_greed.value == value
    assert isinstance(snapshot.fear_greed, FearGreedReading)
    assert report.as_of == snapshot.fear_greed.timestamp


async def test_without_fear_greed_the_agent_degrades_to_reddit_alone(btc_snapshot) -> None:
    report = await agent().analyze(replace(btc_snapshot, fear_greed=Unavailable("F&G stale")))
    assert report.status is ReportStatus.DEGRADED
    assert "F&G stale" in (report.reason or "")
    reddit = figures(report).reddit
    assert reddit is not None
    assert figures(report).fear_greed is None
    assert report.score == pytest.approx(reddit.mood, abs=0.1)


async def test_too_few_posts_are_not_counted(btc_snapshot) -> None:
    posts = len(btc_snapshot.posts)
    report = await agent(min_posts=posts + 1).analyze(btc_snapshot)
    assert report.status is ReportStatus.DEGRADED
    assert f"only {posts} posts" in (report.reason or "")
    assert report.score == fear_greed_mood(recorded_fear_greed("2025-10-06"))


async def test_with_nothing_the_report_is_unavailable_with_the_reason(btc_snapshot) -> None:
    snapshot = replace(
        btc_snapshot, posts=Unavailable("no posts"), fear_greed=Unavailable("no index")
    )
    report = await agent().analyze(snapshot)
    assert report.status is ReportStatus.UNAVAILABLE
    assert report.score is None
    assert report.reason
