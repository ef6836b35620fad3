"""One JSON-over-HTTP API for a live source: an httpx client opened and closed with the source,
and a GET whose every failure is a `SourceError` saying why.

One try per call: the resilience layer around each source owns retries, rate limits and the
breaker (the httpx error stays the `SourceError`'s cause). How an HTTP error status reads is the
API's own (`status_error`): which codes are permanent, whether `Retry-After` is kept.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from intel.errors import SourceError

__all__ = ["JsonApi"]


class JsonApi:
    """GETs against `base_url`, each bounded as a whole by `timeout_s` (slow drips included).

    `name` starts every error message; `status_error(response, path)` makes the error of an HTTP
    error status. `transport` replaces httpx's own (tests, proxies)."""

    def __init__(
        self,
        name: str,
        base_url: str,
        timeout_s: float,
        status_error: Callable[[httpx.Response, str], SourceError],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._name = name
        self._base_url = base_url
        self._timeout_s = timeout_s
        self._status_error = status_error
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            base_url=self._base_url,
            timeout=self._timeout_s,
            transport=self._transport,
            headers={"Accept": "application/json"},
        )

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def get_json(self, path: str, params: dict[str, str], *, where: str) -> Any:
        """The decoded JSON body of `GET path?params`. SourceError on a timeout, an unreachable
        host, an error status (as `status_error` says) or a body that is not JSON ("malformed
        JSON `where`"); RuntimeError before `start()`."""
        if self._client is None:
            raise RuntimeError(f"{self._name} used before start()")
        try:
            # httpx's timeout is per phase; this bounds the whole call, slow drips included.
            async with asyncio.timeout(self._timeout_s):
                response = await self._client.get(path, params=params)
                response.raise_for_status()
                content = await response.aread()
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise SourceError(f"{self._name}: timed out after {self._timeout_s:g} s") from exc
        except httpx.HTTPStatusError as exc:
            raise self._status_error(exc.response, path) from exc
        except httpx.HTTPError as exc:
            raise SourceError(f"{self._name}: unreachable ({type(exc).__name__})") from exc
        try:
            return json.loads(content)
        except ValueError as exc:  # JSONDecodeError and undecodable bytes alike
            raise SourceError(f"{self._name}: malformed JSON {where}") from exc
