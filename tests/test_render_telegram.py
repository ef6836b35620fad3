"""Telegram rendering: every piece within Telegram's limits and valid HTML, nothing lost."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands.base import Field, Reply
from bot.config import BotConfig
from bot.render.telegram import reply_messages, signal_messages
from intel.desk import build_desk
from intel.models import Action, Signal
from tests.factories import make_signal
from tests.telegram_html import check_telegram_html, utf16_length

CAPTION_MAX, MESSAGE_MAX = 1024, 4096  # https://core.telegram.org/bots/api#sendphoto
DEMO_START = datetime(2025, 10, 6, 16, tzinfo=UTC)
DEMO_END = datetime(2025, 10, 12, 14, tzinfo=UTC)
HOSTILE = ["@everyone", "<b>", "</code>", "&amp;", "<a href='x'>", "&", "`", "<", ">", "\u202e"]

# Printable text without line breaks (a line break is the renderer's own separator).
words = st.text(
    st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=60
) | st.sampled_from(HOSTILE)
phrases = st.lists(words, min_size=1, max_size=80).map(" ".join).map(str.strip).filter(bool)


def visible(caption: str, messages: tuple[str, ...] | list[str]) -> str:
    """What a reader sees across the pieces, with line breaks dropped (pieces split at them)."""
    pieces = [check_telegram_html(caption)] + [check_telegram_html(m) for m in messages]
    return "".join(pieces).replace("\n", "")


def assert_fits(caption: str, messages: tuple[str, ...] | list[str]) -> None:
    assert utf16_length(caption) <= CAPTION_MAX
    assert messages
    assert all(0 < utf16_length(m) <= MESSAGE_MAX for m in messages)


async def test_every_hour_of_the_demo_window_fits_telegram() -> None:
    desk = build_desk(BotConfig())
    seen = 0
    async with desk:
        moment = DEMO_START
        while moment <= DEMO_END:
            for symbol in ("BTC/USDT", "ETH/USDT"):
                signal = (await desk.signal(symbol, moment)).signal
                rendered = signal_messages(signal, intro=f"{symbol}: HOLD → BUY")
                assert_fits(rendered.caption, rendered.messages)
                caption = check_telegram_html(rendered.caption)
                assert f"{signal.action.value} {symbol}" in caption
                # A calibrated call reads as its record; a HOLD keeps N/100 (not a probability).
                how_sure = (
                    f"hold {signal.confidence}/100 (how far from a call, not a probability)"
                    if signal.action is Action.HOLD
                    else f"right about {half_up_tenths(signal.confidence)} times in 10 historically"
                )
                assert how_sure in caption
                text = visible(rendered.caption, rendered.messages)
                assert signal.thesis.strip() in text
                assert all(risk in text for risk in signal.risk_factors)
                assert "Not financial advice" in rendered.messages[-1]
                seen += 1
            moment += timedelta(hours=1)
    assert seen == 2 * 143  # 142 hours after 16:00 on the 6th, both ends included, 2 symbols


def half_up_tenths(confidence: int) -> Decimal:
    """Calls right out of 10, rounded half up (45 -> 5), independently of the renderer."""
    return Decimal(confidence).scaleb(-1).quantize(Decimal(1), ROUND_HALF_UP)


def hostile_signal(base: Signal, thesis: str, risks: list[str], notes: list[str]) -> Signal:
    return dataclasses.replace(
        base, thesis=thesis, risk_factors=tuple(risks), notes=tuple(notes), clamps=("<b>",)
    )


@settings(max_examples=150, deadline=None)
@given(
    thesis=phrases,
    intro=phrases | st.just(""),
    risks=st.lists(phrases, max_size=12),
    notes=st.lists(phrases, max_size=3),
)
def test_any_signal_text_fits_is_valid_html_and_loses_nothing(thesis, intro, risks, notes):
    signal = hostile_signal(SIGNAL, thesis, risks, notes)
    rendered = signal_messages(signal, intro=intro)
    assert_fits(rendered.caption, rendered.messages)
    text = visible(rendered.caption, rendered.messages)
    for part in [thesis, intro, *risks, *notes]:
        assert part.replace("\n", "") in text


SIGNAL = make_signal()


def test_a_long_thesis_is_shortened_at_a_sentence_and_given_in_full_below() -> None:
    sentences = [f"Sentence number {n} names the figure {n * 1000:,} & more." for n in range(40)]
    thesis = " ".join(sentences)
    rendered = signal_messages(dataclasses.replace(SIGNAL, thesis=thesis))
    caption = check_telegram_html(rendered.caption)
    assert caption.endswith(" …")
    shown = caption.removesuffix(" …").rsplit("\n", 1)[-1]
    assert shown.endswith("& more.")  # whole sentences only
    assert thesis.startswith(shown)
    assert len(shown) > 500  # the caption's room is used, not thrown away
    assert utf16_length(rendered.caption) <= CAPTION_MAX
    assert thesis in visible("", rendered.messages)


def test_the_whole_caption_has_the_header_and_a_line_per_modality() -> None:
    caption = check_telegram_html(signal_messages(SIGNAL).caption)
    lines = caption.splitlines()
    assert lines[0] == f"🟢 BUY BTC/USDT · confidence {SIGNAL.confidence}/100"
    assert [line.split(" ")[0] for line in lines[2:5]] == ["Whales", "Order", "Sentiment"]


# A line longer than a message: escapes lengthen it, astral characters count twice.
long_lines = st.integers(4000, 9000).map(lambda n: ("a<&😀` é " * n)[:n])


@settings(max_examples=60, deadline=None)
@given(lines=st.lists(phrases | long_lines, min_size=1, max_size=40))
def test_any_reply_splits_at_lines_within_the_limit(lines):
    text = "\n".join(lines)
    messages = reply_messages(Reply(text=text, fields=(Field("a<b>", "c&d"),)))
    assert_fits("", messages)
    shown = visible("", messages)
    assert shown.replace("`", "") == (text.replace("\n", "") + "a<b>: c&d").replace("`", "")


def test_commands_in_backticks_are_code_and_hostile_echoes_stay_text() -> None:
    reply = Reply(text="unknown symbol '<b>@everyone</code>' — try `signal btc`", is_error=True)
    (message,) = reply_messages(reply)
    assert message == (
        "unknown symbol '&lt;b&gt;@everyone&lt;/code&gt;' — try <code>signal btc</code>"
    )


def test_the_footer_credits_the_sources_the_signal_came_from() -> None:
    signal = make_signal()
    replay = "\n".join(signal_messages(signal).messages)
    assert "whale flows: Whale Alert" in replay  # the replay sources' credits by default
    live = ("Fear & Greed: Alternative.me", "candles and order book: Binance")
    text = "\n".join(signal_messages(signal, credits=live).messages)
    assert "Whale Alert" not in text
    assert "Fear &amp; Greed: Alternative.me · candles and order book: Binance" in text
