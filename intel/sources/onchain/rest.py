"""Blockchain.com's Data API over httpx: the newest block and whole blocks, for backfill and as
the fallback while the websocket is down.

One try per call (a `SourceError` saying why); the caller runs each under the source's
`SourceGuard`, which owns the rate limit (the API throttles per IP), retries and the breaker.
A block the API does not know (HTTP 404: reorged away or not yet indexed) is a
`PermanentSourceError`: asking again will not make it appear.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from intel.config import BlockchainComConfig
from intel.errors import PermanentSourceError, SourceError
from intel.sources.base import retry_after_s
from intel.sources.onchain.wire import BlockRef, ChainBlock, parse_block, parse_block_ref
from intel.sources.replay_files import RECORD_ERRORS

__all__ = ["NAME", "BlockchainComRest"]

NAME = "Blockchain.com API"
T = TypeVar("T")


class BlockchainComRest:
    def __init__(
        self, config: BlockchainComConfig, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._config = config
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            base_url=self._config.rest_url,
            timeout=self._config.timeout_s,
            transport=self._transport,
            headers={"Accept": "application/json"},
        )

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def latest_block(self) -> BlockRef:
        body = await self._get_json("/latestblock", {})
        return _parsed(parse_block_ref, body, "latest block")

    async def block(self, block_hash: str) -> ChainBlock:
        body = await self._get_json(f"/rawblock/{block_hash}", {"format": "json"})
        return _parsed(parse_block, body, f"block {block_hash[:16]}…")

    async def _get_json(self, path: str, params: dict[str, str]) -> Any:
        if self._client is None:
            raise RuntimeError("BlockchainComRest used before start()")
        timeout_s = self._config.timeout_s
        try:
            async with asyncio.timeout(timeout_s):  # the whole call, slow drips included
                response = await self._client.get(path, params=params)
                response.raise_for_status()
                content = await response.aread()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise SourceError(f"{NAME}: timed out after {timeout_s:g} s") from exc
        except httpx.HTTPStatusError as exc:
            raise _status_error(exc.response, path) from exc
        except httpx.HTTPError as exc:
            raise SourceError(f"{NAME}: unreachable ({type(exc).__name__})") from exc
        try:
            return json.loads(content)
        except ValueError as exc:
            raise SourceError(f"{NAME}: malformed JSON from {path}") from exc


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
