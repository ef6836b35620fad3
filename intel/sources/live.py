"""Live mode's sources: the concrete clients from their factories, each behind its own guard of
the resilience layer, and whales not configured (no on-chain source yet).

`LIVE_SOURCES` is the one place the concrete sources are plugged in: the ccxt exchange (candles
and order books), Alternative.me's Fear & Greed and Reddit (with the credentials `load_config`
read from the environment, pacing each request under its guard's rate limit). Factories without
an exchange refuse live mode at start; a missing Fear & Greed or Reddit source leaves that part
of the sentiment "not configured", as Reddit without credentials does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from intel.config import Config
from intel.errors import ConfigError
from intel.snapshot import Sources
from intel.sources.base import CandleSource, FearGreedSource, OrderBookSource, PostSource
from intel.sources.resilience import SourceGuard, Timing, resilient
from intel.sources.unconfigured import NotConfiguredSource

__all__ = ["LIVE_SOURCES", "NO_WHALE_DATA", "ExchangeSourceLike", "LiveSourceFactories", "live"]

# Every live signal says this: the rules need a whale score for BUY or SELL.
NO_WHALE_DATA = "no whale data — BUY/SELL need it"


class ExchangeSourceLike(CandleSource, OrderBookSource, Protocol):
    """One exchange client serves candles and order books (one guard, one breaker)."""


@dataclass(frozen=True, slots=True)
class LiveSourceFactories:
    """How each live source is made from the configuration and the guard it will sit behind;
    None: not in this build."""

    exchange: Callable[[Config, SourceGuard], ExchangeSourceLike] | None = None
    fear_greed: Callable[[Config, SourceGuard], FearGreedSource] | None = None
    posts: Callable[[Config, SourceGuard], PostSource] | None = None


def _exchange(config: Config, guard: SourceGuard) -> ExchangeSourceLike:
    # Imported here: ccxt takes about a second to import, and replay never needs it.
    from intel.sources.exchange import ExchangeSource

    return ExchangeSource(config.exchange, window_s=config.agents.orderbook.spoof_window_s)


def _fear_greed(config: Config, guard: SourceGuard) -> FearGreedSource:
    from intel.sources.fear_greed import FearGreedApiSource

    return FearGreedApiSource(config.sources.fear_greed)


def _reddit(config: Config, guard: SourceGuard) -> PostSource:
    from intel.sources.reddit import RedditSource

    # Credentials come from the environment, read once with the configuration (`load_config`).
    return RedditSource(config.sources.reddit, config.secrets, pace=guard.pace_requests())


# The concrete clients of this build. Whales have no live source yet (the on-chain issue).
LIVE_SOURCES = LiveSourceFactories(exchange=_exchange, fear_greed=_fear_greed, posts=_reddit)


def live(
    config: Config, factories: LiveSourceFactories = LIVE_SOURCES, timing: Timing | None = None
) -> Sources:
    """Every modality from the live sources, each behind the guard its config section sets."""
    if factories.exchange is None:
        raise ConfigError("data.mode: live mode needs the exchange source, not in this build")
    policies = config.resilience
    exchange_guard = SourceGuard("exchange", policies.exchange, timing)
    exchange = resilient(factories.exchange(config, exchange_guard), exchange_guard)
    fear_greed: FearGreedSource = NotConfiguredSource("Fear & Greed source not in this build")
    if factories.fear_greed is not None:
        guard = SourceGuard("fear_greed", policies.fear_greed, timing)
        fear_greed = resilient(factories.fear_greed(config, guard), guard)
    posts: PostSource = NotConfiguredSource("Reddit source not in this build")
    if factories.posts is not None:
        guard = SourceGuard("reddit", policies.reddit, timing)
        posts = resilient(factories.posts(config, guard), guard)
    return Sources(
        candles=exchange,
        orderbook=exchange,
        whales=NotConfiguredSource(NO_WHALE_DATA),
        posts=posts,
        fear_greed=fear_greed,
    )
