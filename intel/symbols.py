"""Symbols as people type them (`eth`, `ETHUSDT`, `eth-usdt`) turned into ccxt's `ETH/USDT`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from intel.errors import UnknownSymbolError, UserInputError
from intel.textfmt import quote_input

__all__ = ["base_asset", "normalize_symbol", "resolve_symbol"]

DEFAULT_QUOTE = "USDT"
_QUOTES = ("USDT", "USDC", "USD", "BTC", "ETH", "EUR")
_MAX_LEN = 24
_SEPARATORS = re.compile(r"[/\-_: ]")
_TOKEN = re.compile(r"[A-Z0-9]{1,12}")


def normalize_symbol(text: str) -> str:
    """Canonical `BASE/QUOTE` form of what a person typed; raises UserInputError if malformed."""
    raw = text.strip().upper()
    if not raw or len(raw) > _MAX_LEN:
        raise _malformed(text)
    parts = [part for part in _SEPARATORS.split(raw) if part]
    if len(parts) == 1 and not _SEPARATORS.search(raw):
        parts = _split_glued(parts[0])
    if len(parts) != 2 or not all(_TOKEN.fullmatch(part) for part in parts):
        raise _malformed(text)
    return f"{parts[0]}/{parts[1]}"


def resolve_symbol(text: str, supported: Iterable[str]) -> str:
    """Normalize and check against the supported list, suggesting the closest on a miss."""
    symbol = normalize_symbol(text)
    known = list(supported)
    if symbol in known:
        return symbol
    # Compare base assets: the shared "/USDT" would make every symbol look alike.
    bases = {base_asset(s): s for s in known}
    close = difflib.get_close_matches(base_asset(symbol), list(bases), n=1, cutoff=0.5)
    hint = f"did you mean {bases[close[0]]}?" if close else f"supported: {', '.join(known)}"
    raise UnknownSymbolError(f"unknown symbol {quote_input(text, _MAX_LEN)} — {hint}")


def base_asset(symbol: str) -> str:
    return symbol.split("/", 1)[0]


def _malformed(text: str) -> UserInputError:
    shown = quote_input(text, _MAX_LEN)
    return UserInputError(f"malformed symbol {shown}: try BTC, eth or ETH/USDT")


def _split_glued(token: str) -> list[str]:
    for quote in _QUOTES:
        if token.endswith(quote) and len(token) > len(quote):
            return [token[: -len(quote)], quote]
    return [token, DEFAULT_QUOTE]
