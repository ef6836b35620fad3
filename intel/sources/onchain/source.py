"""Live whale flows from Blockchain.com: its websocket feed of new transactions and blocks, the
REST API for backfill and while the socket is down, labelled against the exchange address file.

At start the stored window is read back and a background task backfills the newest
`backfill_blocks` blocks over REST, then follows the websocket (`unconfirmed_sub`, `blocks_sub`).
A `block` message fetches that block over REST (its transactions the socket may have missed),
walking back over blocks never seen (a gap or a reorg) up to `backfill_blocks`. When the socket
drops or goes quiet past `stale_s`, the task reconnects with exponential backoff and, meanwhile,
polls `/latestblock` every `rest_poll_s`. Every REST call runs under the source's `SourceGuard`
(rate limit, retries, breaker). Memory: only counted whale transfers and the window's hours are
kept, plus the last few block hashes; other transactions are dropped as soon as they are read.

A transaction of an orphaned block stays counted: it was broadcast, and nearly always confirms
in the block that replaces it (where its txid finds it counted already).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime

import aiohttp
import structlog

from intel.config import OnChainConfig
from intel.errors import NotConfiguredError, PermanentSourceError, SourceError
from intel.models import WhaleFlows
from intel.sources.onchain.labels import ChainTx, ExchangeLabels, FlowKind, label_transfer
from intel.sources.onchain.large import LargeTransfer, LargeTransferListener, TransferListeners
from intel.sources.onchain.rest import NAME, BlockchainComRest
from intel.sources.onchain.window import FlowWindow, FlowWindowStore, hour_floor_ms
from intel.sources.onchain.wire import BlockRef, ChainBlock, parse_block_ref, parse_tx
from intel.sources.replay_files import RECORD_ERRORS, BadRecords, skipped_notes
from intel.sources.resilience import SourceGuard
from intel.symbols import base_asset
from intel.timeutil import to_ms, utcnow

__all__ = ["PROVIDER", "BlockchainComWhaleSource", "PriceUsd"]

log = structlog.get_logger(__name__)

PROVIDER = "blockchain_com"
ASSET = "BTC"
PriceUsd = Callable[[datetime], Awaitable[float]]  # BTC's USD price at a moment
KEPT_BLOCK_HASHES = 64


class SocketQuiet(Exception):
    """Nothing came over the websocket for `stale_s`: treated as a dropped connection."""


class BlockchainComWhaleSource:
    """`WhaleSource` for BTC; other assets are refused, or served BTC as a proxy when allowed."""

    def __init__(
        self,
        config: OnChainConfig,
        *,
        window_h: int,
        labels: ExchangeLabels,
        rest: BlockchainComRest,
        guard: SourceGuard,
        price_usd: PriceUsd,
        store: FlowWindowStore | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._config = config
        self._window_h = window_h
        self._labels = labels
        self._rest = rest
        self._guard = guard
        self._price_usd = price_usd
        self._clock = clock
        self.window = FlowWindow(PROVIDER, ASSET, window_h + 1, store)
        self.credit = "whale flows: Blockchain.com"
        self._task: asyncio.Task[None] | None = None
        self._blocks: OrderedDict[str, int] = OrderedDict()  # seen block hash -> height
        self._covered_from: datetime | None = None
        self._heard_at: datetime | None = None
        self._problems: dict[str, str] = {}  # "rest" | "websocket" | "price" -> the last one
        self._last_poll_s = float("-inf")
        self._bad = BadRecords("Blockchain.com feed", unit="message")
        self._marked_hour_ms: int | None = None  # the hour up to which the window is marked
        self._socket_delivered = False  # a message came over the current connection
        self._listeners = TransferListeners()
        self._backfilled = asyncio.Event()  # set once the first backfill ended, data or not

    def add_listener(self, listener: LargeTransferListener) -> None:
        """`listener` hears of each whale transfer before it is counted (`LargeTransferFeed`)."""
        self._listeners.add_listener(listener)

    async def start(self) -> None:
        await self._rest.start()
        await self.window.load(self._clock())
        self._task = asyncio.create_task(self._run(), name="blockchain_com_feed")

    async def close(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._rest.close()

    def skipped_records(self, symbol: str) -> tuple[str, ...]:
        return skipped_notes(self._bad, self._labels.bad)

    async def flows(self, symbol: str, now: datetime, window_h: int) -> WhaleFlows:
        asset = base_asset(symbol)
        notes: tuple[str, ...] = ()
        if asset != ASSET:
            if not self._config.btc_proxy_for_other_assets:
                raise NotConfiguredError(
                    f"no whale-flow provider covers {asset} (Blockchain.com follows Bitcoin "
                    "only; Whale Alert, with WHALE_ALERT_API_KEY, covers ETH); set "
                    "onchain.btc_proxy_for_other_assets to use BTC flows as a proxy"
                )
            notes = (f"BTC exchange flows stand in as a market-wide proxy for {asset}",)
        if self._heard_at is None:
            await self._first_backfill()
        if self._heard_at is None:
            why = "; ".join(self.problems) or "connecting"
            raise SourceError(f"{NAME}: no on-chain data yet ({why})")
        as_of_ms = min(hour_floor_ms(to_ms(now)), hour_floor_ms(to_ms(self._heard_at)))
        return self.window.flows(as_of_ms, window_h, self.credit, notes)

    async def _first_backfill(self) -> None:
        """Wait, at most `blockchain_com.timeout_s`, for the backfill started by `start` to end:
        a one-shot `signal --live` asks right after `start` and would otherwise always be told
        "connecting". The caller's own deadline (the pipeline's) still bounds the wait."""
        if self._task is None or self._task.done():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._config.blockchain_com.timeout_s):
                await self._backfilled.wait()

    async def _run(self) -> None:
        try:
            await self._backfill()
        finally:
            self._backfilled.set()
        attempt = 0
        while True:
            self._socket_delivered = False
            try:
                await self._listen()
            except (aiohttp.ClientError, OSError, TimeoutError, SocketQuiet) as exc:
                self._failed("websocket", f"websocket down ({type(exc).__name__})")
            except Exception:  # a bug must not end the feed for good: log it, back off, go on
                log.exception("onchain_feed_failed", source=NAME)
                self._failed("websocket", "feed error")
            if self._socket_delivered:
                attempt = 0  # it was working: a fresh drop starts the backoff over
            cfg = self._config.blockchain_com
            delay_s = min(cfg.reconnect_max_s, cfg.reconnect_initial_s * 2**attempt)
            attempt += 1
            await self._fallback_for(delay_s)

    async def _backfill(self) -> None:
        if not self._config.backfill_blocks:
            return
        try:
            latest = await self._guard.call(self._rest.latest_block)
            await self._follow(latest, self._config.backfill_blocks)
        except SourceError as exc:
            self._failed("rest", f"backfill failed: {exc}")
        except Exception:  # a bug or a store error must not end the feed: the socket goes on
            log.exception("onchain_backfill_failed", source=NAME)
            self._failed("rest", "backfill error")

    async def _fallback_for(self, delay_s: float) -> None:
        """Wait `delay_s` before reconnecting, polling the newest block over REST meanwhile."""
        loop = asyncio.get_running_loop()
        end_s = loop.time() + delay_s
        while (left_s := end_s - loop.time()) > 0:
            if loop.time() - self._last_poll_s >= self._config.blockchain_com.rest_poll_s:
                self._last_poll_s = loop.time()
                try:
                    await self._follow(await self._guard.call(self._rest.latest_block), None)
                except SourceError as exc:
                    self._failed("rest", str(exc))
                except Exception:  # as in `_backfill`: log it, poll again next time
                    log.exception("onchain_poll_failed", source=NAME)
                    self._failed("rest", "poll error")
            await asyncio.sleep(min(left_s, self._config.blockchain_com.rest_poll_s))

    async def _listen(self) -> None:
        cfg = self._config.blockchain_com
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(cfg.ws_url, timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws,
        ):
            for op in ("unconfirmed_sub", "blocks_sub"):
                await ws.send_json({"op": op})
            loop = asyncio.get_running_loop()
            last_message_s = loop.time()
            while True:
                try:
                    message = await ws.receive(timeout=cfg.stale_s / 3)
                except TimeoutError:
                    if loop.time() - last_message_s > cfg.stale_s:
                        raise SocketQuiet from None
                    await ws.send_json({"op": "ping"})  # its pong counts as a message
                    continue
                if message.type is not aiohttp.WSMsgType.TEXT:
                    raise aiohttp.ClientConnectionError(f"socket ended ({message.type.name})")
                last_message_s, self._socket_delivered = loop.time(), True
                await self._on_message(message.data)

    async def _on_message(self, text: str) -> None:
        try:
            message = json.loads(text)
            op = message["op"]
            item: ChainTx | BlockRef | None = None
            if op == "utx":
                item = parse_tx(message["x"], seen_at=self._clock())
            elif op == "block":
                item = parse_block_ref(message["x"])
        except (*RECORD_ERRORS, json.JSONDecodeError) as exc:
            self._bad.skip(self._bad.count + 1, exc)
            return
        await self._heard()  # a pong too: the socket is alive
        if isinstance(item, ChainTx):
            await self._ingest(item)
        elif isinstance(item, BlockRef):
            try:
                await self._follow(item, self._config.backfill_blocks)
            except SourceError as exc:
                self._failed("rest", str(exc))

    async def _follow(self, tip: BlockRef, max_new: int | None) -> None:
        """Fetch `tip` and the blocks before it never seen, at most `max_new` (None: as many as
        `backfill_blocks`), then ingest them oldest first."""
        limit = self._config.backfill_blocks if max_new is None else max_new
        fetched: list[ChainBlock] = []
        block_hash = tip.hash
        while block_hash not in self._blocks and len(fetched) < max(limit, 1):
            try:
                block = await self._guard.call(functools.partial(self._rest.block, block_hash))
            except PermanentSourceError as exc:
                if not fetched:
                    raise
                # An older block the API no longer knows (reorged away): keep the newer ones.
                self._failed("rest", f"block before height {fetched[-1].ref.height} skipped: {exc}")
                break
            fetched.append(block)
            block_hash = block.prev_hash
        if fetched and self._covered_from is None:
            self._covered_from = fetched[-1].ref.time
        for block in reversed(fetched):
            for tx in block.txs:
                await self._ingest(tx)
            self._remember(block)
        await self._heard()

    def _remember(self, block: ChainBlock) -> None:
        self._blocks[block.ref.hash] = block.ref.height
        while len(self._blocks) > KEPT_BLOCK_HASHES:
            self._blocks.popitem(last=False)
        if block.bad.count:
            log.warning("block_transactions_skipped", note=block.bad.note())

    async def _ingest(self, tx: ChainTx) -> None:
        if self.window.counted(tx.txid):
            return
        transfer = label_transfer(tx, self._labels)
        if transfer.kind not in (FlowKind.INFLOW, FlowKind.OUTFLOW):
            return
        if transfer.amount_btc < self._config.min_btc:
            return
        try:
            price = await self._price_usd(tx.seen_at)
        except SourceError as exc:  # not counted: its dollar size is unknown
            self._failed("price", f"whale transfer {tx.txid[:12]}… skipped, no BTC price: {exc}")
            return
        usd = transfer.amount_btc * price
        if usd < self._config.min_usd:
            return
        inflow = transfer.kind is FlowKind.INFLOW
        exchange = transfer.to_exchange if inflow else transfer.from_exchange
        await self._listeners.tell(
            LargeTransfer(
                PROVIDER, tx.txid, ASSET, inflow, transfer.amount_btc, usd, exchange, tx.seen_at
            )
        )
        await self.window.add(tx.txid, tx.seen_at, transfer.amount_btc, usd, inflow)

    async def _heard(self) -> None:
        """Something arrived: the feed (or REST) is alive up to now; coverage continues unless
        the last sign of life is older than `stale_s` (then it starts again from now)."""
        now = self._clock()
        quiet_ms = to_ms(now) - to_ms(self._heard_at) if self._heard_at else None
        if self._covered_from is None or (
            quiet_ms is not None and quiet_ms > self._config.blockchain_com.stale_s * 1000
        ):
            self._covered_from = now
        self._heard_at = now
        hour_ms = hour_floor_ms(to_ms(now))
        if hour_ms != self._marked_hour_ms:  # once an hour, not once a message
            self._marked_hour_ms = hour_ms
            await self.window.mark_watched(self._covered_from, now)
            await self.window.prune(now)

    @property
    def problems(self) -> tuple[str, ...]:
        """The last problem of each part (REST, websocket, price) since start, for the reason
        when there is no data yet and for the log."""
        return tuple(self._problems.values())

    def _failed(self, part: str, error: str) -> None:
        self._problems[part] = error
        log.info("onchain_feed_problem", source=NAME, detail=error)
