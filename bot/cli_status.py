"""`python -m bot status [--json]`: each source's health at the current market moment, and the
bot's last cycle and outbox when its database exists. Registered into the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.commands.base import BotStatus
from bot.commands.status import render_status, source_health, status_to_json
from bot.config import BotConfig
from bot.scheduling.cycle import LAST_CYCLE_AT, LAST_CYCLE_MARKET_AT, stored_time
from bot.storage.migrations import SchemaTooOldError
from bot.storage.sqlite import SqliteStore
from intel.desk import DeskFactory, build_desk

__all__ = ["register"]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    status = subparsers.add_parser(
        "status",
        parents=[common],
        help="health of each source and the bot's last cycle",
        description="Fetch every source for every configured symbol at the current market "
        "moment and report its state; with the bot's database present, also the "
        "last cycle and the outbox.",
    )
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(handler=_cmd_status)


def _cmd_status(args: argparse.Namespace, config: BotConfig) -> int:
    status = asyncio.run(_gather(config))
    if args.json:
        print(json.dumps(status_to_json(status), indent=2, ensure_ascii=False))
    else:
        print(render_status(status).text)
    return 0


async def _gather(config: BotConfig, desk_factory: DeskFactory = build_desk) -> BotStatus:
    desk = desk_factory(config)
    async with desk:  # the sources are open only while they are probed
        health = source_health(await desk.probe_sources())
    last_at = last_market_at = None
    outbox: dict[str, int] = {}
    notes = []
    db_path = config.storage.db_path
    if not db_path.exists():  # never create a database just to report on it
        notes.append(f"No bot database at {db_path}: the bot has not run here.")
    else:
        try:
            last_at, last_market_at, outbox = await _bot_state(db_path)
        except SchemaTooOldError:
            notes.append(
                f"Bot database {db_path}: database schema older than this version;"
                " run the bot once to migrate."
            )
    return BotStatus(
        market_now=desk.now(),
        sources=health,
        last_cycle_at=last_at,
        last_cycle_market_at=last_market_at,
        next_run_at=None,
        outbox=outbox,
        transports=(),
        notes=tuple(notes),
    )


async def _bot_state(
    db_path: Path,
) -> tuple[datetime | None, datetime | None, dict[str, int]]:
    """The last cycle's times and the outbox counts. Read-only: a report never migrates the
    bot's database nor switches its journal mode (ConfigError when the path is no database)."""
    store = SqliteStore(db_path, read_only=True)
    await store.open()
    try:
        return (
            await stored_time(store, LAST_CYCLE_AT),
            await stored_time(store, LAST_CYCLE_MARKET_AT),
            await store.outbox_counts(),
        )
    finally:
        await store.close()
