"""Fault suite of live mode, with in-process fake sources (recorded data behind a fault script)
behind the real resilience layer and desk: for each modality a timeout, a failure, a Retry-After,
a permanent refusal and the breaker's cycle each end in a Signal whose report for that modality is
unavailable or degraded with the reason, in bounded time, the other modalities intact."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import pytest

from bot.app import run_bot
from bot.cli import compute_signal
from bot.cli_status import _gather
from bot.commands.base import BotStatus
from bot.commands.status import render_status, source_health, status_to_json
from bot.config import BotConfig
from bot.scheduling.manual_clock import ManualClock
from intel.config import Config, Secrets
from intel.desk import build_desk
from intel.errors import NoSignalError, NotConfiguredError, PermanentSourceError, SourceError
from intel.models import ReportStatus
from intel.sources.live import NO_WHALE_DATA, LiveSourceFactories
from intel.sources.replay_fear_greed import ReplayFearGreedSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.sources.replay_reddit import ReplayPostSource
from intel.sources.resilience import Timing
from intel.sources.testing import (
    Fail,
    ReplayExchange,
    failing,
    never_answering,
    script_of,
    scripted,
)
from intel.timeutil import parse_time

SYMBOL = "ETH/USDT"  # every modality has recorded data at the default moment


def live_config(**pipeline: float) -> Config:
    policy = {
        "call_timeout_s": 0.05,
        "max_attempts": 2,
        "backoff_initial_s": 0.01,
        "backoff_max_s": 0.02,
        "retry_deadline_s": 1.0,
        "failures_to_open": 2,
        "open_cooldown_s": 30,
    }
    return Config.model_validate(
        {
            "symbols": [SYMBOL],
            "data": {"mode": "live"},
            # No cache: every signal asks the sources again, as the fault cases need.
            "cache_ttl_s": dict.fromkeys(
                ("candles", "orderbook", "whales", "posts", "fear_greed"), 0
            ),
            "pipeline": {"source_timeout_s": 2, "overall_deadline_s": 3} | pipeline,
            "resilience": {"exchange": policy, "fear_greed": policy, "reddit": policy},
        }
    )


@dataclass
class Live:
    """The fake live sources a test hands to the desk (recorded data unless replaced)."""

    exchange: Any = None
    fear_greed: Any = None
    posts: Any = None

    def __post_init__(self) -> None:
        self.exchange = self.exchange or ReplayExchange()
        self.fear_greed = self.fear_greed or ReplayFearGreedSource(DEFAULT_REPLAY_DIR)
        self.posts = self.posts or ReplayPostSource(DEFAULT_REPLAY_DIR)

    def factories(self) -> LiveSourceFactories:
        return LiveSourceFactories(
            exchange=lambda *_: self.exchange,
            fear_greed=lambda *_: self.fear_greed,
            posts=lambda *_: self.posts,
        )


def desk_for(live: Live, config: Config | None = None, timing: Timing | None = None) -> Any:
    config = config or live_config()
    factories = live.factories()
    if timing is not None:
        from intel.sources import live as live_module

        sources = live_module.live(config, factories, timing)
        return build_desk(config, sources=sources, market_clock=lambda: config.data.default_at)
    return build_desk(config, market_clock=lambda: config.data.default_at, live_sources=factories)


# Each modality: how to make its fake fail, and where the failure shows in the signal.
@dataclass(frozen=True)
class Modality:
    name: str
    replace: Callable[[Live, Callable[[Any], Any]], None]
    report: str
    health: str
    degraded_prefix: str  # the report's reason starts with this (sentiment: which half)


def _book(live: Live, wrap: Callable[[Any], Any]) -> None:
    live.exchange = wrap(live.exchange)


def _fear_greed(live: Live, wrap: Callable[[Any], Any]) -> None:
    live.fear_greed = wrap(live.fear_greed)


def _posts(live: Live, wrap: Callable[[Any], Any]) -> None:
    live.posts = wrap(live.posts)


MODALITIES = [
    Modality("orderbook", _book, "orderbook", f"orderbook {SYMBOL}", ""),
    Modality("fear_greed", _fear_greed, "sentiment", "fear_greed", "Fear & Greed: "),
    Modality("posts", _posts, "sentiment", f"posts {SYMBOL}", "Reddit: "),
]
# The exchange serves candles too: fault only its order books, or the signal is impossible.
ONLY_BOOKS = {"orderbook": ("books",)}


def only(modality: Modality) -> tuple[str, ...] | None:
    return ONLY_BOOKS.get(modality.name)


async def signal_with(live: Live, **kwargs: Any) -> tuple[Any, dict[str, Any], float]:
    desk = desk_for(live, **kwargs)
    started = time.monotonic()
    async with desk:
        result = await desk.signal(SYMBOL)
    return result, desk.source_health(), time.monotonic() - started


def assert_isolated(result: Any, health: dict[str, Any], modality: Modality, reason: str) -> None:
    """The faulted modality says why; the others are as healthy as the fakes make them."""
    report = result.signal.reports[modality.report]
    expected = ReportStatus.UNAVAILABLE if modality.report == "orderbook" else ReportStatus.DEGRADED
    assert report.status is expected
    assert report.reason.startswith(modality.degraded_prefix)
    assert reason in report.reason
    assert reason in health[modality.health].detail
    assert health[f"candles {SYMBOL}"].state == "ok"
    assert result.signal.reports["whales"].reason == NO_WHALE_DATA
    for name, state in health.items():
        if name not in (modality.health, f"whales {SYMBOL}"):
            assert state.state == "ok", (name, state)


@pytest.mark.parametrize("modality", MODALITIES, ids=lambda m: m.name)
async def test_a_source_that_never_answers_times_out(modality) -> None:
    live = Live()
    modality.replace(live, lambda s: never_answering(s, methods=only(modality)))
    result, health, elapsed_s = await signal_with(live)
    assert_isolated(result, health, modality, "did not answer within 0.05 s (2 tries)")
    assert health[modality.health].state == "failing"
    assert elapsed_s < 1.5


@pytest.mark.parametrize("modality", MODALITIES, ids=lambda m: m.name)
async def test_a_failing_source_is_retried_then_reported(modality) -> None:
    live = Live()
    modality.replace(live, lambda s: failing(s, SourceError("HTTP 503"), methods=only(modality)))
    result, health, elapsed_s = await signal_with(live)
    assert_isolated(result, health, modality, "HTTP 503")
    assert script_of(_fake(live, modality)).calls == 2  # max_attempts
    assert elapsed_s < 1.5


@pytest.mark.parametrize("modality", MODALITIES, ids=lambda m: m.name)
async def test_retry_after_is_honoured_and_the_answer_counts(modality) -> None:
    live = Live()
    busy = SourceError("HTTP 429", retry_after_s=0.2)
    modality.replace(live, lambda s: scripted(s, [Fail(busy)], methods=only(modality)))
    result, health, _ = await signal_with(live)
    fake = script_of(_fake(live, modality))
    assert fake.calls == 2
    assert fake.call_times[1] - fake.call_times[0] >= 0.2
    assert health[modality.health].state == "ok"
    assert "HTTP 429" not in (result.signal.reports[modality.report].reason or "")


@pytest.mark.parametrize("modality", MODALITIES, ids=lambda m: m.name)
async def test_a_permanent_refusal_is_not_retried(modality) -> None:
    live = Live()
    refusal = PermanentSourceError("exchange not available from this location (HTTP 451)")
    modality.replace(live, lambda s: failing(s, refusal, methods=only(modality)))
    result, health, _ = await signal_with(live)
    assert_isolated(result, health, modality, "HTTP 451")
    assert script_of(_fake(live, modality)).calls == 1


@pytest.mark.parametrize("modality", MODALITIES[1:], ids=lambda m: m.name)
async def test_the_breaker_opens_half_opens_and_closes(modality) -> None:
    live = Live()
    # Two signals fail (the breaker opens after 2 failed calls), then the source recovers.
    down = SourceError("HTTP 502")
    modality.replace(live, lambda s: scripted(s, [Fail(down)] * 4))
    clock = ManualClock(parse_time("2025-10-06T16:00Z"))
    desk = desk_for(live, timing=Timing(monotonic=clock.monotonic))
    fake = script_of(_fake(live, modality))
    async with desk:
        for _ in range(2):
            await desk.signal(SYMBOL)
        assert desk.source_health()[modality.health].state == "failing"
        assert fake.calls == 4
        resting = await desk.signal(SYMBOL)  # open: fails fast, the source is not asked
        assert fake.calls == 4
        health = desk.source_health()
        assert_isolated(resting, health, modality, "circuit open since")
        assert health[modality.health].state == "open"

        clock.advance(30)  # the cool-down: one trial call, which succeeds
        healed = await desk.signal(SYMBOL)
        assert fake.calls == 5
        assert desk.source_health()[modality.health].state == "ok"
        assert modality.degraded_prefix + "HTTP" not in (
            healed.signal.reports[modality.report].reason or ""
        )


async def test_the_exchange_breaker_cycle_ends_in_no_signal_then_heals() -> None:
    # One breaker per source: the exchange's serves candles and books alike, and without
    # candles there is no signal, only NoSignalError with the reason.
    down = SourceError("HTTP 502")
    live = Live(exchange=scripted(ReplayExchange(), [Fail(down)] * 4))
    clock = ManualClock(parse_time("2025-10-06T16:00Z"))
    desk = desk_for(live, timing=Timing(monotonic=clock.monotonic))
    async with desk:
        for _ in range(2):
            with pytest.raises(NoSignalError, match="HTTP 502"):
                await desk.signal(SYMBOL)
        with pytest.raises(NoSignalError, match="circuit open since"):
            await desk.signal(SYMBOL)
        assert desk.source_health()[f"candles {SYMBOL}"].state == "open"
        clock.advance(30)
        await desk.signal(SYMBOL)
        assert desk.source_health()[f"candles {SYMBOL}"].state == "ok"


def _fake(live: Live, modality: Modality) -> Any:
    return {"orderbook": live.exchange, "fear_greed": live.fear_greed, "posts": live.posts}[
        modality.name
    ]


async def test_stale_live_data_is_a_failing_source_not_a_recording_gap() -> None:
    config = live_config()
    desk = build_desk(
        config.model_copy(update={"symbols": ("BTC/USDT",)}),
        market_clock=lambda: config.data.default_at,  # the recorded BTC book is a year older
        live_sources=Live().factories(),
    )
    async with desk:
        await desk.signal("BTC/USDT")
    book = desk.source_health()["orderbook BTC/USDT"]
    assert (book.state, book.recorded) == ("failing", True)


async def test_candles_that_never_come_end_in_no_signal_within_the_overall_deadline() -> None:
    live = Live(exchange=never_answering(ReplayExchange()))
    config = live_config(overall_deadline_s=0.3)
    config = config.model_copy(
        update={
            "resilience": config.resilience.model_copy(
                update={
                    "exchange": config.resilience.exchange.model_copy(
                        update={"call_timeout_s": 5, "retry_deadline_s": 5}
                    )
                }
            )
        }
    )
    started = time.monotonic()
    with pytest.raises(NoSignalError, match=r"overall deadline of 0\.3 s"):
        await signal_with(live, config=config)
    assert time.monotonic() - started < 2.0


async def test_live_whales_are_not_configured_and_the_signal_can_only_hold() -> None:
    result, health, _ = await signal_with(Live())
    whales = result.signal.reports["whales"]
    assert (whales.status, whales.reason) == (ReportStatus.UNAVAILABLE, NO_WHALE_DATA)
    assert health[f"whales {SYMBOL}"].state == "not_configured"
    assert result.signal.action.value == "HOLD"


async def test_live_credits_name_the_live_sources_not_whale_alert() -> None:
    result, _, _ = await signal_with(Live())
    assert "Whale Alert" not in " ".join(result.credits)
    assert "Fear & Greed: Alternative.me" in result.credits


class NeverStarts(ReplayExchange):
    """An exchange client whose start (loading markets) never answers: no network at all."""

    async def start(self) -> None:
        await asyncio.Event().wait()


async def test_the_signal_command_ends_within_the_overall_deadline_when_nothing_answers() -> None:
    raw = live_config(overall_deadline_s=0.3).model_dump(mode="json")
    raw["resilience"]["exchange"]["call_timeout_s"] = 5  # longer than the overall deadline
    config = BotConfig.model_validate(raw)
    factory = partial(build_desk, live_sources=Live(exchange=NeverStarts()).factories())
    started = time.monotonic()
    with pytest.raises(NoSignalError, match=r"did not open within 0\.3 s"):
        await compute_signal(config, "eth", None, desk_factory=factory)
    assert time.monotonic() - started < 2.0


async def test_status_live_probe_shows_failing_and_not_configured_sources(tmp_path) -> None:
    raw = live_config().model_dump(mode="json")
    raw["storage"] = {"db_path": str(tmp_path / "none.db")}
    config = BotConfig.model_validate(raw)
    live = Live(posts=failing(ReplayPostSource(DEFAULT_REPLAY_DIR), SourceError("HTTP 500")))
    factory = partial(
        build_desk, market_clock=lambda: config.data.default_at, live_sources=live.factories()
    )
    status = await _gather(config, factory)
    sources = status_to_json(status)["sources"]
    assert sources[f"whales {SYMBOL}"]["state"] == "not_configured"
    assert sources[f"whales {SYMBOL}"]["detail"] == NO_WHALE_DATA
    assert sources[f"posts {SYMBOL}"]["state"] == "failing"
    assert "HTTP 500" in sources[f"posts {SYMBOL}"]["detail"]
    assert sources[f"candles {SYMBOL}"]["state"] == "ok"
    assert f"➖ whales {SYMBOL}: not configured — {NO_WHALE_DATA}" in render_status(status).text


async def test_a_resting_breaker_is_shown_open_by_status() -> None:
    live = Live(fear_greed=failing(ReplayFearGreedSource(DEFAULT_REPLAY_DIR), SourceError("502")))
    async with desk_for(live) as desk:
        for _ in range(3):  # two failed calls open it (failures_to_open=2), the third rests
            await desk.signal(SYMBOL)
        states = source_health(desk.source_health())
    text = render_status(
        BotStatus(
            market_now=desk.now(),
            sources=states,
            last_cycle_at=None,
            last_cycle_market_at=None,
            next_run_at=None,
            outbox={},
            transports=(),
            notes=(),
            origin="probe",
        )
    ).text
    assert "⛔ fear_greed: open — fear_greed: circuit open since" in text


class RedditWithoutCredentials(ReplayPostSource):
    """Like the live Reddit source with no REDDIT_* variables set: refuses at start."""

    async def start(self) -> None:
        raise NotConfiguredError("Reddit not configured (set REDDIT_CLIENT_ID, …)")


async def test_reddit_not_configured_leaves_fear_and_greed_counting() -> None:
    posts = scripted(RedditWithoutCredentials(DEFAULT_REPLAY_DIR))
    result, health, _ = await signal_with(Live(posts=posts))
    sentiment = result.signal.reports["sentiment"]
    assert sentiment.status is ReportStatus.DEGRADED
    assert sentiment.reason == "Reddit: Reddit not configured (set REDDIT_CLIENT_ID, …)"
    assert sentiment.score is not None  # Fear & Greed alone
    assert health[f"posts {SYMBOL}"].state == "not_configured"
    assert health["fear_greed"].state == "ok"
    assert script_of(posts).calls == 0  # never asked, never retried


async def test_run_live_starts_with_the_exchange_down_and_says_why_there_is_no_signal(
    tmp_path,
) -> None:
    raw = live_config().model_dump(mode="json")
    raw["storage"] = {"db_path": str(tmp_path / "bot.db")}
    raw["console"] = {"chart_dir": str(tmp_path / "charts")}
    config = BotConfig.model_validate(raw)
    down = failing(ReplayExchange(), SourceError("exchange unreachable: no network"))
    factory = partial(build_desk, live_sources=Live(exchange=down).factories())
    stdin, stdout = io.StringIO("signal eth\n"), io.StringIO()
    code = await asyncio.wait_for(
        run_bot(config, Secrets(), console=True, stdin=stdin, stdout=stdout, desk_factory=factory),
        timeout=30,
    )
    assert code == 0
    assert "exchange unreachable: no network" in stdout.getvalue()
