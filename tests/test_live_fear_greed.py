"""Live Fear & Greed through the real httpx client against the fake Alternative.me on 127.0.0.1.

Expected values come from the recordings themselves (the shipped CSV, read here with `csv`; the
raw `/fng/` response in ../shared/data when present), never from the code under test.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from intel.config import FearGreedSourceConfig
from intel.errors import SourceError
from intel.models import FearGreedReading
from intel.sources.fakes.social import FakeAlternativeMe, Fault, render_fng
from intel.sources.fear_greed import FearGreedApiSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR

ROOT = Path(__file__).resolve().parents[1]
RECORDED_FNG = (
    ROOT.parent / "shared/data/fixtures/alternative_me/fng_limit2_2026-09-08_quant-dashboard.json"
)
DAY_S = 86_400


def reading(day: int, value: int, classification: str = "Neutral") -> FearGreedReading:
    return FearGreedReading(datetime.fromtimestamp(day * DAY_S, UTC), value, classification)


@asynccontextmanager
async def api_source(
    fake: FakeAlternativeMe, timeout_s: float = 2.0
) -> AsyncIterator[FearGreedApiSource]:
    source = FearGreedApiSource(FearGreedSourceConfig(base_url=fake.url, timeout_s=timeout_s))
    await source.start()
    try:
        yield source
    finally:
        await source.close()


def triples(readings: tuple[FearGreedReading, ...]) -> list[tuple[int, int, str]]:
    return [(int(r.timestamp.timestamp()), r.value, r.classification) for r in readings]


async def test_history_parses_every_shipped_reading_as_recorded() -> None:
    with (DEFAULT_REPLAY_DIR / "fear_greed.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    expected = sorted((int(r["timestamp"]), int(r["value"]), r["classification"]) for r in rows)
    async with FakeAlternativeMe() as fake, api_source(fake) as source:
        history = await source.history(0)
    assert len(expected) > 3000
    assert triples(history) == expected
    assert fake.requests == ["fng"]


@pytest.mark.skipif(not RECORDED_FNG.is_file(), reason="../shared/data is not beside the repo")
async def test_a_recorded_api_response_parses_to_its_values() -> None:
    raw = RECORDED_FNG.read_bytes()
    recorded = json.loads(raw)
    expected = sorted(
        (int(e["timestamp"]), int(e["value"]), e["value_classification"]) for e in recorded["data"]
    )
    async with FakeAlternativeMe(body=raw) as fake, api_source(fake) as source:
        history = await source.history(2)
        latest = await source.latest(datetime(2026, 9, 8, 12, tzinfo=UTC))
    assert triples(history) == expected == [(1788739200, 71, "Greed"), (1788825600, 69, "Greed")]
    assert (latest.value, latest.classification) == (69, "Greed")


@pytest.mark.skipif(not RECORDED_FNG.is_file(), reason="../shared/data is not beside the repo")
def test_the_fake_renders_the_api_wire_format() -> None:
    recorded = json.loads(RECORDED_FNG.read_bytes())
    readings = [
        reading(1788825600 // DAY_S, 69, "Greed"),
        reading(1788739200 // DAY_S, 71, "Greed"),
    ]
    rendered = json.loads(render_fng(readings))
    rendered["data"][0]["time_until_update"] = recorded["data"][0]["time_until_update"]
    assert rendered == recorded


async def test_latest_is_the_newest_reading_published_by_now() -> None:
    readings = [reading(20_000, 10), reading(20_001, 20), reading(20_002, 30)]
    now = datetime.fromtimestamp(20_001 * DAY_S + 3600, UTC)
    async with FakeAlternativeMe(readings) as fake, api_source(fake) as source:
        latest = await source.latest(now)
        with pytest.raises(SourceError, match="no reading published by"):
            await source.latest(datetime.fromtimestamp(19_000 * DAY_S, UTC))
    assert latest.value == 20


async def test_unreadable_entries_are_skipped_and_counted() -> None:
    body = {
        "name": "Fear and Greed Index",
        "data": [
            {"value": "abc", "value_classification": "Fear", "timestamp": "1788825600"},
            {"value": "40", "value_classification": "Fear", "timestamp": "1788739200"},
            {"value": "41", "value_classification": "Fear"},
            {"value": "250", "value_classification": "Greed", "timestamp": "1788566400"},
        ],
        "metadata": {"error": None},
    }
    async with FakeAlternativeMe(body=json.dumps(body).encode()) as fake, api_source(fake) as src:
        history = await src.history(4)
        notes = src.skipped_records("BTC/USDT")
    assert triples(history) == [(1788739200, 40, "Fear")]
    assert len(notes) == 1
    assert "skipped 3 bad records (first at entry 1: ValueError" in notes[0]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"data": [{"value": "abc"}], "metadata": {"error": null}}', "no readable reading"),
        (b'{"data": [], "metadata": {"error": "Limit must be a number"}}', "Limit must be"),
        (b"[1, 2, 3]", "unexpected response"),
    ],
)
async def test_a_response_with_nothing_usable_is_a_source_error(body: bytes, reason: str) -> None:
    async with FakeAlternativeMe(body=body) as fake, api_source(fake) as source:
        with pytest.raises(SourceError, match=reason):
            await source.latest(datetime.now(UTC))


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(status=503), "Fear & Greed API: server error (HTTP 503)"),
        (Fault(status=500), "Fear & Greed API: server error (HTTP 500)"),
        (Fault(status=429, retry_after_s=0.2), "rate limited (HTTP 429, retry after 0.2 s)"),
        (Fault(status=451), "request refused (HTTP 451)"),
        (Fault(malformed=True), "Fear & Greed API: malformed JSON in the response"),
        (Fault(latency_s=5.0), "Fear & Greed API: timed out after 0.4 s"),
    ],
)
async def test_each_fault_is_a_source_error_with_its_reason_in_bounded_time(
    fault: Fault, reason: str
) -> None:
    async with FakeAlternativeMe() as fake, api_source(fake, timeout_s=0.4) as source:
        fake.inject("fng", fault)
        started = time.monotonic()
        with pytest.raises(SourceError) as caught:
            await source.latest(datetime.now(UTC))
        elapsed = time.monotonic() - started
    assert reason in str(caught.value)
    assert elapsed < 1.5


async def test_a_429_keeps_its_retry_after_for_the_resilience_layer() -> None:
    async with FakeAlternativeMe() as fake, api_source(fake) as source:
        fake.inject("fng", Fault(status=429, retry_after_s=0.25, times=1))
        with pytest.raises(SourceError) as caught:
            await source.latest(datetime.now(UTC))
        again = await source.latest(datetime.now(UTC))  # the fault hit one request only
    cause = caught.value.__cause__
    assert isinstance(cause, httpx.HTTPStatusError)
    assert cause.response.headers["Retry-After"] == "0.25"
    assert caught.value.retry_after_s == 0.25  # what the resilience layer waits out
    assert again.value == 71  # the newest shipped reading, 2026-08-22


async def test_an_unreachable_server_is_a_source_error() -> None:
    async with FakeAlternativeMe() as fake:
        url = fake.url
    source = FearGreedApiSource(FearGreedSourceConfig(base_url=url, timeout_s=1.0))
    await source.start()
    try:
        with pytest.raises(SourceError, match="unreachable"):
            await source.latest(datetime.now(UTC))
    finally:
        await source.close()


async def test_close_releases_the_connection() -> None:
    async with FakeAlternativeMe() as fake:
        source = FearGreedApiSource(FearGreedSourceConfig(base_url=fake.url, timeout_s=1.0))
        await source.start()
        await source.latest(datetime.now(UTC))
        assert fake.open_connections() == 1  # httpx keeps the connection alive
        await source.close()
        for _ in range(50):  # the server sees the close a moment later
            if fake.open_connections() == 0:
                break
            await asyncio.sleep(0.01)
        assert fake.open_connections() == 0


async def test_the_fakes_rate_limit_answers_429_and_counts_violations() -> None:
    async with FakeAlternativeMe() as fake, api_source(fake) as source:
        fake.rate_limit(2, per_s=0.3)
        await source.latest(datetime.now(UTC))
        await source.latest(datetime.now(UTC))
        with pytest.raises(SourceError, match=r"rate limited \(HTTP 429, retry after 0\.\d+ s\)"):
            await source.latest(datetime.now(UTC))
        await asyncio.sleep(0.35)  # the window has passed
        await source.latest(datetime.now(UTC))
    assert fake.violations == 1
    assert fake.count("fng") == 4
