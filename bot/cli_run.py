"""`python -m bot run [--no-console] [--live]`: the bot itself, registered into the command line.

Logs go to stderr through structlog (see bot.logs): JSON when stderr is not a terminal
(production), readable text in a terminal, quieter while the console chat shares the terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

from bot.cli import add_live_flag
from bot.config import BotConfig
from bot.logs import configure_logging
from intel.config import Secrets

__all__ = ["register"]


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    """Add the `run` command to the CLI (called by `bot.cli.build_parser`)."""
    run = subparsers.add_parser(
        "run",
        parents=[common],
        help="run the bot: scheduler, alerts and chat transports",
        description="Run the bot: the signal scheduler, alerts, and every chat transport with a "
        "token in the environment; with none, an interactive console chat on "
        "stdin/stdout that ends at the end of input. Stop with Ctrl-C or SIGTERM.",
    )
    run.add_argument(
        "--no-console",
        action="store_true",
        help="never start the console chat (for containers and services)",
    )
    add_live_flag(run)
    run.set_defaults(handler=_cmd_run)


def _cmd_run(args: argparse.Namespace, config: BotConfig) -> int:
    from bot.app import EXIT_BAD_CONFIG, run_bot

    secrets = Secrets.from_env(os.environ)
    console = not args.no_console
    _configure_run_logging(
        config, secrets, console=console, debug=bool(getattr(args, "debug", False))
    )
    code = asyncio.run(
        run_bot(config, secrets, console=console, stdin=sys.stdin, stdout=sys.stdout)
    )
    if code == EXIT_BAD_CONFIG:  # the log lines above say which platform refused and why
        print(
            "error: no chat transport could start (see the log lines above); check each token "
            "and that its platform is reachable",
            file=sys.stderr,
        )
    return code


def _configure_run_logging(
    config: BotConfig, secrets: Secrets, *, console: bool, debug: bool
) -> None:
    settings = config.logging
    json_output = settings.json_output
    if json_output is None:
        json_output = not sys.stderr.isatty()
    level = "DEBUG" if debug else (settings.console_level if console else settings.level)
    configure_logging(json_output=json_output, level=level, secrets=secrets.values())
    if not debug:  # APScheduler logs every job start and end at INFO; our `cycle_done` suffices
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
