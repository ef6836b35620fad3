"""`python -m bot status [--json] [--health] [--live]`: the running bot's recorded state when a
bot holds the database, else each source probed now at the market moment (live: now), plus the
last cycle and outbox.
Registered into the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.cli import add_live_flag
from bot.commands.base import BotStatus, SourceHealth, TransportHealth
from bot.commands.status import render_status, source_health, status_to_json
from bot.config import BotConfig
from bot.runstate import BotState, health, load_state
from bot.scheduling.cycle import LAST_CYCLE_AT, LAST_CYCLE_MARKET_AT, stored_time
from bot.storage.lock import DatabaseLock
from bot.storage.migrations import SchemaTooOldError
from bot.storage.sqlite import SqliteStore
from intel.desk import DeskFactory, build_desk
from intel.timeutil import iso, utcnow

__all__ = ["EXIT_UNHEALTHY", "register"]

EXIT_UNHEALTHY = 3  # the contract's "required data unavailable": here, a live bot's record


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    status = subparsers.add_parser(
        "status",
        parents=[common],
        help="health of each source and the bot's last cycle",
        description="With a bot running on the database: what it recorded (sources, last and "
        "next cycle, transports, market clock). Otherwise every source is probed at the "
        "current market moment; the last cycle and the outbox come from the database.",
    )
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.add_argument(
        "--health",
        action="store_true",
        help="health check only (no probe): exit 0 when a bot runs on the database and its "
        f"last cycle is recent, else {EXIT_UNHEALTHY}",
    )
    add_live_flag(status)
    status.set_defaults(handler=_cmd_status)


def _cmd_status(args: argparse.Namespace, config: BotConfig) -> int:
    if args.health:
        healthy, reason = asyncio.run(_health(config))
        print(f"{'healthy' if healthy else 'unhealthy'}: {reason}")
        return 0 if healthy else EXIT_UNHEALTHY
    status = asyncio.run(_gather(config))
    if args.json:
        print(json.dumps(status_to_json(status), indent=2, ensure_ascii=False))
    else:
        print(render_status(status).text)
    return 0


async def _health(config: BotConfig) -> tuple[bool, str]:
    """The health check: the bot's record and the database lock only, no source is probed."""
    db_path = config.storage.db_path
    if not db_path.exists():  # never create a database just to report on it
        return False, f"no bot database at {db_path}"
    try:
        stored = await _read_database(db_path)
    except SchemaTooOldError:
        return False, f"bot database {db_path}: schema older than this version"
    return health(stored.state, held=DatabaseLock(db_path).held(), now=utcnow())


@dataclass(frozen=True, slots=True)
class _Stored:
    """What the bot's database says: its last cycle, outbox and recorded state."""

    last_at: datetime | None = None
    last_market_at: datetime | None = None
    outbox: dict[str, int] | None = None
    state: BotState | None = None


async def _gather(config: BotConfig, desk_factory: DeskFactory = build_desk) -> BotStatus:
    db_path = config.storage.db_path
    stored, notes = _Stored(), []
    if not db_path.exists():
        notes.append(f"No bot database at {db_path}: the bot has not run here.")
    else:
        try:
            stored = await _read_database(db_path)
        except SchemaTooOldError:
            notes.append(
                f"Bot database {db_path}: database schema older than this version;"
                " run the bot once to migrate."
            )
    state = stored.state
    held = db_path.exists() and DatabaseLock(db_path).held()
    if state is not None and state.running and held:
        return _recorded(state, stored)
    if state is not None and not held:
        notes.append(_not_running(state))
    # Probe where the bot would resume (as `run` does): its last cycle's moment, if later.
    resume = stored.last_market_at
    if resume is not None and resume > config.data.default_at and config.data.mode == "replay":
        desk = desk_factory(config, market_clock=lambda: resume)
    else:
        desk = desk_factory(config)
    async with desk:  # the sources are open only while they are probed
        sources = source_health(await desk.probe_sources())
    market_now = desk.now()
    notes.append(f"Sentiment: {desk.sentiment_engine_status()}")
    why = "the bot running here has recorded no state yet" if held else "no bot is running"
    notes.insert(0, f"Sources probed now at market moment {iso(market_now)}: {why}.")
    notes.append(desk.coordinator_status())
    return BotStatus(
        market_now=market_now,
        sources=sources,
        last_cycle_at=stored.last_at,
        last_cycle_market_at=stored.last_market_at,
        next_run_at=None,
        outbox=stored.outbox or {},
        transports=(),
        notes=tuple(notes),
        origin="probe",
    )


def _recorded(state: BotState, stored: _Stored) -> BotStatus:
    """The running bot's own view, as it recorded it at start or after its last cycle."""
    sources = tuple(
        SourceHealth(name, s.state, s.detail, s.since, s.recorded)
        for name, s in sorted(state.sources.items())
    )
    notes = [
        f"Recorded by the running bot (pid {state.pid}) at {iso(state.updated_at)}.",
        f"Clock: {state.clock}",
        *state.notes,
    ]
    if not sources:
        notes.append("No source checked yet: the bot has run no cycle, or follows no symbol.")
    return BotStatus(
        market_now=state.market_now,
        sources=sources,
        last_cycle_at=stored.last_at,
        last_cycle_market_at=stored.last_market_at,
        next_run_at=state.next_run_at,
        outbox=stored.outbox or {},
        transports=state.transports,
        notes=tuple(notes),
        origin="recorded",
        chat_transports=tuple(
            TransportHealth(name, t.state, t.detail, t.since)
            for name, t in sorted(state.chat_transports.items())
        ),
    )


def _not_running(state: BotState) -> str:
    if state.running:  # the record says running, but no process holds the database
        return (
            f"The bot's last record ({iso(state.updated_at)}) says running, but no bot holds "
            "the database: it ended without stopping (killed or crashed)."
        )
    return f"The bot stopped at {iso(state.stopped_at or state.updated_at)}."


async def _read_database(db_path: Path) -> _Stored:
    """The last cycle's times, the outbox counts and the bot's record. Read-only: a report never
    migrates the bot's database nor switches its journal mode (ConfigError when the path is no
    database)."""
    store = SqliteStore(db_path, read_only=True)
    await store.open()
    try:
        return _Stored(
            await stored_time(store, LAST_CYCLE_AT),
            await stored_time(store, LAST_CYCLE_MARKET_AT),
            await store.outbox_counts(),
            await load_state(store),
        )
    finally:
        await store.close()
