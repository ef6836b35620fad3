"""Live mode end to end: the desk built by `data.mode: live` with this build's real clients (ccxt,
httpx, asyncpraw) pointed at the fake Binance and Alternative.me servers on 127.0.0.1."""

from __future__ import annotations

import time

import pytest

from intel.agents.sentiment import fear_greed_mood
from intel.desk import build_desk
from intel.models import Action, FearGreedReading, ReportStatus
from intel.serialize import signal_to_json
from intel.sources.fakes.binance import FakeBinance
from intel.sources.fakes.social import FakeAlternativeMe
from intel.sources.onchain.labels import NO_LABELS
from intel.timeutil import parse_time, to_ms
from tests.replay_truth import close_at, desk_config, fear_greed_at

MOMENT = parse_time("2025-10-06T16:00Z")  # recorded candles and Fear & Greed are current
REDDIT_ENV = ("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USER_AGENT")


@pytest.fixture
def no_reddit_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in REDDIT_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_reddit_credentials")
async def test_a_live_signal_reads_the_exchange_and_fear_greed_and_says_what_is_missing() -> None:
    # The live API serves its newest readings: here, the index as it stood at MOMENT.
    reading = fear_greed_at(MOMENT)
    published = FearGreedReading(reading.published, reading.value, reading.classification)
    async with (
        FakeBinance(now_ms=to_ms(MOMENT)) as exchange,
        FakeAlternativeMe([published]) as index,
    ):
        config = desk_config(
            BOT__DATA__MODE="live",
            BOT__EXCHANGE__REST_URL=exchange.rest_url,
            BOT__EXCHANGE__WS_URL=exchange.ws_url,
            BOT__SOURCES__FEAR_GREED__BASE_URL=index.url,
        )
        desk = build_desk(config, market_clock=lambda: MOMENT)
        async with desk:
            result = await desk.signal("BTC/USDT")
    signal = result.signal
    # The newest closed candle, fetched over the exchange's REST API, is the recorded one.
    assert signal.price == close_at("BTCUSDT_1h.csv.gz", MOMENT)
    # No exchange address file: no whale score, so no BUY or SELL, and the signal says why.
    whales = signal.reports["whales"]
    assert whales.status is ReportStatus.UNAVAILABLE
    assert whales.reason is not None
    assert NO_LABELS in whales.reason
    assert signal.action is Action.HOLD
    # Reddit has no credentials here: Fear & Greed alone makes the mood, and the report says so.
    sentiment = signal.reports["sentiment"]
    assert sentiment.status is ReportStatus.DEGRADED
    assert sentiment.reason is not None
    assert "Reddit not configured" in sentiment.reason
    assert sentiment.score == fear_greed_mood(reading.value)
    assert signal_to_json(signal)["reports"]["sentiment"]["features"]["fear_greed"] == reading.value
    # The footer names the live sources, not the replayed Whale Alert channel.
    assert not any("Whale Alert" in credit for credit in result.credits)


@pytest.mark.usefixtures("no_reddit_credentials")
def test_signal_live_with_the_exchange_unreachable_ends_in_time_with_exit_3(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli import main

    # Port 9 on 127.0.0.1 has no server: every source fails fast or times out.
    for name, value in {
        "BOT__EXCHANGE__REST_URL": "http://127.0.0.1:9",
        "BOT__EXCHANGE__WS_URL": "ws://127.0.0.1:9",
        "BOT__SOURCES__FEAR_GREED__BASE_URL": "http://127.0.0.1:9",
        "BOT__PIPELINE__OVERALL_DEADLINE_S": "3",
    }.items():
        monkeypatch.setenv(name, value)
    started = time.monotonic()
    code = main(["signal", "btc", "--live", "--db", "bot.db"])
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err.strip()
    assert code == 3, err
    assert len(err.splitlines()) == 1
    assert err.startswith("error: ")
    assert elapsed < 3 + 5  # the overall deadline, plus start-up and clean-up
