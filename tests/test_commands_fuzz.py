"""The command layer under hypothesis: over 10,000 generated inputs across every command.

Every input must get a non-empty reply (no exception escapes, no internal error), and every
rejected input must leave the store exactly as it was. The router runs over the real replay desk
and a real SQLite store; valid `signal` requests are rare by construction and a slow fake clock
keeps each sender's cooldown closed most of the time, so only a handful of full pipeline runs
happen.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands.base import BotStatus, Reply, Request, SourceHealth
from bot.commands.registry import MAX_ARGS
from bot.commands.router import INTERNAL_ERROR, CommandRouter, parse_command_line
from bot.config import BotConfig
from bot.scheduling.manual_clock import ManualClock
from bot.storage.sqlite import SqliteStore
from intel.config import load_config
from intel.desk import build_desk
from intel.errors import UserInputError

COMMAND_NAMES = ("signal", "watch", "alerts", "subscribe", "unsubscribe", "status", "help")
BATCH = 8  # inputs per hypothesis example
EXAMPLES = {"lines": 400, "requests": 525, "grammar": 400}  # x BATCH = 10,600 inputs
MIN_TOTAL = 10_000
CLOCK_STEP_S = 0.001  # fake seconds per input
generated: Counter[str] = Counter()
outcomes: Counter[str] = Counter()  # what the inputs led to, printed so the mix can be judged

FUZZ = settings(
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


async def fixed_status() -> BotStatus:
    moment = datetime(2025, 10, 10, 20, 0, tzinfo=UTC)
    return BotStatus(
        market_now=moment,
        sources=(SourceHealth("candles", "ok", "replay"),),
        last_cycle_at=None,
        last_cycle_market_at=None,
        next_run_at=moment,
        outbox={},
        transports=("console",),
    )


@dataclass
class Harness:
    loop: asyncio.AbstractEventLoop
    router: CommandRouter
    db: sqlite3.Connection
    clock: ManualClock  # moved on by CLOCK_STEP_S per input
    state: str = ""  # the digest after the last input

    def digest(self) -> str:
        """Every row of every table, hashed: cheaper than reading each user back through the
        Store (aiosqlite costs ~0.5 ms a call here), and it sees any write, not just some."""
        hasher = hashlib.sha256()
        tables = [
            row[0]
            for row in self.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
            )
        ]
        for table in tables:
            hasher.update(table.encode())
            for row in sorted(map(repr, self.db.execute(f'SELECT * FROM "{table}"'))):
                hasher.update(row.encode())
        return hasher.hexdigest()

    def handle(self, request: Request) -> Reply:
        self.clock.advance(CLOCK_STEP_S)
        return self.loop.run_until_complete(self.router.handle(request))


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    config = load_config(env={}, model=BotConfig)
    loop = asyncio.new_event_loop()
    store = SqliteStore(path)
    loop.run_until_complete(store.open())
    # Moved on by a fixed step per input, so each sender's signal cooldown (10 s) reopens every
    # 10,000 inputs or so and valid signals stay few.
    clock = ManualClock(datetime(2025, 10, 10, 20, tzinfo=UTC), monotonic_s=0.0)
    router = CommandRouter(build_desk(config), store, config, fixed_status, clock=clock.monotonic)
    db = sqlite3.connect(path)
    try:
        harness = Harness(loop, router, db, clock)
        harness.state = harness.digest()
        yield harness
    finally:
        db.close()
        loop.run_until_complete(store.close())
        loop.close()


# -- strategies ------------------------------------------------------------------------------
# Cheap draws on purpose: hypothesis pays per choice, and 10,000 inputs must fit in a minute.

ODD_TEXT = st.text(
    st.characters(categories=("Cc", "Cf", "Co", "Mn", "So", "Zs", "Lo", "Nd", "Po")),
    max_size=12,
)
SYMBOL_PARTS = st.tuples(
    st.sampled_from(["btc", "ETH", "Btx", "eht", "doge", "SOL", "xrp", "bnb", "$$$", "0", "e"]),
    st.sampled_from(["", "", "/", "-", "_", ":", " ", "//"]),
    st.sampled_from(["", "usdt", "USDC", "eur", "btc", "usd", "x", "USDTUSDT"]),
).map("".join)
SYMBOLISH = st.one_of(SYMBOL_PARTS, st.text("abcBTCETHusdt019/-_: $.", min_size=1, max_size=10))
VALID_SYMBOL = st.sampled_from(["btc", "ETH", "ethusdt", "BTC-USDT", "eth/usdt", "Btc_Usdt"])
NUMBERISH = st.one_of(
    st.integers(-1_000, 1_000).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["60%", "%", "0x3c", "1e2", "٦٠", "６０", "+60", "60.0", "１", "off", "OFF"]),
)
WORDS = st.sampled_from(["add", "remove", "list", "off", "ADD", "rm", "all", "help", "@bot"])
# A short random text repeated: huge input at a fraction of what drawing every character costs.
HUGE = st.tuples(st.text(min_size=1, max_size=6), st.integers(50, 2_000)).map(
    lambda pair: pair[0] * pair[1]
)
ARG = st.one_of(SYMBOLISH, NUMBERISH, WORDS, ODD_TEXT, st.text(max_size=16), HUGE)
# Valid symbols are rare: each one that gets past the cooldown costs a full pipeline run.
RARE_ARG = st.one_of(ARG, ARG, ARG, ARG, ARG, ARG, ARG, ARG, ARG, VALID_SYMBOL)
# Mostly a few arguments, sometimes around the cap on how many a command may take.
FEW_ARGS = st.lists(RARE_ARG, max_size=3).map(tuple)
MANY_ARGS = st.tuples(SYMBOLISH, st.integers(MAX_ARGS - 1, MAX_ARGS + 2)).map(
    lambda pair: (pair[0],) * pair[1]
)
ARGS = st.one_of(FEW_ARGS, FEW_ARGS, FEW_ARGS, FEW_ARGS, FEW_ARGS, MANY_ARGS)
COMMAND = st.one_of(
    st.sampled_from(COMMAND_NAMES),
    st.sampled_from(COMMAND_NAMES).map(str.upper),
    st.sampled_from(["sigal", "wach", "alert", "subscribe!", "performance", "backtest", ""]),
    st.text(max_size=12),
)
WHO = st.tuples(
    st.sampled_from(["console", "telegram", "discord"]),
    st.sampled_from(["u1", "u2", "u3"]),
    st.sampled_from(["c1", "c2"]),
    st.booleans(),
)
PREFIX = st.sampled_from(["", "/", "//", " "])
SUFFIX = st.sampled_from(["", "@SignalDeskBot", "@", "@bot@bot"])
SEPARATOR = st.sampled_from([" ", "  ", "\t", "\u3000"])
JUNK_LINE = st.one_of(st.text(max_size=30), HUGE)


@st.composite
def command_lines(draw: st.DrawFn) -> str:
    """Whole lines as a chat would deliver them: junk, or a command with prefixes and args."""
    if draw(st.integers(0, 4)) == 0:
        return draw(JUNK_LINE)
    head = f"{draw(PREFIX)}{draw(COMMAND)}{draw(SUFFIX)}"
    return draw(SEPARATOR).join([head, *(" ".join(arg.split()) for arg in draw(ARGS))])


GRAMMAR_ARGS = {
    # Valid symbols are common here; the cooldown bounds how many reach the pipeline.
    "signal": st.tuples(st.one_of(SYMBOLISH, VALID_SYMBOL, ODD_TEXT)),
    "watch": st.tuples(
        st.sampled_from(["add", "remove", "list", "ad", "LIST"]),
        st.lists(st.one_of(SYMBOLISH, VALID_SYMBOL, ODD_TEXT), max_size=2),
    ).map(lambda pair: (pair[0], *pair[1])),
    "alerts": st.lists(NUMBERISH, max_size=2).map(tuple),
    "subscribe": st.lists(st.one_of(VALID_SYMBOL, VALID_SYMBOL, SYMBOLISH), max_size=5).map(tuple),
    "unsubscribe": st.lists(st.one_of(VALID_SYMBOL, SYMBOLISH, WORDS), max_size=3).map(tuple),
    "help": st.lists(st.one_of(WORDS, st.sampled_from(COMMAND_NAMES)), max_size=2).map(tuple),
}
GRAMMAR_REQUEST = st.sampled_from(sorted(GRAMMAR_ARGS)).flatmap(
    lambda name: st.tuples(st.just(name), GRAMMAR_ARGS[name])
)
"""Near-misses of the real grammar: right command, mostly plausible arguments."""

Who = tuple[str, str, str, bool]


def batch(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[list[tuple[Any, Who]]]:
    """BATCH inputs per example, each with its own sender: a session of commands in a row,
    and hypothesis' fixed cost per example spread over several inputs."""
    return st.lists(st.tuples(strategy, WHO), min_size=BATCH, max_size=BATCH)


# -- the checks ------------------------------------------------------------------------------


def check(harness: Harness, request: Request) -> None:
    reply = harness.handle(request)
    before, after = harness.state, harness.digest()
    harness.state = after
    assert isinstance(reply, Reply)
    assert reply.text.strip()
    assert reply.text != INTERNAL_ERROR, f"internal error for {request!r}"
    name = request.command.strip().lower()
    outcomes[
        f"{name if name in COMMAND_NAMES else 'unknown'} {'rejected' if reply.is_error else 'ok'}"
    ] += 1
    if reply.is_error:
        assert "\n" not in reply.text
        assert after == before, f"rejected input changed the store: {request!r}"


def parse(line: str) -> tuple[str, tuple[str, ...]] | None:
    """The parsed line, or None after checking that the parser's refusal is one clear line."""
    try:
        return parse_command_line(line)
    except UserInputError as exc:
        message = str(exc)
    outcomes["line refused by the parser"] += 1
    assert message.strip()
    assert "\n" not in message
    return None


def make_request(who: Who, command: str, args: tuple[str, ...]) -> Request:
    transport, user, chat, admin = who
    return Request(
        transport=transport,
        user_id=user,
        chat_id=chat,
        dm_chat_id=f"dm-{user}",
        command=command,
        args=args,
        is_private=not admin,
        is_admin=admin,
    )


@settings(FUZZ, max_examples=EXAMPLES["lines"])
@given(inputs=batch(command_lines()))
def test_fuzz_command_lines(harness: Harness, inputs: list[tuple[str, Who]]) -> None:
    for line, who in inputs:
        generated["lines"] += 1
        parsed = parse(line)
        if parsed is not None:
            check(harness, make_request(who, *parsed))


@settings(FUZZ, max_examples=EXAMPLES["requests"])
@given(inputs=batch(st.tuples(COMMAND, ARGS)))
def test_fuzz_requests(
    harness: Harness, inputs: list[tuple[tuple[str, tuple[str, ...]], Who]]
) -> None:
    for (command, args), who in inputs:
        generated["requests"] += 1
        check(harness, make_request(who, command, args))


@settings(FUZZ, max_examples=EXAMPLES["grammar"])
@given(inputs=batch(GRAMMAR_REQUEST))
def test_fuzz_grammar(
    harness: Harness, inputs: list[tuple[tuple[str, tuple[str, ...]], Who]]
) -> None:
    for (command, args), who in inputs:
        generated["grammar"] += 1
        check(harness, make_request(who, command, args))


def test_fuzz_volume() -> None:
    """Runs last: the three fuzz tests above generated at least 10,000 inputs between them."""
    total = sum(generated.values())
    print(f"\ncommand fuzz: {total:,} generated inputs {dict(generated)}")
    print("outcomes:", ", ".join(f"{key} {count}" for key, count in sorted(outcomes.items())))
    assert total >= MIN_TOTAL
