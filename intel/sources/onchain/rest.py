"""Blockchain.com's Data API over httpx: the newest block and whole blocks, for backfill and as
the fallback while the websocket is down.

One try per call (a `SourceError` saying why); the caller runs each under the source's
`SourceGuard`, which owns the rate limit (the API throttles per IP), retries and the breaker.
A block the API does not know (HTTP 404: reorged away or not yet indexed) is a
`PermanentSourceError`: asking again will not make it appear.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from intel.config import BlockchainComConfig
from intel.errors import PermanentSourceError, SourceError
from intel.sources.base import retry_after_s
from intel.sources.http_json import JsonApi
from intel.sources.onchain.wire import BlockRef, ChainBlock, parse_block, parse_block_ref
from intel.sources.replay_files import RECORD_ERRORS

__all__ = ["NAME", "BlockchainComRest"]

NAME = "Blockchain.com API"
T = TypeVar("T")


class BlockchainComRest:
    def __init__(
        self, config: BlockchainComConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._api = JsonApi(NAME, config.rest_url, config.timeout_s, _status_error, transport)

    async def start(self) -> None:
        await self._api.start()

    async def close(self) -> None:
        await self._api.close()

    async def latest_block(self) -> BlockRef:
        body = await self._get_json("/latestblock", {})
        return _parsed(parse_block_ref, body, "latest block")

    async def block(self, block_hash: str) -> ChainBlock:
        body = await self._get_json(f"/rawblock/{block_hash}", {"format": "json"})
        return _parsed(parse_block, body, f"block {block_hash[:16]}…")

    async def _get_json(self, path: str, params: dict[str, str]) -> Any:
        return await self._api.get_json(path, params, where=f"from {path}")


def _parsed(parse: Callable[[Any], T], body: Any, what: str) -> T:
    try:
        return parse(body)
    except RECORD_ERRORS as exc:
        raise SourceError(f"{NAME}: unreadable {what} ({exc})") from exc


def _status_error(response: httpx.Response, path: str) -> SourceError:
    status = response.status_code
    if status == 404:
        return PermanentSourceError(f"{NAME}: {path} not found (HTTP 404)")
    wait = retry_after_s(response.headers.get("Retry-After"))
    if status == 429:
        return SourceError(f"{NAME}: rate limited (HTTP 429)", retry_after_s=wait)
    if status >= 500:
        return SourceError(f"{NAME}: server error (HTTP {status})", retry_after_s=wait)
    return SourceError(f"{NAME}: request refused (HTTP {status})")
