"""The Discord renderer: embeds as `discord.Embed.to_dict()` gives them, replies as contents;
Discord's limits on every piece, escaped dynamic text, nothing lost when something is long."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import discord
import pytest

from bot.commands.base import Reply
from bot.render.discord import LIMITS, embed_size, reply_contents, signal_embeds
from intel.desk import build_desk
from intel.models import Action
from intel.timeutil import parse_time
from tests.factories import make_signal
from tests.replay_truth import desk_config

DEMO_START = parse_time("2025-10-06T16:00Z")
DEMO_END = parse_time("2025-10-12T14:00Z")
HOSTILE = [
    "@everyone look",
    "@here",
    "<@&123456789012345678> role ping",
    "<@123456789012345678> user ping",
    "**bold** __under__ ~~gone~~ ||spoiler||",
    "`code` ```block```",
    "[click](https://evil.example)",
    "# heading",
    "> quote",
    "- list item",
]


def assert_within_limits(embed: dict[str, Any]) -> None:
    assert len(embed.get("title", "")) <= LIMITS.title
    assert len(embed.get("description", "")) <= LIMITS.description
    assert len(embed.get("fields", [])) <= LIMITS.fields
    for field in embed.get("fields", []):
        assert 0 < len(field["name"]) <= LIMITS.field_name
        assert 0 < len(field["value"]) <= LIMITS.field_value
    assert len(embed["footer"]["text"]) <= LIMITS.footer
    assert embed_size(embed) <= LIMITS.total


def unescape(text: str) -> str:
    """Undo Discord escaping (backslashes, the zero-width space in mentions)."""
    return re.sub(r"\\(.)", r"\1", text).replace("\u200b", "")


def words(text: str) -> list[str]:
    return unescape(text).replace("…", " ").split()


def test_a_signal_is_one_embed_with_what_how_sure_why_and_how_fresh() -> None:
    signal = make_signal(action=Action.SELL, confidence=64)
    [embed] = signal_embeds(signal, intro="BUY → SELL")
    assert embed["title"] == "🔴 SELL BTC/USDT · confidence 64/100"
    assert embed["color"] == 0xE74C3C
    assert embed["description"].startswith("**BUY → SELL**\n\n")
    assert words(embed["description"])[3:] == signal.thesis.split()
    fields = {field["name"]: field for field in embed["fields"]}
    assert list(fields)[:3] == ["Whales", "Order book", "Sentiment"]
    assert all(fields[name]["inline"] for name in ("Whales", "Order book", "Sentiment"))
    assert unescape(fields["Whales"]["value"]).startswith("-50 · net exchange flow -$100.0M")
    assert fields["Confidence"]["value"].startswith("64/100")
    assert fields["Timeframe"]["value"] == "24 h"
    assert fields["Sizing"]["value"] == "position moderate · price $62,150"
    for risk in signal.risk_factors:
        assert unescape(risk) in unescape(fields["Risk factors"]["value"])
    assert "Market moment 2025-" in fields["Freshness"]["value"]
    footer = embed["footer"]["text"]
    assert "rules coordinator" in footer
    assert "Alternative.me" in footer
    assert "Not financial advice" in footer
    assert embed["image"]["url"] == "attachment://chart.png"
    assert embed["timestamp"] == signal.as_of.isoformat()
    # What discord.py would send: the dict survives its own round trip unchanged.
    assert discord.Embed.from_dict(embed).to_dict() == embed


@pytest.mark.parametrize(("action", "colour"), [(Action.BUY, 0x2ECC71), (Action.HOLD, 0x95A5A6)])
def test_colour_by_action_never_alone(action: Action, colour: int) -> None:
    signal = replace(make_signal(), action=action)
    [embed] = signal_embeds(signal, with_chart=False)
    assert embed["color"] == colour
    assert action.value in embed["title"]
    assert "image" not in embed


def test_a_long_thesis_continues_in_further_embeds_all_of_it() -> None:
    thesis = " ".join(f"Sentence number {n} says something about whales." for n in range(400))
    signal = replace(make_signal(), thesis=thesis)
    embeds = signal_embeds(signal)
    assert len(embeds) >= 5
    for embed in embeds:
        assert_within_limits(embed)
    assert embeds[1]["title"].endswith("(continued)")
    assert "image" not in embeds[1]
    shown = " ".join(embed.get("description", "") for embed in embeds)
    assert words(shown) == thesis.split()


def test_many_long_risks_fill_fields_and_embeds_within_the_limits() -> None:
    risks = tuple(f"Risk {n}: " + "liquidity may vanish at the open " * 40 for n in range(30))
    signal = replace(make_signal(), risk_factors=risks)
    embeds = signal_embeds(signal)
    for embed in embeds:
        assert_within_limits(embed)
    values = [f["value"] for e in embeds for f in e["fields"] if f["name"].startswith("Risk")]
    assert len(values) > 1
    assert words(" ".join(values)) == " ".join(f"• {risk}" for risk in risks).split()
    names = [f["name"] for e in embeds for f in e["fields"]]
    assert names.count("Freshness") == 1


def test_more_than_25_fields_continue_in_a_second_embed() -> None:
    signal = make_signal()
    extra = {f"extra_{n}": signal.reports["whales"] for n in range(30)}
    signal = replace(signal, reports={**signal.reports, **extra})
    embeds = signal_embeds(signal)
    assert len(embeds) == 2
    for embed in embeds:
        assert_within_limits(embed)
    names = [f["name"] for e in embeds for f in e["fields"]]
    assert [name for name in names if name.startswith("Extra")] == [f"Extra {n}" for n in range(30)]


def test_hostile_text_in_a_signal_never_pings_or_marks_up() -> None:
    text = " ".join(HOSTILE)
    signal = replace(make_signal(), thesis=text, risk_factors=tuple(HOSTILE))
    [embed] = signal_embeds(signal)
    for piece in (embed["description"], *[f["value"] for f in embed["fields"]]):
        assert "@everyone" not in piece
        assert "@here" not in piece
        assert "<@&1" not in piece
        assert "**bold**" not in piece
        assert not re.search(r"(?<!\\)\[click\]\(", piece)  # a masked link only unescaped
    assert words(embed["description"]) == text.split()


def test_a_long_reply_splits_at_line_ends_within_2000_characters() -> None:
    lines = [f"BTC/USDT source {n:03d} ok · last update 3 min ago · detail text" for n in range(80)]
    contents = reply_contents(Reply(text="\n".join(lines)))
    assert len(contents) >= 3
    assert all(len(content) <= LIMITS.content for content in contents)
    assert "\n".join(contents).split("\n") == lines  # nothing lost, every cut at a line end


def test_a_single_line_longer_than_a_message_is_split_visibly() -> None:
    line = "word " * 1000
    contents = reply_contents(Reply(text=line))
    assert all(len(content) <= LIMITS.content for content in contents)
    assert contents[0].endswith("…")
    assert words(" ".join(contents)) == line.split()


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_input_echoed_in_a_reply_is_inert(hostile: str) -> None:
    reply = Reply(text=f"unknown command {hostile!r} — `help` lists every command", is_error=True)
    [content] = reply_contents(reply)
    assert "@everyone" not in content
    assert "@here" not in content
    assert not re.search(r"<@&?\d{17,}>", content)
    for marker in ("**", "__", "~~", "||", "[click]("):
        assert marker not in content.replace("\\" + marker[0], "")
    assert not re.search(r"^(#|>|-) ", content, re.MULTILINE)
    assert unescape(content) == reply.text


async def test_every_demo_hour_fits_discord_for_btc_and_eth() -> None:
    """Every hour of the demo window through the real desk: each piece within its limit."""
    checked = 0
    async with build_desk(desk_config()) as desk:
        for symbol in ("BTC/USDT", "ETH/USDT"):
            at = DEMO_START
            while at <= DEMO_END:
                signal = (await desk.signal(symbol, at)).signal
                embeds = signal_embeds(signal, intro=f"HOLD → {signal.action.value}")
                for embed in embeds:
                    assert_within_limits(embed)
                shown = " ".join(e.get("description", "") for e in embeds)
                assert words(shown)[3:] == signal.thesis.split()
                for content in reply_contents(Reply(text=signal.thesis)):
                    assert len(content) <= LIMITS.content
                checked += 1
                at += timedelta(hours=1)
    assert checked == 2 * (int((DEMO_END - DEMO_START).total_seconds()) // 3600 + 1)


def test_the_footer_credits_the_sources_the_signal_came_from() -> None:
    signal = make_signal()
    assert "whale flows: Whale Alert" in signal_embeds(signal)[0]["footer"]["text"]
    live = ("Fear & Greed: Alternative.me", "candles and order book: Binance")
    footer = signal_embeds(signal, credits=live)[0]["footer"]["text"]
    assert "Whale Alert" not in footer
    assert "Fear & Greed: Alternative.me · candles and order book: Binance" in footer
