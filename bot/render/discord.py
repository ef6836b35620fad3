"""Discord rendering, pure: a Signal as embeds (plain dicts, as `discord.Embed.to_dict()` gives),
a Reply as message contents; every dynamic string escaped, every piece within Discord's limits.

Nothing is cut silently: text too long for one place is split at sentence or line boundaries and
continues in the next field, embed or message; a piece that has to be shortened ends in "…".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import discord
from discord.utils import escape_markdown, escape_mentions

from bot.commands.base import Field, Reply
from bot.commands.signal import modality_fields
from bot.render.text import (
    ACTION_EMOJI,
    DEFAULT_CREDITS,
    MODALITY_TITLES,
    confidence_label,
    coordinator_label,
    format_age,
    format_moment,
    format_price,
)
from intel.models import Action, Signal

__all__ = [
    "CHART_FILENAME",
    "LIMITS",
    "EmbedLimits",
    "embed_size",
    "escape",
    "reply_contents",
    "signal_embeds",
    "split_text",
]

CHART_FILENAME = "chart.png"
ELLIPSIS = "…"
# Colour is a second carrier only: the title names the action and carries its emoji.
ACTION_COLOUR = {Action.BUY: 0x2ECC71, Action.SELL: 0xE74C3C, Action.HOLD: 0x95A5A6}
CONTINUED = " (continued)"
# Markdown that Discord reads only at the start of a line: quotes, headings, lists.
_LINE_START_MARKUP = re.compile(r"^(\s*)(>|#{1,3} |-#|[-*+] |\d+\. )", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


@dataclass(frozen=True, slots=True)
class EmbedLimits:
    """Discord's documented limits, in characters."""

    title: int = 256
    description: int = 4096
    fields: int = 25
    field_name: int = 256
    field_value: int = 1024
    footer: int = 2048
    total: int = 6000  # title, description, field names and values, footer: per message
    content: int = 2000  # a message's text


LIMITS = EmbedLimits()


def escape(text: str) -> str:
    """A dynamic string made inert for Discord: no markup, no mentions, no line-start blocks."""
    escaped = escape_markdown(text)
    escaped = _LINE_START_MARKUP.sub(lambda m: f"{m.group(1)}\\{m.group(2)}", escaped)
    return escape_mentions(escaped)


def shorten(text: str, limit: int) -> str:
    """`text` if it fits, else cut at the last word boundary, ending in "…"."""
    if len(text) <= limit:
        return text
    room = text[: limit - len(ELLIPSIS)]
    cut = room.rfind(" ")
    if cut < limit // 2:
        cut = len(room)
    return _safe_end(room[:cut]).rstrip() + ELLIPSIS


def split_text(text: str, limit: int) -> list[str]:
    """Pieces of at most `limit` characters, split at line ends, then sentence ends, then
    words; a piece split inside a sentence ends in "…". Joined, they hold all of `text`."""
    pieces: list[str] = []
    current = ""
    for unit in _units(text, limit):
        joined = f"{current}{unit}" if current else unit.lstrip("\n ")
        if len(joined) <= limit:
            current = joined
            continue
        if current.strip():
            pieces.append(current.rstrip())
        current = unit.lstrip("\n ")
    if current.strip():
        pieces.append(current.rstrip())
    return pieces or [""]


def _units(text: str, limit: int) -> Iterator[str]:
    """Lines (with their newline), each split into sentences, then words, to fit `limit`."""
    for index, line in enumerate(text.split("\n")):
        prefix = "\n" if index else ""
        for position, sentence in enumerate(_SENTENCE_END.split(line)):
            unit = f"{prefix if position == 0 else ' '}{sentence}"
            yield from _hard_split(unit, limit)


def _hard_split(unit: str, limit: int) -> Iterator[str]:
    """A unit longer than `limit` as word-bounded pieces ending in "…" (never mid-escape)."""
    while len(unit) > limit:
        room = unit[: limit - len(ELLIPSIS)]
        cut = room.rfind(" ")
        if cut <= 0:
            cut = len(room)
        head = _safe_end(room[:cut])
        yield head + ELLIPSIS
        unit = " " + unit[len(head) :].lstrip()
    yield unit


def _safe_end(text: str) -> str:
    """Drop a trailing backslash that would escape the next character, e.g. the "…"."""
    return text[:-1] if text.endswith("\\") and not text.endswith("\\\\") else text


def embed_size(embed: dict[str, Any]) -> int:
    """The characters Discord counts towards an embed's total."""
    fields = embed.get("fields", [])
    return (
        len(embed.get("title", ""))
        + len(embed.get("description", ""))
        + sum(len(f["name"]) + len(f["value"]) for f in fields)
        + len(embed.get("footer", {}).get("text", ""))
        + len(embed.get("author", {}).get("name", ""))
    )


def signal_embeds(
    signal: Signal,
    *,
    intro: str | None = None,
    with_chart: bool = True,
    credits: Sequence[str] = DEFAULT_CREDITS,
) -> list[dict[str, Any]]:
    """The signal as one embed, or several (each its own message) when it is too long for one.

    The first carries the title and, with `with_chart`, the chart attached as `chart.png`."""
    title = shorten(
        f"{ACTION_EMOJI.get(signal.action, '')} {signal.action.value} {escape(signal.symbol)}"
        f" · {confidence_label(signal)}",
        LIMITS.title,
    )
    description = escape(signal.thesis.strip())
    if intro:
        description = f"**{escape(intro.strip())}**\n\n{description}"
    footer = shorten(
        " · ".join(
            (escape(coordinator_label(signal)), *map(escape, credits), "Not financial advice.")
        ),
        LIMITS.footer,
    )
    pieces = [_field_piece(f) for f in _signal_fields(signal)]
    embeds = _pack(title, split_text(description, LIMITS.description), pieces, footer)
    colour = ACTION_COLOUR.get(signal.action, 0x95A5A6)
    dicts: list[dict[str, Any]] = []
    for index, (head, text, fields) in enumerate(embeds):
        embed = discord.Embed(
            title=head, description=text or None, colour=colour, timestamp=signal.as_of
        )
        for name, value, inline in fields:
            embed.add_field(name=name, value=value, inline=inline)
        embed.set_footer(text=footer)
        if index == 0 and with_chart:
            embed.set_image(url=f"attachment://{CHART_FILENAME}")
        dicts.append(dict(embed.to_dict()))
    return dicts


def _signal_fields(signal: Signal) -> list[Field]:
    fields = list(modality_fields(signal))
    high = " (high)" if signal.high_divergence else ""
    fields.append(
        Field(
            "Confidence",
            f"{confidence_label(signal).removeprefix('confidence ')}"
            f" · divergence {signal.divergence:+.0f}{high}",
        )
    )
    fields.append(Field("Timeframe", f"{signal.timeframe_hours} h"))
    price = f" · price {format_price(signal.price)}" if signal.price is not None else ""
    fields.append(Field("Sizing", f"position {signal.position_size.value}{price}"))
    if signal.risk_factors:
        risks = "\n".join(f"• {risk}" for risk in signal.risk_factors)
        fields.append(Field("Risk factors", risks, inline=False))
    fields.append(Field("Freshness", _freshness(signal), inline=False))
    if signal.notes:
        fields.append(Field("Note", " · ".join(signal.notes), inline=False))
    return fields


def _freshness(signal: Signal) -> str:
    ages = []
    keys = [*MODALITY_TITLES, *(key for key in signal.reports if key not in MODALITY_TITLES)]
    for key in keys:
        title = MODALITY_TITLES.get(key, key.replace("_", " ").capitalize())
        report = signal.reports.get(key)
        if report is None:
            ages.append(f"{title} no report")
        elif report.age_s is not None:
            ages.append(f"{title} {format_age(report.age_s)} old")
    created = signal.created_at.astimezone(UTC)
    line = f"Market moment {format_moment(signal.as_of)} · created {created:%H:%M:%S} UTC"
    return f"{line}\n{' · '.join(ages)}" if ages else line


_Piece = tuple[str, list[str], bool]  # a field: name, value chunks, inline
_Embed = tuple[str, str, list[tuple[str, str, bool]]]  # title, description, fields


def _field_piece(field: Field) -> _Piece:
    name = shorten(escape(field.name), LIMITS.field_name - len(CONTINUED))
    return name, split_text(escape(field.value), LIMITS.field_value), field.inline


def _pack(
    title: str, descriptions: Sequence[str], pieces: Iterable[_Piece], footer: str
) -> list[_Embed]:
    """Fill embeds in order: description chunks, then fields; a new embed when the next part
    would pass the field count or the total. Later embeds repeat the title, marked continued."""
    fixed = len(footer)
    embeds: list[_Embed] = [(title, descriptions[0], [])]
    for chunk in descriptions[1:]:
        embeds.append((_continued(title), chunk, []))
    for name, chunks, inline in pieces:
        for index, value in enumerate(chunks):
            field_name = name if index == 0 else name + CONTINUED
            head, text, fields = embeds[-1]
            used = fixed + len(head) + len(text) + sum(len(n) + len(v) for n, v, _ in fields)
            if len(fields) >= LIMITS.fields or used + len(field_name) + len(value) > LIMITS.total:
                embeds.append((_continued(title), "", []))
                fields = embeds[-1][2]
            fields.append((field_name, value, inline and len(chunks) == 1))
    return embeds


def _continued(title: str) -> str:
    return shorten(title, LIMITS.title - len(CONTINUED)) + CONTINUED


def reply_contents(reply: Reply) -> list[str]:
    """A reply as message contents of at most 2,000 characters each, split at line ends;
    its fields (if any) follow as lines. Everything is escaped: replies echo user input."""
    lines = [reply.text, *(f"{field.name}: {field.value}" for field in reply.fields)]
    hint = reply.extra.get("next")
    if hint:
        lines.append(hint)
    text = escape("\n".join(line for line in lines if line))
    return split_text(text, LIMITS.content)
