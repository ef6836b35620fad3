"""Exchange address labels and the labelling of one Bitcoin transaction against them.

The address file is a CSV with the columns `address` and `exchange` (`cex_name` or `label` are
read as `exchange` too, so public label sets load with their own header). A row that cannot be
read is skipped and counted, never fatal (the record pattern of `intel.sources.base`).

How a transaction is labelled (UTXO: coins move from inputs to outputs, change included):
- its *sender* is the exchange holding the most labelled input value, if any input is labelled;
- sender known: OUTFLOW when more value goes to unlabelled outputs than back to labelled ones
  (a withdrawal, change returning to the exchange), amount = the unlabelled outputs; otherwise
  EXCHANGE_INTERNAL (a consolidation or an exchange-to-exchange move), amount = the labelled ones;
- no sender, some output labelled: INFLOW (a deposit), amount = the labelled outputs, to the
  exchange receiving the most;
- else OTHER, amount = every output.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import structlog

from intel.errors import ConfigError
from intel.sources.replay_files import RECORD_ERRORS, BadRecords

__all__ = [
    "NO_LABELS",
    "ChainTx",
    "ExchangeLabels",
    "FlowKind",
    "LabelledTransfer",
    "TxOutput",
    "label_transfer",
]

log = structlog.get_logger(__name__)

# What status and every live signal say when no address file is configured.
NO_LABELS = "no exchange labels — whale score unavailable"
SATS_PER_BTC = 100_000_000
_EXCHANGE_COLUMNS = ("exchange", "cex_name", "label")


class FlowKind(StrEnum):
    INFLOW = "inflow"  # into an exchange: coins arriving to be sold
    OUTFLOW = "outflow"  # out of an exchange: coins withdrawn to be held
    EXCHANGE_INTERNAL = "exchange_internal"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class TxOutput:
    """One input's spent output or one output: its address (None: OP_RETURN, non-standard)."""

    address: str | None
    value_sat: int


@dataclass(frozen=True, slots=True)
class ChainTx:
    """A Bitcoin transaction as the feed or a block delivered it.

    `seen_at` is when this process first saw it: the mempool arrival time for a transaction
    from the feed, the block's time for one first met in a block (backfill, a missed message).
    """

    txid: str
    seen_at: datetime
    block_height: int | None
    inputs: tuple[TxOutput, ...]
    outputs: tuple[TxOutput, ...]


@dataclass(frozen=True, slots=True)
class LabelledTransfer:
    """A transaction read against the labels; `amount_btc` is the part that kind moved."""

    txid: str
    seen_at: datetime
    kind: FlowKind
    amount_btc: float
    from_exchange: str | None
    to_exchange: str | None


class ExchangeLabels:
    """Address → exchange name, from the configured CSV file."""

    def __init__(self, by_address: dict[str, str], bad: BadRecords | None = None) -> None:
        self._by_address = by_address
        self.bad = bad

    def __len__(self) -> int:
        return len(self._by_address)

    def exchange_of(self, address: str | None) -> str | None:
        return self._by_address.get(address) if address else None

    @classmethod
    def from_csv(cls, path: Path) -> ExchangeLabels:
        """ConfigError when the file cannot be read, lacks the columns or labels nothing."""
        bad = BadRecords(str(path))
        labels: dict[str, str] = {}
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle)
                column = _exchange_column(path, reader.fieldnames)
                for line, row in enumerate(reader, start=2):
                    try:
                        address, exchange = row["address"].strip(), row[column].strip()
                        if not address or not exchange:
                            raise ValueError("empty address or exchange")
                    except RECORD_ERRORS as exc:
                        bad.skip(line, exc)
                        continue
                    labels[address] = exchange
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise ConfigError(f"onchain.address_file: cannot read {path}: {exc}") from None
        if not labels:
            raise ConfigError(f"onchain.address_file: {path} labels no address")
        if bad.count:
            log.warning("address_rows_skipped", note=bad.note())
        return cls(labels, bad)


def _exchange_column(path: Path, fieldnames: object) -> str:
    names = list(fieldnames) if isinstance(fieldnames, list | tuple) else []
    found = next((name for name in _EXCHANGE_COLUMNS if name in names), None)
    if "address" not in names or found is None:
        raise ConfigError(
            f"onchain.address_file: {path} needs the columns address,exchange (found {names})"
        )
    return found


def label_transfer(tx: ChainTx, labels: ExchangeLabels) -> LabelledTransfer:
    """`tx` read against `labels` (the rules are in the module docstring)."""
    sender = _top_exchange(tx.inputs, labels)
    to_exchange: dict[str, int] = defaultdict(int)
    unlabelled_sat = 0
    for output in tx.outputs:
        exchange = labels.exchange_of(output.address)
        if exchange is None:
            unlabelled_sat += output.value_sat
        else:
            to_exchange[exchange] += output.value_sat
    labelled_sat = sum(to_exchange.values())
    receiver = max(to_exchange, key=lambda name: to_exchange[name]) if to_exchange else None
    if sender is not None and unlabelled_sat > labelled_sat:
        kind, amount_sat, receiver = FlowKind.OUTFLOW, unlabelled_sat, None
    elif sender is not None:
        kind, amount_sat = FlowKind.EXCHANGE_INTERNAL, labelled_sat
    elif receiver is not None:
        kind, amount_sat = FlowKind.INFLOW, labelled_sat
    else:
        kind, amount_sat = FlowKind.OTHER, unlabelled_sat
    return LabelledTransfer(
        txid=tx.txid,
        seen_at=tx.seen_at,
        kind=kind,
        amount_btc=amount_sat / SATS_PER_BTC,
        from_exchange=sender,
        to_exchange=receiver,
    )


def _top_exchange(spent: tuple[TxOutput, ...], labels: ExchangeLabels) -> str | None:
    value_by_exchange: dict[str, int] = defaultdict(int)
    for item in spent:
        exchange = labels.exchange_of(item.address)
        if exchange is not None:
            value_by_exchange[exchange] += item.value_sat
    if not value_by_exchange:
        return None
    return max(value_by_exchange, key=lambda name: value_by_exchange[name])
