"""Live whale flows from Whale Alert's REST API (`GET /v1/transactions`), for users with a key.

Whale Alert labels both sides of a transfer by owner type, so no address file is needed, and it
covers Ethereum as well as Bitcoin. A background task asks every `poll_s` for the transfers since
the last one seen (at most `max_lookback_s` back: the API's own limit), following the page
`cursor`; each BTC or ETH transfer of the chain's own coin between an exchange and a non-exchange
owner goes into that asset's `FlowWindow`, in the UTC hour of its `timestamp` (block time), once
by its chain and hash. Every call runs under the source's `SourceGuard`; the key travels only as
the `api_key` query parameter and is never logged (httpx's errors are turned into our messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import structlog

from intel.config import WhaleAlertConfig
from intel.errors import NotConfiguredError, PermanentSourceError, SourceError
from intel.models import WhaleFlows
from intel.sources.base import retry_after_s
from intel.sources.onchain.labels import FlowKind
from intel.sources.onchain.large import LargeTransfer, LargeTransferListener, TransferListeners
from intel.sources.onchain.window import FlowWindow, FlowWindowStore, hour_floor_ms
from intel.sources.replay_files import RECORD_ERRORS, BadRecords, skipped_notes
from intel.sources.resilience import SourceGuard
from intel.symbols import base_asset
from intel.timeutil import from_ms, to_ms, utcnow

__all__ = ["NAME", "PROVIDER", "WhaleAlertSource", "WhaleAlertTransfer", "parse_transactions"]

log = structlog.get_logger(__name__)

NAME = "Whale Alert API"
PROVIDER = "whale_alert"
CHAINS = {"bitcoin": "BTC", "ethereum": "ETH"}  # the chain's own coin only, not its tokens


@dataclass(frozen=True, slots=True)
class WhaleAlertTransfer:
    asset: str
    key: str  # chain:hash, unique across chains
    timestamp: datetime
    kind: FlowKind
    amount: float
    amount_usd: float
    exchange: str | None = (
        None  # the receiving exchange of an inflow, the sending one of an outflow
    )


def _kind(from_owner: str, to_owner: str) -> FlowKind:
    from_exchange, to_exchange = from_owner == "exchange", to_owner == "exchange"
    if from_exchange and to_exchange:
        return FlowKind.EXCHANGE_INTERNAL
    if to_exchange:
        return FlowKind.INFLOW
    return FlowKind.OUTFLOW if from_exchange else FlowKind.OTHER


def _transfer(item: Any) -> WhaleAlertTransfer | None:
    """One entry; None for a coin this product does not follow (tokens, other chains)."""
    if not isinstance(item, dict):
        raise TypeError("a transaction must be an object")
    asset = CHAINS.get(item["blockchain"])
    if asset is None or str(item["symbol"]).upper() != asset:
        return None
    amount, amount_usd = float(item["amount"]), float(item["amount_usd"])
    if not (amount >= 0 and amount_usd >= 0):
        raise ValueError("negative or NaN amount")
    kind = _kind(item["from"]["owner_type"], item["to"]["owner_type"])
    side = item["to"] if kind is FlowKind.INFLOW else item["from"]
    return WhaleAlertTransfer(
        asset=asset,
        key=f"{item['blockchain']}:{item['hash']}",
        timestamp=from_ms(int(item["timestamp"]) * 1000),
        kind=kind,
        amount=amount,
        amount_usd=amount_usd,
        exchange=str(side.get("owner") or "") or None,
    )


def parse_transactions(body: Any) -> tuple[list[WhaleAlertTransfer], str | None, BadRecords]:
    """A `/v1/transactions` body: the BTC and ETH transfers, the next page's cursor (None: last
    page), the skipped entries. SourceError for an error body or an unknown shape."""
    if not isinstance(body, dict) or body.get("result") != "success":
        message = body.get("message") if isinstance(body, dict) else None
        raise SourceError(f"{NAME}: {message or 'unexpected response'}")
    bad = BadRecords("Whale Alert /v1/transactions", unit="entry")
    transfers: list[WhaleAlertTransfer] = []
    for position, item in enumerate(body.get("transactions") or [], start=1):
        try:
            if (transfer := _transfer(item)) is not None:
                transfers.append(transfer)
        except RECORD_ERRORS as exc:
            bad.skip(position, exc)
    cursor = body.get("cursor") if int(body.get("count") or 0) > 0 else None
    return transfers, cursor if isinstance(cursor, str) else None, bad


class WhaleAlertSource:
    """`WhaleSource` for BTC and ETH from Whale Alert."""

    credit = "whale flows: Whale Alert"

    def __init__(
        self,
        config: WhaleAlertConfig,
        api_key: str,
        *,
        window_h: int,
        guard: SourceGuard,
        store: FlowWindowStore | None = None,
        clock: Callable[[], datetime] = utcnow,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config = config
        self._api_key = api_key
        self._guard = guard
        self._clock = clock
        self._transport = transport
        self.windows = {a: FlowWindow(PROVIDER, a, window_h + 1, store) for a in CHAINS.values()}
        self._client: httpx.AsyncClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._since: datetime | None = None  # the newest transfer time asked for
        self._covered_from: datetime | None = None
        self._heard_at: datetime | None = None
        self._problem: str | None = None
        self._bad: BadRecords | None = None
        self._listeners = TransferListeners()
        self._polled = asyncio.Event()  # set once the first poll ended, answered or not

    def add_listener(self, listener: LargeTransferListener) -> None:
        """`listener` hears of each whale transfer before it is counted (`LargeTransferFeed`)."""
        self._listeners.add_listener(listener)

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            base_url=self._config.base_url,
            timeout=self._config.timeout_s,
            transport=self._transport,
        )
        for window in self.windows.values():
            await window.load(self._clock())
        self._task = asyncio.create_task(self._run(), name="whale_alert_poll")

    async def close(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def skipped_records(self, symbol: str) -> tuple[str, ...]:
        return skipped_notes(self._bad)

    async def flows(self, symbol: str, now: datetime, window_h: int) -> WhaleFlows:
        asset = base_asset(symbol)
        if asset not in self.windows:
            raise NotConfiguredError(
                f"no whale-flow provider covers {asset} (Whale Alert: BTC, ETH)"
            )
        if self._heard_at is None:
            await self._first_poll()
        if self._heard_at is None:
            raise SourceError(f"{NAME}: no whale data yet ({self._problem or 'connecting'})")
        as_of_ms = min(hour_floor_ms(to_ms(now)), hour_floor_ms(to_ms(self._heard_at)))
        return self.windows[asset].flows(as_of_ms, window_h, self.credit)

    async def _first_poll(self) -> None:
        """Wait, at most `timeout_s`, for the poll started by `start` to end: a one-shot
        `signal --live` asks right after `start` and would otherwise always be told
        "connecting". The caller's own deadline (the pipeline's) still bounds the wait."""
        if self._task is None or self._task.done():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._config.timeout_s):
                await self._polled.wait()

    async def _run(self) -> None:
        failures = 0  # polls in a row ended by an unexpected error: they back off
        while True:
            try:
                await self._poll()
                failures = 0
            except PermanentSourceError as exc:  # a refused key: nothing to poll for
                self._problem = str(exc)
                log.warning("whale_alert_refused", detail=str(exc))
                self._polled.set()
                return
            except SourceError as exc:
                self._problem = str(exc)
            except Exception:  # a bug or a store error must not end the polling for good
                log.exception("whale_alert_poll_failed", source=NAME)
                self._problem = "poll error"
                failures += 1
            self._polled.set()
            await asyncio.sleep(self._retry_delay_s(failures))

    def _retry_delay_s(self, failures: int) -> float:
        """`poll_s`, doubled per unexpected failure in a row, at most half `max_lookback_s`
        (a longer wait only loses hours a poll could still have reached)."""
        cap_s = max(self._config.poll_s, self._config.max_lookback_s / 2)
        return float(min(cap_s, self._config.poll_s * 2 ** min(failures, 30)))

    async def _poll(self) -> None:
        now = self._clock()
        oldest = from_ms(to_ms(now) - int(self._config.max_lookback_s * 1000))
        start = max(self._since or oldest, oldest)
        # A poll reads back at most `max_lookback_s`: after a longer outage (or on the first
        # poll) the hours before `start` were never read, so coverage starts over at `start`.
        gap = self._since is None or self._since < oldest
        cursor: str | None = None
        newest = start
        for _ in range(self._config.max_pages):
            body = await self._guard.call(functools.partial(self._get, start, cursor))
            transfers, cursor, self._bad = parse_transactions(body)
            for transfer in transfers:
                await self._count(transfer)
                newest = max(newest, transfer.timestamp)
            if cursor is None:
                break
        # Pages left over: the next poll goes on from the newest transfer read (its txids are
        # counted already, so the overlap repeats nothing).
        self._since = now if cursor is None else newest
        if gap or self._covered_from is None:
            self._covered_from = start
        self._heard_at, self._problem = now, None
        for window in self.windows.values():
            await window.mark_watched(self._covered_from, now)
            await window.prune(now)

    async def _count(self, transfer: WhaleAlertTransfer) -> None:
        if transfer.kind not in (FlowKind.INFLOW, FlowKind.OUTFLOW):
            return
        if transfer.amount_usd < self._config.min_usd:
            return
        inflow = transfer.kind is FlowKind.INFLOW
        window = self.windows[transfer.asset]
        if window.counted(transfer.key):
            return
        await self._listeners.tell(
            LargeTransfer(
                PROVIDER,
                transfer.key,
                transfer.asset,
                inflow,
                transfer.amount,
                transfer.amount_usd,
                transfer.exchange,
                transfer.timestamp,
            )
        )
        await window.add(
            transfer.key, transfer.timestamp, transfer.amount, transfer.amount_usd, inflow
        )

    async def _get(self, start: datetime, cursor: str | None) -> Any:
        if self._client is None:
            raise RuntimeError("WhaleAlertSource used before start()")
        params = {"api_key": self._api_key, "start": str(int(start.timestamp()))}
        params |= {"min_value": str(int(self._config.min_usd))}
        if cursor:
            params["cursor"] = cursor
        try:
            response = await self._client.get("/transactions", params=params)
        # `from None`: httpx's errors carry the URL, and with it the key.
        except httpx.TimeoutException:
            raise SourceError(f"{NAME}: timed out") from None
        except httpx.HTTPError as exc:
            raise SourceError(f"{NAME}: unreachable ({type(exc).__name__})") from None
        return _body(response)


def _body(response: httpx.Response) -> Any:
    status = response.status_code
    if status in (401, 403):
        raise PermanentSourceError(f"{NAME}: the API key was refused (HTTP {status})")
    if status == 429 or status >= 500:
        what = "rate limited" if status == 429 else "server error"
        wait = retry_after_s(response.headers.get("Retry-After"))
        raise SourceError(f"{NAME}: {what} (HTTP {status})", retry_after_s=wait)
    if status >= 400:
        raise SourceError(f"{NAME}: request refused (HTTP {status})")
    try:
        return json.loads(response.content)
    except ValueError:
        raise SourceError(f"{NAME}: malformed JSON in the response") from None
