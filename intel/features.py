"""The figures behind each agent's score, one frozen record per agent: the typed contract between
the agents and every reader (thesis, renderers). Their JSON names live in `intel.serialize`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BandImbalance",
    "BookWall",
    "FearGreedFigures",
    "Features",
    "OrderBookFeatures",
    "RedditFigures",
    "SentimentFeatures",
    "WhaleFeatures",
]


@dataclass(frozen=True, slots=True)
class WhaleFeatures:
    """Exchange flows of large transfers summed over the look-back window."""

    inflow_usd: float
    outflow_usd: float
    net_flow_usd: float  # outflow − inflow: positive means coins leaving exchanges
    transfer_count: int
    window_h: float
    active_hours: int  # hours of the window with at least one transfer
    inflow_coins: float | None = None  # None: the provider gave no coin amounts
    outflow_coins: float | None = None


@dataclass(frozen=True, slots=True)
class BandImbalance:
    """(bid − ask) / (bid + ask) quote volume within `band_pct` of mid, −1..+1."""

    band_pct: float
    imbalance: float


@dataclass(frozen=True, slots=True)
class BookWall:
    """The resting level nearest to mid that stands out as a wall, sized in quote currency."""

    price: float
    size_quote: float


@dataclass(frozen=True, slots=True)
class OrderBookFeatures:
    """The newest book's shape, and spoofing seen across the recent snapshots."""

    imbalances: tuple[BandImbalance, ...]  # bands with resting volume, in configured order
    spread_bps: float
    mid_price: float
    bid_depth_quote: float
    ask_depth_quote: float
    support: BookWall | None
    resistance: BookWall | None
    spoofing_events: int
    snapshot_count: int
    # How far the recorded book reaches from mid (% of mid, the shallower side); None in records
    # made before it was kept. Bands wider than this hold the whole book, not their own band.
    book_reach_pct: float | None = None

    def imbalance_at(self, band_pct: float) -> float | None:
        return next((b.imbalance for b in self.imbalances if b.band_pct == band_pct), None)


@dataclass(frozen=True, slots=True)
class RedditFigures:
    mood: float  # recency-weighted label balance, −100..+100
    post_count: int
    positive_posts: int
    negative_posts: int
    mean_post_score: float


@dataclass(frozen=True, slots=True)
class FearGreedFigures:
    value: int  # the index, 0..100
    mood: float  # the index mapped to −100..+100
    age_s: float


@dataclass(frozen=True, slots=True)
class SentimentFeatures:
    """Each part is None when its source was unavailable."""

    reddit: RedditFigures | None
    fear_greed: FearGreedFigures | None


Features = WhaleFeatures | OrderBookFeatures | SentimentFeatures
