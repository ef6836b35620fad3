"""Symbols as people type them (`eth`, `ETHUSDT`, `eth-usdt`) turned into ccxt's `ETH/USDT`."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable

from intel.errors import UnknownSymbolError, UserInputError

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
        raise UserInputError(f"malformed symbol {_show(text)}: try BTC, eth or ETH/USDT")
    parts = [part for part in _SEPARATORS.split(raw) if part]
    if len(parts) == 1 and not _SEPARATORS.search(raw):
        parts = _split_glued(parts[0])
    if len(parts) != 2 or not all(_TOKEN.fullmatch(part) for part in parts):
        raise UserInputError(f"malformed symbol {_show(text)}: try BTC, eth or ETH/USDT")
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
    raise UnknownSymbolError(f"unknown symbol {_show(text)} — {hint}")


def base_asset(symbol: str) -> str:
    return symbol.split("/", 1)[0]


def _split_glued(token: str) -> list[str]:
    for quote in _QUOTES:
        if token.endswith(quote) and len(token) > len(quote):
            return [token[: -len(quote)], quote]
    return [token, DEFAULT_QUOTE]


def _show(text: str) -> str:
    """Quote user input for an error message, bounded and printable."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in text.strip())
    return repr(shown[:_MAX_LEN] + ("…" if len(shown) > _MAX_LEN else ""))
