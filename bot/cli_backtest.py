"""`python -m bot backtest SYMBOL [--strategy NAME] [--from DATE] [--to DATE] [--json]
[--chart PATH]`: a strategy over the shipped history beside buy-and-hold. Registered into the
command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.config import BotConfig
from intel.backtest.runner import STRATEGIES, BacktestReport, Progress, SignalArchive, run_strategy
from intel.errors import NoSignalError, UserInputError
from intel.timeutil import parse_time

__all__ = ["register"]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    backtest = subparsers.add_parser(
        "backtest",
        parents=[common],
        help="a strategy over the shipped history, beside buy-and-hold",
        description="Backtest a strategy for SYMBOL over the recorded candles: entries and exits "
        "at the next bar's open, fees and slippage from the config's `backtest` section.",
    )
    backtest.add_argument("symbol", metavar="SYMBOL", help="e.g. BTC/USDT, btc")
    backtest.add_argument(
        "--strategy",
        default="divergence",
        metavar="NAME",
        help=f"one of {', '.join(STRATEGIES)} (default: divergence)",
    )
    backtest.add_argument("--from", dest="start", metavar="DATE", help="ISO-8601, UTC if no zone")
    backtest.add_argument("--to", dest="end", metavar="DATE", help="ISO-8601, UTC if no zone")
    backtest.add_argument("--json", action="store_true", help="metrics, trades and equity as JSON")
    backtest.add_argument("--chart", type=Path, metavar="PATH", help="write the equity chart PNG")
    backtest.set_defaults(handler=_cmd_backtest)


def _cmd_backtest(args: argparse.Namespace, config: BotConfig) -> int:
    start = _date(args.start, "--from")
    end = _date(args.end, "--to")
    if args.chart is not None and not args.chart.parent.is_dir():
        raise UserInputError(f"cannot write chart to {args.chart}: no folder {args.chart.parent}")
    report = asyncio.run(_run(config, args.symbol, args.strategy, start, end, quiet=args.json))
    if args.chart is not None:
        from bot.render.backtest import render_backtest_chart

        try:
            args.chart.write_bytes(render_backtest_chart(report))
        except OSError as exc:
            raise UserInputError(f"cannot write chart to {args.chart}: {exc.strerror}") from None
    from bot.render.backtest import render_backtest_text, report_to_json

    if args.json:
        print(json.dumps(report_to_json(report), indent=1, ensure_ascii=False))
        return 0
    cfg = config.backtest
    print(render_backtest_text(report, fee_bps=cfg.fee_bps, slippage_bps=cfg.slippage_bps))
    if args.chart is not None:
        print(f"\nChart written to {args.chart}")
    return 0


def _date(text: str | None, flag: str) -> datetime | None:
    if text is None:
        return None
    try:
        return parse_time(text)
    except UserInputError as exc:
        raise UserInputError(f"{flag}: {exc}") from None


async def _run(
    config: BotConfig,
    symbol: str,
    strategy: str,
    start: datetime | None,
    end: datetime | None,
    *,
    quiet: bool,
) -> BacktestReport:
    async with AsyncExitStack() as stack:
        archive = (
            await stack.enter_async_context(_archive(config)) if strategy == "stored" else None
        )
        progress = stack.enter_context(_progress_bar(disable=quiet))
        return await run_strategy(
            config, symbol, strategy, start, end, archive=archive, progress=progress
        )


@asynccontextmanager
async def _archive(config: BotConfig) -> AsyncIterator[SignalArchive]:
    """The bot's database, read-only (never migrated or created), for the `stored` strategy."""
    from bot.storage.sqlite import SqliteStore

    path = config.storage.db_path
    if not path.is_file():
        raise NoSignalError(f"no stored signals to replay: no bot database at {path}")
    store = SqliteStore(path, read_only=True)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@contextmanager
def _progress_bar(*, disable: bool) -> Iterator[Progress]:
    """A bar on stderr for the signals computed over history (only on a terminal, never with
    --json)."""
    from tqdm import tqdm

    with tqdm(
        unit="signal", file=sys.stderr, disable=True if disable else None, leave=False
    ) as bar:

        def advance(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield advance
