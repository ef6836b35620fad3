"""The error tree, split by what must happen next.

    IntelError
    ├── ConfigError          stop: the program cannot start with this configuration (exit 2)
    ├── UserInputError       answer the user: bad symbol, bad time, bad arguments (exit 2)
    │   ├── UnknownSymbolError
    │   └── BadTimeError
    ├── SourceError          retry or degrade: a data source failed or has nothing current
    │   ├── NotRecordedError the recording has no data for this symbol or moment (expected)
    │   └── PermanentSourceError  degrade, do not retry: only a change of config helps
    └── NoSignalError        no signal possible: required data is unavailable (exit 3)

Anything else escaping to the top is a bug (exit 1).
"""

from __future__ import annotations

__all__ = [
    "BadTimeError",
    "ConfigError",
    "IntelError",
    "NoSignalError",
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
    """A source failed or returned nothing current; the modality becomes unavailable."""


class NotRecordedError(SourceError):
    """Recorded data has nothing for this symbol or moment: an expected absence, not a fault
    (status shows it as "not recorded"). The modality is unavailable all the same."""


class PermanentSourceError(SourceError):
    """A source refuses us for good, e.g. an exchange that does not serve this region (HTTP 451):
    retrying cannot help, so retry layers give up at once. The message says what to change."""


class NoSignalError(IntelError):
    """A signal cannot be computed because required data (price candles) is unavailable."""
