"""`python -m bot sentiment`: score text lines from stdin with a sentiment engine, one answer each.

For people checking what an engine thinks and for evaluation scripts. Every input line gets
exactly one answer, in order: an empty line is neutral, undecodable bytes are replaced (U+FFFD)
and the rest scored, a line longer than `MAX_LINE_BYTES` is scored on its first bytes. With
`--json` each answer is the Sentiment JSON of CONTRACTS.md. `--engine finbert` where FinBERT
cannot run exits 3: an evaluation must never silently get the lexicon.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from typing import IO, Any

from bot.config import BotConfig
from intel.config import SentimentAgentConfig
from intel.errors import ModelUnavailableError, NoSignalError
from intel.sentiment.base import SentimentEngine, SentimentScore
from intel.sentiment.lexicon import LexiconEngine

__all__ = ["ENGINES", "open_engine", "read_lines", "register"]

ENGINES = ("lexicon", "finbert")
MAX_LINE_BYTES = 20_000
BATCH_LINES = 64  # answers are written a batch at a time, so a pipe sees them as they come


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    sentiment = subparsers.add_parser(
        "sentiment",
        parents=[common],
        help="score text lines from stdin, one answer per line",
        description="Read text lines from stdin and print one sentiment answer per line, in "
        "order: label and score (P(positive) − P(negative), −1..+1), or JSON with --json.",
    )
    sentiment.add_argument(
        "--engine",
        choices=ENGINES,
        help="sentiment engine (default: config agents.sentiment.engine); finbert exits 3 "
        "when its weights cannot be loaded",
    )
    sentiment.add_argument("--json", action="store_true", help="one JSON object per line")
    sentiment.set_defaults(handler=_cmd_sentiment)


def _cmd_sentiment(args: argparse.Namespace, config: BotConfig) -> int:
    name = args.engine or config.agents.sentiment.engine
    engine = open_engine(name, config.agents.sentiment)
    try:
        asyncio.run(engine.start())
    except ModelUnavailableError as exc:
        raise NoSignalError(
            f"{name} could not load its model ({exc}); no answers given — see README "
            "'Sentiment with FinBERT', or use --engine lexicon"
        ) from None
    if engine.name != name:  # an engine that fell back to another must not answer for itself
        asyncio.run(engine.close())
        raise NoSignalError(f"{name} could not start ({engine.name} in use); no answers given")
    try:
        _answer(engine, sys.stdin.buffer, sys.stdout, as_json=args.json)
    finally:
        asyncio.run(engine.close())
    return 0


def open_engine(name: str, config: SentimentAgentConfig) -> SentimentEngine:
    """The engine called `name`, not yet started. FinBERT is strict and loads at start: its
    `start()` raises ModelUnavailableError when the weights cannot be loaded here, never
    answering with the lexicon in its place."""
    if name == "lexicon":
        return LexiconEngine()
    # Importing the engine does not import torch; loading the model (in start) does.
    from intel.sentiment.finbert import FinBertEngine

    finbert = config.finbert.model_copy(update={"load_at_start": True})
    return FinBertEngine(config.finbert_model, finbert, LexiconEngine(), strict=True)


def read_lines(stream: IO[bytes], max_bytes: int = MAX_LINE_BYTES) -> Iterator[str]:
    """Each line of `stream` as text, at most `max_bytes` of it, never more in memory at once."""
    while True:
        chunk = stream.readline(max_bytes)
        if not chunk:
            return
        line = chunk
        while not chunk.endswith(b"\n"):  # a huge line: drop the rest of it, in bounded reads
            chunk = stream.readline(max_bytes)
            if not chunk:
                break
        yield line.rstrip(b"\r\n").decode("utf-8", errors="replace")


def _answer(engine: SentimentEngine, stream: IO[bytes], out: IO[str], *, as_json: bool) -> None:
    batch: list[str] = []
    for line in read_lines(stream):
        batch.append(line)
        if len(batch) == BATCH_LINES:
            _write(engine, batch, out, as_json)
            batch = []
    if batch:
        _write(engine, batch, out, as_json)


def _write(engine: SentimentEngine, texts: list[str], out: IO[str], as_json: bool) -> None:
    scores = engine.score(texts)
    if len(scores) != len(texts):
        raise RuntimeError(f"engine {engine.name} answered {len(scores)} of {len(texts)} lines")
    out.write("".join(_format(score, engine.name, as_json) + "\n" for score in scores))
    out.flush()


def _format(score: SentimentScore, engine: str, as_json: bool) -> str:
    if as_json:
        return json.dumps(score.to_json(engine))
    return f"{score.label:<8} {score.score:+.2f}"
