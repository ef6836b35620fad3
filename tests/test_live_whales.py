"""Live mode's whale source as composed by `live()`: without an address file every surface says
why there is no whale score; with one, the Blockchain.com source is built from the config."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from functools import partial
from pathlib import Path

import pytest

from bot.cli_status import _gather
from bot.commands.status import render_status, status_to_json
from bot.config import BotConfig
from intel.config import Config, Secrets
from intel.desk import build_desk, replay_sources
from intel.errors import ConfigError
from intel.lifecycle import NoResources
from intel.models import ReportStatus, WhaleFlows
from intel.sources.live import LIVE_SOURCES, LiveSourceFactories, live
from intel.sources.onchain.factory import NO_WHALE_ALERT_KEY, whale_source
from intel.sources.onchain.labels import NO_LABELS
from intel.sources.onchain.source import BlockchainComWhaleSource
from intel.sources.onchain.whale_alert import WhaleAlertSource
from intel.sources.replay_fear_greed import ReplayFearGreedSource
from intel.sources.replay_files import DEFAULT_REPLAY_DIR
from intel.sources.replay_reddit import ReplayPostSource
from intel.sources.replay_whales import ReplayWhaleSource
from intel.sources.testing import ReplayExchange
from intel.sources.unconfigured import NotConfiguredSource

SYMBOL = "ETH/USDT"


def factories() -> LiveSourceFactories:
    exchange = ReplayExchange()
    return LiveSourceFactories(
        exchange=lambda *_: exchange,
        fear_greed=lambda *_: ReplayFearGreedSource(DEFAULT_REPLAY_DIR),
        posts=lambda *_: ReplayPostSource(DEFAULT_REPLAY_DIR),
        whales=LIVE_SOURCES.whales,
    )


def live_raw(**onchain: object) -> dict[str, object]:
    return {"symbols": [SYMBOL], "data": {"mode": "live"}, "onchain": onchain}


async def test_without_an_address_file_signal_and_status_say_why(tmp_path: Path) -> None:
    raw = live_raw() | {"storage": {"db_path": str(tmp_path / "none.db")}}
    config = BotConfig.model_validate(raw)
    moment = config.data.default_at
    factory = partial(build_desk, market_clock=lambda: moment, live_sources=factories())
    async with factory(config) as desk:
        whales = (await desk.signal(SYMBOL)).signal.reports["whales"]
    assert (whales.status, whales.reason) == (ReportStatus.UNAVAILABLE, NO_LABELS)
    status = await _gather(config, factory)
    line = status_to_json(status)["sources"][f"whales {SYMBOL}"]  # type: ignore[index]
    assert (line["state"], line["detail"]) == ("not_configured", NO_LABELS)
    assert f"whales {SYMBOL}: not configured — {NO_LABELS}" in render_status(status).text


def test_with_an_address_file_the_blockchain_com_source_is_built(tmp_path: Path) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("address,exchange\n1Cb1G5qFK91fShyaPPZWVFwYFBtqRG7h8D,Coinbase\n")
    config = Config.model_validate(live_raw(address_file=str(labels)))
    sources = live(config, factories())
    assert isinstance(sources.whales, BlockchainComWhaleSource)
    assert sources.credits()[1] == "whale flows: Blockchain.com"


def test_an_unreadable_address_file_stops_live_mode(tmp_path: Path) -> None:
    config = Config.model_validate(live_raw(address_file=str(tmp_path / "absent.csv")))
    with pytest.raises(ConfigError, match=r"onchain\.address_file: cannot read"):
        live(config, factories())


class ProxiedFlows(NoResources):
    """Replay flows of BTC handed out for any symbol with a proxy note, as the live source does
    with `btc_proxy_for_other_assets`."""

    def __init__(self) -> None:
        self._btc = ReplayWhaleSource(DEFAULT_REPLAY_DIR)

    async def flows(self, symbol: str, now: datetime, window_h: int) -> WhaleFlows:
        btc = await self._btc.flows("BTC/USDT", now, window_h)
        return dataclasses.replace(btc, notes=("BTC flows stand in for ETH",))


async def test_a_proxy_note_on_the_flows_reaches_the_signal_and_the_report() -> None:
    config = Config.model_validate({"symbols": [SYMBOL]})
    sources = dataclasses.replace(replay_sources(), whales=ProxiedFlows())
    async with build_desk(config, sources=sources) as desk:
        signal = (await desk.signal(SYMBOL)).signal
    assert "BTC flows stand in for ETH" in signal.notes
    assert "BTC flows stand in for ETH" in signal.reports["whales"].notes


def test_a_whale_alert_key_picks_whale_alert_and_its_absence_says_so(tmp_path: Path) -> None:
    auto = Config.model_validate(live_raw())
    chosen = whale_source(auto, ReplayExchange(), None, Secrets(whale_alert_api_key="k"))
    assert isinstance(chosen, WhaleAlertSource)
    assert isinstance(whale_source(auto, ReplayExchange(), None, Secrets()), NotConfiguredSource)
    named = Config.model_validate(live_raw(provider="whale_alert"))
    missing = whale_source(named, ReplayExchange(), None, Secrets())
    assert isinstance(missing, NotConfiguredSource)
    assert missing.reason == NO_WHALE_ALERT_KEY
    assert "k" not in repr(Secrets(whale_alert_api_key="k"))
    assert Secrets.from_env({"WHALE_ALERT_API_KEY": "k"}).values() == ["k"]
