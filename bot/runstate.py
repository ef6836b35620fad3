"""The running bot's state, recorded in the store's meta table as one versioned JSON document,
so that `status` and the container health check read the bot instead of probing its sources.

Written at start, after every cycle and at stop. Later releases add their parts (chat transports,
live data) as new optional fields; a reader ignores fields it does not know.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

import structlog
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.commands.base import TransportHealth
from bot.scheduling.clock import MarketClock
from bot.storage.base import MetaStore
from intel.config import UtcDatetime
from intel.snapshot import SourceState
from intel.timeutil import utcnow

__all__ = [
    "BOT_STATE_KEY",
    "BOT_STATE_VERSION",
    "HEALTH_GRACE_S",
    "BotState",
    "RecordedSource",
    "RecordedTransport",
    "StateRecorder",
    "health",
    "load_state",
]

BOT_STATE_KEY = "bot_state"
BOT_STATE_VERSION = 1
# A cycle may run late by up to one interval (APScheduler's misfire grace) and then take its
# time (sources, LLM): healthy while the last cycle is at most two intervals and this old.
HEALTH_GRACE_S = 60.0

log = structlog.get_logger(__name__)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")  # newer writers may add fields


class RecordedSource(_Record):
    state: str  # as in the status JSON contract
    detail: str
    since: UtcDatetime | None = None
    recorded: bool = True  # False: the recording has no data here (an expected absence)


class RecordedTransport(_Record):
    state: str  # as TransportHealth.state: "running", "rejected", "not_configured", …
    detail: str = ""
    since: UtcDatetime | None = None


class BotState(_Record):
    version: int = BOT_STATE_VERSION
    running: bool
    pid: int
    started_at: UtcDatetime  # wall clock, as every *_at below but market_now
    updated_at: UtcDatetime
    stopped_at: UtcDatetime | None = None
    market_now: UtcDatetime  # the bot's market clock when this record was written
    clock: str  # the market clock, described
    interval_s: float  # real seconds between cycles
    last_cycle_at: UtcDatetime | None = None
    last_cycle_market_at: UtcDatetime | None = None
    next_run_at: UtcDatetime | None = None
    transports: tuple[str, ...] = ()
    sources: dict[str, RecordedSource] = {}
    chat_transports: dict[str, RecordedTransport] = {}  # each chat platform's state
    # What decides and scores in this bot: its coordinator (LLM budget left) and sentiment engine.
    notes: tuple[str, ...] = ()


def health(state: BotState | None, *, held: bool, now: datetime) -> tuple[bool, str]:
    """Healthy: a bot holds the database, its record says running, and it cycled recently."""
    if state is None:
        return False, "no bot state recorded in this database: the bot has not run here"
    if not held:
        if state.running:
            return False, (
                f"no bot holds the database; its last record ({state.updated_at:%Y-%m-%d %H:%M}"
                " UTC) says running: it ended without stopping"
            )
        return False, f"the bot stopped at {state.updated_at:%Y-%m-%d %H:%M} UTC"
    if not state.running:
        return False, "a bot holds the database but its record says stopped"
    reference = max(state.started_at, state.last_cycle_at or state.started_at)
    age_s = (now - reference).total_seconds()
    limit_s = 2 * state.interval_s + HEALTH_GRACE_S
    if age_s > limit_s:
        return False, f"no cycle for {age_s:.0f} s (limit {limit_s:.0f} s)"
    return True, f"last cycle or start {age_s:.0f} s ago (limit {limit_s:.0f} s)"


async def load_state(store: MetaStore) -> BotState | None:
    """The recorded state; None when absent or unreadable (logged, never fatal for a report)."""
    raw = await store.get_meta(BOT_STATE_KEY)
    if raw is None:
        return None
    try:
        return BotState.model_validate_json(raw)
    except ValidationError as exc:
        log.warning("bot_state_unreadable", errors=exc.error_count())
        return None


class StateRecorder:
    """Writes the running bot's `BotState`; every write is a whole record, so order is harmless."""

    def __init__(
        self,
        store: MetaStore,
        clock: MarketClock,
        interval_s: float,
        sources: Callable[[], Mapping[str, SourceState]],
        next_run_at: Callable[[], datetime | None],
        wall_clock: Callable[[], datetime] = utcnow,
        notes: Callable[[], Sequence[str]] = tuple,
    ) -> None:
        self._store = store
        self._clock = clock
        self._interval_s = interval_s
        self._sources = sources
        self._next_run_at = next_run_at
        self._wall_clock = wall_clock
        self._notes = notes
        self._started_at = wall_clock()
        self._transports: tuple[str, ...] = ()
        self._chats: dict[str, RecordedTransport] = {}
        self._last_cycle: tuple[datetime, datetime] | None = None  # wall, market

    async def started(
        self, transports: Sequence[str], chats: Sequence[TransportHealth] = ()
    ) -> None:
        """Record the start: the transports that run, and each chat platform's state."""
        self._transports = tuple(transports)
        self._chats = {
            c.name: RecordedTransport(state=c.state, detail=c.detail, since=c.since) for c in chats
        }
        await self._write(running=True)

    async def cycled(self, market_at: datetime) -> None:
        self._last_cycle = (self._wall_clock(), market_at)
        await self._write(running=True)

    async def stopped(self) -> None:
        await self._write(running=False)

    async def _write(self, *, running: bool) -> None:
        now = self._wall_clock()
        wall, market = self._last_cycle or (None, None)
        state = BotState(
            running=running,
            pid=os.getpid(),
            started_at=self._started_at,
            updated_at=now,
            stopped_at=None if running else now,
            market_now=self._clock.now(),
            clock=self._clock.describe(),
            interval_s=self._interval_s,
            last_cycle_at=wall,
            last_cycle_market_at=market,
            next_run_at=self._next_run_at() if running else None,
            transports=self._transports,
            chat_transports=self._chats,
            notes=tuple(self._notes()),
            sources={
                name: RecordedSource(
                    state=s.state, detail=s.detail, since=s.since, recorded=s.recorded
                )
                for name, s in self._sources().items()
            },
        )
        await self._store.set_meta(BOT_STATE_KEY, state.model_dump_json())
