"""Blockchain.com's wire format (Data API and websocket), parsed at the edge into domain types.

Shapes (documented; see `../shared/OFFLINE-TESTING.md`): a transaction has `hash`, `time` (Unix s,
when Blockchain.com first saw it), `block_height` (absent or null while unconfirmed),
`inputs[].prev_out.{addr, value}` and `out[].{addr, value}`, values in satoshis; a coinbase input
has no `prev_out` and an OP_RETURN output no `addr`. `GET /rawblock/<hash>` is the block header
fields with `tx: [transaction, ...]`; `GET /latestblock` is `{hash, time, height, block_index}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from intel.sources.onchain.labels import ChainTx, TxOutput
from intel.sources.replay_files import RECORD_ERRORS, BadRecords
from intel.timeutil import from_ms

__all__ = ["BlockRef", "ChainBlock", "parse_block", "parse_block_ref", "parse_tx"]

_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block by its header: enough to know whether it is new and to fetch it."""

    hash: str
    height: int
    time: datetime


@dataclass(frozen=True, slots=True)
class ChainBlock:
    ref: BlockRef
    prev_hash: str
    txs: tuple[ChainTx, ...]
    bad: BadRecords  # transactions of this block that could not be read


def _hash(value: Any, field: str) -> str:
    if not isinstance(value, str) or not _HASH.fullmatch(value):
        raise ValueError(f"{field} is not a 64-hex hash")
    return value


def _seconds(value: Any, field: str) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{field} is not a Unix time")
    return from_ms(value * 1000)


def _satoshis(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"value {value!r} is not a satoshi amount")
    return value


def _output(item: Any) -> TxOutput:
    address = item.get("addr")
    if address is not None and not isinstance(address, str):
        raise TypeError("addr must be text")
    return TxOutput(address=address, value_sat=_satoshis(item["value"]))


def parse_tx(body: Any, seen_at: datetime | None = None) -> ChainTx:
    """One transaction; `seen_at` defaults to its own `time` (Blockchain.com's first sight).

    ValueError, KeyError or TypeError when it is not the documented shape, or has no output.
    """
    if not isinstance(body, dict):
        raise TypeError(f"a transaction must be an object, not {type(body).__name__}")
    txid = _hash(body["hash"], "hash")
    inputs = tuple(_output(i["prev_out"]) for i in body["inputs"] if i.get("prev_out"))
    outputs = tuple(_output(item) for item in body["out"])
    if not outputs:
        raise ValueError(f"transaction {txid[:12]}… has no outputs")
    height = body.get("block_height")
    if height is not None and (isinstance(height, bool) or not isinstance(height, int)):
        raise TypeError("block_height must be an integer")
    return ChainTx(
        txid=txid,
        seen_at=seen_at or _seconds(body["time"], "time"),
        block_height=height,
        inputs=inputs,
        outputs=outputs,
    )


def parse_block_ref(body: Any) -> BlockRef:
    """`/latestblock`, a websocket `block` message's `x`, or a raw block's header."""
    if not isinstance(body, dict):
        raise TypeError("a block must be an object")
    height = body["height"]
    if isinstance(height, bool) or not isinstance(height, int) or height < 0:
        raise ValueError("height is not a block height")
    return BlockRef(_hash(body["hash"], "hash"), height, _seconds(body["time"], "time"))


def parse_block(body: Any) -> ChainBlock:
    """A `/rawblock` body; each transaction counts as first seen at the block's time. A
    transaction that cannot be read is skipped and counted in `bad`; a bad header raises."""
    ref = parse_block_ref(body)
    prev_hash = _hash(body["prev_block"], "prev_block")
    raw_txs = body["tx"]
    if not isinstance(raw_txs, list):
        raise TypeError("tx must be a list")
    bad = BadRecords(f"block {ref.height}", unit="transaction")
    txs: list[ChainTx] = []
    for position, raw in enumerate(raw_txs, start=1):
        try:
            txs.append(parse_tx(raw, seen_at=ref.time))
        except RECORD_ERRORS as exc:
            bad.skip(position, exc)
    return ChainBlock(ref, prev_hash, tuple(txs), bad)
