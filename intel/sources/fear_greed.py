"""Live Fear & Greed: Alternative.me's index (`GET /fng/?limit=N&format=json`) over httpx.

The response is parsed here into `FearGreedReading`s; an entry that cannot be read is skipped and
counted (`skipped_records`), and a failed call raises `SourceError` saying why. No retries: the
resilience layer that wraps every source owns them (the httpx error is the `SourceError`'s cause,
so a 429's `Retry-After` stays readable there).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import structlog

from intel.config import FearGreedSourceConfig
from intel.errors import SourceError
from intel.models import FearGreedReading
from intel.sources.base import retry_after_s
from intel.sources.http_json import JsonApi
from intel.sources.replay_files import RECORD_ERRORS, BadRecords, skipped_notes
from intel.timeutil import from_ms, iso

__all__ = ["FearGreedApiSource", "parse_fng_response"]

log = structlog.get_logger(__name__)

NAME = "Fear & Greed API"
# The newest two: if today's entry is unreadable, yesterday's still answers (its age is judged
# by the snapshot builder like any other).
LATEST_LIMIT = 2


class FearGreedApiSource:
    """`FearGreedSource` on Alternative.me; `history` serves the sentiment issue's look-backs."""

    def __init__(
        self,
        config: FearGreedSourceConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # `transport`: tests and proxies; None: httpx's own.
        self._api = JsonApi(NAME, config.base_url, config.timeout_s, _status_error, transport)
        self._bad: BadRecords | None = None

    async def start(self) -> None:
        await self._api.start()

    async def close(self) -> None:
        await self._api.close()

    def skipped_records(self, symbol: str) -> tuple[str, ...]:
        """The last response's unreadable entries (the index is market-wide: any symbol)."""
        return skipped_notes(self._bad)

    async def latest(self, now: datetime) -> FearGreedReading:
        readings = await self.history(LATEST_LIMIT)
        published = [reading for reading in readings if reading.timestamp <= now]
        if not published:
            raise SourceError(f"{NAME}: no reading published by {iso(now)}")
        return published[-1]

    async def history(self, limit: int) -> tuple[FearGreedReading, ...]:
        """The newest `limit` daily readings (0: all there are), oldest first."""
        if limit < 0:
            raise ValueError("limit must be 0 (all) or positive")
        params = {"limit": str(limit), "format": "json"}
        body = await self._api.get_json("/fng/", params, where="in the response")
        readings, bad = parse_fng_response(body)
        self._bad = bad
        if bad.count:
            log.warning("live_records_skipped", source=NAME, note=bad.note())
        if not readings:
            raise SourceError(f"{NAME}: no readable reading in the response{_skips(bad)}")
        return readings


def parse_fng_response(body: Any) -> tuple[tuple[FearGreedReading, ...], BadRecords]:
    """The readings of one `/fng/` body, oldest first, and the entries that were skipped.

    SourceError when the body is not the documented shape or reports an error of its own.
    """
    if error := _metadata_error(body):
        raise SourceError(f"{NAME}: {error}")
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise SourceError(f"{NAME}: unexpected response (no data list)")
    bad = BadRecords("Alternative.me /fng/ response", unit="entry")
    readings: list[FearGreedReading] = []
    for position, entry in enumerate(body["data"], start=1):
        try:
            readings.append(_parse_entry(entry))
        except RECORD_ERRORS as exc:
            bad.skip(position, exc)
    readings.sort(key=lambda reading: reading.timestamp)  # the API lists the newest first
    return tuple(readings), bad


def _parse_entry(entry: Any) -> FearGreedReading:
    if not isinstance(entry, dict):
        raise TypeError(f"an entry must be an object, not {type(entry).__name__}")
    value = int(entry["value"])  # the API sends numbers as strings: "69"
    if not 0 <= value <= 100:
        raise ValueError(f"value {value} outside 0..100")
    classification = entry["value_classification"]
    if not isinstance(classification, str) or not classification:
        raise ValueError("empty value_classification")
    return FearGreedReading(
        timestamp=from_ms(int(entry["timestamp"]) * 1000),
        value=value,
        classification=classification,
    )


def _metadata_error(body: Any) -> str | None:
    metadata = body.get("metadata") if isinstance(body, dict) else None
    error = metadata.get("error") if isinstance(metadata, dict) else None
    return f"the API reports an error: {error}" if error else None


def _status_error(response: httpx.Response, path: str) -> SourceError:
    return SourceError(
        f"{NAME}: {_status_reason(response)}",
        retry_after_s=retry_after_s(response.headers.get("Retry-After")),
    )


def _status_reason(response: httpx.Response) -> str:
    status = response.status_code
    if status == 429:
        retry_after = response.headers.get("Retry-After")
        wait = f", retry after {retry_after} s" if retry_after else ""
        return f"rate limited (HTTP 429{wait})"
    if status >= 500:
        return f"server error (HTTP {status})"
    return f"request refused (HTTP {status})"


def _skips(bad: BadRecords) -> str:
    return f" ({bad.count} unreadable entries skipped)" if bad.count else ""
