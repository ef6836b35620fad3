"""The fault matrix over HTTP: each live source's faults served by its fake server on 127.0.0.1,
read through the real client (ccxt, httpx, asyncpraw) and the resilience layer, end to end to a
Signal. Each case ends, in bounded time, in a Signal whose report for the faulted modality is
degraded or unavailable with the reason, the other modalities intact.

The in-process fault suite (test_live_faults) covers the resilience layer's own cycle (retries,
Retry-After honoured, the breaker); the per-source tests map each HTTP fault onto an error. A
stream dropped mid-way ends in a Signal in test_live_streams.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
import pytest_asyncio

from intel.config import Config, load_config
from intel.desk import build_desk
from intel.models import ReportStatus
from intel.sources.fakes.binance import EXCHANGE_INFO_FILE, FakeBinance, Faults
from intel.sources.fakes.social import (
    FakeAlternativeMe,
    FakePost,
    FakeReddit,
    Fault,
    replay_fear_greed,
)
from intel.sources.onchain.labels import NO_LABELS
from intel.timeutil import parse_time, to_ms

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the fakes are shared by every case

NOW = parse_time("2024-08-09T00:10:00Z")  # recorded candles, books and Fear & Greed exist
SYMBOL = "BTC/USDT"
EMPTY_BOOK_SYMBOL = "SOL/USDT"  # listed by the fake, with candles but no recorded book
DEPTH = frozenset({"/api/v3/depth"})  # the candles must come, or there is no signal at all
CLIENT_TIMEOUT_S = 0.3  # each client's own timeout per request
BOUND_S = 4.0  # every case ends within this (the overall deadline is 3 s)
SOURCES = ("exchange", "fear_greed", "reddit")
SOURCES = ("exchange", "fear_greed", "reddit")
POLICY = {
    "call_timeout_s": 1.0,  # above the clients' own, so their timeout message shows
    "max_attempts": 2,
    "backoff_initial_s": 0.01,
    "backoff_max_s": 0.02,
    "retry_deadline_s": 1.5,
    "failures_to_open": 100,  # the breaker's cycle is test_live_faults'; here it stays closed
}


@dataclass
class Fakes:
    exchange: FakeBinance
    index: FakeAlternativeMe
    reddit: FakeReddit

    def clear(self) -> None:
        self.exchange.faults = Faults()
        self.index.clear()
        self.index.body = None
        self.reddit.clear()

    def config(self) -> Config:
        env = {
            "BOT__SYMBOLS": f"[{SYMBOL}, {EMPTY_BOOK_SYMBOL}]",
            "BOT__DATA__MODE": "live",
            "BOT__EXCHANGE__REST_URL": self.exchange.rest_url,
            "BOT__EXCHANGE__WS_URL": self.exchange.ws_url,
            "BOT__EXCHANGE__TIMEOUT_S": str(CLIENT_TIMEOUT_S),
            "BOT__SOURCES__FEAR_GREED__BASE_URL": self.index.url,
            "BOT__SOURCES__FEAR_GREED__TIMEOUT_S": str(CLIENT_TIMEOUT_S),
            "BOT__SOURCES__REDDIT__OAUTH_URL": self.reddit.url,
            "BOT__SOURCES__REDDIT__REDDIT_URL": self.reddit.url,
            "BOT__SOURCES__REDDIT__TIMEOUT_S": str(CLIENT_TIMEOUT_S),
            "BOT__SOURCES__REDDIT__SUBREDDITS": "{BTC: [Bitcoin], SOL: [solana]}",
            "BOT__PIPELINE__OVERALL_DEADLINE_S": "3",
            "BOT__RESILIENCE": json.dumps(dict.fromkeys(SOURCES, POLICY)),
            # Credentials are read with the configuration: these are the fake Reddit's.
            "REDDIT_CLIENT_ID": "fake-client-id",
            "REDDIT_CLIENT_SECRET": "fake-client-secret",
            "REDDIT_USER_AGENT": "signaldesk-tests/0.1 (fake server)",
        }
        return load_config(path=None, env=env)


def exchange_info_with_an_empty_book() -> dict[str, object]:
    info = json.loads(EXCHANGE_INFO_FILE.read_text(encoding="utf-8"))
    listed = copy.deepcopy(info["symbols"][0])
    listed.update(symbol="SOLUSDT", baseAsset="SOL")
    info["symbols"].append(listed)
    return dict(info)


def posts() -> list[FakePost]:
    """Posts of the hours before NOW (Reddit as it stood then), enough for a mood."""
    created_s = (NOW - timedelta(hours=1)).timestamp()
    words = ("rally", "dump", "steady", "breakout", "fear", "buying")
    return [
        FakePost(f"{sub}{i}", sub, created_s - 600 * i, f"{asset} {word}", "")
        for sub, asset in (("Bitcoin", "bitcoin"), ("solana", "solana"))
        for i, word in enumerate(words)
    ]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def fakes() -> AsyncIterator[Fakes]:
    readings = [r for r in replay_fear_greed() if r.timestamp <= NOW]
    async with (
        FakeBinance(now_ms=to_ms(NOW), exchange_info=exchange_info_with_an_empty_book()) as ex,
        FakeAlternativeMe(readings) as index,
        FakeReddit(posts(), until_s=NOW.timestamp()) as reddit,
    ):
        yield Fakes(ex, index, reddit)


@dataclass(frozen=True)
class Case:
    fault: Callable[[Fakes], None]
    report: str  # the agent report that must say why
    reason: str  # in that report's reason
    health: str  # the source's line in `status`
    symbol: str = SYMBOL


def book(faults: Faults) -> Callable[[Fakes], None]:
    def apply(fakes: Fakes) -> None:
        fakes.exchange.faults = faults

    return apply


def index(fault: Fault) -> Callable[[Fakes], None]:
    return lambda fakes: fakes.index.inject("fng", fault)


def index_body(body: bytes) -> Callable[[Fakes], None]:
    def apply(fakes: Fakes) -> None:
        fakes.index.body = body

    return apply


def reddit(fault: Fault) -> Callable[[Fakes], None]:
    return lambda fakes: fakes.reddit.inject("new", fault)


def nothing(fakes: Fakes) -> None:
    return None


OB, FG, RD = f"orderbook {SYMBOL}", "fear_greed", f"posts {SYMBOL}"
UNREADABLE_INDEX = b'{"data": [{"value": "NaN", "value_classification": "Fear", "timestamp": "1723161600"}, {"value": "-5", "value_classification": "Fear", "timestamp": "1723075200"}], "metadata": {"error": null}}'  # noqa: E501
CASES = [
    # The exchange's order book (its candles keep coming).
    pytest.param(Case(book(Faults(latency_s=0.8, only_paths=DEPTH)), "orderbook",
                      f"timed out after {CLIENT_TIMEOUT_S:g} s", OB), id="book-timeout"),
    pytest.param(Case(book(Faults(status=503, only_paths=DEPTH)), "orderbook",
                      "exchange unavailable (transient)", OB), id="book-503"),
    pytest.param(Case(book(Faults(status=429, retry_after_s=5, only_paths=DEPTH)), "orderbook",
                      "rate limited (transient); retry after 5 s", OB), id="book-429"),
    pytest.param(Case(book(Faults(status=451, only_paths=DEPTH)), "orderbook",
                      "exchange not available from this location (HTTP 451)", OB), id="book-451"),
    pytest.param(Case(book(Faults(malformed_json=True, only_paths=DEPTH)), "orderbook",
                      "malformed response: malformed JSON", OB), id="book-malformed-json"),
    pytest.param(Case(nothing, "orderbook", "SOL/USDT order book is empty",
                      f"orderbook {EMPTY_BOOK_SYMBOL}", EMPTY_BOOK_SYMBOL), id="book-empty"),
    pytest.param(Case(book(Faults(one_sided_book=True)), "orderbook",
                      "order book is one-sided (no asks)", OB), id="book-one-sided"),
    pytest.param(Case(book(Faults(nan_prices=True)), "orderbook",
                      "unusable level(s): the first at price nan", OB), id="book-nan"),
    pytest.param(Case(book(Faults(bid_price="-5")), "orderbook",
                      "unusable level(s): the first at price -5", OB), id="book-negative"),
    pytest.param(Case(book(Faults(bid_price="0")), "orderbook",
                      "unusable level(s): the first at price 0", OB), id="book-zero"),
    # Fear & Greed (Reddit keeps counting).
    pytest.param(Case(index(Fault(latency_s=0.8)), "sentiment",
                      f"Fear & Greed: Fear & Greed API: timed out after {CLIENT_TIMEOUT_S:g} s",
                      FG), id="index-timeout"),
    pytest.param(Case(index(Fault(status=503)), "sentiment",
                      "Fear & Greed: Fear & Greed API: server error (HTTP 503)", FG),
                 id="index-503"),
    pytest.param(Case(index(Fault(status=429, retry_after_s=5)), "sentiment",
                      "rate limited (HTTP 429, retry after 5 s)", FG), id="index-429"),
    pytest.param(Case(index(Fault(status=451)), "sentiment", "request refused (HTTP 451)", FG),
                 id="index-451"),
    pytest.param(Case(index(Fault(malformed=True)), "sentiment",
                      "Fear & Greed: Fear & Greed API: malformed JSON in the response", FG),
                 id="index-malformed-json"),
    pytest.param(Case(index_body(UNREADABLE_INDEX), "sentiment",
                      "no readable reading in the response", FG), id="index-nan-negative"),
    # Reddit (Fear & Greed keeps counting).
    pytest.param(Case(reddit(Fault(latency_s=0.8)), "sentiment",
                      f"Reddit: Reddit: timed out after {CLIENT_TIMEOUT_S:g} s", RD),
                 id="reddit-timeout"),
    pytest.param(Case(reddit(Fault(status=503)), "sentiment", "server error (HTTP 503)", RD),
                 id="reddit-503"),
    pytest.param(Case(reddit(Fault(status=429, retry_after_s=5)), "sentiment",
                      "rate limited (HTTP 429, retry after 5 s)", RD), id="reddit-429"),
    pytest.param(Case(reddit(Fault(status=451)), "sentiment", "request refused (HTTP 451)", RD),
                 id="reddit-451"),
    pytest.param(Case(reddit(Fault(malformed=True)), "sentiment",
                      "malformed JSON in the response", RD), id="reddit-malformed-json"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
async def test_each_fault_ends_in_a_signal_that_says_why(fakes: Fakes, case: Case) -> None:
    fakes.clear()
    case.fault(fakes)
    desk = build_desk(fakes.config(), market_clock=lambda: NOW)
    started = time.monotonic()
    try:
        async with desk:
            result = await desk.signal(case.symbol)
    finally:
        fakes.clear()
    elapsed = time.monotonic() - started
    assert elapsed < BOUND_S
    reports = result.signal.reports
    faulted = reports[case.report]
    assert faulted.status in (ReportStatus.DEGRADED, ReportStatus.UNAVAILABLE)
    assert faulted.reason is not None
    assert case.reason in faulted.reason
    health = desk.source_health()
    assert health[case.health].state == "failing"
    assert case.reason.split(": ")[-1] in health[case.health].detail
    # The other modalities are intact: candles priced the signal, the other reports count.
    assert health[f"candles {case.symbol}"].state == "ok"
    # Live whales without an address file say why (issue 10), as every surface does.
    assert reports["whales"].reason == NO_LABELS
    others = {name: state.state for name, state in health.items() if name != case.health}
    assert set(others.values()) == {"ok", "not_configured"}, others
    for name, report in reports.items():
        if name not in (case.report, "whales"):
            assert report.status is ReportStatus.OK, (name, report.reason)
    if case.report == "sentiment":  # the other half of the mood still counts
        assert faulted.status is ReportStatus.DEGRADED
        assert faulted.score is not None


async def test_with_no_fault_every_live_modality_but_whales_is_ok(fakes: Fakes) -> None:
    fakes.clear()
    desk = build_desk(fakes.config(), market_clock=lambda: NOW)
    async with desk:
        result = await desk.signal(SYMBOL)
    health = desk.source_health()
    assert {name: state.state for name, state in health.items()} == {
        f"candles {SYMBOL}": "ok",
        OB: "ok",
        f"whales {SYMBOL}": "not_configured",
        RD: "ok",
        FG: "ok",
    }
    assert result.signal.reports["sentiment"].status is ReportStatus.OK
    assert result.signal.reports["orderbook"].status is ReportStatus.OK
