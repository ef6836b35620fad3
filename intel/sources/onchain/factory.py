"""Builds the Blockchain.com whale source from the configuration (live mode's factory)."""

from __future__ import annotations

from datetime import datetime

from intel.config import Config
from intel.errors import SourceError
from intel.sources.base import CandleSource
from intel.sources.onchain.labels import ExchangeLabels
from intel.sources.onchain.rest import BlockchainComRest
from intel.sources.onchain.source import BlockchainComWhaleSource, PriceUsd
from intel.sources.onchain.window import FlowWindowStore
from intel.sources.resilience import SourceGuard

__all__ = ["blockchain_com_whales", "btc_price_from"]

PRICE_SYMBOL = "BTC/USDT"  # USDT taken as USD: the whale threshold is a coarse cut


def btc_price_from(candles: CandleSource) -> PriceUsd:
    """BTC's price at a moment: the close of the newest hourly candle closed by then."""

    async def price_usd(moment: datetime) -> float:
        series = await candles.candles(PRICE_SYMBOL, moment, 1)
        if not len(series):
            raise SourceError(f"no {PRICE_SYMBOL} price for the whale threshold")
        return float(series.close[-1])

    return price_usd


def blockchain_com_whales(
    config: Config, candles: CandleSource, store: FlowWindowStore | None
) -> BlockchainComWhaleSource:
    """ConfigError when the address file cannot be read (the labels load here, at build)."""
    onchain = config.onchain
    if onchain.address_file is None:
        raise ValueError("blockchain_com_whales needs onchain.address_file")
    return BlockchainComWhaleSource(
        onchain,
        window_h=config.agents.whales.window_h,
        labels=ExchangeLabels.from_csv(onchain.address_file),
        rest=BlockchainComRest(onchain.blockchain_com),
        guard=SourceGuard("blockchain_com", onchain.blockchain_com.policy),
        price_usd=btc_price_from(candles),
        store=store,
    )
