"""The README's "measured on the shipped history" track record: the rules every 4 h over BTC and
ETH, 2024-11-05 → 2025-10-12, on their raw confidence, scored by the scorecard's definition of
right (`intel.outcome`). Prints the figures the README quotes; about a minute.

    .venv/bin/python scripts/track_record.py
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from intel.config import Config
from intel.history import signals_over_history
from intel.scorecard import build_scorecard
from intel.sources.replay_candles import ReplayCandleSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR

SYMBOLS = ("BTC/USDT", "ETH/USDT")
START, END = datetime(2024, 11, 5, tzinfo=UTC), datetime(2025, 10, 12, tzinfo=UTC)


def main() -> None:
    config = Config()
    raw = config.model_copy(
        update={"calibration": config.calibration.model_copy(update={"enabled": False})}
    )
    signals = []
    for symbol in SYMBOLS:
        signals += asyncio.run(signals_over_history(raw, symbol, START, END, timedelta(hours=4)))
    source = ReplayCandleSource(DEFAULT_REPLAY_DIR)
    candles = {symbol: source.history(symbol) for symbol in SYMBOLS}
    card = build_scorecard(signals, candles, END + timedelta(days=3))
    low, high = card.hits.interval or (0.0, 0.0)
    print(f"{card.signals:,} signals, {card.hits.count:,} BUY/SELL calls scored")
    print(f"right {card.hits.rate:.1%} [{low:.1%}, {high:.1%}], base rate {card.base_rate:.1%}")
    print(f"mean return per call after fees {card.mean_return:+.2%}")
    kept = card.non_overlapping
    print(f"without overlapping calls {kept.rate:.1%} of {kept.count:,}; Brier {card.brier:.3f}")
    for group in card.by_bucket:
        rate = "—" if group.hits.rate is None else f"{group.hits.rate:.1%}"
        print(f"bucket {group.label}: {rate} ({group.hits.count})")


if __name__ == "__main__":
    main()
