"""Prints each agent's information coefficient (Spearman rank correlation of its score with the
forward return at 4, 12 and 24 h, with a 95 % interval) over the shipped history, as Markdown.

    .venv/bin/python scripts/information_coefficients.py [--from 2024-11-05] [--to 2025-10-12]
        [--symbols BTC/USDT ETH/USDT] [--json]

Signals are the product's rules over replay, one an hour (`intel.history`); figures in
`intel.information`. Takes about 15 s per symbol-year. Report only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict
from datetime import timedelta

import structlog

from intel.config import Config
from intel.history import signals_over_history
from intel.information import information_coefficients
from intel.sources.replay_candles import ReplayCandleSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.timeutil import iso, parse_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="start", default="2024-11-05")
    parser.add_argument("--to", dest="end", default="2025-10-12")
    parser.add_argument("--symbols", nargs="+", default=["BTC/USDT", "ETH/USDT"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    start, end = parse_time(args.start), parse_time(args.end)
    candles = ReplayCandleSource(DEFAULT_REPLAY_DIR)
    rows = []
    for symbol in args.symbols:
        signals = asyncio.run(
            signals_over_history(Config(), symbol, start, end, timedelta(hours=1))
        )
        history = candles.history(symbol)
        for ic in information_coefficients(signals, history, end + timedelta(days=2)):
            rows.append({"symbol": symbol, **asdict(ic)})
    if args.json:
        print(json.dumps(rows, default=str, indent=2))
        return
    print(f"IC over {args.start} → {args.end} (non-overlapping moments; 95 % interval)\n")
    print("| symbol | agent | horizon | pairs | IC | 95 % interval | period with a score |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ic = "n/a" if r["ic"] is None else f"{r['ic']:+.3f}"
        ci = "" if r["low"] is None else f"[{r['low']:+.3f}, {r['high']:+.3f}]"
        span = "" if r["first"] is None else f"{iso(r['first'])[:10]} → {iso(r['last'])[:10]}"
        print(
            f"| {r['symbol']} | {r['agent']} | {r['horizon_h']} h | {r['pairs']} | {ic} "
            f"| {ci} | {span} |"
        )


if __name__ == "__main__":
    main()
