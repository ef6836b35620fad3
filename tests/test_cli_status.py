"""`python -m bot status [--json]`: source health at the market moment, plus the bot's database."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiosqlite
import pytest

from bot.cli import main
from bot.cli_status import _gather
from bot.config import BotConfig
from bot.scheduling.cycle import LAST_CYCLE_AT, LAST_CYCLE_MARKET_AT
from bot.storage.migrations import MIGRATIONS, migrate
from bot.storage.sqlite import SqliteStore
from intel.config import load_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_local_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("BOT__")]:
        monkeypatch.delenv(name)


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["status", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_status_json_reports_every_source_with_a_contract_state(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status = run_json(capsys, "--db", str(tmp_path / "absent.db"))
    sources = status["sources"]
    assert {s["state"] for s in sources.values()} <= {"ok", "failing", "open", "not_configured"}
    # At the default moment (2025-10-06 16:00Z) the recording has no BTC book (expected, so
    # "ok" but not recorded); everything else is current.
    book = sources["orderbook BTC/USDT"]
    assert (book["state"], book["recorded"]) == ("ok", False)
    assert book["detail"].startswith("not recorded: no order book newer than")
    for name in (
        "candles BTC/USDT",
        "whales ETH/USDT",
        "posts BTC/USDT",
        "fear_greed",
        "orderbook ETH/USDT",
    ):
        assert sources[name]["state"] == "ok", name
    assert status["last_cycle_at"] is None
    assert not (tmp_path / "absent.db").exists(), "status must not create a database"


async def test_status_reads_the_last_cycle_from_the_database(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    store = SqliteStore(db)
    await store.open()
    await store.set_meta(LAST_CYCLE_AT, "2026-01-01T10:00:00Z")
    await store.set_meta(LAST_CYCLE_MARKET_AT, "2025-10-06T18:00:00Z")
    await store.close()

    status = await _gather(config_for(db))
    assert status.last_cycle_market_at is not None
    assert status.last_cycle_market_at.isoformat().startswith("2025-10-06T18:00")
    assert status.outbox == {"pending": 0, "sent": 0, "failed": 0}


def config_for(db: Path) -> BotConfig:
    return load_config(env={}, overrides={"storage.db_path": str(db)}, model=BotConfig)


async def create_database(path: Path, version: int) -> None:
    """A database as the code of schema `version` left it: rollback journal, no WAL."""
    async with aiosqlite.connect(path, isolation_level=None) as conn:
        await migrate(conn, tuple(m for m in MIGRATIONS if m.version <= version))


def fingerprint(path: Path) -> tuple[str, str, list[int]]:
    """The file's hash, its journal mode and its schema versions."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with sqlite3.connect(path) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    return digest, mode, versions


async def test_status_reads_the_database_without_changing_it(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    await create_database(db, version=max(m.version for m in MIGRATIONS))
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO meta VALUES (?, '2025-10-06T18:00:00Z')", (LAST_CYCLE_MARKET_AT,))
    before = fingerprint(db)
    status = await _gather(config_for(db))
    assert status.last_cycle_market_at is not None
    assert status.outbox == {"pending": 0, "sent": 0, "failed": 0}
    assert fingerprint(db) == before
    assert before[1] == "delete"  # still no WAL: a report never switches the journal mode


def test_status_on_an_older_schema_says_to_run_the_bot_and_migrates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "old.db"
    asyncio.run(create_database(db, version=1))
    before = fingerprint(db)
    status = run_json(capsys, "--db", str(db))
    assert any(
        "database schema older than this version; run the bot once to migrate" in note
        for note in status["notes"]
    )
    assert status["outbox"] == {}
    assert fingerprint(db) == before
    assert before[2] == [1]


def test_status_on_a_directory_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["status", "--db", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"storage.db_path {tmp_path}" in err


def test_run_on_a_path_that_cannot_hold_a_database_exits_2_with_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--db", "/proc/nope/x.db"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "storage.db_path /proc/nope/x.db" in done.stderr


def test_status_text_marks_states_with_symbols_not_only_colour(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["status", "--db", str(tmp_path / "x.db")]) == 0
    out = capsys.readouterr().out
    assert "○ orderbook BTC/USDT: not recorded: no order book newer than" in out
    assert "✅ candles BTC/USDT: ok" in out
