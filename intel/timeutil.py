"""UTC time helpers: every time inside the product is an aware UTC datetime."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from intel.errors import BadTimeError

__all__ = ["from_ms", "iso", "parse_time", "to_ms", "utcnow"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC)


def to_ms(moment: datetime) -> int:
    # Floor, never round: a moment just before a publication must not see it.
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with a 'Z', to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """Parse ISO-8601 as people type it; no timezone means UTC."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise BadTimeError(
            f"bad time {text!r}: use ISO-8601, e.g. 2025-10-06T18:00 or 2025-10-06T18:00Z"
        ) from None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
