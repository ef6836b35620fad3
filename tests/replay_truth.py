"""The shipped replay data read straight from its files, without the product's sources, so tests
can check every figure a user sees against an independent reading of the recording.

Also the one place the figure tests compose a desk (`desk_signal`), so a change in how a desk is
built touches this module only.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from intel.config import Config, load_config
from intel.desk import build_desk
from intel.pipeline import SignalResult
from intel.serialize import signal_to_json

REPLAY = Path(__file__).resolve().parent.parent / "intel" / "data" / "replay"
HOUR_MS = 3_600_000

Level = tuple[float, float]


def moment_ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def from_epoch_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _lines(path: Path) -> Iterator[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        yield from handle


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(_lines(path)))


# --- whales ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowTotals:
    inflow_usd: float
    outflow_usd: float
    inflow_coins: float
    outflow_coins: float
    transfers: int
    active_hours: int

    @property
    def net_usd(self) -> float:
        """Positive: more left exchanges than arrived."""
        return self.outflow_usd - self.inflow_usd


def whale_totals(asset: str, as_of: datetime, window_h: int) -> FlowTotals:
    """Sums of the hourly rows whose hour lies wholly inside the `window_h` hours before `as_of`
    (an hour's aggregate is known once it has ended)."""
    end = moment_ms(as_of)
    start = end - window_h * HOUR_MS
    rows = [
        row
        for row in _rows(REPLAY / "whales" / f"{asset}_exchange_flows_1h.csv")
        if start <= int(row["hour_start_ms"]) and int(row["hour_start_ms"]) + HOUR_MS <= end
    ]
    return FlowTotals(
        inflow_usd=sum(float(r["inflow_usd"]) for r in rows),
        outflow_usd=sum(float(r["outflow_usd"]) for r in rows),
        inflow_coins=sum(float(r["inflow_coins"] or 0) for r in rows),
        outflow_coins=sum(float(r["outflow_coins"] or 0) for r in rows),
        transfers=sum(int(float(r["transfer_count"])) for r in rows),
        active_hours=len(rows),
    )


def whale_coverage_end(asset: str) -> datetime:
    coverage = json.loads((REPLAY / "whales" / "coverage.json").read_text(encoding="utf-8"))
    return from_epoch_ms(int(coverage[asset]["end_ms"]))


# --- Fear & Greed ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FearGreedRow:
    published: datetime
    value: int
    classification: str


def fear_greed_at(moment: datetime) -> FearGreedRow:
    """The newest reading published by `moment`."""
    rows = [
        FearGreedRow(
            datetime.fromtimestamp(int(r["timestamp"]), tz=UTC),
            int(r["value"]),
            r["classification"],
        )
        for r in _rows(REPLAY / "fear_greed.csv")
    ]
    return max((r for r in rows if r.published <= moment), key=lambda r: r.published)


# --- Reddit ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostRow:
    post_id: str
    community: str
    created: datetime
    title: str
    excerpt: str

    @property
    def text(self) -> str:
        """What a sentiment engine reads: the title, then the excerpt."""
        return f"{self.title}. {self.excerpt}".strip()


_ASSET_COMMUNITIES = {"BTC": {"bitcoin", "btc"}, "ETH": {"ethereum", "ethfinance"}}
_GENERAL_COMMUNITIES = {"cryptocurrency", "cryptomarkets", "bitcoinmarkets"}
_ASSET_WORDS = {
    "BTC": re.compile(r"\b(bitcoin|btc|sats|satoshi)\b", re.IGNORECASE),
    "ETH": re.compile(r"\b(ethereum|eth|ether|vitalik)\b", re.IGNORECASE),
}


def posts_about(asset: str, now: datetime, window_h: int) -> list[PostRow]:
    """Posts created in [now − window_h, now] in a market-wide or the asset's community, or
    naming the asset (the selection SOURCES.md describes for replay Reddit)."""
    start = now - timedelta(hours=window_h)
    found = []
    for r in _rows(REPLAY / "reddit" / "posts.csv.gz"):
        post = PostRow(
            r["post_id"],
            r["subreddit"],
            datetime.fromtimestamp(int(r["created_utc_s"]), tz=UTC),
            r["title"],
            r["excerpt"],
        )
        if not start <= post.created <= now:
            continue
        community = post.community.lower()
        words = _ASSET_WORDS[asset]
        if (
            community in _GENERAL_COMMUNITIES
            or community in _ASSET_COMMUNITIES[asset]
            or words.search(post.title)
            or words.search(post.excerpt)
        ):
            found.append(post)
    return found


def half_life_balance(labels: list[str], ages_h: list[float], half_life_h: float) -> float:
    """100 × Σ sign(label)·½^(age/half-life) / Σ ½^(age/half-life): the recency-weighted mood."""
    signs = {"positive": 1.0, "negative": -1.0, "neutral": 0.0}
    weights = [math.pow(0.5, age / half_life_h) for age in ages_h]
    signed = sum(signs[label] * w for label, w in zip(labels, weights, strict=True))
    return 100.0 * signed / sum(weights)


# --- order books -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BookRow:
    taken: datetime
    bids: list[Level]
    asks: list[Level]


def book_history(file: str, now: datetime, window_s: float) -> list[BookRow]:
    """Snapshots of `file` taken in (now − window_s, now], at least the newest one by `now`."""
    now_ms = moment_ms(now)
    stamps: list[tuple[int, str]] = []
    for line in _lines(REPLAY / "orderbook" / file):
        stamp, _, payload = line.partition("\t")
        if int(stamp) <= now_ms:
            stamps.append((int(stamp), payload))
    inside = [s for s in stamps if s[0] > now_ms - window_s * 1000] or stamps[-1:]
    books = []
    for stamp, payload in inside:
        raw = json.loads(payload)
        books.append(
            BookRow(
                from_epoch_ms(stamp),
                [(float(p), float(q)) for p, q in raw["bids"]],
                [(float(p), float(q)) for p, q in raw["asks"]],
            )
        )
    return books


def last_book_time(file: str) -> datetime:
    last = ""
    for line in _lines(REPLAY / "orderbook" / file):
        last = line
    return from_epoch_ms(int(last.partition("\t")[0]))


# --- the desk --------------------------------------------------------------------------------


def desk_config(**env: str) -> Config:
    """The configuration as the CLI loads it, with `BOT__…` overrides as a user would set them.
    Tests take their expected rules (windows, weights) from it, never hard-coded."""
    return load_config(path=None, env=env)


async def desk_signal(
    symbol: str, at: datetime, config: Config | None = None
) -> tuple[dict[str, Any], SignalResult]:
    """One signal from the replay desk: its contract JSON and the result (signal and snapshot)."""
    desk = build_desk(config or desk_config())
    result = await desk.signal(symbol, at)
    return signal_to_json(result.signal), result


def close_at(symbol_file: str, close_time: datetime) -> float:
    """The close of the hourly candle that closed at `close_time`."""
    opened = moment_ms(close_time) - HOUR_MS
    for row in _rows(REPLAY / "candles" / symbol_file):
        if int(row["open_time_ms"]) == opened:
            return float(row["close"])
    raise LookupError(f"no candle opened at {opened} in {symbol_file}")
