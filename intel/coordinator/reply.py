"""The LLM's reply: parsed from JSON into a validated `Proposal`, its text cleaned for chat.

Length caps fit every chat surface with room for the rest of a signal: a Telegram photo caption
holds 1,024 characters and a Discord embed field 1,024, so the thesis is capped at 600, each risk
factor at 160 (at most 5) and each key driver at 100 (at most 5). A reply that is not JSON, or
breaks the schema, raises `InvalidReplyError` with a short reason the repair prompt repeats.
Every text the LLM wrote passes `clean_text`: markup, links, mentions (`@everyone`), control and
zero-width characters never reach a chat.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

__all__ = ["CAPS", "InvalidReplyError", "Proposal", "clean_text", "parse_reply"]

THESIS_CHARS = 600
RISK_CHARS = 160
RISK_COUNT = 5
DRIVER_CHARS = 100
DRIVER_COUNT = 5
CAPS = {
    "thesis_chars": THESIS_CHARS,
    "risk_chars": RISK_CHARS,
    "risk_count": RISK_COUNT,
    "driver_chars": DRIVER_CHARS,
    "driver_count": DRIVER_COUNT,
}


class InvalidReplyError(Exception):
    """The reply is not a JSON object of the schema; the message says why, briefly."""


def _capped(limit: int) -> StringConstraints:
    return StringConstraints(strip_whitespace=True, min_length=1, max_length=limit)


ThesisText = Annotated[str, _capped(THESIS_CHARS)]
RiskText = Annotated[str, _capped(RISK_CHARS)]
DriverText = Annotated[str, _capped(DRIVER_CHARS)]


class Proposal(BaseModel):
    """What the LLM proposes; the bounds decide what of it stands (`intel.coordinator.bounds`)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    action: Literal["BUY", "SELL", "HOLD"]
    # Any integer is accepted here: out-of-range values are clamped (and recorded), not refused.
    confidence: int
    thesis: ThesisText
    risk_factors: list[RiskText] = Field(max_length=RISK_COUNT)
    timeframe_hours: int
    position_size: Literal["conservative", "moderate", "aggressive"]
    key_drivers: list[DriverText] = Field(default_factory=list, max_length=DRIVER_COUNT)


def parse_reply(content: str | None) -> Proposal:
    """The validated proposal in `content`; InvalidReplyError when it is not one."""
    if not content or not content.strip():
        raise InvalidReplyError("empty reply")
    try:
        data = json.loads(content)
    except json.JSONDecodeError as exc:
        raise InvalidReplyError(f"not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(data, dict):
        raise InvalidReplyError("not a JSON object")
    if isinstance(data.get("action"), str):
        data["action"] = data["action"].strip().upper()
    try:
        return Proposal.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or 'reply'}: {e['msg']}" for e in exc.errors()
        ]
        raise InvalidReplyError("; ".join(problems[:4])) from None


_LINK = re.compile(r"\[([^\]]{0,300})\]\([^)]{0,500}\)")
_TAG = re.compile(r"</?[A-Za-z!][^>]{0,300}>|<[@#:][^>]{0,100}>")
_URL = re.compile(r"https?://\S+|www\.\S+")
_MARK_CHARS = re.compile(r"[*_`~|#<>\[\]{}\\]+")
_MENTION = re.compile(r"@+")


def clean_text(text: str) -> str:
    """`text` as plain sentences: markup, links and mentions removed, whitespace collapsed."""
    folded = unicodedata.normalize("NFKC", text)
    kept = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in folded
        if unicodedata.category(ch) not in ("Cf", "Co", "Cn", "Cs")
    )
    kept = _LINK.sub(r"\1", kept)
    kept = _TAG.sub(" ", kept)
    kept = _URL.sub("", kept)
    kept = _MARK_CHARS.sub(" ", kept)
    kept = _MENTION.sub("", kept)  # "@everyone" -> "everyone": no mention can fire
    return " ".join(kept.split())
