"""Exchange labels: the address file and the labelling of real recorded transactions.

The labelled cases use the Dune spellbook's exchange addresses and the recorded >= 200 BTC
transactions with every address (../shared/data; skipped when absent: neither may be shipped).
Expected kinds and amounts are computed here from the raw records with plain set arithmetic.
"""

from __future__ import annotations

import csv
import gzip
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from intel.errors import ConfigError
from intel.sources.onchain.labels import (
    ChainTx,
    ExchangeLabels,
    FlowKind,
    TxOutput,
    label_transfer,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DUNE = SHARED / "blockchain" / "cex_bitcoin_addresses_dune_spellbook.csv"
WHALE_TXS = SHARED / "whales" / "wai_btc_whale_txs_ge200btc_2025-12-02_to_2026-08-22.raw.jsonl.gz"
needs_shared = pytest.mark.skipif(
    not (DUNE.is_file() and WHALE_TXS.is_file()), reason="../shared/data is not here"
)
WHEN = datetime(2025, 12, 19, 12, tzinfo=UTC)


def recorded_txs() -> list[dict[str, Any]]:
    with gzip.open(WHALE_TXS, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle]
    return [row for row in rows if "vin_addresses" in row]


def as_chain_tx(row: dict[str, Any]) -> ChainTx:
    def sats(items: list[dict[str, Any]]) -> tuple[TxOutput, ...]:
        return tuple(TxOutput(i["address"], round(i["value"] * 1e8)) for i in items)

    return ChainTx(row["txid"], WHEN, None, sats(row["vin_addresses"]), sats(row["vout_addresses"]))


@needs_shared
def test_the_dune_list_loads_with_its_own_header() -> None:
    with DUNE.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    labels = ExchangeLabels.from_csv(DUNE)
    assert len(labels) == len({row["address"] for row in rows})
    first = rows[0]
    assert labels.exchange_of(first["address"]) == first["cex_name"]


@needs_shared
def test_recorded_transfers_are_labelled_as_set_arithmetic_says() -> None:
    with DUNE.open(encoding="utf-8") as handle:
        owner = {row["address"]: row["cex_name"] for row in csv.DictReader(handle)}
    labels = ExchangeLabels.from_csv(DUNE)
    kinds: dict[FlowKind, int] = dict.fromkeys(FlowKind, 0)
    checked = 0
    for row in recorded_txs():
        ins = {owner[i["address"]] for i in row["vin_addresses"] if i["address"] in owner}
        outs = [o for o in row["vout_addresses"] if o["address"] in owner]
        transfer = label_transfer(as_chain_tx(row), labels)
        kinds[transfer.kind] += 1
        if not ins and not outs:
            assert transfer.kind is FlowKind.OTHER
        elif not ins:  # a deposit: the amount is what reached exchange addresses
            assert transfer.kind is FlowKind.INFLOW
            assert transfer.amount_btc == pytest.approx(sum(o["value"] for o in outs), abs=1e-8)
            assert transfer.to_exchange in {owner[o["address"]] for o in outs}
            checked += 1
        elif not outs:  # a withdrawal with no change back: every output left the exchange
            assert transfer.kind is FlowKind.OUTFLOW
            total = sum(o["value"] for o in row["vout_addresses"])
            assert transfer.amount_btc == pytest.approx(total, abs=1e-8)
            assert transfer.from_exchange in ins
            checked += 1
    # Counted beforehand from the two files with the same set arithmetic: 33 deposits and 4
    # withdrawals without change back (65 more spend exchange inputs to exchange outputs).
    assert kinds[FlowKind.INFLOW] == 33
    assert checked == 37


def test_change_back_to_the_exchange_is_an_outflow_of_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("address,exchange\nhot1,Binance\nhot2,Binance\ncold,Kraken\n")
    labels = ExchangeLabels.from_csv(path)
    withdrawal = ChainTx(
        "a" * 64,
        WHEN,
        None,
        (TxOutput("hot1", 900),),
        (TxOutput("user", 600), TxOutput("hot2", 300)),
    )
    moved = label_transfer(withdrawal, labels)
    assert (moved.kind, moved.amount_btc, moved.from_exchange) == (
        FlowKind.OUTFLOW,
        6e-6,
        "Binance",
    )
    between = ChainTx("b" * 64, WHEN, None, (TxOutput("hot1", 900),), (TxOutput("cold", 900),))
    internal = label_transfer(between, labels)
    assert (internal.kind, internal.to_exchange) == (FlowKind.EXCHANGE_INTERNAL, "Kraken")
    no_address = ChainTx("c" * 64, WHEN, None, (TxOutput(None, 5),), (TxOutput(None, 5),))
    assert label_transfer(no_address, labels).kind is FlowKind.OTHER


def test_a_bad_row_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text("address,exchange\nhot1,Binance\n,Kraken\nhot3,\n")
    labels = ExchangeLabels.from_csv(path)
    assert len(labels) == 1
    assert labels.bad is not None
    assert (labels.bad.count, labels.bad.first_line) == (2, 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("addr,owner\nx,y\n", "needs the columns address,exchange"),
        ("address,exchange\n", "labels no address"),
    ],
)
def test_an_unusable_address_file_is_a_config_error(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        ExchangeLabels.from_csv(path)
    with pytest.raises(ConfigError, match="cannot read"):
        ExchangeLabels.from_csv(tmp_path / "absent.csv")
