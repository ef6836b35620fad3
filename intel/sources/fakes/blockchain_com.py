"""A fake Blockchain.com (Data API and websocket feed) on 127.0.0.1, serving recorded blocks.

What it answers, and from what: `tests/fixtures/blockchain_com/blocks.json`, real Bitcoin
transactions re-serialised into Blockchain.com's block format under synthetic block headers (the
fixture's `_provenance` says so), or any blocks passed in.
- `GET /latestblock`: the header of the block at `tip` (the chain served is `blocks[:tip + 1]`).
- `GET /rawblock/<hash>`: that block with its transactions; 404 for an unknown or `missing` one.
- websocket `/inv`: answers `{"op": "ping"}` with `{"op": "pong"}`; a test pushes `utx` and
  `block` messages to every subscribed socket with `push_tx` and `push_block`.
`faults` can be changed between requests; `requests` counts REST requests per route.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

from intel.sources.fakes.server import serve_on_loopback

__all__ = ["BLOCKS_FILE", "BlockFaults", "FakeBlockchainCom", "load_blocks"]

BLOCKS_FILE = (
    Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "blockchain_com" / "blocks.json"
)


def load_blocks(path: Path = BLOCKS_FILE) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["blocks"]
    return blocks


@dataclass
class BlockFaults:
    """What goes wrong; all off by default."""

    latency_s: float = 0.0  # added before every REST answer
    status: int | None = None  # every REST request answered with this HTTP status
    retry_after_s: int | None = None  # Retry-After sent with `status`
    failures_left: int | None = None  # `status` only for this many requests (None: all)
    malformed_json: bool = False  # REST bodies cut off mid-JSON
    missing: set[str] = field(default_factory=set)  # block hashes answered 404 (reorged away)
    ws_refuse: bool = False  # websocket upgrades answered 503
    ws_mute: bool = False  # pings go unanswered (a socket that stays open but says nothing)


def header(block: dict[str, Any]) -> dict[str, Any]:
    """The block's `/latestblock` (and websocket `block` message) shape."""
    keys = ("hash", "time", "block_index", "height")
    return {key: block[key] for key in keys} | {"txIndexes": []}


class FakeBlockchainCom:
    """`async with FakeBlockchainCom() as fake:`, then point the client at `fake.rest_url` and
    `fake.ws_url`."""

    def __init__(self, blocks: list[dict[str, Any]] | None = None, tip: int = 0) -> None:
        self.blocks = blocks if blocks is not None else load_blocks()
        self.tip = tip
        self.faults = BlockFaults()
        self.requests: Counter[str] = Counter()
        self.ws_connections = 0
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self._port = 0

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/inv"

    @property
    def subscribed(self) -> int:
        return len(self._sockets)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/latestblock", self._latest)
        app.router.add_get("/rawblock/{block}", self._rawblock)
        app.router.add_get("/inv", self._websocket)
        self._runner, self._port = await serve_on_loopback(app, shutdown_timeout_s=1.0)

    async def close(self) -> None:
        for socket in list(self._sockets):
            await socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeBlockchainCom:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def push_tx(self, tx: dict[str, Any]) -> None:
        """Announce an unconfirmed transaction (as the mempool would), block fields removed."""
        unconfirmed = {k: v for k, v in tx.items() if k != "block_height"}
        await self._broadcast({"op": "utx", "x": unconfirmed})

    async def push_block(self, index: int) -> None:
        """Make `blocks[index]` the tip and announce it."""
        self.tip = index
        await self._broadcast({"op": "block", "x": header(self.blocks[index])})

    async def push_raw(self, text: str) -> None:
        for socket in list(self._sockets):
            await socket.send_str(text)

    async def drop_sockets(self) -> None:
        for socket in list(self._sockets):
            await socket.close()

    async def _broadcast(self, message: dict[str, Any]) -> None:
        await self.push_raw(json.dumps(message))

    async def _fault(self) -> web.Response | None:
        faults = self.faults
        if faults.latency_s:
            await asyncio.sleep(faults.latency_s)
        if faults.status is not None and faults.failures_left != 0:
            if faults.failures_left is not None:
                faults.failures_left -= 1
            headers = {"Retry-After": str(faults.retry_after_s)} if faults.retry_after_s else {}
            return web.json_response({"error": "fault"}, status=faults.status, headers=headers)
        return None

    def _body(self, body: dict[str, Any]) -> web.Response:
        text = json.dumps(body)
        if self.faults.malformed_json:
            text = text[: len(text) // 2]
        return web.Response(text=text, content_type="application/json")

    async def _latest(self, request: web.Request) -> web.Response:
        self.requests["latestblock"] += 1
        return await self._fault() or self._body(header(self.blocks[self.tip]))

    async def _rawblock(self, request: web.Request) -> web.Response:
        self.requests["rawblock"] += 1
        if (fault := await self._fault()) is not None:
            return fault
        wanted = request.match_info["block"]
        served = self.blocks[: self.tip + 1]
        block = next((b for b in served if b["hash"] == wanted), None)
        if block is None or wanted in self.faults.missing:
            return web.json_response({"error": "Block not found"}, status=404)
        return self._body(block)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if self.faults.ws_refuse:
            return web.Response(status=503)
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.ws_connections += 1
        try:
            async for message in socket:
                if message.type is not WSMsgType.TEXT:
                    break
                op = json.loads(message.data).get("op")
                if op in ("unconfirmed_sub", "blocks_sub"):
                    self._sockets.add(socket)
                elif op == "ping" and not self.faults.ws_mute:
                    await socket.send_str(json.dumps({"op": "pong"}))
        finally:
            self._sockets.discard(socket)
        return socket
