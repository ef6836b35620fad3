"""Live Reddit through the real asyncpraw against the fake Reddit on 127.0.0.1.

The recorded Listing (PRAW's cassette, tests/fixtures/reddit) is read here with `json` for the
expected values; the other cases list posts written out below.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import gzip
import json
import time
import warnings
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncprawcore
import pytest

from intel.config import (
    Config,
    FearGreedSourceConfig,
    RedditSourceConfig,
    Secrets,
    load_config,
)
from intel.desk import build_desk, replay_sources
from intel.errors import ConfigError, NotConfiguredError, SourceError
from intel.models import ReportStatus
from intel.sources.fakes.social import (
    FakeAlternativeMe,
    FakePost,
    FakeReddit,
    Fault,
    replay_fear_greed,
)
from intel.sources.fear_greed import FearGreedApiSource
from intel.sources.live import LIVE_SOURCES, LiveSourceFactories, live
from intel.sources.reddit import RedditSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.sources.testing import ReplayExchange
from intel.timeutil import parse_time

CASSETTE = (
    Path(__file__).parent
    / "fixtures/reddit/reddit_listing_r_askreddit_new_2016-03-01_praw_cassette.json.gz"
)
SECRETS = Secrets(
    reddit_client_id="fake-client-id",
    reddit_client_secret="fake-client-secret",
    reddit_user_agent="signaldesk-tests/0.1 (fake server)",
)
NOW = datetime(2025, 10, 6, 16, tzinfo=UTC)
NOW_S = NOW.timestamp()
BTC_SUBS = {"BTC": ("Bitcoin", "BitcoinMarkets")}


def post(post_id: str, age_h: float, sub: str = "Bitcoin", **fields: Any) -> FakePost:
    return FakePost(post_id, sub, NOW_S - age_h * 3600, f"post {post_id}", "", **fields)


def config(fake: FakeReddit, **changes: Any) -> RedditSourceConfig:
    values = {"oauth_url": fake.url, "reddit_url": fake.url, "timeout_s": 2.0}
    values.setdefault("subreddits", BTC_SUBS)
    return RedditSourceConfig(**{**values, **changes})


@asynccontextmanager
async def reddit_source(
    fake: FakeReddit, secrets: Secrets = SECRETS, **changes: Any
) -> AsyncIterator[RedditSource]:
    source = RedditSource(config(fake, **changes), secrets)
    await source.start()
    try:
        yield source
    finally:
        await source.close()


def ids(posts: Iterable[Any]) -> list[str]:
    return [p.post_id for p in posts]


async def test_a_recorded_listing_parses_to_its_recorded_values() -> None:
    recorded = json.loads(gzip.decompress(CASSETTE.read_bytes()))["body"]
    things = [child["data"] for child in recorded["data"]["children"]]
    now = datetime.fromtimestamp(max(t["created_utc"] for t in things), UTC)
    empty = {"kind": "Listing", "data": {"children": [], "after": None, "before": None}}
    listings = {("askreddit", "new"): recorded, ("askreddit", "hot"): empty}
    async with (
        FakeReddit(listings=listings) as fake,
        reddit_source(fake, subreddits={"ASK": ("AskReddit",)}) as source,
    ):
        posts = await source.posts("ASK/USDT", now, 24)
    expected = sorted(
        (t["created_utc"], t["id"], t["subreddit"], t["title"], t["author"], t["score"])
        for t in things
    )
    got = [
        (p.created.timestamp(), p.post_id, p.community, p.title, p.author, p.score) for p in posts
    ]
    assert len(expected) == 100
    assert got == expected
    texts = {t["id"]: " ".join(t["selftext"].split()) for t in things}
    for p in posts:
        full = texts[p.post_id]
        if len(full) <= 280:
            assert p.body == full
        else:
            assert p.body.endswith("…")
            assert len(p.body) <= 280
            assert full.startswith(p.body[:-1])


async def test_new_and_hot_are_read_for_every_subreddit_and_deduplicated() -> None:
    posts = [post(f"b{i}", i, score=10 - i) for i in range(5)]
    posts += [post(f"m{i}", i + 0.5, "BitcoinMarkets") for i in range(4)]
    async with FakeReddit(posts) as fake, reddit_source(fake) as source:
        got = await source.posts("BTC/USDT", NOW, 24)
    assert sorted(ids(got)) == sorted(p.post_id for p in posts)  # each once, though listed twice
    assert [p.created for p in got] == sorted(p.created for p in got)
    assert (fake.count("new"), fake.count("hot"), fake.count("token")) == (2, 2, 1)


async def test_posts_are_remembered_across_cycles_once_each_with_the_newest_score() -> None:
    listed = [post("a", 3), post("b", 2), post("c", 1, score=5)]
    async with FakeReddit(listed) as fake, reddit_source(fake) as source:
        first = await source.posts("BTC/USDT", NOW, 24)
        # a and b slid off the listings; c is listed again with a new score; d is new
        fake.posts = [post("c", 1, score=40), post("d", 0.5)]
        second = await source.posts("BTC/USDT", NOW + timedelta(minutes=5), 24)
    assert ids(first) == ["a", "b", "c"]
    assert ids(second) == ["a", "b", "c", "d"]
    assert [p.score for p in second if p.post_id == "c"] == [40]


async def test_memory_is_bounded_the_oldest_posts_are_forgotten() -> None:
    listed = [post(f"p{i:02}", 30 - i) for i in range(8)]
    async with FakeReddit(listed) as fake, reddit_source(fake, max_posts_kept=10) as source:
        await source.posts("BTC/USDT", NOW, 48)
        fake.posts = [post(f"p{i:02}", 30 - i) for i in range(8, 15)]
        got = await source.posts("BTC/USDT", NOW, 48)
    assert ids(got) == [f"p{i:02}" for i in range(5, 15)]  # the newest ten of fifteen


async def test_stickied_staff_and_bot_posts_are_dropped() -> None:
    posts = [
        post("kept", 1, author="satoshi_fan"),
        post("deleted_author", 1.5),  # listed as "[deleted]"
        post("sticky", 2, author="someone", stickied=True),
        post("mod", 2, author="a_mod", distinguished="moderator"),
        post("admin", 2, author="an_admin", distinguished="admin"),
        post("automod", 2, author="AutoModerator"),
        post("pricebot", 2, author="BTC_Price_Bot"),
    ]
    async with FakeReddit(posts) as fake, reddit_source(fake) as source:
        got = await source.posts("BTC/USDT", NOW, 24)
    assert ids(got) == ["deleted_author", "kept"]
    assert [p.author for p in got] == [None, "satoshi_fan"]


async def test_no_post_after_now_or_before_the_window_is_returned() -> None:
    posts = [post("future", -0.1), post("inside", 23), post("too_old", 25)]
    async with FakeReddit(posts) as fake, reddit_source(fake) as source:
        got = await source.posts("BTC/USDT", NOW, 24)
        with pytest.raises(SourceError, match="no posts in r/Bitcoin, r/BitcoinMarkets"):
            await source.posts("BTC/USDT", NOW - timedelta(days=3), 24)
    assert ids(got) == ["inside"]


@pytest.mark.parametrize(
    "secrets",
    [
        Secrets(),
        Secrets(reddit_client_id="id", reddit_client_secret="secret"),  # no user agent
    ],
)
async def test_without_credentials_reddit_is_not_configured(secrets: Secrets) -> None:
    async with FakeReddit([post("a", 1)]) as fake, reddit_source(fake, secrets) as source:
        with pytest.raises(NotConfiguredError) as caught:
            await source.posts("BTC/USDT", NOW, 24)
    assert str(caught.value) == (
        "Reddit not configured (set REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET, REDDIT_USER_AGENT)"
    )
    assert fake.requests == []


async def test_an_asset_without_subreddits_is_a_source_error_naming_the_key() -> None:
    async with FakeReddit([post("a", 1)]) as fake, reddit_source(fake) as source:
        with pytest.raises(SourceError, match=r"no subreddits configured for SOL \(sources"):
            await source.posts("SOL/USDT", NOW, 24)


@pytest.mark.parametrize("route", ["token", "new", "hot"])
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(status=503), "server error (HTTP 503)"),
        (Fault(status=500), "server error (HTTP 500)"),
        (Fault(status=429, retry_after_s=0.2), "rate limited (HTTP 429, retry after 0.2 s)"),
        (Fault(status=451), "request refused (HTTP 451)"),
        (Fault(malformed=True), "malformed JSON in the response"),
        (Fault(latency_s=5.0), "Reddit: timed out after 0.5 s"),
    ],
)
async def test_each_fault_is_a_source_error_with_its_reason_in_bounded_time(
    route: str, fault: Fault, reason: str
) -> None:
    async with FakeReddit([post("a", 1)]) as fake, reddit_source(fake, timeout_s=0.5) as source:
        fake.inject(route, fault)
        started = time.monotonic()
        with pytest.raises(SourceError) as caught:
            await source.posts("BTC/USDT", NOW, 24)
        elapsed = time.monotonic() - started
    assert reason in str(caught.value)
    assert str(caught.value).startswith("Reddit: ")
    assert elapsed < 1.5
    # asyncprawcore's own retries are off: one attempt per listing (the resilience layer retries)
    assert fake.count(route) == (1 if route == "token" else 2)


async def test_a_429_keeps_its_retry_after_for_the_resilience_layer() -> None:
    async with FakeReddit([post("a", 1)]) as fake, reddit_source(fake) as source:
        fake.inject("new", Fault(status=429, retry_after_s=0.3, times=2))
        with pytest.raises(SourceError) as caught:
            await source.posts("BTC/USDT", NOW, 24)
        again = await source.posts("BTC/USDT", NOW, 24)
    assert isinstance(caught.value.__cause__, asyncprawcore.TooManyRequests)
    assert caught.value.__cause__.retry_after == "0.3"
    assert caught.value.retry_after_s == 0.3  # what the resilience layer waits out
    assert ids(again) == ["a"]


async def test_wrong_credentials_are_refused_with_a_reason() -> None:
    wrong = Secrets(
        reddit_client_id="fake-client-id",
        reddit_client_secret="not-the-secret",
        reddit_user_agent="signaldesk-tests/0.1 (fake server)",
    )
    async with FakeReddit([post("a", 1)]) as fake, reddit_source(fake, wrong) as source:
        with pytest.raises(SourceError, match=r"Reddit: login: credentials refused \(HTTP 401\)"):
            await source.posts("BTC/USDT", NOW, 24)


async def test_unreadable_posts_are_skipped_and_counted() -> None:
    good = post("good", 1).thing()
    no_time = post("no_time", 1).thing()
    del no_time["data"]["created_utc"]
    no_title = post("no_title", 1).thing()
    no_title["data"]["title"] = "  "
    listing = {"kind": "Listing", "data": {"children": [good, no_time, no_title], "after": None}}
    empty = {"kind": "Listing", "data": {"children": [], "after": None}}
    listings = {("bitcoin", "new"): listing, ("bitcoin", "hot"): empty}
    async with (
        FakeReddit(listings=listings) as fake,
        reddit_source(fake, subreddits={"BTC": ("Bitcoin",)}) as source,
    ):
        got = await source.posts("BTC/USDT", NOW, 24)
        notes = source.skipped_records("BTC/USDT")
    assert ids(got) == ["good"]
    assert len(notes) == 1
    assert (
        "Reddit listings for BTC: skipped 2 bad records (first at post 2: AttributeError"
        in (notes[0])
    )


async def _open_after(fake: FakeReddit, source: RedditSource, close: bool) -> int:
    """The connections the server still holds once `source` was used (and maybe closed)."""
    await source.start()
    await source.posts("BTC/USDT", NOW, 24)
    assert fake.open_connections() >= 1
    if close:
        await source.close()
    for _ in range(50):  # the server sees a close a moment later
        if fake.open_connections() == 0:
            break
        await asyncio.sleep(0.01)
    return fake.open_connections()


async def test_close_ends_the_session_and_its_connections_without_warnings() -> None:
    async with FakeReddit([post("a", 1)]) as fake:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert await _open_after(fake, RedditSource(config(fake), SECRETS), close=True) == 0
            gc.collect()
        assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
        # the control: a source left open keeps its connections, which this test would catch
        left_open = RedditSource(config(fake), SECRETS)
        try:
            assert await _open_after(fake, left_open, close=False) >= 1
        finally:
            await left_open.close()


async def test_without_reddit_the_sentiment_report_says_so_and_fear_greed_counts() -> None:
    """A desk on replay data whose posts come from an unconfigured Reddit and whose Fear & Greed
    comes from the fake API serving the shipped readings published by then."""
    at = parse_time("2025-10-06T16:00Z")
    with (DEFAULT_REPLAY_DIR / "fear_greed.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["timestamp"]) <= at.timestamp()]
    value = int(max(rows, key=lambda r: int(r["timestamp"]))["value"])
    readings = replay_fear_greed()
    async with FakeAlternativeMe([r for r in readings if r.timestamp <= at]) as fng:
        sources = replace(
            replay_sources(),
            posts=RedditSource(RedditSourceConfig(), Secrets()),
            fear_greed=FearGreedApiSource(FearGreedSourceConfig(base_url=fng.url)),
        )
        async with build_desk(Config(), sources=sources) as desk:
            result = await desk.signal("BTC/USDT", at)
    report = result.signal.reports["sentiment"]
    assert report.status is ReportStatus.DEGRADED
    assert report.reason == (
        "Reddit: Reddit not configured (set REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET, "
        "REDDIT_USER_AGENT)"
    )
    assert report.score == (value - 50) * 2.0  # Fear & Greed alone makes the mood
    assert fng.requests == ["fng"]


def test_subreddits_are_keyed_by_asset_and_bad_names_are_refused_naming_the_key() -> None:
    loaded = load_config(env={"BOT__SOURCES__REDDIT__SUBREDDITS": "{sol: [solana, solana]}"})
    assert loaded.sources.reddit.subreddits == {"SOL": ("solana",)}
    with pytest.raises(ConfigError, match=r"sources\.reddit\.subreddits.*'r/Bitcoin'"):
        load_config(env={"BOT__SOURCES__REDDIT__SUBREDDITS": "{BTC: [r/Bitcoin]}"})
    with pytest.raises(ConfigError, match=r"sources\.fear_greed\.base_url"):
        load_config(env={"BOT__SOURCES__FEAR_GREED__BASE_URL": "api.alternative.me"})
    trailing = load_config(env={"BOT__SOURCES__FEAR_GREED__BASE_URL": "http://127.0.0.1:9/"})
    assert trailing.sources.fear_greed.base_url == "http://127.0.0.1:9"


async def test_live_reddit_paces_every_request_within_the_configured_limit() -> None:
    # One call reads two listings per subreddit: paced per call, a call's seven requests (the
    # login and six listings) would go at once, over the limit the fake enforces.
    subs = ("Bitcoin", "BitcoinMarkets", "CryptoCurrency")
    listed = [post(f"{sub}{i}", i + 1, sub) for sub in subs for i in range(2)]
    async with FakeReddit(listed) as fake:
        fake.rate_limit(6, 0.5)  # the configured 3 at once + 6 a second, over any half second
        config = load_config(
            env={
                "BOT__DATA__MODE": "live",
                "BOT__SOURCES__REDDIT__OAUTH_URL": fake.url,
                "BOT__SOURCES__REDDIT__REDDIT_URL": fake.url,
                "BOT__SOURCES__REDDIT__SUBREDDITS": "{BTC: [" + ", ".join(subs) + "]}",
                "BOT__RESILIENCE__REDDIT__RATE_PER_MIN": "360",
                "BOT__RESILIENCE__REDDIT__RATE_BURST": "3",
                "REDDIT_CLIENT_ID": SECRETS.reddit_client_id or "",
                "REDDIT_CLIENT_SECRET": SECRETS.reddit_client_secret or "",
                "REDDIT_USER_AGENT": SECRETS.reddit_user_agent or "",
            }
        )
        factories = LiveSourceFactories(
            exchange=lambda *_: ReplayExchange(), posts=LIVE_SOURCES.posts
        )
        reddit = live(config, factories).posts
        await reddit.start()
        try:
            started = time.monotonic()
            for _ in range(2):
                assert len(await reddit.posts("BTC/USDT", NOW, 24)) == len(listed)
            elapsed = time.monotonic() - started
        finally:
            await reddit.close()
    assert len(fake.requests) == 13  # one login, then six listings a call
    assert fake.violations == 0
    assert elapsed >= (13 - 3) / 6 - 0.1  # beyond the burst, six a second
