"""Text formatting shared by intel and the bot: numbers for the thesis and renderers, and user
input quoted safely for error messages."""

from __future__ import annotations

__all__ = ["format_age", "format_signed", "format_usd", "quote_input"]


def format_usd(amount: float, *, signed: bool = False) -> str:
    """Money as people read it in a feed: $950, $12.3K, $12.3M, $1.2B."""
    size = abs(amount)
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if size >= threshold:
            body = f"${size / threshold:.1f}{suffix}"
            break
    else:
        body = f"${size:.0f}"
    if amount < 0:
        return f"-{body}"
    return f"+{body}" if signed else body


def format_signed(value: float, digits: int = 0) -> str:
    return f"{value:+.{digits}f}"


def format_age(age_s: float) -> str:
    """An age as '45 s', '12 min', '3 h 12 min' or '2 d 5 h'."""
    seconds = max(0, int(age_s))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def quote_input(text: str, limit: int = 24) -> str:
    """What a person typed, quoted for a reply: printable (control and bidi characters become
    '?') and at most `limit` characters, with '…' when cut."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in text.strip())
    if len(shown) > limit:
        shown = shown[:limit] + "…"
    return repr(shown)
