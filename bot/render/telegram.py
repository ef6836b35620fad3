"""Telegram HTML rendering, pure: a signal as a photo caption (≤ 1,024) plus text messages
(≤ 4,096 each), and a command reply as text messages. Every dynamic string is escaped.

Lengths are counted in UTF-16 code units of the HTML source, which bounds what Telegram counts
(the text left after parsing the tags, in UTF-16). Nothing is cut silently: the caption is a
summary, and whatever it shortens (the thesis, the intro, a modality's figures) is in full in the
text that follows.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC

from bot.commands.base import Reply
from bot.render.text import (
    ACTION_EMOJI,
    DEFAULT_CREDITS,
    MODALITY_TITLES,
    confidence_label,
    coordinator_label,
    format_moment,
    format_price,
    format_score,
    modality_figures,
    modality_status,
    modality_title,
    ordered_reports,
)
from intel.models import ReportStatus, Signal

__all__ = [
    "CAPTION_LIMIT",
    "MESSAGE_LIMIT",
    "TelegramSignal",
    "plain_text",
    "reply_messages",
    "signal_messages",
    "telegram_length",
]

CAPTION_LIMIT = 1024
MESSAGE_LIMIT = 4096
ELLIPSIS = "…"
# Caption budget for the parts before the thesis; each is summarised to fit its share.
_INTRO_MAX = 200
_MODALITY_LINE_MAX = 150
_HEAD_MAX = CAPTION_LIMIT - 300  # what the thesis keeps at least
_CAPTION_FIGURES = 2  # figures per modality in the caption; all of them follow in the text
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_TAG = re.compile(r"</?[a-z-]+>")


@dataclass(frozen=True, slots=True)
class TelegramSignal:
    """A signal for Telegram: the photo's caption, then the text messages that follow it."""

    caption: str
    messages: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _Line:
    """One line of plain text, optionally wrapped in one tag; escaped only when rendered."""

    text: str
    tag: str | None = None
    code_spans: bool = False  # `like this` becomes <code>like this</code>

    def html(self) -> str:
        body = html.escape(self.text, quote=False)
        if self.code_spans:
            body = _CODE_SPAN.sub(r"<code>\1</code>", body)
        return f"<{self.tag}>{body}</{self.tag}>" if self.tag else body


def telegram_length(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def plain_text(message_html: str) -> str:
    """A rendered message as plain text (the fallback when Telegram cannot parse it): the
    renderer's own tags dropped, entities decoded; every `<` of the text itself was escaped."""
    return html.unescape(_TAG.sub("", message_html))


def signal_messages(
    signal: Signal,
    intro: str = "",
    extra_lines: Sequence[str] = (),
    credits: Sequence[str] = DEFAULT_CREDITS,
) -> TelegramSignal:
    """The caption (header, one line per modality, thesis) and the rest as text messages."""
    intro = intro.strip()
    intro_line = _shorten_words(intro, _INTRO_MAX)
    head = [_Line(intro_line, "i")] if intro_line else []
    head.extend([_header(signal), _Line("")])
    head_html = "\n".join(line.html() for line in head) + "\n"
    for key in _modality_keys(signal):
        line = _caption_modality(signal, key).html()
        # Modalities beyond the known three only while the thesis keeps room; all are below.
        if telegram_length(head_html) + telegram_length(line) < _HEAD_MAX:
            head_html += line + "\n"
    head_html += "\n"
    thesis = signal.thesis.strip()
    thesis_html = _fit_thesis(thesis, CAPTION_LIMIT - telegram_length(head_html))
    details: list[_Line] = []
    if intro_line != intro:
        details.append(_Line(intro, "i"))
    if html.unescape(thesis_html) != thesis:
        details.extend([_Line("Thesis", "b"), _Line(thesis), _Line("")])
    details.extend(_detail_lines(signal, credits))
    details.extend(_Line(line, code_spans=True) for line in extra_lines)
    return TelegramSignal(head_html + thesis_html, tuple(_pack(details, MESSAGE_LIMIT)))


def reply_messages(reply: Reply) -> list[str]:
    """A command's answer (not a signal) as HTML messages, split at line boundaries."""
    lines = [_Line(line, code_spans=True) for line in reply.text.splitlines() or [""]]
    for item in reply.fields:
        lines.append(_Line(f"{item.name}: {item.value}", code_spans=True))
    if reply.extra.get("next"):
        lines.append(_Line(f"Next: {reply.extra['next']}", code_spans=True))
    return _pack(lines, MESSAGE_LIMIT)


def _header(signal: Signal) -> _Line:
    emoji = ACTION_EMOJI.get(signal.action, "")
    return _Line(f"{emoji} {signal.action.value} {signal.symbol} · {confidence_label(signal)}", "b")


def _modality_keys(signal: Signal) -> list[str]:
    extra = [key for key in signal.reports if key not in MODALITY_TITLES]
    return list(MODALITY_TITLES) + extra


def _caption_modality(signal: Signal, key: str) -> _Line:
    """Title, score, the first figures and a one-word status; the full line is in the text."""
    report = signal.reports.get(key)
    if report is None:
        return _Line(f"{modality_title(key)} n/a · unavailable")
    parts = modality_figures(report)[:_CAPTION_FIGURES]
    if report.status is not ReportStatus.OK:
        parts.append(report.status.value)
    line = f"{modality_title(key)} {format_score(report.score)} · " + " · ".join(parts)
    return _Line(_shorten_words(line.rstrip(" ·"), _MODALITY_LINE_MAX))


def _detail_lines(signal: Signal, credits: Sequence[str]) -> list[_Line]:
    lines = [_Line("Evidence", "b")]
    reports = dict(ordered_reports(signal.reports))
    for key in _modality_keys(signal):
        report = reports.get(key)
        if report is None:
            lines.append(_Line(f"{modality_title(key)} n/a · unavailable: no report"))
            continue
        parts = modality_figures(report)
        status = modality_status(report)
        lines.append(
            _Line(" · ".join([f"{modality_title(key)} {format_score(report.score)}", *parts]))
        )
        if status:
            lines.append(_Line(f"  ⚠ {status}"))
    high = " (high)" if signal.high_divergence else ""
    price = f" · price {format_price(signal.price)}" if signal.price is not None else ""
    lines.append(_Line(f"Divergence {signal.divergence:+.0f}{high}"))
    lines.append(
        _Line(
            f"Timeframe {signal.timeframe_hours} h · position {signal.position_size.value}{price}"
        )
    )
    if signal.risk_factors:
        lines.append(_Line(""))
        lines.append(_Line("Risks", "b"))
        lines.extend(_Line(f"• {risk}") for risk in signal.risk_factors)
    if signal.notes:
        lines.append(_Line("Note: " + " · ".join(signal.notes)))
    lines.append(_Line(""))
    lines.append(
        _Line(
            f"Market moment {format_moment(signal.as_of)} · created "
            f"{signal.created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",
            "i",
        )
    )
    footer = " · ".join((coordinator_label(signal), *credits, "Not financial advice."))
    lines.append(_Line(footer, "i"))
    return lines


def _fit_thesis(thesis: str, budget: int) -> str:
    """The thesis escaped, whole if it fits, else the sentences that fit and "…"."""
    whole = html.escape(thesis, quote=False)
    if telegram_length(whole) <= budget:
        return whole
    sentences = _SENTENCE_END.split(thesis)
    kept: list[str] = []
    for sentence in sentences:
        candidate = " ".join([*kept, sentence]) + " " + ELLIPSIS
        if telegram_length(html.escape(candidate, quote=False)) > budget:
            break
        kept.append(sentence)
    if kept:
        return html.escape(" ".join(kept) + " " + ELLIPSIS, quote=False)
    return html.escape(_shorten_words(sentences[0], max(budget, 0)), quote=False)


def _shorten_words(text: str, limit: int) -> str:
    """`text`, or its longest word-boundary prefix plus "…" whose escaped length is within
    `limit`; a single over-long word is cut at a character."""

    def length(candidate: str) -> int:
        return telegram_length(html.escape(candidate, quote=False))

    if length(text) <= limit:
        return text
    if limit < telegram_length(ELLIPSIS):
        return ""
    cut = text
    while cut and length(cut.rstrip() + ELLIPSIS) > limit:
        space = cut.rfind(" ")
        cut = cut[:space] if space > 0 else cut[:-1]
    return cut.rstrip() + ELLIPSIS


def _pack(lines: Iterable[_Line], limit: int) -> list[str]:
    """Join lines into messages of at most `limit`; a line too long alone is split in pieces,
    each wrapped in the line's own tag, so no message ever holds half a tag or entity."""
    messages: list[str] = []
    current: list[str] = []
    size = 0
    for piece in _pieces(lines, limit):
        added = telegram_length(piece) + (1 if current else 0)
        if current and size + added > limit:
            messages.append("\n".join(current))
            current, size = [], 0
            added = telegram_length(piece)
        current.append(piece)
        size += added
    if current:
        messages.append("\n".join(current))
    # Telegram refuses an empty or blank message; trailing blank lines add nothing.
    return [m.strip("\n") for m in messages if m.strip()] or ["(empty reply)"]


def _pieces(lines: Iterable[_Line], limit: int) -> Iterator[str]:
    for line in lines:
        rendered = line.html()
        if telegram_length(rendered) <= limit:
            yield rendered
            continue
        # Split the plain text so that each escaped, wrapped piece fits (code spans dropped).
        rest = line.text
        while rest:
            low, high = 1, len(rest)  # the longest prefix that fits, by bisection
            while low < high:
                middle = (low + high + 1) // 2
                if telegram_length(_Line(rest[:middle], line.tag).html()) <= limit:
                    low = middle
                else:
                    high = middle - 1
            yield _Line(rest[:low], line.tag).html()
            rest = rest[low:]
