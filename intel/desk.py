"""The signal desk: the one object the bot talks to — symbols, the market clock, signals.

`build_desk(config)` composes the replay sources, the agents and the rules coordinator (the
embedded default, needing no credentials).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from intel.agents.orderbook import OrderBookAgent
from intel.agents.sentiment import SentimentAgent
from intel.agents.whales import WhaleAgent
from intel.config import Config
from intel.coordinator.rules import RulesCoordinator
from intel.errors import BadTimeError
from intel.pipeline import SignalPipeline, SignalResult
from intel.sentiment.base import SentimentEngine
from intel.sentiment.lexicon import LexiconEngine
from intel.snapshot import SnapshotBuilder, Sources, SourceState
from intel.sources.replay_candles import ReplayCandleSource
from intel.sources.replay_fear_greed import ReplayFearGreedSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.sources.replay_orderbook import ReplayOrderBookSource
from intel.sources.replay_reddit import ReplayPostSource
from intel.sources.replay_whales import ReplayWhaleSource
from intel.symbols import resolve_symbol
from intel.timeutil import iso

__all__ = ["SignalDesk", "build_desk"]


class SignalDesk:
    def __init__(
        self,
        config: Config,
        pipeline: SignalPipeline,
        candles: ReplayCandleSource,
        market_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.config = config
        self._pipeline = pipeline
        self._candles = candles
        self._market_clock = market_clock or (lambda: config.data.default_at)

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.config.symbols

    def resolve(self, text: str) -> str:
        """Canonical symbol from what a person typed; UserInputError with a hint otherwise."""
        return resolve_symbol(text, self.symbols)

    def now(self) -> datetime:
        """The current market moment (replay: the replay clock)."""
        return self._market_clock()

    def coverage(self, symbol: str) -> tuple[datetime, datetime]:
        return self._candles.coverage(symbol)

    def check_moment(self, symbol: str, at: datetime) -> None:
        first, last = self.coverage(symbol)
        if not first <= at <= last:
            raise BadTimeError(
                f"--at {iso(at)} is outside the recorded {symbol} candles "
                f"({iso(first)} → {iso(last)})"
            )

    def source_health(self) -> dict[str, SourceState]:
        """Each source's last outcome in this process (empty until something was fetched)."""
        return self._pipeline.source_health()

    async def probe_sources(self) -> dict[str, SourceState]:
        """Fetch every source for every symbol at the current market moment; return health."""
        for symbol in self.symbols:
            await self._pipeline.probe(symbol, self.now())
        return self.source_health()

    async def signal(self, symbol: str, at: datetime | None = None) -> SignalResult:
        moment = self.now() if at is None else at
        self.check_moment(symbol, moment)
        return await self._pipeline.run(symbol, moment)


def build_desk(
    config: Config,
    replay_dir: Path | None = None,
    engine: SentimentEngine | None = None,
    market_clock: Callable[[], datetime] | None = None,
) -> SignalDesk:
    root = replay_dir or config.data.replay_dir or DEFAULT_REPLAY_DIR
    candles = ReplayCandleSource(root)
    sources = Sources(
        candles=candles,
        orderbook=ReplayOrderBookSource(root),
        whales=ReplayWhaleSource(root),
        posts=ReplayPostSource(root),
        fear_greed=ReplayFearGreedSource(root),
    )
    agents = (
        WhaleAgent(config.agents.whales),
        OrderBookAgent(config.agents.orderbook),
        SentimentAgent(config.agents.sentiment, engine or LexiconEngine()),
    )
    pipeline = SignalPipeline(
        SnapshotBuilder(sources, config),
        agents,
        RulesCoordinator(config.coordinator),
        agent_timeout_s=config.pipeline.agent_timeout_s,
    )
    return SignalDesk(config, pipeline, candles, market_clock)
