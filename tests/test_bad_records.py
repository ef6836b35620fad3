"""One bad record costs that record only: per replay source, a copy of the shipped data with one
corrupted record serves two signals in a row, skips exactly that record, and says so in `status`.

The expected values come from the clean shipped files, read by the clean sources or raw.
"""

from __future__ import annotations

import csv
import gzip
import io
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from intel.config import Config, load_config
from intel.desk import build_desk, replay_sources
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.timeutil import from_ms, parse_time, to_ms

NOW = parse_time("2025-10-06T16:00Z")
BOOK_NOW = parse_time("2024-08-09T00:05:00Z")  # inside the Binance BTC book recording


@dataclass(frozen=True)
class Corruption:
    file: str  # relative to the replay folder
    line: int  # 1-based line of the corrupted record
    record: object  # what identifies the skipped record in the source's answer


def _read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        return list(handle)


def _write_lines(path: Path, lines: list[str]) -> None:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        handle.writelines(lines)


def _blank_field(path: Path, column: str, pick: Callable[[list[str]], bool]) -> tuple[int, str]:
    """Blank `column` in the first single-line data row `pick` accepts; its line and first field."""
    lines = _read_lines(path)
    header = lines[0].rstrip("\r\n").split(",")
    for index, line in enumerate(lines[1:], start=1):
        fields = line.rstrip("\r\n").split(",")
        if len(fields) == len(header) and pick(fields):
            fields[header.index(column)] = ""
            lines[index] = ",".join(fields) + "\n"
            _write_lines(path, lines)
            return index + 1, fields[0]
    raise AssertionError(f"no row to corrupt in {path}")


def corrupt_fear_greed(replay: Path) -> Corruption:
    # The reading in force at NOW: the newest one published by then.
    stamps = [int(line.split(",")[0]) for line in _read_lines(replay / "fear_greed.csv")[1:]]
    newest = max(s for s in stamps if s * 1000 <= to_ms(NOW))
    line, _ = _blank_field(replay / "fear_greed.csv", "value", lambda f: int(f[0]) == newest)
    return Corruption("fear_greed.csv", line, from_ms(newest * 1000))


def corrupt_candles(replay: Path) -> Corruption:
    opened = to_ms(NOW - timedelta(hours=5))  # well inside the look-back window
    path = replay / "candles" / "BTCUSDT_1h.csv.gz"
    line, _ = _blank_field(path, "close", lambda f: int(f[0]) == opened)
    return Corruption("BTCUSDT_1h.csv.gz", line, opened)


def corrupt_whales(replay: Path) -> Corruption:
    path = replay / "whales" / "BTC_exchange_flows_1h.csv"
    window = (to_ms(NOW - timedelta(hours=24)), to_ms(NOW - timedelta(hours=1)))
    line, hour = _blank_field(path, "inflow_usd", lambda f: window[0] <= int(f[0]) <= window[1])
    return Corruption("BTC_exchange_flows_1h.csv", line, from_ms(int(hour)))


def corrupt_posts(replay: Path) -> Corruption:
    path = replay / "reddit" / "posts.csv.gz"
    text = "".join(_read_lines(path))
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    window = (to_ms(NOW - timedelta(hours=24)) // 1000, to_ms(NOW) // 1000)
    victim = next(r for r in rows if window[0] < int(r["created_utc_s"]) <= window[1])
    victim_id = victim["post_id"]
    victim["created_utc_s"] = "yesterday"
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    rewritten = out.getvalue()
    _write_lines(path, [rewritten])
    line = rewritten.count("\n", 0, rewritten.index(f"\n{victim_id},")) + 2
    return Corruption("posts.csv.gz", line, victim_id)


def corrupt_book(replay: Path) -> Corruption:
    path = replay / "orderbook" / "binance_BTCUSDT_top20_1s.tsv.gz"
    lines = _read_lines(path)
    times = [int(line.split("\t", 1)[0]) for line in lines]
    index = max(i for i, t in enumerate(times) if t <= to_ms(BOOK_NOW))  # the newest at BOOK_NOW
    lines[index] = f'{times[index]}\t{{"bids": [[61000.0, 1.5]], "asks": \n'  # cut short
    _write_lines(path, lines)
    return Corruption(path.name, index + 1, times[index])


@pytest.fixture
def replay(tmp_path: Path) -> Path:
    copy = tmp_path / "replay"
    shutil.copytree(DEFAULT_REPLAY_DIR, copy)
    return copy


def config_for(replay: Path) -> Config:
    return load_config(env={}, overrides={"data.replay_dir": str(replay)})


async def signal_twice(replay: Path, symbol: str, first: datetime) -> dict[str, tuple[str, str]]:
    """Two signals in a row through the real desk; the sources' health after them."""
    async with build_desk(config_for(replay)) as desk:
        for at in (first, first + timedelta(hours=3)):
            result = await desk.signal(symbol, at)
            assert result.signal.symbol == symbol
        return {key: (s.state, s.detail) for key, s in desk.source_health().items()}


def skipped_note(corruption: Corruption) -> str:
    return f"{corruption.file}: skipped 1 bad record (first at line {corruption.line}:"


CASES = {
    "fear_greed": (corrupt_fear_greed, "fear_greed", NOW),
    "candles": (corrupt_candles, "candles BTC/USDT", NOW),
    "whales": (corrupt_whales, "whales BTC/USDT", NOW),
    "posts": (corrupt_posts, "posts BTC/USDT", NOW),
    "orderbook": (corrupt_book, "orderbook BTC/USDT", BOOK_NOW),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_one_bad_record_is_skipped_counted_and_shown(replay: Path, case: str) -> None:
    corrupt, health_key, first = CASES[case]
    corruption = corrupt(replay)
    health = await signal_twice(replay, "BTC/USDT", first)
    state, detail = health[health_key]
    assert skipped_note(corruption) in detail
    if case != "orderbook":  # the recorded book is minutes long: 3 h later it is too old
        assert state == "ok", detail


async def test_each_source_answers_without_exactly_the_bad_record(replay: Path) -> None:
    """Twice each: the second call is where a half-built table used to fail."""
    clean = replay_sources(DEFAULT_REPLAY_DIR)
    bad = {name: corrupt(replay) for name, (corrupt, _, _) in CASES.items()}
    damaged = replay_sources(replay)
    for _ in range(2):
        reading = await damaged.fear_greed.latest(NOW)
        expected = await clean.fear_greed.latest(bad["fear_greed"].record - timedelta(seconds=1))
        assert reading == expected
        series = await damaged.candles.candles("BTC/USDT", NOW, 24)
        reference = await clean.candles.candles("BTC/USDT", NOW, 25)
        kept = [t for t in reference.open_time_ms.tolist() if t != bad["candles"].record]
        assert series.open_time_ms.tolist() == kept
        flows = await damaged.whales.flows("BTC/USDT", NOW, 24)
        hours = (await clean.whales.flows("BTC/USDT", NOW, 24)).hours
        assert flows.hours == tuple(h for h in hours if h.hour_start != bad["whales"].record)
        posts = await damaged.posts.posts("BTC/USDT", NOW, 24)
        all_posts = await clean.posts.posts("BTC/USDT", NOW, 24)
        assert list(posts) == [p for p in all_posts if p.post_id != bad["posts"].record]
        books = await damaged.orderbook.books("BTC/USDT", BOOK_NOW, 60)
        all_books = (await clean.orderbook.books("BTC/USDT", BOOK_NOW, 60)).books
        skipped = from_ms(bad["orderbook"].record)
        assert all_books[-1].timestamp == skipped
        assert books.books == tuple(b for b in all_books if b.timestamp != skipped)
