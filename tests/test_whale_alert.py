"""Whale Alert as the second whale-flow provider: the recorded API response, and flows from the
fake Whale Alert on 127.0.0.1 serving real Whale Alert transfers.

The recorded `/v1/transactions` body is tests/fixtures/whale_alert (devbay-io/whale_alert_api,
MIT). The flows test re-serialises Whale Alert's own posted transfers of 2025-03-20
(../shared/data/whales, not shippable: skipped when absent) into the API's documented shape:
`#Exchange`-tagged sides become owner_type "exchange", the rest "unknown"; the post id stands in
for the hash. Expected hourly flows are summed here from the CSV.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.storage.memory_flows import MemoryFlowWindow
from intel.config import SourcePolicyConfig, WhaleAlertConfig
from intel.errors import NotConfiguredError, SourceError
from intel.models import WhaleFlows
from intel.sources.fakes.whale_alert import FakeWhaleAlert
from intel.sources.onchain.labels import FlowKind
from intel.sources.onchain.whale_alert import WhaleAlertSource, parse_transactions
from intel.sources.onchain.window import FlowWindowStore
from intel.sources.resilience import SourceGuard

ROOT = Path(__file__).resolve().parents[1]
RECORDED = json.loads(
    (
        ROOT / "tests/fixtures/whale_alert/whale_alert_api_v1_responses_2023-03_devbay.json"
    ).read_text(encoding="utf-8")
)
POSTS = ROOT.parent / "shared/data/whales/whale_alert_tweets_2025-03-01_to_2025-05-07.csv"
DAY = "2025-03-20"  # the busiest day of BTC and ETH exchange transfers in the posts
KEY = "test-key"


def test_the_recorded_page_parses_and_only_btc_and_eth_coins_count() -> None:
    page = RECORDED["whale_alert_api_v1_transactions_page"]
    transfers, cursor, bad = parse_transactions(page)
    assert transfers == []  # two USDC transfers: a token, not the chain's own coin
    assert cursor == page["cursor"]
    assert bad.count == 0
    as_eth = json.loads(json.dumps(page))
    for item in as_eth["transactions"]:
        item["symbol"] = "eth"
    kinds = [t.kind for t in parse_transactions(as_eth)[0]]
    # Kraken → Kraken, then unknown → unknown, as the recorded owner types say.
    assert kinds == [FlowKind.EXCHANGE_INTERNAL, FlowKind.OTHER]
    empty = parse_transactions(RECORDED["whale_alert_api_v1_transactions_empty"])
    assert empty[:2] == ([], None)
    with pytest.raises(SourceError, match="invalid api_key"):
        parse_transactions(RECORDED["whale_alert_api_v1_error_invalid_api_key"])


def posted_transfers() -> list[dict[str, str]]:
    with POSTS.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        r
        for r in rows
        if r["timestamp_utc"].startswith(DAY)
        and r["event"] == "transfer"
        and (r["blockchain"], r["symbol"]) in {("bitcoin", "BTC"), ("ethereum", "ETH")}
    ]


def as_api(row: dict[str, str]) -> dict[str, Any]:
    def side(kind: str, label: str) -> dict[str, str]:
        owner_type = "exchange" if kind == "tagged" else "unknown"
        return {"address": "", "owner": label or "unknown", "owner_type": owner_type}

    moment = datetime.fromisoformat(row["timestamp_utc"].replace("Z", "+00:00"))
    return {
        "blockchain": row["blockchain"],
        "symbol": row["symbol"].lower(),
        "id": row["tweet_id"],
        "transaction_type": "transfer",
        "hash": row["tweet_id"],
        "from": side(row["from_kind"], row["from_label"]),
        "to": side(row["to_kind"], row["to_label"]),
        "timestamp": int(moment.timestamp()),
        "amount": float(row["amount"]),
        "amount_usd": float(row["amount_usd"]),
        "transaction_count": 1,
    }


def source_for(
    fake: FakeWhaleAlert,
    clock: Callable[[], datetime],
    key: str,
    *,
    max_lookback_s: float = 86_400 * 365 * 5,
    store: FlowWindowStore | None = None,
) -> WhaleAlertSource:
    config = WhaleAlertConfig(
        base_url=fake.url,
        poll_s=0.05,
        min_usd=1_000_000,
        max_lookback_s=max_lookback_s,
        policy=SourcePolicyConfig(call_timeout_s=1, max_attempts=2, backoff_initial_s=0.01),
    )
    guard = SourceGuard("whale_alert", config.policy)
    return WhaleAlertSource(config, key, window_h=24, guard=guard, clock=clock, store=store)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


async def flows_as_of(source: WhaleAlertSource, as_of: datetime) -> WhaleFlows:
    """BTC flows once a poll made at `as_of`'s hour or later has been counted (bounded)."""
    async with asyncio.timeout(5):
        while True:
            with contextlib.suppress(SourceError):
                flows = await source.flows("BTC/USDT", as_of, 24)
                if flows.as_of >= as_of.replace(minute=0):
                    return flows
            await asyncio.sleep(0.01)


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - a background poll has no event to await
            await asyncio.sleep(0.01)


@pytest.mark.skipif(not POSTS.is_file(), reason="../shared/data is not here")
async def test_posted_transfers_become_hourly_btc_and_eth_flows() -> None:
    rows = posted_transfers()
    now = datetime.fromisoformat(f"{DAY}T23:59:00+00:00")
    expected: dict[tuple[str, int], list[float]] = {}
    for row in rows:
        to_exchange, from_exchange = row["to_kind"] == "tagged", row["from_kind"] == "tagged"
        if to_exchange == from_exchange or float(row["amount_usd"]) < 1_000_000:
            continue
        hour = int(row["timestamp_utc"][11:13])
        sums = expected.setdefault((row["symbol"], hour), [0.0, 0.0])
        sums[0 if to_exchange else 1] += float(row["amount_usd"])
    assert expected, "the day holds exchange transfers"
    assert len(rows) > 2 * 5  # more than one poll's pages: the next poll must go on
    async with FakeWhaleAlert([as_api(r) for r in rows], KEY, page_size=2) as fake:
        source = source_for(fake, lambda: now, KEY)
        await source.start()
        try:
            await until(lambda: fake.requests > len(rows) // 2 + 2)
            got: dict[tuple[str, int], list[float]] = {}
            for asset in ("BTC", "ETH"):
                flows = await source.flows(f"{asset}/USDT", now, 24)
                for h in flows.hours:
                    got[asset, h.hour_start.hour] = [h.inflow_usd, h.outflow_usd]
        finally:
            await source.close()

    def flat(table: dict[tuple[str, int], list[float]]) -> dict[tuple[str, int, int], float]:
        return {(*key, side): usd for key, sums in table.items() for side, usd in enumerate(sums)}

    assert flat(got) == pytest.approx(flat(expected))
    assert all(p["api_key"] == KEY for p in fake.seen_params)


async def test_a_refused_key_says_so_and_is_not_asked_again() -> None:
    now = datetime(2025, 3, 10, 12, tzinfo=UTC)
    async with FakeWhaleAlert([], KEY) as fake:
        source = source_for(fake, lambda: now, "wrong-key")
        await source.start()
        try:
            await until(lambda: fake.requests >= 1)
            await asyncio.sleep(0.2)
            with pytest.raises(SourceError, match="API key was refused"):
                await source.flows("BTC/USDT", now, 24)
            with pytest.raises(NotConfiguredError, match="covers SOL"):
                await source.flows("SOL/USDT", now, 24)
        finally:
            await source.close()
    assert fake.requests == 1


async def test_a_one_shot_read_right_after_start_gets_the_first_poll() -> None:
    # `signal --live` asks as soon as the source started: it must not be told "connecting".
    now = datetime(2025, 3, 10, 12, 30, tzinfo=UTC)
    async with FakeWhaleAlert([], KEY) as fake:
        source = source_for(fake, lambda: now, KEY, max_lookback_s=2 * 3600)
        await source.start()
        try:
            flows = await source.flows("BTC/USDT", now, 24)
        finally:
            await source.close()
    # The first poll reached back to 10:30: the whole 11:00 hour was watched, nothing moved.
    assert (flows.as_of, flows.collected_h, flows.hours) == (now.replace(minute=0), 1, ())


async def test_hours_of_an_outage_longer_than_a_poll_reaches_are_not_counted_as_watched() -> None:
    clock = Clock(datetime(2025, 3, 10, 10, 30, tzinfo=UTC))
    async with FakeWhaleAlert([], KEY) as fake:
        source = source_for(fake, clock, KEY, max_lookback_s=3600)
        await source.start()
        try:
            await flows_as_of(source, clock.at)  # polled at 10:30: coverage starts there
            clock.at = datetime(2025, 3, 10, 11, 30, tzinfo=UTC)
            assert (await flows_as_of(source, clock.at)).collected_h == 1  # the 10:00 hour
            fake.status = 503  # Whale Alert is down from 11:30 to 16:30
            failed = fake.requests
            await until(lambda: fake.requests > failed)
            clock.at = datetime(2025, 3, 10, 16, 30, tzinfo=UTC)
            fake.status = None
            flows = await flows_as_of(source, clock.at)
        finally:
            await source.close()
    # The poll at 16:30 read back to 15:30 only: 11:00-15:00 were never read, not "watched".
    assert flows.collected_h == 1
    assert fake.seen_params[-1]["start"] == str(int(clock.at.timestamp()) - 3600)


class FailingOnce(MemoryFlowWindow):
    """The bot's in-memory flow store whose first write fails, as a full disk would."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def save_flow_hour(self, *args: Any, **kwargs: Any) -> bool:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error")
        return await super().save_flow_hour(*args, **kwargs)


async def test_an_unexpected_poll_error_is_logged_and_polling_goes_on() -> None:
    now = datetime(2025, 3, 10, 12, 30, tzinfo=UTC)
    store = FailingOnce()
    async with FakeWhaleAlert([], KEY) as fake:
        source = source_for(fake, lambda: now, KEY, max_lookback_s=2 * 3600, store=store)
        with capture_logs() as logs:
            await source.start()
            try:
                await until(lambda: fake.requests >= 2)  # polled again after the failure
                flows = await flows_as_of(source, now)
            finally:
                await source.close()
    (failed,) = [entry for entry in logs if entry["event"] == "whale_alert_poll_failed"]
    assert (failed["log_level"], failed["exc_info"]) == ("error", True)
    assert store.failures == 0
    assert flows.collected_h == 1  # the 11:00 hour, written by the poll after the failure
