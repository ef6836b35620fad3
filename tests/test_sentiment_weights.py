"""Live posts weigh by their Reddit score (log-scaled) and are capped per author; replay is not.

Expected moods are worked out by hand from the README's formula, not by the agent's code.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from intel.agents.sentiment import SentimentAgent
from intel.config import SentimentAgentConfig
from intel.features import SentimentFeatures
from intel.models import MarketSnapshot, SocialPost, Unavailable
from intel.sentiment.lexicon import LexiconEngine
from intel.timeutil import parse_time

T = parse_time("2025-10-06T16:00Z")
ENGINE = LexiconEngine()
BULLISH, BEARISH = "great gains, bullish", "rug pull scam, rekt"


def post(
    text: str, *, author: str | None = None, score: int | None = None, age_h: float = 0.0
) -> SocialPost:
    created = T - timedelta(hours=age_h)
    return SocialPost(f"p{age_h}{author}{score}", "bitcoin", created, text, "", author, score)


async def mood(posts: list[SocialPost], **config: Any) -> float:
    agent = SentimentAgent(SentimentAgentConfig(min_posts=1, **config), ENGINE)
    none = Unavailable("not needed")
    snapshot = MarketSnapshot("BTC/USDT", T, none, none, none, tuple(posts), none)
    report = await agent.analyze(snapshot)
    features = report.features_as(SentimentFeatures)
    assert features is not None
    assert features.reddit is not None
    return features.reddit.mood


def test_the_hand_texts_have_the_labels_the_expectations_assume() -> None:
    assert [s.label for s in ENGINE.score([BULLISH, BEARISH])] == ["positive", "negative"]


async def test_a_high_scoring_post_weighs_by_one_plus_the_log_of_its_score() -> None:
    posts = [post(BULLISH, author="a", score=99), post(BEARISH, author="b", score=0)]
    heavy = 1 + math.log(100)  # e = 1 + ln(1 + 99); the unscored post weighs 1
    assert await mood(posts) == round(100 * (heavy - 1) / (heavy + 1), 1)


async def test_negative_scores_weigh_like_zero() -> None:
    posts = [post(BULLISH, author="a", score=-50), post(BEARISH, author="b", score=0)]
    assert await mood(posts) == 0.0


async def test_score_weighting_can_be_switched_off() -> None:
    posts = [post(BULLISH, author="a", score=99), post(BEARISH, author="b", score=0)]
    assert await mood(posts, score_weighting=False) == 0.0


async def test_one_author_counts_only_their_heaviest_posts() -> None:
    spam = [post(BEARISH, author="spammer", score=0, age_h=h) for h in (0.0, 1.0, 2.0, 3.0, 4.0)]
    others = [post(BULLISH, author=name, score=0) for name in ("a", "b")]
    # The spammer's two freshest posts count (weights 1 and 0.5^(1/6)); the other three not.
    spam_weight = 1 + 0.5 ** (1 / 6)
    expected = 100 * (2 - spam_weight) / (2 + spam_weight)
    assert await mood(spam + others, max_posts_per_author=2) == round(expected, 1)


async def test_posts_without_author_or_score_weigh_by_recency_alone() -> None:
    """Replay posts: five bearish posts of unknown authors all count, each weighing 1."""
    posts = [post(BEARISH) for _ in range(5)] + [post(BULLISH)]
    assert await mood(posts, max_posts_per_author=1) == round(100 * (1 - 5) / 6, 1)


@pytest.mark.parametrize("score", [1, 10, 1000])
async def test_an_author_cap_of_one_keeps_the_heaviest(score: int) -> None:
    posts = [post(BEARISH, author="x", score=0), post(BULLISH, author="x", score=score)]
    assert await mood(posts, max_posts_per_author=1) == 100.0
