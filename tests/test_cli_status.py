"""`python -m bot status [--json]`: source health at the market moment, plus the bot's database."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.cli import main
from bot.scheduling.cycle import LAST_CYCLE_AT, LAST_CYCLE_MARKET_AT
from bot.storage.sqlite import SqliteStore


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
    # At the default moment (2025-10-06 16:00Z) no BTC book exists; everything else is current.
    assert sources["orderbook BTC/USDT"]["state"] == "failing"
    assert "no order book newer than" in sources["orderbook BTC/USDT"]["detail"]
    for name in ("candles BTC/USDT", "whales ETH/USDT", "posts BTC/USDT", "fear_greed",
                 "orderbook ETH/USDT"):
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

    from bot.cli_status import _gather
    from bot.config import BotConfig
    from intel.config import load_config

    config = load_config(env={}, overrides={"storage.db_path": str(db)}, model=BotConfig)
    status = await _gather(config)
    assert status.last_cycle_market_at is not None
    assert status.last_cycle_market_at.isoformat().startswith("2025-10-06T18:00")
    assert status.outbox == {"pending": 0, "sent": 0, "failed": 0}


def test_status_text_marks_states_with_symbols_not_only_colour(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["status", "--db", str(tmp_path / "x.db")]) == 0
    out = capsys.readouterr().out
    assert "❌ orderbook BTC/USDT: failing" in out
    assert "✅ candles BTC/USDT: ok" in out
