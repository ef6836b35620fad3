"""Sentiment agent: retail mood on −100..+100 from Reddit posts and the Fear & Greed index.

Reddit mood is the weighted balance of positive and negative posts (engine labels), which reads
the same whichever engine scored them: mood = 100 · Σ wᵢ·sᵢ / Σ wᵢ with sᵢ = +1, −1, 0 for a
positive, negative, neutral post. The weight wᵢ = 0.5^(ageᵢ / half_life_h) · eᵢ, where the
engagement eᵢ = 1 + ln(1 + max(scoreᵢ, 0)) for a live post with a Reddit score (else 1), and only
the `max_posts_per_author` heaviest posts of one author count (wᵢ = 0 for the rest; posts with no
author are not capped). Replay posts have no score and no author, so there the weight is recency
alone. Fear & Greed maps 0..100 to −100..+100. The report's
score blends the two (`fear_greed_weight`); with one missing, the other alone, and status degraded.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from intel.agents.base import report_unavailable
from intel.config import SentimentAgentConfig
from intel.features import FearGreedFigures, RedditFigures, SentimentFeatures
from intel.models import (
    AgentReport,
    FearGreedReading,
    MarketSnapshot,
    ReportStatus,
    SocialPost,
    Unavailable,
)
from intel.sentiment.base import SentimentEngine, SentimentScore, engine_notice

__all__ = ["SentimentAgent", "fear_greed_mood", "post_weights"]


def fear_greed_mood(value: int) -> float:
    return (value - 50) * 2.0


class SentimentAgent:
    name = "sentiment"

    def __init__(self, config: SentimentAgentConfig, engine: SentimentEngine) -> None:
        self._config = config
        self._engine = engine

    async def analyze(self, snapshot: MarketSnapshot) -> AgentReport:
        posts, fng = snapshot.posts, snapshot.fear_greed
        if isinstance(posts, Unavailable) and isinstance(fng, Unavailable):
            return report_unavailable(self.name, posts, snapshot.as_of)
        notes: list[str] = []
        reasons: list[str] = []
        reddit, reddit_mood = await self._reddit_mood(posts, snapshot.as_of, reasons)
        fear_greed = self._fear_greed(fng, snapshot.as_of, notes, reasons)
        notice = engine_notice(self._engine)  # read after scoring: a first use may fall back
        if notice is not None:
            notes.append(notice)
        moods = [
            (m, w)
            for m, w in (
                (reddit_mood, 1 - self._config.fear_greed_weight),
                (fear_greed.mood if fear_greed else None, self._config.fear_greed_weight),
            )
            if m is not None
        ]
        weight = sum(w for _, w in moods) or 1.0
        score = sum(m * w for m, w in moods) / weight if moods else 0.0
        newest = _newest(posts, fng)
        return AgentReport(
            agent=self.name,
            status=ReportStatus.DEGRADED if reasons else ReportStatus.OK,
            score=round(max(-100.0, min(100.0, score)), 1),
            reason="; ".join(reasons) or None,
            as_of=newest,
            age_s=(snapshot.as_of - newest).total_seconds() if newest else None,
            features=SentimentFeatures(reddit=reddit, fear_greed=fear_greed),
            notes=tuple(notes),
            engine=self._engine.name,
        )

    async def _reddit_mood(
        self, posts: Sequence[SocialPost] | Unavailable, now: datetime, reasons: list[str]
    ) -> tuple[RedditFigures | None, float | None]:
        """The figures to show, and the unrounded mood when there are enough posts to count."""
        if isinstance(posts, Unavailable):
            reasons.append(f"Reddit: {posts.reason}")
            return None, None
        texts = [f"{post.title}. {post.body}".strip() for post in posts]
        scores = await asyncio.to_thread(self._engine.score, texts)
        weights = post_weights(posts, now, self._config)
        mood = 100.0 * _label_balance(scores, weights)
        figures = RedditFigures(
            mood=round(mood, 1),
            post_count=len(posts),
            positive_posts=sum(s.label == "positive" for s in scores),
            negative_posts=sum(s.label == "negative" for s in scores),
            mean_post_score=round(sum(s.score for s in scores) / len(scores), 4),
        )
        if len(posts) < self._config.min_posts:
            reasons.append(f"Reddit: only {len(posts)} posts in {self._config.window_h} h")
            return figures, None
        return figures, mood

    def _fear_greed(
        self,
        fng: FearGreedReading | Unavailable,
        now: datetime,
        notes: list[str],
        reasons: list[str],
    ) -> FearGreedFigures | None:
        if isinstance(fng, Unavailable):
            reasons.append(f"Fear & Greed: {fng.reason}")
            return None
        notes.append(f"{fng.classification} (Fear & Greed by Alternative.me)")
        return FearGreedFigures(
            value=fng.value,
            mood=fear_greed_mood(fng.value),
            age_s=(now - fng.timestamp).total_seconds(),
        )


def post_weights(
    posts: Sequence[SocialPost], now: datetime, config: SentimentAgentConfig
) -> list[float]:
    """Each post's weight in the mood (module docstring): recency, engagement, author cap."""
    weights = [_recency(post.created, now, config.half_life_h) for post in posts]
    if config.score_weighting:
        engagement = [1.0 + math.log1p(max(post.score or 0, 0)) for post in posts]
        weights = [w * e for w, e in zip(weights, engagement, strict=True)]
    by_author: dict[str, list[int]] = defaultdict(list)
    for index, post in enumerate(posts):
        if post.author is not None:
            by_author[post.author].append(index)
    for indices in by_author.values():
        heaviest_first = sorted(indices, key=lambda i: -weights[i])
        for index in heaviest_first[config.max_posts_per_author :]:
            weights[index] = 0.0
    return weights


def _recency(created: datetime, now: datetime, half_life_h: float) -> float:
    age_h = max(0.0, (now - created).total_seconds() / 3600.0)
    return math.pow(0.5, age_h / half_life_h)


def _label_balance(scores: Sequence[SentimentScore], weights: Sequence[float]) -> float:
    total = sum(weights)
    if total <= 0:
        return 0.0
    signed = {"positive": 1.0, "negative": -1.0, "neutral": 0.0}
    return sum(signed[s.label] * w for s, w in zip(scores, weights, strict=True)) / total


def _newest(
    posts: Sequence[SocialPost] | Unavailable, fng: FearGreedReading | Unavailable
) -> datetime | None:
    moments = []
    if not isinstance(posts, Unavailable) and posts:
        moments.append(max(post.created for post in posts))
    if not isinstance(fng, Unavailable):
        moments.append(fng.timestamp)
    return max(moments) if moments else None
