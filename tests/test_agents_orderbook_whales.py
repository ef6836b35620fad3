"""The order-book and whale agents over the recorded replay data, via the real replay sources."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta

import pytest

from intel.agents.orderbook import OrderBookAgent
from intel.agents.whales import WhaleAgent
from intel.config import Config, OrderBookAgentConfig, WhalesAgentConfig
from intel.desk import replay_sources
from intel.features import OrderBookFeatures, WhaleFeatures
from intel.models import (
    AgentReport,
    MarketSnapshot,
    OrderBook,
    OrderBookHistory,
    ReportStatus,
    Unavailable,
    WhaleFlows,
)
from intel.snapshot import SnapshotBuilder
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.sources.replay_orderbook import ReplayOrderBookSource
from intel.sources.replay_whales import ReplayWhaleSource
from intel.timeutil import from_ms, parse_time, to_ms

NOT_NEEDED = Unavailable("not needed")
BOOK_CONFIG = OrderBookAgentConfig()
KRAKEN_MOMENT = parse_time("2025-10-10T20:00Z")


def snapshot_of(
    symbol: str,
    now: datetime,
    orderbook: OrderBookHistory | Unavailable = NOT_NEEDED,
    whales: WhaleFlows | Unavailable = NOT_NEEDED,
) -> MarketSnapshot:
    return MarketSnapshot(
        symbol=symbol,
        as_of=now,
        candles=NOT_NEEDED,
        orderbook=orderbook,
        whales=whales,
        posts=NOT_NEEDED,
        fear_greed=NOT_NEEDED,
    )


def book_figures(report: AgentReport) -> OrderBookFeatures:
    figures = report.features_as(OrderBookFeatures)
    assert figures is not None
    return figures


def flow_figures(report: AgentReport) -> WhaleFeatures:
    figures = report.features_as(WhaleFeatures)
    assert figures is not None
    return figures


async def recorded_books(symbol: str, now: datetime, window_s: float) -> MarketSnapshot:
    history = await ReplayOrderBookSource(DEFAULT_REPLAY_DIR).books(symbol, now, window_s)
    return snapshot_of(symbol, now, orderbook=history)


async def recorded_flows(symbol: str, now: datetime, window_h: int) -> MarketSnapshot:
    flows = await ReplayWhaleSource(DEFAULT_REPLAY_DIR).flows(symbol, now, window_h)
    return snapshot_of(symbol, now, whales=flows)


def quote_within(levels: tuple[tuple[float, float], ...], mid: float, pct: float) -> float:
    return sum(price * qty for price, qty in levels if abs(price - mid) <= mid * pct / 100)


# --- order book: imbalance -------------------------------------------------------------------


# Found by scanning every snapshot of binance_BTCUSDT_top20_1s.tsv.gz for the quote-volume
# imbalance within 0.5 % of mid and taking the extremes: +0.90 at 00:02:24.036 ($568k bid vs $30k
# ask) and −0.97 at 00:01:03.001 ($7k bid vs $514k ask).
@pytest.mark.parametrize(
    ("moment", "sign"),
    [("2024-08-09T00:02:24.036Z", 1), ("2024-08-09T00:01:03.001Z", -1)],
    ids=["bid-heavy", "ask-heavy"],
)
async def test_recorded_one_sided_book_scores_its_side(moment: str, sign: int) -> None:
    now = parse_time(moment)
    snapshot = await recorded_books("BTC/USDT", now, BOOK_CONFIG.spoof_window_s)
    assert isinstance(snapshot.orderbook, OrderBookHistory)
    book = snapshot.orderbook.latest
    assert book.timestamp == now
    bid = quote_within(book.bids, book.mid, 0.5)
    ask = quote_within(book.asks, book.mid, 0.5)
    heavy, light = (bid, ask) if sign > 0 else (ask, bid)
    assert heavy > 10 * light  # the raw input really is one-sided

    report = await OrderBookAgent(BOOK_CONFIG).analyze(snapshot)

    assert report.status is ReportStatus.OK
    assert report.score is not None
    assert sign * report.score > 40
    figures = book_figures(report)
    assert figures.imbalance_at(0.5) == pytest.approx((bid - ask) / (bid + ask))
    assert report.score == pytest.approx(100 * (bid - ask) / (bid + ask))
    assert figures.mid_price == pytest.approx(book.mid)
    assert report.as_of == now
    assert report.age_s == 0
    assert figures.snapshot_count == len(snapshot.orderbook.books)
    # A side without a wall in this shallow book says so; nothing else is noted.
    assert [note for note in report.notes if " wall within " not in note] == []


# --- order book: venue and availability ------------------------------------------------------


async def test_kraken_book_for_eth_is_degraded_with_the_venue_note() -> None:
    snapshot = await recorded_books("ETH/USDT", KRAKEN_MOMENT, BOOK_CONFIG.spoof_window_s)
    history = snapshot.orderbook
    assert isinstance(history, OrderBookHistory)

    report = await OrderBookAgent(BOOK_CONFIG).analyze(snapshot)

    assert report.status is ReportStatus.DEGRADED
    assert report.reason == "order book from Kraken ETH/USD (another venue and quote currency)"
    assert history.note is not None
    assert history.note in report.notes
    assert report.score is not None
    assert -100 <= report.score <= 100
    assert report.as_of == history.latest.timestamp
    assert report.age_s == (KRAKEN_MOMENT - history.latest.timestamp).total_seconds()
    figures = book_figures(report)
    assert [band.band_pct for band in figures.imbalances] == [0.1, 0.5, 1.0, 2.0]
    latest = history.latest
    assert figures.mid_price == latest.mid
    assert figures.spread_bps == pytest.approx(
        (latest.best_ask - latest.best_bid) / latest.mid * 1e4
    )
    assert figures.bid_depth_quote == pytest.approx(quote_within(latest.bids, latest.mid, 2.0))
    assert figures.ask_depth_quote == pytest.approx(quote_within(latest.asks, latest.mid, 2.0))
    assert figures.support is not None
    assert figures.support.price < figures.mid_price
    assert figures.resistance is not None
    assert figures.resistance.price > figures.mid_price


async def test_btc_without_a_current_book_passes_the_snapshot_reason_through() -> None:
    snapshot = await SnapshotBuilder(replay_sources(), Config()).build("BTC/USDT", KRAKEN_MOMENT)
    assert isinstance(snapshot.orderbook, Unavailable)

    report = await OrderBookAgent(BOOK_CONFIG).analyze(snapshot)

    assert report.status is ReportStatus.UNAVAILABLE
    assert report.score is None
    assert report.reason == snapshot.orderbook.reason
    assert report.as_of == snapshot.orderbook.last_seen


# --- order book: spoofing --------------------------------------------------------------------


def ladder(best: float, step: float, walls: dict[float, float]) -> tuple[tuple[float, float], ...]:
    """20 levels of 1 unit from `best` in `step`s, with `walls` {price: quantity} put in."""
    levels = {round(best + step * i, 2): 1.0 for i in range(20)}
    levels.update(walls)
    return tuple(sorted(levels.items(), reverse=step < 0))


def hand_book(
    second: int, best_bid: float, bid_walls: dict[float, float], ask_walls: dict[float, float]
) -> OrderBook:
    return OrderBook(
        timestamp=from_ms(1_700_000_000_000 + second * 1000),
        bids=ladder(best_bid, -0.1, bid_walls),
        asks=ladder(round(best_bid + 0.2, 2), 0.1, ask_walls),
    )


def hand_history(*books: OrderBook) -> MarketSnapshot:
    history = OrderBookHistory(exchange="binance", venue_symbol="BTC/USDT", books=books)
    return snapshot_of("BTC/USDT", books[-1].timestamp, orderbook=history)


async def test_a_wall_pulled_unreached_counts_and_a_wall_price_reached_does_not() -> None:
    jittered = 99.5 + 1e-7  # the same level, re-bucketed: must stay the same wall
    snapshot = hand_history(
        hand_book(0, 99.9, {99.5: 20}, {100.5: 20}),
        hand_book(1, 99.9, {99.0: 20, jittered: 20}, {100.5: 20}),
        # Bid wall at 99.0 appeared, then was pulled 90 bps away from price; the ask wall at
        # 100.5 gone because price climbed to it (best ask now 100.5): only the first is spoofing.
        hand_book(2, 100.3, {99.5: 20}, {}),
    )

    report = await OrderBookAgent(BOOK_CONFIG).analyze(snapshot)

    figures = book_figures(report)
    assert figures.spoofing_events == 1
    assert figures.snapshot_count == 3
    assert "spoofing: 1 wall(s) vanished unreached" in report.notes
    assert figures.support is not None
    assert figures.support.price == 99.5
    assert figures.support.size_quote == pytest.approx(99.5 * 20)
    assert figures.resistance is None
    assert report.status is ReportStatus.OK


async def test_a_wall_standing_before_we_watched_that_vanishes_is_not_spoofing() -> None:
    snapshot = hand_history(
        hand_book(0, 99.9, {99.0: 20}, {}),
        hand_book(1, 99.9, {99.0: 20}, {}),
        hand_book(2, 99.9, {}, {}),
    )
    report = await OrderBookAgent(BOOK_CONFIG).analyze(snapshot)
    assert book_figures(report).spoofing_events == 0


async def test_a_wall_shorter_lived_than_required_is_not_spoofing() -> None:
    snapshot = hand_history(
        hand_book(0, 99.9, {}, {}),
        hand_book(1, 99.9, {99.0: 20}, {}),
        hand_book(2, 99.9, {}, {}),
    )
    strict = OrderBookAgent(BOOK_CONFIG.model_copy(update={"spoof_min_lifetime_snapshots": 2}))

    assert book_figures(await OrderBookAgent(BOOK_CONFIG).analyze(snapshot)).spoofing_events == 1
    assert book_figures(await strict.analyze(snapshot)).spoofing_events == 0


async def test_spoofing_on_recorded_kraken_books_is_structurally_sound() -> None:
    snapshot = await recorded_books("ETH/USDT", KRAKEN_MOMENT, 6 * 3600)
    history = snapshot.orderbook
    assert isinstance(history, OrderBookHistory)
    assert len(history.books) > 10

    report = await OrderBookAgent(BOOK_CONFIG).analyze(snapshot)

    pulled = book_figures(report).spoofing_events
    assert book_figures(report).snapshot_count == len(history.books)
    assert pulled > 0  # walls do appear and vanish in this recording; 0 would mean no detection
    spoof_notes = [note for note in report.notes if note.startswith("spoofing")]
    expected = [f"spoofing: {pulled} wall(s) vanished unreached"] if pulled else []
    assert spoof_notes == expected


async def test_one_recorded_snapshot_cannot_judge_spoofing() -> None:
    snapshot = await recorded_books("ETH/USDT", KRAKEN_MOMENT, 60)

    report = await OrderBookAgent(BOOK_CONFIG).analyze(snapshot)

    assert book_figures(report).snapshot_count == 1
    assert book_figures(report).spoofing_events == 0
    assert "spoofing not judged: only one order-book snapshot" in report.notes


# --- whales ----------------------------------------------------------------------------------


def recorded_rows(asset: str, start: datetime, end: datetime) -> list[dict[str, str]]:
    """The flow file's rows for hours starting in [start, end)."""
    path = DEFAULT_REPLAY_DIR / "whales" / f"{asset}_exchange_flows_1h.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            row
            for row in csv.DictReader(handle)
            if to_ms(start) <= int(row["hour_start_ms"]) < to_ms(end)
        ]


def column_sum(rows: list[dict[str, str]], column: str) -> float:
    return sum(float(row[column]) for row in rows)


# Found by ranking the BTC file's hours by outflow − inflow: 2025-07-17 22:00 has the largest
# inflow recorded ($3.88 B, 9 transfers) and 2024-12-31 23:00 the largest outflow ($2.81 B, one
# transfer). The windows end when those hours do.
@pytest.mark.parametrize(
    ("moment", "window_h", "sign", "dominant_column"),
    [("2025-07-17T23:00Z", 6, -1, "inflow_usd"), ("2025-01-01T00:00Z", 12, 1, "outflow_usd")],
    ids=["distribution", "accumulation"],
)
async def test_recorded_dominant_whale_hour_sets_the_score_sign(
    moment: str, window_h: int, sign: int, dominant_column: str
) -> None:
    now = parse_time(moment)
    config = WhalesAgentConfig(window_h=window_h)
    snapshot = await recorded_flows("BTC/USDT", now, config.window_h)
    rows = recorded_rows("BTC", now - timedelta(hours=window_h), now)
    last_hour = rows[-1]
    assert from_ms(int(last_hour["hour_start_ms"])) == now - timedelta(hours=1)
    gross = column_sum(rows, "inflow_usd") + column_sum(rows, "outflow_usd")
    assert float(last_hour[dominant_column]) > 0.9 * gross  # the one hour drives the window

    report = await WhaleAgent(config).analyze(snapshot)

    figures = flow_figures(report)
    assert figures.inflow_usd == column_sum(rows, "inflow_usd")
    assert figures.outflow_usd == column_sum(rows, "outflow_usd")
    assert figures.net_flow_usd == column_sum(rows, "outflow_usd") - column_sum(rows, "inflow_usd")
    assert figures.inflow_coins == column_sum(rows, "inflow_coins")
    assert figures.outflow_coins == column_sum(rows, "outflow_coins")
    assert figures.transfer_count == column_sum(rows, "transfer_count")
    assert figures.active_hours == len(rows)
    assert figures.window_h == window_h
    assert report.status is ReportStatus.OK
    assert report.score is not None
    assert sign * report.score > 80
    net = column_sum(rows, "outflow_usd") - column_sum(rows, "inflow_usd")
    expected = 100 * net / (gross + config.volume_floor_usd)
    assert report.score == pytest.approx(expected)
    assert report.as_of == now
    assert report.age_s == 0
    assert any("Whale Alert" in note for note in report.notes)


async def test_window_without_whale_transfers_scores_zero_with_a_note() -> None:
    # ETH's file has no hour between 2025-03-31 12:00 and 2025-04-09 12:00.
    now = parse_time("2025-04-01T00:00Z")
    assert recorded_rows("ETH", now - timedelta(hours=6), now) == []
    snapshot = await recorded_flows("ETH/USDT", now, 6)

    report = await WhaleAgent(WhalesAgentConfig(window_h=6)).analyze(snapshot)

    assert report.status is ReportStatus.OK
    assert report.score == 0
    assert flow_figures(report).transfer_count == 0
    assert flow_figures(report).inflow_coins is None
    assert "no whale transfers to or from exchanges in the last 6 h" in report.notes


async def test_small_transfer_is_damped_by_the_volume_floor() -> None:
    snapshot = await recorded_flows("BTC/USDT", parse_time("2024-11-04T09:00Z"), 1)
    assert isinstance(snapshot.whales, WhaleFlows)
    assert [hour.outflow_usd for hour in snapshot.whales.hours] == [137_247_624]

    damped = await WhaleAgent(WhalesAgentConfig()).analyze(snapshot)
    undamped = await WhaleAgent(WhalesAgentConfig(volume_floor_usd=0)).analyze(snapshot)

    assert undamped.score == 100
    assert damped.score is not None
    assert 0 < damped.score < 75


async def test_unavailable_whale_flows_pass_their_reason_through() -> None:
    seen = parse_time("2025-10-10T12:00Z")
    missing = Unavailable("no whale flows newer than 6 h", last_seen=seen)
    snapshot = snapshot_of("BTC/USDT", KRAKEN_MOMENT, whales=missing)

    report = await WhaleAgent(WhalesAgentConfig()).analyze(snapshot)

    assert report.status is ReportStatus.UNAVAILABLE
    assert report.reason == missing.reason
    assert report.age_s == 8 * 3600
