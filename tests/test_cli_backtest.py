"""`python -m bot backtest`: the Backtest JSON contract, figures checked against the recorded
candles, no look-ahead in the divergence strategy, and bad input as one line with its exit code."""

from __future__ import annotations

import asyncio
import csv
import gzip
import json
import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.storage.sqlite import SqliteStore
from intel.config import Config
from intel.errors import NoSignalError
from intel.history import signals_over_history
from intel.models import Action
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.timeutil import parse_time, to_ms

from .factories import make_signal

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TRADE_KEYS = {"entry_time", "entry_price", "exit_time", "exit_price", "side", "return"}
METRIC_KEYS = {
    "total_return",
    "cagr",
    "win_rate",
    "profit_factor",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "exposure",
    "trades",
}
# Whale flows are recorded here, and the rules make BUY calls in this fortnight.
TRADING_WINDOW = ("--from", "2025-03-01", "--to", "2025-03-15")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in [n for n in __import__("os").environ if n.startswith("BOT__")]:
        monkeypatch.delenv(name)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["backtest", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def recorded_bars(start: str, end: str) -> list[dict[str, float]]:
    """The recorded hourly candles in [start, end), read straight from the shipped file."""
    lo, hi = to_ms(parse_time(start)), to_ms(parse_time(end))
    with gzip.open(DEFAULT_REPLAY_DIR / "candles" / "BTCUSDT_1h.csv.gz", "rt") as handle:
        rows = [
            {k: float(v) for k, v in row.items()}
            for row in csv.DictReader(handle)
            if lo <= int(row["open_time_ms"]) and int(row["open_time_ms"]) + 3_600_000 <= hi
        ]
    return rows


def test_json_follows_the_contract_and_buy_and_hold_matches_the_candles(capsys) -> None:
    code, out, err = run(
        capsys,
        "btc",
        "--strategy",
        "buy-and-hold",
        "--from",
        "2025-01-01",
        "--to",
        "2025-02-01",
        "--json",
    )
    assert code == 0
    assert err == ""  # no progress bar with --json
    report = json.loads(out)
    assert set(report["metrics"]) >= METRIC_KEYS
    bars = recorded_bars("2025-01-01", "2025-02-01")
    assert len(report["equity"]) == len(bars) == 31 * 24
    assert report["equity"][0] == {"time": "2025-01-01T01:00:00Z", "equity": 10_000.0}
    (trade,) = report["trades"]
    assert set(trade) >= TRADE_KEYS
    fee, slip = 0.001, 0.0002  # the defaults: 10 bps fees, 2 bps slippage
    entry = bars[1]["open"] * (1 + slip)  # decided at the first close, filled at the next open
    exit_ = bars[-1]["close"] * (1 - slip)  # still open at the end: closed at the last close
    units = 10_000 / (entry * (1 + fee))  # all the equity: notional plus the entry fee
    expected = units * exit_ * (1 - fee) / 10_000 - 1
    assert trade["entry_price"] == pytest.approx(entry)
    assert trade["exit_price"] == pytest.approx(exit_)
    assert report["metrics"]["total_return"] == pytest.approx(expected, rel=1e-9)
    assert report["metrics"]["max_drawdown"] < 0
    assert report["buy_and_hold"]["metrics"] == report["metrics"]


def test_divergence_trades_where_whale_flows_exist_and_says_so_where_not(capsys) -> None:
    code, out, _ = run(capsys, "btc", *TRADING_WINDOW, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["strategy"] == "divergence"
    assert report["metrics"]["trades"] > 0
    assert report["notes"] == []
    code, out, _ = run(capsys, "btc", "--from", "2023-03-01", "--to", "2023-03-08", "--json")
    report = json.loads(out)
    assert report["metrics"]["trades"] == 0
    assert report["signals"] == 7 * 24  # one per bar close
    assert "whale flows" in report["notes"][0]


def test_text_shows_the_strategy_beside_buy_and_hold_and_writes_the_chart(capsys) -> None:
    code, out, _ = run(capsys, "btc", *TRADING_WINDOW, "--chart", "equity.png")
    assert code == 0
    assert "divergence" in out
    assert "buy-and-hold" in out
    assert Path("equity.png").read_bytes().startswith(PNG_SIGNATURE)
    _, as_json, _ = run(capsys, "btc", *TRADING_WINDOW, "--json")
    total = json.loads(as_json)["metrics"]["total_return"]
    assert f"{total * 100:+.1f} %" in out


def _truncate(replay: Path, end_ms: int) -> None:
    path = replay / "candles" / "BTCUSDT_1h.csv.gz"
    with gzip.open(path, "rt") as handle:
        lines = handle.read().splitlines()
    kept = [lines[0], *(ln for ln in lines[1:] if int(ln.split(",")[0]) < end_ms)]
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(kept) + "\n")
    flows = replay / "whales" / "BTC_exchange_flows_1h.csv"
    rows = flows.read_text().splitlines()
    flows.write_text("\n".join([rows[0], *(r for r in rows[1:] if int(r.split(",")[0]) < end_ms)]))


def test_signals_over_history_never_see_data_after_their_moment(tmp_path) -> None:
    start, end = parse_time("2025-03-02T00:00Z"), parse_time("2025-03-03T00:00Z")
    replay = tmp_path / "replay"
    shutil.copytree(DEFAULT_REPLAY_DIR, replay)
    _truncate(replay, to_ms(end))  # nothing after the last moment exists any more
    step = timedelta(hours=1)
    full = asyncio.run(signals_over_history(Config(), "BTC/USDT", start, end, step))
    cut_config = Config(data={"replay_dir": replay})
    cut = asyncio.run(signals_over_history(cut_config, "BTC/USDT", start, end, step))
    assert len(full) == 25
    assert [s.as_of for s in full] == [start + i * step for i in range(25)]
    assert [(s.action, s.confidence, s.divergence) for s in full] == [
        (s.action, s.confidence, s.divergence) for s in cut
    ]
    assert any(s.action is not Action.HOLD for s in full)


def test_stored_signals_are_replayed_from_the_bot_database(capsys, tmp_path) -> None:
    db = tmp_path / "bot.db"
    as_of = parse_time("2025-01-10T12:00Z")

    async def record() -> None:
        store = SqliteStore(db)
        await store.open()
        try:
            await store.record_signal(make_signal(as_of=as_of), None, (), alerted=False)
        finally:
            await store.close()

    asyncio.run(record())
    code, out, _ = run(
        capsys,
        "btc",
        "--strategy",
        "stored",
        "--from",
        "2025-01-05",
        "--to",
        "2025-01-20",
        "--db",
        str(db),
        "--json",
    )
    assert code == 0
    (trade,) = json.loads(out)["trades"]
    assert trade["entry_time"] == "2025-01-10T12:00:00Z"  # the open right after as_of
    assert trade["exit_time"] == "2025-01-11T12:00:00Z"  # as_of + its 24 h timeframe


@pytest.mark.parametrize(
    ("argv", "code", "fragment"),
    [
        (("doge",), 2, "unknown symbol"),
        (("btc", "--strategy", "moon"), 2, "unknown strategy 'moon'"),
        (("btc", "--from", "2030-01-01"), 2, "outside the data"),
        (("btc", "--to", "2010-01-01"), 2, "outside the data"),
        (("btc", "--from", "2025-02-01", "--to", "2025-01-01"), 2, "is after"),
        (("btc", "--from", "yesterday"), 2, "--from: bad time"),
        (("btc", "--from", "2025-01-01T00:00Z", "--to", "2025-01-01T01:00Z"), 2, "needs 2"),
        (("btc", "--strategy", "stored", "--db", "missing.db"), 3, "no bot database"),
    ],
)
def test_bad_input_is_one_line_with_the_contracts_exit_code(capsys, argv, code, fragment) -> None:
    got, out, err = run(capsys, *argv)
    assert got == code
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert fragment in err


def test_gaps_in_the_recorded_candles_have_no_signal_and_are_noted(capsys) -> None:
    # Binance halted trading 2018-02-08 for 33 hours: the bot could have made no signal then.
    code, out, _ = run(capsys, "btc", "--from", "2018-02-07", "--to", "2018-02-12", "--json")
    assert code == 0
    report = json.loads(out)
    bars = recorded_bars("2018-02-07", "2018-02-12")
    missing = report["notes"][0]
    assert missing.endswith("moments without a signal: gaps in the recorded candles")
    assert report["signals"] + int(missing.split()[0]) == 5 * 24  # one step per market hour
    assert len(bars) == 5 * 24 - 33


def test_signals_over_history_refuse_moments_outside_the_candles() -> None:
    start, end = parse_time("2026-06-20T00:00Z"), parse_time("2026-06-22T00:00Z")
    with pytest.raises(NoSignalError, match="cover"):
        asyncio.run(signals_over_history(Config(), "BTC/USDT", start, end, timedelta(hours=1)))
