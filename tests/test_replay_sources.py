"""No look-ahead and maximum ages, on the shipped replay data through the real replay sources.

Each source must answer "what was known at `now`": nothing published after `now`, and (through
the snapshot builder) nothing older than its modality's maximum age, without re-dating anything.
The oracles below read the raw files directly rather than trusting the sources' own parsing.
"""

from __future__ import annotations

import csv
import gzip
import json
from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intel.config import Config
from intel.errors import SourceError
from intel.models import (
    CandleSeries,
    FearGreedReading,
    SocialPost,
    Unavailable,
    WhaleFlows,
)
from intel.snapshot import SnapshotBuilder, Sources
from intel.sources.replay_candles import ReplayCandleSource
from intel.sources.replay_fear_greed import ReplayFearGreedSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.sources.replay_orderbook import ReplayOrderBookSource
from intel.sources.replay_reddit import ReplayPostSource, is_about
from intel.sources.replay_whales import ReplayWhaleSource
from intel.symbols import base_asset
from intel.textfmt import format_age
from intel.timeutil import from_ms, parse_time, to_ms

HOUR = timedelta(hours=1)
HOUR_MS = 3_600_000
DAY = parse_time("2025-10-06T00:00Z")
REPLAY_NOW = parse_time("2025-10-06T16:00Z")
PROPERTY = settings(max_examples=150, deadline=None)

CANDLES = ReplayCandleSource(DEFAULT_REPLAY_DIR)
BOOKS = ReplayOrderBookSource(DEFAULT_REPLAY_DIR)
WHALES = ReplayWhaleSource(DEFAULT_REPLAY_DIR)
POSTS = ReplayPostSource(DEFAULT_REPLAY_DIR)
FEAR_GREED = ReplayFearGreedSource(DEFAULT_REPLAY_DIR)


def moments(first: str, last: str) -> st.SearchStrategy[datetime]:
    """Any moment, to the millisecond (sub-millisecond moments have their own test)."""
    lo, hi = parse_time(first).replace(tzinfo=None), parse_time(last).replace(tzinfo=None)
    return st.datetimes(min_value=lo, max_value=hi, timezones=st.just(UTC)).map(
        lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    )


def builder(config: Config | None = None) -> SnapshotBuilder:
    sources = Sources(
        candles=CANDLES, orderbook=BOOKS, whales=WHALES, posts=POSTS, fear_greed=FEAR_GREED
    )
    return SnapshotBuilder(sources, config or Config())


# --- raw-file oracles --------------------------------------------------------------------------


@cache
def raw_book_times() -> dict[str, list[tuple[str, list[int]]]]:
    """symbol -> [(file, sorted timestamps in ms)], read straight from the .tsv.gz files."""
    venues = json.loads((DEFAULT_REPLAY_DIR / "orderbook" / "venues.json").read_text())
    found: dict[str, list[tuple[str, list[int]]]] = {}
    for venue in venues:
        with gzip.open(DEFAULT_REPLAY_DIR / "orderbook" / venue["file"], "rt") as handle:
            times = [int(line.split("\t", 1)[0]) for line in handle]
        found.setdefault(venue["for_symbol"], []).append((venue["file"], times))
    return found


@cache
def raw_posts() -> list[dict[str, str]]:
    with gzip.open(DEFAULT_REPLAY_DIR / "reddit" / "posts.csv.gz", "rt", newline="") as handle:
        return list(csv.DictReader(handle))


@cache
def raw_fear_greed() -> list[tuple[int, int]]:
    """(publication ms, value), oldest first."""
    with (DEFAULT_REPLAY_DIR / "fear_greed.csv").open(newline="") as handle:
        return sorted((int(r["timestamp"]) * 1000, int(r["value"])) for r in csv.DictReader(handle))


@cache
def raw_whale_hours(asset: str) -> list[int]:
    path = DEFAULT_REPLAY_DIR / "whales" / f"{asset}_exchange_flows_1h.csv"
    with path.open(newline="") as handle:
        return sorted(int(r["hour_start_ms"]) for r in csv.DictReader(handle))


@cache
def whale_coverage() -> dict[str, tuple[int, int]]:
    raw = json.loads((DEFAULT_REPLAY_DIR / "whales" / "coverage.json").read_text())
    return {asset: (v["start_ms"], v["end_ms"]) for asset, v in raw.items()}


def exact_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, floored exactly (no float rounding)."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


# --- candles ---------------------------------------------------------------------------------


def last_open(series: CandleSeries) -> datetime:
    return from_ms(int(series.open_time_ms[-1]))


@pytest.mark.parametrize(
    ("now", "newest_open"),
    [
        ("2025-10-06T10:30Z", "2025-10-06T09:00Z"),
        ("2025-10-06T10:59:59.999Z", "2025-10-06T09:00Z"),
        ("2025-10-06T11:00Z", "2025-10-06T10:00Z"),
        ("2025-10-06T11:00:00.001Z", "2025-10-06T10:00Z"),
    ],
)
async def test_a_candle_is_visible_only_once_it_has_closed(now, newest_open) -> None:
    series = await CANDLES.candles("BTC/USDT", parse_time(now), 10)
    assert last_open(series) == parse_time(newest_open)
    assert len(series) == 10
    assert series.last_close_time <= parse_time(now)


@PROPERTY
@given(moments("2017-08-17T05:00Z", "2026-06-20T12:00Z"), st.integers(1, 300))
async def test_no_candle_from_after_now(now, count) -> None:
    series = await CANDLES.candles("BTC/USDT", now, count)
    history = CANDLES.history("BTC/USDT")
    interval_ms = history.interval_s * 1000
    now_ms = exact_ms(now)
    assert 1 <= len(series) <= count
    assert all(int(t) + interval_ms <= now_ms for t in series.open_time_ms)
    stop = int((history.open_time_ms == series.open_time_ms[-1]).nonzero()[0][0]) + 1
    if stop < len(history):  # the first candle not returned had not closed yet
        assert int(history.open_time_ms[stop]) + interval_ms > now_ms
    assert list(series.open_time_ms) == list(history.open_time_ms[max(0, stop - count) : stop])


@pytest.mark.parametrize("symbol", ["BTC/USDT", "XRP/USDT"])
async def test_candle_coverage_is_the_recorded_range_from_first_to_last_close(symbol) -> None:
    path = DEFAULT_REPLAY_DIR / "candles" / f"{symbol.replace('/', '')}_1h.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        open_times_ms = [int(float(row["open_time_ms"])) for row in csv.DictReader(handle)]
    first, last = await CANDLES.coverage(symbol)
    assert first == from_ms(open_times_ms[0] + 3_600_000)
    assert last == from_ms(open_times_ms[-1] + 3_600_000)


async def test_coverage_of_a_symbol_without_candles_is_a_source_error() -> None:
    with pytest.raises(SourceError, match="no recorded candles for DOGE/USDT"):
        await CANDLES.coverage("DOGE/USDT")


async def test_no_candle_before_the_first_close() -> None:
    first_close, _ = await CANDLES.coverage("BTC/USDT")
    with pytest.raises(SourceError, match="no BTC/USDT candle had closed"):
        await CANDLES.candles("BTC/USDT", first_close - timedelta(milliseconds=1), 5)
    assert len(await CANDLES.candles("BTC/USDT", first_close, 5)) == 1


# --- Reddit posts ------------------------------------------------------------------------------


@PROPERTY
@given(
    st.one_of(
        moments("2024-09-19T12:00Z", "2024-10-08T12:00Z"),
        moments("2025-09-15T12:00Z", "2025-11-02T00:00Z"),
    ),
    st.sampled_from(["BTC/USDT", "ETH/USDT"]),
    st.sampled_from([1, 6, 24]),
)
async def test_no_post_from_after_now(now, symbol, window_h) -> None:
    now_ms, start_ms = exact_ms(now), exact_ms(now - timedelta(hours=window_h))
    try:
        found = await POSTS.posts(symbol, now, window_h)
    except SourceError:
        found = []
    assert all(post.created <= now for post in found)
    returned = {post.post_id for post in found}
    known = [row for row in raw_posts() if start_ms <= int(row["created_utc_s"]) * 1000 <= now_ms]
    expected = {row["post_id"] for row in known if is_about(_post(row), base_asset(symbol))}
    assert returned == expected
    later = {row["post_id"] for row in raw_posts() if int(row["created_utc_s"]) * 1000 > now_ms}
    assert not returned & later


def _post(row: dict[str, str]) -> SocialPost:
    return SocialPost(
        post_id=row["post_id"],
        community=row["subreddit"],
        created=from_ms(int(row["created_utc_s"]) * 1000),
        title=row["title"],
        body=row["excerpt"],
    )


async def test_a_post_appears_exactly_at_its_creation_second() -> None:
    row = next(r for r in raw_posts() if r["subreddit"].lower() == "bitcoin")
    created = from_ms(int(row["created_utc_s"]) * 1000)
    before = await _post_ids("BTC/USDT", created - timedelta(milliseconds=1))
    at = await _post_ids("BTC/USDT", created)
    assert row["post_id"] not in before
    assert row["post_id"] in at


async def _post_ids(symbol: str, now: datetime) -> set[str]:
    try:
        return {post.post_id for post in await POSTS.posts(symbol, now, 24)}
    except SourceError:
        return set()


# --- whale flows -------------------------------------------------------------------------------


@PROPERTY
@given(
    moments("2024-11-04T09:00Z", "2025-10-14T00:00Z"),
    st.sampled_from(["BTC", "ETH"]),
    st.sampled_from([1, 6, 24, 168]),
)
async def test_no_whale_hour_from_after_now(now, asset, window_h) -> None:
    start_ms, end_ms = whale_coverage()[asset]
    if exact_ms(now) < start_ms + HOUR_MS:
        return
    flows = await WHALES.flows(f"{asset}/USDT", now, window_h)
    assert flows.as_of <= now
    assert all(hour.hour_start + HOUR <= flows.as_of for hour in flows.hours)
    assert all(hour.hour_start >= flows.window_start for hour in flows.hours)
    assert flows.as_of - flows.window_start == timedelta(hours=window_h)
    now_ms = exact_ms(now)
    assert to_ms(flows.as_of) == min(now_ms - now_ms % HOUR_MS, end_ms)
    expected = [
        t
        for t in raw_whale_hours(asset)
        if to_ms(flows.window_start) <= t and t + HOUR_MS <= to_ms(flows.as_of)
    ]
    assert [to_ms(hour.hour_start) for hour in flows.hours] == expected


async def test_an_hour_of_flows_appears_when_the_hour_ends() -> None:
    hour_ms = next(t for t in raw_whale_hours("BTC") if t > to_ms(parse_time("2025-10-01T00:00Z")))
    hour_end = from_ms(hour_ms + HOUR_MS)
    before = await WHALES.flows("BTC/USDT", hour_end - timedelta(milliseconds=1), 24)
    at = await WHALES.flows("BTC/USDT", hour_end, 24)
    assert hour_ms not in {to_ms(h.hour_start) for h in before.hours}
    assert hour_ms in {to_ms(h.hour_start) for h in at.hours}


# --- Fear & Greed ------------------------------------------------------------------------------


@PROPERTY
@given(moments("2018-02-01T00:00Z", "2026-08-30T00:00Z"))
async def test_no_fear_greed_reading_from_after_now(now) -> None:
    reading = await FEAR_GREED.latest(now)
    assert reading.timestamp <= now
    readings = raw_fear_greed()
    index = [ms for ms, _ in readings].index(to_ms(reading.timestamp))
    assert readings[index][1] == reading.value
    if index + 1 < len(readings):
        assert readings[index + 1][0] > exact_ms(now)


async def test_the_new_day_appears_exactly_at_the_boundary() -> None:
    values = dict(raw_fear_greed())
    before = await FEAR_GREED.latest(DAY - timedelta(milliseconds=1))
    at = await FEAR_GREED.latest(DAY)
    assert before.timestamp == DAY - timedelta(days=1)
    assert before.value == values[to_ms(DAY - timedelta(days=1))]
    assert at.timestamp == DAY
    assert at.value == values[to_ms(DAY)]


# --- order books ------------------------------------------------------------------------------


@PROPERTY
@given(
    st.one_of(
        moments("2024-08-08T23:54:00Z", "2024-08-09T00:10:00Z"),
        moments("2025-09-16T01:00Z", "2025-10-13T01:00Z"),
    ),
    st.sampled_from(["BTC/USDT", "ETH/USDT"]),
    st.sampled_from([1.0, 60.0, 900.0]),
)
async def test_no_order_book_from_after_now(now, symbol, window_s) -> None:
    now_ms = exact_ms(now)
    known = [
        (file, [t for t in times if t <= now_ms], times) for file, times in raw_book_times()[symbol]
    ]
    if not any(seen for _, seen, _ in known):
        with pytest.raises(SourceError):
            await BOOKS.books(symbol, now, window_s)
        return
    history = await BOOKS.books(symbol, now, window_s)
    stamps = [exact_ms(book.timestamp) for book in history.books]
    assert all(t <= now_ms for t in stamps)
    assert stamps == sorted(stamps)
    newest = max(seen[-1] for _, seen, _ in known if seen)
    assert stamps[-1] == newest  # the newest snapshot known at `now`, from any venue
    _, _, times = next(k for k in known if k[1] and k[1][-1] == newest)
    following = times[times.index(newest) + 1 :]
    assert not following or following[0] > now_ms
    assert all(t > now_ms - window_s * 1000 for t in stamps[:-1])


async def test_a_snapshot_appears_exactly_at_its_timestamp() -> None:
    _, times = raw_book_times()["BTC/USDT"][0]
    moment = from_ms(times[100])
    at = await BOOKS.books("BTC/USDT", moment, 60)
    before = await BOOKS.books("BTC/USDT", moment - timedelta(milliseconds=1), 60)
    assert at.latest.timestamp == moment
    assert before.latest.timestamp == from_ms(times[99])


# --- sub-millisecond moments ----------------------------------------------------------------


# A moment a fraction of a millisecond before a publication must not see it: `--at` accepts
# microseconds, and rounding `now` to the nearest millisecond would reveal the future.
async def _candle_moment(now: datetime) -> datetime:
    return (await CANDLES.candles("BTC/USDT", now, 3)).last_close_time


async def _whale_moment(now: datetime) -> datetime:
    return (await WHALES.flows("BTC/USDT", now, 24)).as_of


async def _fear_greed_moment(now: datetime) -> datetime:
    return (await FEAR_GREED.latest(now)).timestamp


async def _book_moment(now: datetime) -> datetime:
    return (await BOOKS.books("BTC/USDT", now, 60)).latest.timestamp


async def _post_moment(now: datetime) -> datetime:
    return max(post.created for post in await POSTS.posts("BTC/USDT", now, 24))


def _first_post_after(moment: str) -> datetime:
    start = exact_ms(parse_time(moment))
    return from_ms(
        min(
            int(r["created_utc_s"]) * 1000
            for r in raw_posts()
            if int(r["created_utc_s"]) * 1000 > start and r["subreddit"].lower() == "bitcoin"
        )
    )


@pytest.mark.parametrize(
    ("read", "published"),
    [
        (_candle_moment, lambda: parse_time("2025-10-06T11:00Z")),
        (_whale_moment, lambda: parse_time("2025-10-06T16:00Z")),
        (_fear_greed_moment, lambda: DAY),
        (_book_moment, lambda: from_ms(raw_book_times()["BTC/USDT"][0][1][100])),
        (_post_moment, lambda: _first_post_after("2024-09-25T12:00Z")),
    ],
    ids=["candles", "whales", "fear_greed", "orderbook", "posts"],
)
@pytest.mark.parametrize("before_us", [1, 499, 999])
async def test_a_sub_millisecond_moment_sees_nothing_later(read, published, before_us) -> None:
    moment = published()
    now = moment - timedelta(microseconds=before_us)
    assert await read(now) < moment
    assert await read(moment) == moment


# --- maximum ages through the snapshot builder --------------------------------------------------


async def test_the_2024_btc_book_is_unavailable_in_october_2025_with_its_age() -> None:
    snapshot = await builder().build("BTC/USDT", REPLAY_NOW)
    book = snapshot.orderbook
    assert isinstance(book, Unavailable)
    last_recorded = from_ms(raw_book_times()["BTC/USDT"][0][1][-1])
    assert book.last_seen == last_recorded  # not re-dated
    age = format_age((REPLAY_NOW - last_recorded).total_seconds())
    assert (REPLAY_NOW - last_recorded).days == 423
    assert age.startswith("423 d")
    assert f"newest is {age} old" in book.reason
    assert "order book" in book.reason


async def test_everything_current_is_kept_with_its_own_timestamps() -> None:
    snapshot = await builder().build("BTC/USDT", REPLAY_NOW)
    assert isinstance(snapshot.candles, CandleSeries)
    assert snapshot.candles.last_close_time == REPLAY_NOW
    assert isinstance(snapshot.whales, WhaleFlows)
    assert snapshot.whales.as_of == REPLAY_NOW
    assert isinstance(snapshot.fear_greed, FearGreedReading)
    assert snapshot.fear_greed.timestamp == DAY
    assert snapshot.fear_greed.value == dict(raw_fear_greed())[to_ms(DAY)]
    assert not isinstance(snapshot.posts, Unavailable)
    newest_post = max(post.created for post in snapshot.posts)
    raw_created = {row["post_id"]: int(row["created_utc_s"]) for row in raw_posts()}
    assert all(to_ms(p.created) == raw_created[p.post_id] * 1000 for p in snapshot.posts)
    assert newest_post <= REPLAY_NOW


@pytest.mark.parametrize("asset", ["BTC", "ETH"])
async def test_whale_flows_expire_after_the_coverage_ends(asset) -> None:
    config = Config()
    max_age = timedelta(seconds=config.max_age_s.whales)
    end = from_ms(whale_coverage()[asset][1])
    symbol = f"{asset}/USDT"

    still = await builder(config).build(symbol, end + max_age)
    assert isinstance(still.whales, WhaleFlows)
    assert still.whales.as_of == end

    later = end + max_age + timedelta(minutes=30)
    stale = (await builder(config).build(symbol, later)).whales
    assert isinstance(stale, Unavailable)
    assert stale.last_seen == end
    assert f"newest is {format_age((later - end).total_seconds())} old" in stale.reason


async def test_a_lower_fear_greed_max_age_makes_it_unavailable() -> None:
    default = await builder().build("BTC/USDT", REPLAY_NOW)
    assert isinstance(default.fear_greed, FearGreedReading)

    strict = Config().model_copy(
        update={"max_age_s": Config().max_age_s.model_copy(update={"fear_greed": 3600})}
    )
    reading = (await builder(strict).build("BTC/USDT", REPLAY_NOW)).fear_greed
    assert isinstance(reading, Unavailable)
    assert reading.last_seen == DAY
    assert "Fear & Greed" in reading.reason
    assert f"newer than {format_age(3600)}" in reading.reason
    assert f"newest is {format_age(16 * 3600)} old" in reading.reason


async def test_candles_past_the_recorded_range_are_unavailable() -> None:
    _, last_close = await CANDLES.coverage("ETH/USDT")
    snapshot = await builder().build("ETH/USDT", last_close + timedelta(days=3))
    assert isinstance(snapshot.candles, Unavailable)
    assert snapshot.candles.last_seen == last_close
    assert f"newest is {format_age(3 * 86400)} old" in snapshot.candles.reason


async def test_the_cache_never_serves_a_later_moment_to_an_earlier_one() -> None:
    shared = builder()
    await shared.build("BTC/USDT", REPLAY_NOW)
    earlier = await shared.build("BTC/USDT", REPLAY_NOW - HOUR)
    assert isinstance(earlier.candles, CandleSeries)
    assert earlier.candles.last_close_time == REPLAY_NOW - HOUR
    assert isinstance(earlier.whales, WhaleFlows)
    assert earlier.whales.as_of == REPLAY_NOW - HOUR
    assert not isinstance(earlier.posts, Unavailable)
    assert all(post.created <= REPLAY_NOW - HOUR for post in earlier.posts)
