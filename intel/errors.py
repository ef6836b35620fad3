"""The error tree, split by what must happen next.

    IntelError
    ├── ConfigError          stop: the program cannot start with this configuration (exit 2)
    ├── UserInputError       answer the user: bad symbol, bad time, bad arguments (exit 2)
    │   ├── UnknownSymbolError
    │   └── BadTimeError
    ├── SourceError          retry or degrade: a data source failed or has nothing current
    │   │                    (`retry_after_s`: how long the source asked us to wait, if it said)
    │   ├── NotRecordedError the recording has no data for this symbol or moment (expected)
    │   ├── PermanentSourceError  degrade, never retry: the answer will not change (HTTP 451)
    │   ├── NotConfiguredError    degrade, never retry: the source is not set up (no credentials)
    │   └── CircuitOpenError      degrade at once: the source failed repeatedly and rests
    ├── NoSignalError        no signal possible: required data is unavailable (exit 3)
    └── ModelUnavailableError  the configured sentiment model cannot load (weights missing or
                             corrupt): the bot falls back to the lexicon; a strict caller exits 3

Anything else escaping to the top is a bug (exit 1).
"""

from __future__ import annotations

__all__ = [
    "BadTimeError",
    "CircuitOpenError",
    "ConfigError",
    "IntelError",
    "ModelUnavailableError",
    "NoSignalError",
    "NotConfiguredError",
    "NotRecordedError",
    "PermanentSourceError",
    "SourceError",
    "UnknownSymbolError",
    "UserInputError",
]


class IntelError(Exception):
    """Base of every error the product raises on purpose."""


class ConfigError(IntelError):
    """The configuration is invalid; the message names the key."""


class UserInputError(IntelError):
    """Input from a person was wrong; the message says what would work."""


class UnknownSymbolError(UserInputError):
    pass


class BadTimeError(UserInputError):
    pass


class SourceError(IntelError):
    """A source failed or returned nothing current; the modality becomes unavailable.

    `retry_after_s` carries a wait the source itself asked for (HTTP `Retry-After`); the
    resilience layer waits that long before its next try instead of its own backoff.
    """

    def __init__(self, message: str = "", *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotRecordedError(SourceError):
    """Recorded data has nothing for this symbol or moment: an expected absence, not a fault
    (status shows it as "not recorded"). The modality is unavailable all the same."""


class PermanentSourceError(SourceError):
    """The source refused in a way retrying cannot change (e.g. HTTP 451: not from this region)."""


class NotConfiguredError(SourceError):
    """The source is not set up (no credentials, not in this build); the message says what is
    missing. Never retried; status shows the source as "not_configured"."""


class CircuitOpenError(SourceError):
    """The source failed repeatedly; calls fail fast until its cool-down ends (status: "open")."""


class NoSignalError(IntelError):
    """A signal cannot be computed because required data (price candles) is unavailable."""


class ModelUnavailableError(IntelError):
    """The configured sentiment model cannot be loaded: its weights are missing or unreadable,
    or it does not classify positive/negative/neutral. The message names the model and why."""
