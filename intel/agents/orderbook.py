"""Order-book agent: depth imbalance around mid, the nearest walls, and walls pulled before price
reached them (spoofing), read from the recent snapshots of one venue's book."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from intel.agents.base import report_unavailable
from intel.config import OrderBookAgentConfig
from intel.features import BandImbalance, BookWall, OrderBookFeatures
from intel.models import (
    AgentReport,
    MarketSnapshot,
    OrderBook,
    OrderBookHistory,
    ReportStatus,
    Unavailable,
)

__all__ = ["OrderBookAgent"]

Levels = Sequence[tuple[float, float]]


class _Side(StrEnum):
    BID = "bid"
    ASK = "ask"


@dataclass(frozen=True, slots=True)
class _Wall:
    side: _Side
    price: float
    size_quote: float


@dataclass(frozen=True, slots=True)
class _TrackedWall:
    wall: _Wall
    lifetime: int  # consecutive snapshots it has stood as a wall
    reached: bool  # price came within reach of it at some point of its life
    appeared: bool  # absent from the first snapshot: it showed up while we watched


class OrderBookAgent:
    name = "orderbook"

    def __init__(self, config: OrderBookAgentConfig) -> None:
        self._config = config

    async def analyze(self, snapshot: MarketSnapshot) -> AgentReport:
        history = snapshot.orderbook
        if isinstance(history, Unavailable):
            return report_unavailable(self.name, history, snapshot.as_of)
        books = [book for book in history.books if book.bids and book.asks]
        if not books:
            last = history.latest.timestamp
            return AgentReport.unavailable(
                self.name, "the order book has an empty side", last_seen=last, now=snapshot.as_of
            )
        return self._report(snapshot, history, books)

    def _report(
        self, snapshot: MarketSnapshot, history: OrderBookHistory, books: list[OrderBook]
    ) -> AgentReport:
        cfg = self._config
        latest = books[-1]
        pulled = _count_pulled_walls(books, cfg)
        features = _book_features(latest, cfg, spoofing_events=pulled, snapshot_count=len(books))
        score = _score(latest, cfg)
        other_venue = _venue_difference(history, snapshot.symbol, cfg.home_exchange)
        notes = [history.note] if other_venue and history.note else []
        if history.feed:
            notes.append(f"order book via {history.feed}")
        if len(books) == 1:
            notes.append("spoofing not judged: only one order-book snapshot")
        if pulled:
            notes.append(f"spoofing: {pulled} wall(s) vanished unreached")
        notes.extend(_missing_wall_notes(latest, features, cfg))
        reason = None
        if history.fallback:
            reason = f"one order book over REST, no stream window ({history.fallback})"
        if other_venue:
            venue = f"{history.exchange.title()} {history.venue_symbol}"
            reason = f"order book from {venue} ({other_venue})"
        if score is None:
            reason = f"no resting volume within {cfg.score_band_pct:g} % of mid"
        return AgentReport(
            agent=self.name,
            status=ReportStatus.DEGRADED if reason else ReportStatus.OK,
            score=score,
            reason=reason,
            as_of=latest.timestamp,
            age_s=(snapshot.as_of - latest.timestamp).total_seconds(),
            features=features,
            notes=tuple(notes),
        )


def _venue_difference(history: OrderBookHistory, symbol: str, home_exchange: str) -> str | None:
    """How the book's market differs from the signal's, in words; None when it is the same."""
    other_venue = history.exchange.lower() != home_exchange.lower()
    other_quote = history.venue_symbol != symbol
    if other_venue and other_quote:
        return "another venue and quote currency"
    if other_venue:
        return "another venue"
    return "another quote currency" if other_quote else None


def _book_features(
    book: OrderBook, cfg: OrderBookAgentConfig, *, spoofing_events: int, snapshot_count: int
) -> OrderBookFeatures:
    mid = book.mid
    imbalances = (
        BandImbalance(band_pct, imbalance)
        for band_pct in cfg.bands_pct
        if (imbalance := _imbalance(book, band_pct)) is not None
    )
    return OrderBookFeatures(
        imbalances=tuple(imbalances),
        spread_bps=(book.best_ask - book.best_bid) / mid * 10_000,
        mid_price=mid,
        bid_depth_quote=_quote_volume(book.bids, mid, cfg.wall_range_pct),
        ask_depth_quote=_quote_volume(book.asks, mid, cfg.wall_range_pct),
        support=_nearest_wall(book, _Side.BID, cfg),
        resistance=_nearest_wall(book, _Side.ASK, cfg),
        spoofing_events=spoofing_events,
        snapshot_count=snapshot_count,
        book_reach_pct=min(_reach_pct(book, _Side.BID), _reach_pct(book, _Side.ASK)),
    )


def _nearest_wall(book: OrderBook, side: _Side, cfg: OrderBookAgentConfig) -> BookWall | None:
    """The nearest wall beyond the touch: the best bid or ask is where price trades, and in a
    shallow (top-N) book it is often the largest level without being a wall."""
    touch = book.best_bid if side is _Side.BID else book.best_ask
    walls = [wall for wall in _walls(book, side, cfg) if wall.price != touch]
    return BookWall(walls[0].price, walls[0].size_quote) if walls else None


def _reach_pct(book: OrderBook, side: _Side) -> float:
    """How far from mid the recorded levels of one side reach, in % of mid."""
    return abs(_levels(book, side)[-1][0] / book.mid - 1.0) * 100.0


def _missing_wall_notes(
    book: OrderBook, features: OrderBookFeatures, cfg: OrderBookAgentConfig
) -> list[str]:
    """A side without a wall says how far the search looked: the wall range or, when the
    recorded book is shallower, its depth on that side."""
    notes: list[str] = []
    for label, wall, side in (
        ("support", features.support, _Side.BID),
        ("resistance", features.resistance, _Side.ASK),
    ):
        if wall is None:
            searched_pct = min(cfg.wall_range_pct, _reach_pct(book, side))
            notes.append(f"no {label} wall within {searched_pct:.2g} %")
    return notes


def _score(book: OrderBook, cfg: OrderBookAgentConfig) -> float | None:
    """100 × imbalance at the scoring band, else at the nearest band that has volume."""
    imbalance = _imbalance(book, cfg.score_band_pct)
    if imbalance is None:
        by_distance = sorted(cfg.bands_pct, key=lambda band: abs(band - cfg.score_band_pct))
        imbalance = next(
            (value for band in by_distance if (value := _imbalance(book, band)) is not None), None
        )
    return None if imbalance is None else 100.0 * imbalance


def _imbalance(book: OrderBook, band_pct: float) -> float | None:
    """(bid − ask) / (bid + ask) quote volume within `band_pct` of mid; None if both are empty."""
    bid = _quote_volume(book.bids, book.mid, band_pct)
    ask = _quote_volume(book.asks, book.mid, band_pct)
    total = bid + ask
    return (bid - ask) / total if total > 0 else None


def _near(levels: Levels, mid: float, pct: float) -> list[tuple[float, float]]:
    reach = mid * pct / 100.0
    return [(price, qty) for price, qty in levels if abs(price - mid) <= reach]


def _quote_volume(levels: Levels, mid: float, pct: float) -> float:
    return sum(price * qty for price, qty in _near(levels, mid, pct))


def _levels(book: OrderBook, side: _Side) -> Levels:
    return book.bids if side is _Side.BID else book.asks


def _walls(book: OrderBook, side: _Side, cfg: OrderBookAgentConfig) -> list[_Wall]:
    """Levels within the wall range at least `wall_multiple` × the side's median level (in quote
    currency there), nearest to mid first."""
    near = _near(_levels(book, side), book.mid, cfg.wall_range_pct)
    if not near:
        return []
    sizes = [price * qty for price, qty in near]
    threshold = cfg.wall_multiple * statistics.median(sizes)
    return [
        _Wall(side, price, size)
        for (price, _), size in zip(near, sizes, strict=True)
        if size >= threshold > 0
    ]


def _count_pulled_walls(books: Sequence[OrderBook], cfg: OrderBookAgentConfig) -> int:
    """Walls that appeared after the first snapshot and then vanished (their level shrank below
    `spoof_vanish_fraction` of the wall) while price never came within `spoof_reach_bps` of
    them, having stood for at least `spoof_min_lifetime_snapshots`. Walls that merely shrink, or
    stood before we started watching, are re-quoting, not spoofing evidence."""
    tracked: list[_TrackedWall] = []
    pulled = 0
    for index, book in enumerate(books):
        walls = _walls(book, _Side.BID, cfg) + _walls(book, _Side.ASK, cfg)
        survivors: list[_TrackedWall] = []
        for old in tracked:
            reached = old.reached or _price_reached(book, old.wall, cfg.spoof_reach_bps)
            match = _same_wall(old.wall, walls, cfg.wall_match_bps)
            if match is not None:
                if all(match is not kept.wall for kept in survivors):
                    survivors.append(_TrackedWall(match, old.lifetime + 1, reached, old.appeared))
            elif _was_pulled(book, old, reached, cfg):
                pulled += 1
        tracked = survivors + _new_walls(book, walls, survivors, cfg, appeared=index > 0)
    return pulled


def _was_pulled(
    book: OrderBook, old: _TrackedWall, reached: bool, cfg: OrderBookAgentConfig
) -> bool:
    remaining = _size_near(book, old.wall, cfg.wall_match_bps)
    return (
        old.appeared
        and not reached
        and old.lifetime >= cfg.spoof_min_lifetime_snapshots
        and remaining < cfg.spoof_vanish_fraction * old.wall.size_quote
        and _in_view(book, old.wall, cfg)
    )


def _size_near(book: OrderBook, wall: _Wall, match_bps: float) -> float:
    """Quote size resting within matching distance of the wall's price in `book`."""
    tolerance = max(wall.price * match_bps / 10_000, wall.price * 1e-9)
    return sum(
        price * qty
        for price, qty in _levels(book, wall.side)
        if abs(price - wall.price) <= tolerance
    )


def _new_walls(
    book: OrderBook,
    walls: list[_Wall],
    known: list[_TrackedWall],
    cfg: OrderBookAgentConfig,
    *,
    appeared: bool,
) -> list[_TrackedWall]:
    """Walls first seen in `book`; walls within matching distance of each other count once."""
    fresh: list[_TrackedWall] = []
    for wall in walls:
        seen = [entry.wall for entry in (*known, *fresh)]
        if _same_wall(wall, seen, cfg.wall_match_bps) is None:
            reached = _price_reached(book, wall, cfg.spoof_reach_bps)
            fresh.append(_TrackedWall(wall, 1, reached, appeared))
    return fresh


def _same_wall(wall: _Wall, candidates: Sequence[_Wall], match_bps: float) -> _Wall | None:
    """The candidate on the same side nearest to `wall`'s price, if within `match_bps`."""
    tolerance = max(wall.price * match_bps / 10_000, wall.price * 1e-9)
    same_side = [
        c for c in candidates if c.side is wall.side and abs(c.price - wall.price) <= tolerance
    ]
    return min(same_side, key=lambda c: abs(c.price - wall.price), default=None)


def _price_reached(book: OrderBook, wall: _Wall, reach_bps: float) -> bool:
    # Of mid and best bid/ask, the touch on the wall's own side is the one nearest to it (or past
    # it, when price has gone through).
    reach = wall.price * reach_bps / 10_000
    if wall.side is _Side.BID:
        return book.best_bid <= wall.price + reach
    return book.best_ask >= wall.price - reach


def _in_view(book: OrderBook, wall: _Wall, cfg: OrderBookAgentConfig) -> bool:
    """Whether `book` still shows the wall's price: a wall that drifted past the recorded depth
    (top-N levels) or the wall range is out of sight, not pulled."""
    levels = _levels(book, wall.side)
    deepest = levels[-1][0]
    inside_depth = deepest <= wall.price if wall.side is _Side.BID else deepest >= wall.price
    return inside_depth and abs(wall.price - book.mid) <= book.mid * cfg.wall_range_pct / 100.0
