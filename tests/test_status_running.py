"""`status` beside a running bot: it reads what the bot recorded (next run, transports, market
clock, sources) instead of probing again; an expected absence in the recording is "not recorded";
`status --health` is the container's health check (exit 0 healthy, 3 unhealthy).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import run_bot
from bot.cli import main
from bot.config import BotConfig
from bot.logs import configure_logging
from bot.scheduling.cycle import LAST_CYCLE_AT, LAST_CYCLE_MARKET_AT
from bot.scheduling.manual_clock import ManualClock
from bot.storage.lock import DatabaseLock
from bot.storage.memory import MemoryStore
from bot.storage.sqlite import SqliteStore
from bot.transports.memory import MemoryTransport
from intel.config import Secrets, load_config
from intel.desk import build_desk, replay_sources
from intel.errors import SourceError
from intel.lifecycle import NoResources
from intel.models import OrderBookHistory
from intel.timeutil import parse_time

# The bot resumes from this market moment: not `data.default_at` (2025-10-06T16:00Z), so a probe
# at the default moment and the bot's own clock cannot be mistaken for each other.
RESUME_AT = parse_time("2025-10-08T10:00Z")
INTERVAL_MINUTES = 60


@pytest.fixture(autouse=True)
def _no_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("BOT__")]:
        monkeypatch.delenv(name)


def bot_config(db: Path) -> BotConfig:
    return load_config(
        env={},
        overrides={
            "storage.db_path": str(db),
            "console.chart_dir": str(db.parent / "charts"),
            "demo.enabled": False,  # a fixed market clock: the bot stays at RESUME_AT
            "schedule.interval_minutes": INTERVAL_MINUTES,
        },
        model=BotConfig,
    )


async def seed(db: Path) -> None:
    """A database a bot left a day ago at RESUME_AT, with one chat subscribed to every symbol."""
    store = SqliteStore(db)
    await store.open()
    await store.set_meta(LAST_CYCLE_AT, "2026-01-01T00:00:00Z")  # long overdue: cycle at start
    await store.set_meta(LAST_CYCLE_MARKET_AT, "2025-10-08T10:00:00Z")
    await store.subscribe("memory", "chat-1", ())
    await store.close()


async def stored_meta(db: Path, key: str) -> str | None:
    store = SqliteStore(db, read_only=True)
    await store.open()
    try:
        return await store.get_meta(key)
    finally:
        await store.close()


async def wait_for_cycle(db: Path, task: asyncio.Task[int]) -> datetime:
    """The wall-clock time the bot's first cycle here finished (it rewrites LAST_CYCLE_AT)."""
    for _ in range(600):
        assert not task.done(), "the bot stopped early"
        value = await stored_meta(db, LAST_CYCLE_AT)
        if value is not None and not value.startswith("2026-01-01"):
            return parse_time(value)
        await asyncio.sleep(0.1)
    raise AssertionError("no cycle within 60 s")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


async def test_status_of_a_running_bot_shows_the_bots_own_state(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    configure_logging(json_output=True)  # the bot's logs to stderr, as `main` sets them
    db = tmp_path / "bot.db"
    await seed(db)
    transport = MemoryTransport()
    task = asyncio.create_task(
        run_bot(
            bot_config(db),
            Secrets(),
            console=False,
            stdin=io.StringIO(),
            stdout=io.StringIO(),
            extra_transports=[transport],
        )
    )
    try:
        cycle_at = await wait_for_cycle(db, task)
        await asyncio.sleep(0.3)  # the record follows the cycle's own meta writes
        code, out = await asyncio.to_thread(cli, capsys, "status", "--json", "--db", str(db))
        assert code == 0
        status = json.loads(out)
        assert status["transports"] == ["memory"]
        [(name, chat)] = status["chat_transports"].items()  # recorded by the running bot
        assert (name, chat["state"], chat["detail"]) == ("memory", "running", "")
        assert timedelta(0) <= cycle_at - parse_time(chat["since"]) < timedelta(seconds=60)
        assert parse_time(status["market_now"]) == RESUME_AT  # the bot's clock, not a probe's
        assert parse_time(status["last_cycle_market_at"]) == RESUME_AT
        # APScheduler runs every interval from the first run, which started just before the
        # cycle's end: the next run is one interval after it, within the cycle's duration.
        next_run = parse_time(status["next_run_at"])
        expected = cycle_at + timedelta(minutes=INTERVAL_MINUTES)
        assert timedelta(0) <= expected - next_run < timedelta(seconds=60)
        # Sources as the bot saw them at RESUME_AT: every configured symbol was computed.
        sources = status["sources"]
        assert sources["candles BTC/USDT"]["state"] == "ok"
        # The last candle closed by RESUME_AT is the 09:00 one, closing at 10:00.
        assert sources["candles BTC/USDT"]["detail"] == "data as of 2025-10-08T10:00:00Z"
        assert sources["orderbook BTC/USDT"]["recorded"] is False
        # What decides and scores, as the running bot recorded it (no key: the rules).
        assert "Coordinator: rules (auto, and GROQ_API_KEY is not set)" in status["notes"]
        assert "Sentiment: lexicon" in status["notes"]
        code, text = await asyncio.to_thread(cli, capsys, "status", "--db", str(db))
        assert "Transports: memory" in text
        assert "Chat platforms:\n  ✅ memory: running (since " in text
        assert "Next run: not scheduled" not in text
        code, _ = await asyncio.to_thread(cli, capsys, "status", "--health", "--db", str(db))
        assert code == 0
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # Stopped (cancelled like a SIGTERM'd container): the record says so; health fails.
    code, out = await asyncio.to_thread(cli, capsys, "status", "--json", "--db", str(db))
    status = json.loads(out)
    assert status["origin"] == "probe"
    assert parse_time(status["market_now"]) == RESUME_AT  # where the bot would resume
    assert any("stopped" in note for note in status["notes"]), status["notes"]
    code, _ = await asyncio.to_thread(cli, capsys, "status", "--health", "--db", str(db))
    assert code == 3


def test_an_absence_in_the_recording_is_not_recorded_not_failing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # At the default moment the replay has no BTC book (its recording is from 2024-08-09).
    code, out = cli(capsys, "status", "--json", "--db", str(tmp_path / "absent.db"))
    assert code == 0
    book = json.loads(out)["sources"]["orderbook BTC/USDT"]
    assert book["state"] == "ok"  # nothing failed: the contract's states stay as they are
    assert book["recorded"] is False
    assert book["detail"].startswith("not recorded")
    code, text = cli(capsys, "status", "--db", str(tmp_path / "absent.db"))
    assert "orderbook BTC/USDT: not recorded" in text
    assert "❌" not in text


async def test_the_replay_sources_say_not_recorded_for_a_symbol_without_data() -> None:
    from intel.errors import NotRecordedError

    sources = replay_sources()
    moment = parse_time("2025-10-06T16:00Z")
    with pytest.raises(NotRecordedError, match="SOL/USDT"):
        await sources.orderbook.books("SOL/USDT", moment, 900)
    with pytest.raises(NotRecordedError):
        await sources.whales.flows("SOL/USDT", moment, 24)
    with pytest.raises(NotRecordedError):
        await sources.fear_greed.latest(parse_time("2010-01-01T00:00Z"))


async def write_record(db: Path, *, last_cycle_ago_s: float, running: bool) -> None:
    from bot.runstate import BOT_STATE_KEY, BotState

    now = datetime.now(UTC)
    state = BotState(
        running=running,
        pid=os.getpid(),
        started_at=now - timedelta(days=1),
        updated_at=now - timedelta(seconds=last_cycle_ago_s),
        market_now=RESUME_AT,
        clock="fixed",
        interval_s=INTERVAL_MINUTES * 60,
        last_cycle_at=now - timedelta(seconds=last_cycle_ago_s),
        last_cycle_market_at=RESUME_AT,
        next_run_at=None,
        transports=("memory",),
    )
    store = SqliteStore(db)
    await store.open()
    await store.set_meta(BOT_STATE_KEY, state.model_dump_json())
    await store.close()


@pytest.mark.parametrize(
    ("last_cycle_ago_s", "running", "held", "expected"),
    [
        (600, True, True, 0),  # a cycle 10 min ago, hourly schedule, bot holds the database
        (3 * 3600, True, True, 3),  # three intervals without a cycle: stuck
        (600, True, False, 3),  # the record says running, but no bot holds the database
        (600, False, False, 3),  # stopped cleanly
    ],
)
def test_health_exit_codes(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    last_cycle_ago_s: float,
    running: bool,
    held: bool,
    expected: int,
) -> None:
    db = tmp_path / "bot.db"
    asyncio.run(write_record(db, last_cycle_ago_s=last_cycle_ago_s, running=running))
    if held:
        with DatabaseLock(db):
            code, out = cli(capsys, "status", "--health", "--db", str(db))
    else:
        code, out = cli(capsys, "status", "--health", "--db", str(db))
    assert code == expected, out
    assert out.startswith("healthy" if expected == 0 else "unhealthy")


def test_health_without_a_database_is_unhealthy_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out = cli(capsys, "status", "--health", "--db", str(tmp_path / "none.db"))
    assert code == 3
    assert "unhealthy" in out
    assert list(tmp_path.iterdir()) == []


class BrokenBooks(NoResources):
    """An order-book source that fails as a venue does: the state must stay "failing"."""

    async def books(self, symbol: str, now: datetime, window_s: float) -> OrderBookHistory:
        raise SourceError(f"{symbol} order book: venue answered HTTP 503")


async def test_a_source_that_fails_stays_failing_in_replay(tmp_path: Path) -> None:
    sources = dataclasses.replace(replay_sources(), orderbook=BrokenBooks())
    async with build_desk(bot_config(tmp_path / "x.db"), sources=sources) as desk:
        health = await desk.probe_sources()
    book = health["orderbook ETH/USDT"]
    assert (book.state, book.recorded) == ("failing", True)
    assert book.detail == "ETH/USDT order book: venue answered HTTP 503"
    assert (health["candles ETH/USDT"].state, health["candles ETH/USDT"].recorded) == ("ok", True)


async def test_the_recorder_keeps_a_whole_record_and_health_follows_the_schedule(
    clock: ManualClock, store: MemoryStore
) -> None:
    from bot.runstate import BOT_STATE_KEY, StateRecorder, health, load_state
    from intel.snapshot import SourceState

    interval_s = 600.0
    books = {"orderbook BTC/USDT": SourceState("ok", "not recorded: none", clock(), False)}
    recorder = StateRecorder(store, clock, interval_s, lambda: books, lambda: None, clock)
    await recorder.started(["memory"])
    clock.advance(30)
    await recorder.cycled(clock.now())
    state = await load_state(store)
    assert state is not None
    assert (state.running, state.version) == (True, 1)
    assert state.transports == ("memory",)
    assert state.last_cycle_at == clock()
    assert state.sources["orderbook BTC/USDT"].recorded is False
    # Two intervals and a minute (1260 s) after the last cycle it is still healthy; then not.
    clock.advance(1260)
    assert health(state, held=True, now=clock())[0]
    clock.advance(1)
    assert not health(state, held=True, now=clock())[0]
    await recorder.stopped()
    stopped = await load_state(store)
    assert stopped is not None
    assert not stopped.running
    assert stopped.stopped_at == clock()
    assert stopped.last_cycle_at == state.last_cycle_at  # the last cycle survives the stop
    # A later release's record (more fields, a higher version) still reads.
    newer = json.loads(await store.get_meta(BOT_STATE_KEY) or "{}")
    newer.update(version=2, chat={"discord": "connected"})
    await store.set_meta(BOT_STATE_KEY, json.dumps(newer))
    assert (await load_state(store)) is not None
