"""Replay Reddit: a username-free sample of crypto posts, each visible from its creation time.

Scores and comment counts were recorded days after posting, so they are not shipped or used.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from intel.errors import NotRecordedError
from intel.lifecycle import NoResources
from intel.models import SocialPost
from intel.sources.replay_files import BadRecords, read_csv_records, skipped_notes
from intel.symbols import base_asset
from intel.timeutil import from_ms, iso, to_ms

__all__ = ["ReplayPostSource", "is_about"]

# Communities about the whole market count for every asset; asset communities for their own.
GENERAL_COMMUNITIES = frozenset({"cryptocurrency", "cryptomarkets", "bitcoinmarkets"})
ASSET_COMMUNITIES = {
    "BTC": frozenset({"bitcoin", "btc"}),
    "ETH": frozenset({"ethereum", "ethfinance"}),
}
ASSET_WORDS = {
    "BTC": re.compile(r"\b(bitcoin|btc|sats|satoshi)\b", re.IGNORECASE),
    "ETH": re.compile(r"\b(ethereum|eth|ether|vitalik)\b", re.IGNORECASE),
}


def is_about(post: SocialPost, asset: str) -> bool:
    community = post.community.lower()
    if community in GENERAL_COMMUNITIES or community in ASSET_COMMUNITIES.get(asset, ()):
        return True
    pattern = ASSET_WORDS.get(asset) or re.compile(rf"\b{re.escape(asset)}\b", re.IGNORECASE)
    return bool(pattern.search(post.title) or pattern.search(post.body))


class ReplayPostSource(NoResources):
    def __init__(self, replay_dir: Path) -> None:
        self._path = replay_dir / "reddit" / "posts.csv.gz"
        self._times_ms: list[int] = []
        self._posts: list[SocialPost] = []
        self._bad: BadRecords | None = None

    def skipped_records(self, symbol: str) -> tuple[str, ...]:
        return skipped_notes(self._bad)

    async def posts(self, symbol: str, now: datetime, window_h: int) -> Sequence[SocialPost]:
        if self._bad is None:
            self._load()
        asset = base_asset(symbol)
        stop = bisect.bisect_right(self._times_ms, to_ms(now))
        start = bisect.bisect_left(self._times_ms, to_ms(now - timedelta(hours=window_h)), 0, stop)
        found = [post for post in self._posts[start:stop] if is_about(post, asset)]
        if not found:
            raise NotRecordedError(
                f"no Reddit posts about {asset} in the {window_h} h before {iso(now)}"
            )
        return found

    def _load(self) -> None:
        posts, bad = read_csv_records(self._path, _parse)
        posts.sort(key=lambda post: post.created)
        times_ms = [to_ms(post.created) for post in posts]
        self._times_ms, self._posts, self._bad = times_ms, posts, bad


def _parse(row: dict[str, str]) -> SocialPost:
    return SocialPost(
        post_id=row["post_id"],
        community=row["subreddit"],
        created=from_ms(int(row["created_utc_s"]) * 1000),
        title=row["title"],
        body=row["excerpt"],
    )
