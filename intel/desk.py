"""The signal desk: the one object the bot talks to — symbols, the market clock, signals.

`build_desk(config)` composes the sources for `data.mode`, the agents and the coordinator named by
`coordinator.kind`; any source, the sentiment engine or the coordinator can be injected instead.
The desk owns their lifecycle: `async with desk:` starts them in order and closes them in reverse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from datetime import datetime
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import Protocol, cast

from intel.agents.orderbook import OrderBookAgent
from intel.agents.sentiment import SentimentAgent
from intel.agents.whales import WhaleAgent
from intel.calibration import DEFAULT_MAP_PATH, Calibrator, load_map
from intel.config import Config, OrderBookAgentConfig, Secrets
from intel.coordinator.base import Coordinator
from intel.coordinator.groq_client import GroqChat
from intel.coordinator.llm import LlmCoordinator
from intel.coordinator.rules import RulesCoordinator
from intel.errors import (
    BadTimeError,
    ConfigError,
    NoSignalError,
    SourceError,
)
from intel.lifecycle import Lifecycle, enter_all
from intel.models import CandleSeries
from intel.pipeline import SignalPipeline, SignalResult
from intel.sentiment.base import SentimentEngine, describe_engine
from intel.sentiment.finbert import FinBertEngine
from intel.sentiment.lexicon import LexiconEngine
from intel.snapshot import SnapshotBuilder, Sources, SourceState
from intel.sources.base import CandleSource, FollowsBooks, OrderBookSource
from intel.sources.live import LIVE_SOURCES, LiveSourceFactories, live
from intel.sources.onchain.large import LargeTransferFeed, LargeTransferListener
from intel.sources.onchain.window import FlowWindowStore
from intel.sources.replay_candles import ReplayCandleSource
from intel.sources.replay_fear_greed import ReplayFearGreedSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.sources.replay_orderbook import ReplayOrderBookSource
from intel.sources.replay_reddit import ReplayPostSource
from intel.sources.replay_whales import ReplayWhaleSource
from intel.symbols import resolve_symbol
from intel.timeutil import iso, utcnow

__all__ = ["DeskFactory", "SignalDesk", "build_desk", "calibrator_for", "replay_sources"]


class SignalDesk:
    """Signals on demand over `components`, which `async with desk:` keeps open.

    Replay parts hold nothing, so an unopened desk still answers; live parts need opening. The
    market clock is `data.default_at` in replay and the wall clock in live mode, unless given.
    """

    def __init__(
        self,
        config: Config,
        pipeline: SignalPipeline,
        candles: CandleSource,
        components: tuple[Lifecycle, ...],
        market_clock: Callable[[], datetime] | None = None,
        coordinator_status: Callable[[], str] | None = None,
        books: OrderBookSource | None = None,
        engine: SentimentEngine | None = None,
        calibrator: Calibrator | None = None,
    ) -> None:
        self.config = config
        self._calibrator = calibrator
        self._coordinator_status = coordinator_status
        self._engine = engine
        self._pipeline = pipeline
        self._candles = candles
        self._books = books
        self._components = components
        self._market_clock = market_clock or _default_clock(config)
        self._opened: AsyncExitStack | None = None

    def add_large_transfer_listener(self, listener: LargeTransferListener) -> bool:
        """Hand `listener` to each whale source that reports transfers as it counts them
        (live Blockchain.com, Whale Alert); False when none does (replay, not configured)."""
        feeds = [c for c in self._components if isinstance(c, LargeTransferFeed)]
        for feed in feeds:
            feed.add_listener(listener)
        return bool(feeds)

    async def start(self) -> None:
        """Start every component in order; if one fails, those already started are closed.

        ConfigError naming `symbols` when the candle source has no data at all for one of them.
        """
        if self._opened is not None:
            raise RuntimeError("the desk is already started")
        async with AsyncExitStack() as stack:
            await enter_all(stack, self._components)
            await self._check_symbols()
            self._opened = stack.pop_all()

    async def _check_symbols(self) -> None:
        # A symbol nobody can serve is a configuration mistake, refused once at start rather
        # than failing every signal, status probe and cycle that touches it. Live: the exchange
        # source checks symbols against its markets when it starts; asking it again here would
        # only make a start without network wait for it.
        if self.live:
            return
        missing = []
        for symbol in self.symbols:
            try:
                await self.coverage(symbol)
            except SourceError as exc:
                missing.append(f"{symbol} ({exc})")
        if missing:
            raise ConfigError(
                f"symbols: no candle data for {', '.join(missing)}; "
                "configure only symbols the data source serves"
            )

    async def close(self) -> None:
        """Close the started components in reverse order (a second call does nothing)."""
        opened, self._opened = self._opened, None
        if opened is not None:
            await opened.aclose()

    async def __aenter__(self) -> SignalDesk:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.config.symbols

    @property
    def live(self) -> bool:
        return self.config.data.mode == "live"

    @property
    def credits(self) -> tuple[str, ...]:
        """What this desk's sources ask to be credited for, in every signal's footer."""
        return self._pipeline.credits()

    def resolve(self, text: str) -> str:
        """Canonical symbol from what a person typed; UserInputError with a hint otherwise."""
        return resolve_symbol(text, self.symbols)

    def now(self) -> datetime:
        """The current market moment (replay: the replay clock)."""
        return self._market_clock()

    async def coverage(self, symbol: str) -> tuple[datetime, datetime]:
        """The moments the candle source can answer for (replay: recorded; live: up to now)."""
        return await self._candles.coverage(symbol)

    async def candles(self, symbol: str, now: datetime, count: int) -> CandleSeries:
        """The newest `count` hourly candles closed by `now` (for scoring past signals)."""
        return await self._candles.candles(symbol, now, count)

    async def check_moment(self, symbol: str, at: datetime) -> None:
        """BadTimeError when a moment someone chose (`--at`) is outside the symbol's candles."""
        first, last = await self.coverage(symbol)
        if not first <= at <= last:
            raise BadTimeError(
                f"--at {iso(at)} is outside the recorded {symbol} candles "
                f"({iso(first)} → {iso(last)})"
            )

    async def _check_market_moment(self, symbol: str, moment: datetime) -> None:
        # Nobody chose this moment (the clock or `data.default_at` did): no data, not bad input.
        first, last = await self.coverage(symbol)
        if not first <= moment <= last:
            raise NoSignalError(
                f"no {symbol} signal at the market moment {iso(moment)}: its recorded "
                f"candles cover {iso(first)} → {iso(last)}"
            )

    def coordinator_status(self) -> str:
        """Which coordinator decides and why; for the LLM, its model and budget left."""
        return self._coordinator_status() if self._coordinator_status else "Coordinator: injected"

    def follow_books(self, symbols: Iterable[str]) -> tuple[str, ...]:
        """Live: stream the order books of `symbols` — the configured ones among them, in
        `symbols` config order, the first `exchange.stream_symbols_max` — and stop the others';
        returns those streamed. A source without streams (replay) streams nothing: (). A symbol
        the exchange does not list or trade is left out (the source warns once), the others
        still stream."""
        # Not isinstance: the resilience layer's proxy has the method only through __getattr__,
        # which runtime protocol checks skip from Python 3.12 on.
        if not hasattr(self._books, "follow"):
            return ()
        wanted = set(symbols)
        streaming = cast(FollowsBooks, self._books)
        return streaming.follow([symbol for symbol in self.symbols if symbol in wanted])

    def sentiment_engine_status(self) -> str:
        """The sentiment engine in use, for `status` (FinBERT: loaded, not yet, or fallback)."""
        return describe_engine(self._engine) if self._engine is not None else "none"

    def confidence_ceiling(self) -> int | None:
        """The highest confidence a BUY/SELL can show under this desk's calibration map (the map
        at raw confidence 100); None when calibration is off."""
        return None if self._calibrator is None else self._calibrator.map.apply(100)

    def source_health(self) -> dict[str, SourceState]:
        """Each source's last outcome in this process (empty until something was fetched)."""
        return self._pipeline.source_health()

    async def probe_sources(self) -> dict[str, SourceState]:
        """Fetch every source for every symbol at the current market moment; return health."""
        for symbol in self.symbols:
            await self._pipeline.probe(symbol, self.now())
        return self.source_health()

    async def signal(
        self, symbol: str, at: datetime | None = None, *, deadline: float | None = None
    ) -> SignalResult:
        """The signal at `at` (BadTimeError outside the candles), else at the market moment now
        (NoSignalError outside the candles). Live sources answer for now: no range to check,
        and no candles in time is NoSignalError from the pipeline. `deadline` (event-loop time) may
        end the gathering of sources sooner than `pipeline.overall_deadline_s`."""
        if self.live:
            return await self._pipeline.run(symbol, at or self.now(), deadline=deadline)
        if at is None:
            at = self.now()
            await self._check_market_moment(symbol, at)
        else:
            await self.check_moment(symbol, at)
        return await self._pipeline.run(symbol, at, deadline=deadline)


class DeskFactory(Protocol):
    """How a composition root gets its desk: `build_desk`, or a `partial` of it with parts."""

    def __call__(
        self,
        config: Config,
        *,
        market_clock: Callable[[], datetime] | None = None,
        flow_store: FlowWindowStore | None = None,
    ) -> SignalDesk: ...


def replay_sources(replay_dir: Path = DEFAULT_REPLAY_DIR) -> Sources:
    """Every modality served from recorded data laid out like `intel/data/replay`."""
    return Sources(
        candles=ReplayCandleSource(replay_dir),
        orderbook=ReplayOrderBookSource(replay_dir),
        whales=ReplayWhaleSource(replay_dir),
        posts=ReplayPostSource(replay_dir),
        fear_greed=ReplayFearGreedSource(replay_dir),
    )


def build_desk(
    config: Config,
    *,
    sources: Sources | None = None,
    engine: SentimentEngine | None = None,
    coordinator: Coordinator | None = None,
    market_clock: Callable[[], datetime] | None = None,
    live_sources: LiveSourceFactories = LIVE_SOURCES,
    secrets: Secrets | None = None,
    flow_store: FlowWindowStore | None = None,
) -> SignalDesk:
    """The desk `config` describes; injected parts replace what `config` would build.

    In live mode the sources come from `live_sources`, each behind the resilience layer;
    ConfigError when this build has no exchange source. `secrets` (by default
    `config.secrets`, read from the environment by `load_config`) give the LLM its key.
    `flow_store` keeps live whale flows' window over restarts (None: in memory only).
    """
    if sources is None:
        sources = _sources_for(config, live_sources, flow_store)
    engine = engine or _engine_for(config)
    calibrator = calibrator_for(config)
    rules = RulesCoordinator(config.coordinator, calibrator)
    groq_api_key = (secrets or config.secrets).groq_api_key
    coordinator = coordinator or _coordinator_for(config, rules, groq_api_key)
    agents = (
        WhaleAgent(config.agents.whales),
        OrderBookAgent(_orderbook_config(config)),
        SentimentAgent(config.agents.sentiment, engine),
    )
    pipeline = SignalPipeline(
        SnapshotBuilder(sources, config),
        agents,
        coordinator,
        fallback=rules,
        agent_timeout_s=config.pipeline.agent_timeout_s,
        coordinator_timeout_s=config.pipeline.coordinator_timeout_s,
    )
    # Opened in this order, closed in reverse: data first, the fallback before the coordinator.
    components = (*_source_parts(sources), engine, rules, coordinator)
    status = partial(_coordinator_status, config, coordinator, groq_api_key is not None)
    return SignalDesk(
        config,
        pipeline,
        sources.candles,
        components,
        market_clock,
        status,
        books=sources.orderbook,
        engine=engine,
        calibrator=calibrator,
    )


def _orderbook_config(config: Config) -> OrderBookAgentConfig:
    """Live, the home exchange is the one the books are read from (`exchange.id`); replay keeps
    `agents.orderbook.home_exchange`, the venue the recorded signals' symbols are quoted on."""
    agent = config.agents.orderbook
    if config.data.mode != "live":
        return agent
    return agent.model_copy(update={"home_exchange": config.exchange.id})


def calibrator_for(config: Config) -> Calibrator | None:
    """The calibration `config` asks for (the shipped map by default); None when disabled.
    ConfigError naming `calibration.map_path` when the map cannot be read."""
    if not config.calibration.enabled:
        return None
    return Calibrator(load_map(config.calibration.map_path or DEFAULT_MAP_PATH), config.data.mode)


def _default_clock(config: Config) -> Callable[[], datetime]:
    if config.data.mode == "live":
        return utcnow
    return lambda: config.data.default_at


def _sources_for(
    config: Config, live_sources: LiveSourceFactories, flow_store: FlowWindowStore | None
) -> Sources:
    match config.data.mode:
        case "replay":
            replay_dir = config.data.replay_dir or DEFAULT_REPLAY_DIR
            if not replay_dir.is_dir():
                raise ConfigError(f"data.replay_dir: {replay_dir} is not a folder")
            return replay_sources(replay_dir)
        case "live":
            return live(config, live_sources, flow_store=flow_store)


def _engine_for(config: Config) -> SentimentEngine:
    sentiment = config.agents.sentiment
    match sentiment.engine:
        case "lexicon":
            return LexiconEngine()
        case "finbert":  # torch loads only when the model does, in the engine's worker thread
            return FinBertEngine.from_config(sentiment, fallback=LexiconEngine())


def _coordinator_for(
    config: Config, rules: RulesCoordinator, groq_api_key: str | None
) -> Coordinator:
    match config.coordinator.kind:
        case "rules":
            return rules
        case "auto" if groq_api_key is None:
            return rules
        case "auto" | "llm":
            chat = GroqChat(config.llm, groq_api_key) if groq_api_key else None
            return LlmCoordinator(config.llm, rules, chat)


def _coordinator_status(config: Config, coordinator: Coordinator, key_set: bool) -> str:
    """Which coordinator decides, and why (`status`)."""
    kind = config.coordinator.kind
    if isinstance(coordinator, LlmCoordinator):
        why = "coordinator.kind: llm" if kind == "llm" else "auto, and GROQ_API_KEY is set"
        return f"Coordinator: {coordinator.describe()} ({why})"
    if coordinator.name != "rules":
        return f"Coordinator: {coordinator.name} (injected)"
    if kind == "rules":
        return "Coordinator: rules (coordinator.kind: rules)"
    assert not key_set
    return "Coordinator: rules (auto, and GROQ_API_KEY is not set)"


def _source_parts(sources: Sources) -> tuple[Lifecycle, ...]:
    return (sources.candles, sources.orderbook, sources.whales, sources.posts, sources.fear_greed)
