"""A fake Whale Alert REST API (`GET /v1/transactions`) on 127.0.0.1.

It answers with the documented body `{"result": "success", "cursor", "count", "transactions"}`
holding the given transactions whose `timestamp` is at or after the `start` parameter, `page_size`
at a time (the `cursor` names the next page), or the recorded error body
`{"result": "error", "message": "invalid api_key"}` with HTTP 401 for any other key.
`status` makes every request fail with that HTTP status; `requests` counts them.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from aiohttp import web

from intel.sources.fakes.server import serve_on_loopback

__all__ = ["FakeWhaleAlert"]


class FakeWhaleAlert:
    def __init__(
        self, transactions: list[dict[str, Any]], api_key: str, page_size: int = 2
    ) -> None:
        self.transactions = transactions
        self.api_key = api_key
        self.page_size = page_size
        self.status: int | None = None
        self.requests = 0
        self.seen_params: list[dict[str, str]] = []
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    async def __aenter__(self) -> FakeWhaleAlert:
        app = web.Application()
        app.router.add_get("/v1/transactions", self._transactions)
        self._runner, self._port = await serve_on_loopback(app, shutdown_timeout_s=1.0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _transactions(self, request: web.Request) -> web.Response:
        self.requests += 1
        params = dict(request.query)
        self.seen_params.append(params)
        if self.status is not None:
            return web.json_response({"result": "error", "message": "fault"}, status=self.status)
        if params.get("api_key") != self.api_key:
            refusal = {"result": "error", "message": "invalid api_key"}  # the recorded body
            return web.json_response(refusal, status=401)
        start = int(params.get("start", "0"))
        matching = [t for t in self.transactions if int(t["timestamp"]) >= start]
        offset = int(params.get("cursor") or 0)
        page = matching[offset : offset + self.page_size]
        body: dict[str, Any] = {"result": "success", "count": len(page), "transactions": page}
        if page:
            body["cursor"] = str(offset + len(page))
        return web.json_response(body)
