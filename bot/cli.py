"""The command line (`python -m bot …`): parse, dispatch, map errors to the contract's exit codes.

Exit codes: 0 success (a degraded signal too), 1 internal error, 2 bad input or config,
3 no signal possible. Errors are one line on stderr; a traceback only with `--debug`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import traceback
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from bot.config import BotConfig
from intel.config import Secrets, load_config
from intel.errors import ConfigError, NoSignalError, UserInputError
from intel.timeutil import parse_time

if TYPE_CHECKING:
    from intel.desk import DeskFactory
    from intel.pipeline import SignalResult

__all__ = ["compute_signal", "main"]

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_NO_SIGNAL = 0, 1, 2, 3


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 through our own error path."""

    def error(self, message: str) -> NoReturn:
        raise UserInputError(f"{message} (see {self.prog} --help)")


def _global_options() -> _Parser:
    # SUPPRESS as default so the options may stand before or after the command name.
    common = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="config file (default: ./config.yaml, else built-in defaults)",
    )
    common.add_argument("--db", type=Path, metavar="PATH", help="SQLite database path")
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    return common


def add_live_flag(parser: argparse.ArgumentParser) -> None:
    """`--live` on a command: read the live sources (the same as `data.mode: live`)."""
    parser.add_argument(
        "--live",
        action="store_true",
        help="read the live exchange and APIs instead of the recorded data (data.mode: live)",
    )


def build_parser() -> argparse.ArgumentParser:
    common = _global_options()
    parser = _Parser(
        prog="python -m bot",
        parents=[common],
        description="Crypto market-intelligence signals from whale flows, order books and "
        "sentiment. Runs offline on recorded market data by default.",
        epilog="Not financial advice.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    signal = commands.add_parser(
        "signal",
        parents=[common],
        help="compute one signal and print it",
        description="Compute one signal for SYMBOL (BTC, eth, ETH/USDT, ethusdt …) and print it.",
    )
    signal.add_argument("symbol", metavar="SYMBOL", help="e.g. BTC/USDT, btc, ethusdt")
    signal.add_argument("--json", action="store_true", help="print the signal as JSON")
    signal.add_argument("--chart", type=Path, metavar="PATH", help="write the chart PNG here")
    signal.add_argument(
        "--at",
        metavar="TIME",
        help="market moment to replay, ISO-8601 (UTC if no zone); default: config data.default_at",
    )
    add_live_flag(signal)
    signal.set_defaults(handler=_cmd_signal)
    # Each further command lives in its own module with a `register(subparsers, common)`.
    from bot import cli_backtest, cli_calibrate, cli_run, cli_sentiment, cli_status

    for module in (cli_run, cli_status, cli_sentiment, cli_backtest, cli_calibrate):
        module.register(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args: argparse.Namespace | None = None
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help and --version print and exit 0
            return int(exc.code or 0)
        if getattr(args, "handler", None) is None:
            build_parser().print_help()
            return EXIT_BAD_INPUT
        config = _load(args)
        return int(args.handler(args, config))
    except (UserInputError, ConfigError) as exc:
        return _fail(exc, EXIT_BAD_INPUT, args)
    except NoSignalError as exc:
        return _fail(exc, EXIT_NO_SIGNAL, args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader left (`signal btc | head`): nothing went wrong here. Point stdout at devnull
        # so the interpreter's final flush does not raise again (Python docs, "SIGPIPE").
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        return _fail(exc, EXIT_INTERNAL, args, prefix="internal error: ")


def _load(args: argparse.Namespace) -> BotConfig:
    overrides: dict[str, Any] = {}
    if getattr(args, "db", None) is not None:
        overrides["storage.db_path"] = str(args.db)
    if getattr(args, "live", False):
        overrides["data.mode"] = "live"
    config = load_config(getattr(args, "config", None), os.environ, overrides, model=BotConfig)
    from bot.logs import configure_logging

    configure_logging(
        json_output=not sys.stderr.isatty(),
        level="DEBUG" if getattr(args, "debug", False) else "WARNING",
        secrets=Secrets.from_env(os.environ).values(),
    )
    return config


def _fail(exc: BaseException, code: int, args: argparse.Namespace | None, prefix: str = "") -> int:
    if args is not None and getattr(args, "debug", False):
        traceback.print_exception(exc, file=sys.stderr)
    message = " ".join(str(exc).split()) or type(exc).__name__
    hint = (
        ""
        if code != EXIT_INTERNAL or (args and getattr(args, "debug", False))
        else " (run with --debug for details)"
    )
    print(f"error: {prefix}{message}{hint}", file=sys.stderr)
    return code


def _cmd_signal(args: argparse.Namespace, config: BotConfig) -> int:
    if args.at is not None and config.data.mode == "live":
        raise UserInputError("--at replays a recorded moment; it cannot go with --live")
    at = parse_time(args.at) if args.at is not None else None
    result = asyncio.run(compute_signal(config, args.symbol, at))
    if args.chart is not None:
        _write_chart(args.chart, result, config)
    if args.json:
        from intel.serialize import signal_to_json

        print(json.dumps(signal_to_json(result.signal), indent=2, ensure_ascii=False))
    else:
        from bot.render.text import render_text

        print(render_text(result.signal, result.credits))
        if args.chart is not None:
            print(f"\nChart written to {args.chart}")
    return EXIT_OK


async def compute_signal(
    config: BotConfig,
    symbol_text: str,
    at: datetime | None,
    desk_factory: DeskFactory | None = None,
) -> SignalResult:
    """The `signal` command's composition root: the desk's parts are open only while it works.

    In live mode the whole command (opening the sources included) ends within
    `pipeline.overall_deadline_s`: NoSignalError past it, never a hang.
    """
    from intel.desk import build_desk

    desk = (desk_factory or build_desk)(config)
    if not desk.live:
        async with desk:  # opening checks the configured symbols: a bad one names `symbols`
            return await desk.signal(desk.resolve(symbol_text), at)
    symbol = desk.resolve(symbol_text)
    deadline_s = config.pipeline.overall_deadline_s
    deadline = asyncio.get_running_loop().time() + deadline_s
    async with AsyncExitStack() as stack:
        try:
            async with asyncio.timeout_at(deadline):
                await stack.enter_async_context(desk)
        except TimeoutError:
            raise NoSignalError(
                f"no signal for {symbol}: the sources did not open within {deadline_s:g} s"
            ) from None
        return await desk.signal(symbol, at, deadline=deadline)


def _write_chart(path: Path, result: Any, config: BotConfig) -> None:
    from bot.render.chart import render_chart

    if path.parent and not path.parent.is_dir():
        raise UserInputError(f"cannot write chart to {path}: folder {path.parent} does not exist")
    png = render_chart(
        result.signal,
        result.snapshot,
        candles=config.chart.candles,
        flow_hours=config.chart.flow_hours,
    )
    try:
        path.write_bytes(png)
    except OSError as exc:
        raise UserInputError(f"cannot write chart to {path}: {exc.strerror or exc}") from None
