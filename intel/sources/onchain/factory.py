"""Builds live mode's whale source from the configuration: Whale Alert with a key, else
Blockchain.com with an exchange address file, else a "not configured" stand-in saying why."""

from __future__ import annotations

from datetime import datetime

from intel.config import Config, Secrets
from intel.errors import SourceError
from intel.sources.base import CandleSource, WhaleSource
from intel.sources.onchain.labels import NO_LABELS, ExchangeLabels
from intel.sources.onchain.rest import BlockchainComRest
from intel.sources.onchain.source import BlockchainComWhaleSource, PriceUsd
from intel.sources.onchain.whale_alert import WhaleAlertSource
from intel.sources.onchain.window import FlowWindowStore
from intel.sources.resilience import SourceGuard
from intel.sources.unconfigured import NotConfiguredSource

__all__ = ["NO_WHALE_ALERT_KEY", "blockchain_com_whales", "btc_price_from", "whale_source"]

PRICE_SYMBOL = "BTC/USDT"  # USDT taken as USD: the whale threshold is a coarse cut
NO_WHALE_ALERT_KEY = "no WHALE_ALERT_API_KEY — whale score unavailable"


def btc_price_from(candles: CandleSource) -> PriceUsd:
    """BTC's price at a moment: the close of the newest hourly candle closed by then."""

    async def price_usd(moment: datetime) -> float:
        series = await candles.candles(PRICE_SYMBOL, moment, 1)
        if not len(series):
            raise SourceError(f"no {PRICE_SYMBOL} price for the whale threshold")
        return float(series.close[-1])

    return price_usd


def whale_source(
    config: Config, candles: CandleSource, store: FlowWindowStore | None, secrets: Secrets
) -> WhaleSource:
    """The provider `onchain.provider` names ("auto": Whale Alert when its key is set)."""
    onchain = config.onchain
    key = secrets.whale_alert_api_key
    provider = onchain.provider
    if provider == "auto":
        provider = "whale_alert" if key else "blockchain_com"
    if provider == "whale_alert":
        if not key:
            return NotConfiguredSource(NO_WHALE_ALERT_KEY)
        policy = onchain.whale_alert.policy
        return WhaleAlertSource(
            onchain.whale_alert,
            key,
            window_h=config.agents.whales.window_h,
            guard=SourceGuard("whale_alert", policy),
            store=store,
        )
    if onchain.address_file is None:
        return NotConfiguredSource(NO_LABELS)
    return blockchain_com_whales(config, candles, store)


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
