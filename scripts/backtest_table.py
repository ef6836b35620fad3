"""The README's backtest results table: each strategy beside buy-and-hold over the shipped data,
with the costs of `config.yaml`. Prints markdown rows; the divergence rows take about a minute.

    .venv/bin/python scripts/backtest_table.py
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from intel.backtest.metrics import Metrics
from intel.backtest.runner import run_strategy
from intel.config import Config, load_config

WHALE_WINDOW = (datetime(2024, 11, 5, tzinfo=UTC), datetime(2025, 10, 12, tzinfo=UTC))
RUNS = [
    ("BTC/USDT", "divergence", WHALE_WINDOW),
    ("ETH/USDT", "divergence", WHALE_WINDOW),
    ("BTC/USDT", "fear-greed-contrarian", WHALE_WINDOW),
    ("ETH/USDT", "fear-greed-contrarian", WHALE_WINDOW),
    ("BTC/USDT", "fear-greed-contrarian", (None, None)),
    ("ETH/USDT", "fear-greed-contrarian", (None, None)),
]


def pct(value: float | int | None, signed: bool = True) -> str:
    if value is None:
        return "—"
    text = f"{value * 100:+,.1f} %" if signed else f"{value * 100:,.1f} %"
    return text.replace("-", "−")


def number(value: float | int | None) -> str:
    return "—" if value is None else f"{value:.2f}".replace("-", "−")


def row(symbol: str, strategy: str, window: str, m: Metrics, b: Metrics) -> str:
    total = "0 (no trade)" if not m["trades"] else pct(m["total_return"])
    cells = [
        symbol,
        strategy,
        window,
        total,
        pct(b["total_return"]),
        pct(m["max_drawdown"]) if m["trades"] else "0",
        pct(b["max_drawdown"]),
        number(m["sharpe"]),
        number(b["sharpe"]),
        str(m["trades"]),
        pct(m["win_rate"], signed=False),
        number(m["profit_factor"]),
        pct(m["exposure"], signed=False),
    ]
    return "| " + " | ".join(cells) + " |"


async def main() -> None:
    config = load_config(env={}, model=Config)
    for symbol, strategy, (start, end) in RUNS:
        report = await run_strategy(config, symbol, strategy, start, end)
        window = f"{report.start:%Y-%m-%d} → {report.end:%Y-%m-%d}"
        print(row(symbol, strategy, window, report.metrics, report.baseline_metrics))
        for note in report.notes:
            print(f"  note: {note}")
        print(f"  signals {report.signals:,}, BUY/SELL {report.calls:,}")


if __name__ == "__main__":
    asyncio.run(main())
