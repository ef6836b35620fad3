"""The lexicon engine reads trader talk the way a trader would, and each reading needs its rule.

Every case names the rule it relies on: a line of `phrases.tsv` (its pattern) or a word of
`crypto_terms.tsv`. The case must get the label a trader would give it, and with that one rule
removed the score must move against that reading (so the case fails when the rule is dropped).
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from intel.sentiment import lexicon
from intel.sentiment.lexicon import LexiconEngine, load_crypto_terms
from intel.sentiment.phrases import PHRASES, load_phrases
from intel.sources.replay_files import DEFAULT_REPLAY_DIR

POS, NEG = "positive", "negative"

# (text, label a trader gives it, ("phrase", pattern) or ("term", word))
CASES = [
    (
        "Buy the dip while it lasts",
        POS,
        ("phrase", "buy|buying|bought|btfd the|this|that|these? dip|dips"),
    ),
    (
        "Bought the dip this morning",
        POS,
        ("phrase", "buy|buying|bought|btfd the|this|that|these? dip|dips"),
    ),
    (
        "Don't buy the dip yet",
        NEG,
        ("phrase", "buy|buying|bought|btfd the|this|that|these? dip|dips"),
    ),
    ("Looks like a bull trap to me", NEG, ("phrase", "bull trap|traps")),
    ("This is not a bull trap", POS, ("phrase", "bull trap|traps")),
    ("That drop was a bear trap", POS, ("phrase", "bear trap|traps")),
    ("short squeeze incoming", POS, ("phrase", "short squeeze|squeezes|squeezed|squeezing")),
    ("Long squeeze wiped out the late buyers", NEG, ("phrase", "long squeeze|squeezes|squeezed")),
    (
        "Shorts liquidated overnight",
        POS,
        ("phrase", "shorts squeezed|liquidated|rekt|wiped|burned|burnt"),
    ),
    ("Longs liquidated as BTC slides", NEG, ("phrase", "longs liquidated|rekt|wiped|burned|burnt")),
    ("Classic sell the news", NEG, ("phrase", "sell|selling|sold the news")),
    ("Just a dead cat bounce", NEG, ("phrase", "dead cat bounce|bounces")),
    ("This coin is going to zero", NEG, ("phrase", "@head to zero")),
    ("ETH to the moon", POS, ("phrase", "to the moon")),
    ("The devs did a rug pull", NEG, ("phrase", "rug pull|pulled|pulls|pulling")),
    ("Got rekt on leverage", NEG, ("term", "rekt")),
    ("HODL", POS, ("term", "hodl")),
    ("LFG", POS, ("term", "lfg")),
    ("So much FUD today", NEG, ("term", "fud")),
    ("BTC just hit a new ATH", POS, ("term", "ath")),
    ("Bitcoin at an all time high", POS, ("phrase", "all time high|highs")),
    ("Full capitulation across alts", NEG, ("term", "capitulation")),
    ("Golden cross on the daily", POS, ("phrase", "golden cross")),
    ("Death cross on the daily", NEG, ("phrase", "death cross")),
    ("Spot ETF inflows hit a record", POS, ("phrase", "etf|etfs * inflows|inflow")),
    ("ETF outflows hit record", NEG, ("phrase", "etf|etfs * outflows|outflow")),
    ("Exchange outflows keep climbing", POS, ("phrase", "exchange outflows|outflow|netflow")),
    ("SOL is killing it this week", POS, ("phrase", "killing|crushing it")),
    (
        "insane gains on my alts",
        POS,
        ("phrase", "@big gains|gain|rally|pump|run|profits|returns|green"),
    ),
    ("Massive dump overnight", NEG, ("phrase", "@big dump|crash|losses|loss|drop|dip|red")),
    ("Price target raised to $70 from $65", POS, ("phrase", "@good * @up")),
    ("Net sales decreased to EUR 1 mn", NEG, ("phrase", "@good * @down")),
    ("Operating loss narrowed", POS, ("phrase", "@bad * narrow|narrows|narrowed|narrowing")),
    ("The company cuts costs by 10%", POS, ("phrase", "@down * @bad")),
    ("Initiated at buy with a $50 target", POS, ("phrase", "@start at|to|as|with? @rating_up")),
    ("BTC breaks out above resistance", POS, ("phrase", "break|breaks|broke|breaking out")),
    (
        "Lost support at 60k",
        NEG,
        ("phrase", "lost|lose|loses|losing|break|breaks|broke|breaking below? support"),
    ),
    ("Printing higher lows on the daily", POS, ("phrase", "higher low|lows|high|highs")),
]
SIGN = {POS: 1.0, NEG: -1.0}
FULL = LexiconEngine()


def _without(rule: tuple[str, str], tmp_path: Path) -> LexiconEngine:
    kind, key = rule
    if kind == "term":
        terms = load_crypto_terms()
        assert key in terms, f"no term {key!r} in crypto_terms.tsv"
        del terms[key]
        return LexiconEngine(extra_terms=terms)
    lines = PHRASES.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.split("\t")[0] != key]
    assert len(kept) == len(lines) - 1, f"no single phrase line {key!r} in phrases.tsv"
    path = tmp_path / "phrases.tsv"
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return LexiconEngine(phrases=load_phrases(path))


@pytest.mark.parametrize(("text", "label", "rule"), CASES, ids=[case[0] for case in CASES])
def test_a_trader_agrees_and_the_rule_is_what_makes_it(text, label, rule, tmp_path) -> None:
    (with_rule,) = FULL.score([text])
    assert with_rule.label == label
    (without_rule,) = _without(rule, tmp_path).score([text])
    assert SIGN[label] * (with_rule.score - without_rule.score) > 0.05


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("BUY THE DIP", POS),  # a phrase in capitals is still found
        ("buying-the-dip again", POS),  # hyphens between the words
        ("I would never buy the dip here", NEG),  # VADER's negation reaches the phrase token
        ("Not financial advice: the market opened at 9", "neutral"),
    ],
)
def test_phrases_are_found_in_the_ways_people_write_them(text, label) -> None:
    (result,) = FULL.score([text])
    assert result.label == label


def test_a_malformed_phrase_line_is_named(tmp_path) -> None:
    path = tmp_path / "phrases.tsv"
    path.write_text("@up\trise|rises\nbull trap\tnot-a-number\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2"):
        load_phrases(path)


def test_shipped_posts_telling_readers_to_buy_the_dip_read_positive() -> None:
    """Posts of the replay file (intel/data/replay/reddit) that tell the reader to buy the dip."""
    wanted = {"1o1zb99", "1odp2gj", "1ognhtw", "1o4evt5", "1o3b53s", "1ocljy0"}
    with gzip.open(DEFAULT_REPLAY_DIR / "reddit" / "posts.csv.gz", "rt", encoding="utf-8") as f:
        rows = [row for row in csv.DictReader(f) if row["post_id"] in wanted]
    assert len(rows) == len(wanted)
    texts = [f"{row['title']}. {row['excerpt']}".strip() for row in rows]
    assert [s.label for s in FULL.score(texts)] == ["positive"] * len(wanted)


@pytest.mark.parametrize("text", ["Traders want more data", "Analysts say the quarter looks fine"])
def test_one_weak_everyday_word_is_not_a_mood(text, monkeypatch) -> None:
    """VADER calls these positive on one weak word ("want" 0.3, "fine" 0.8); news reads neutral."""
    (result,) = FULL.score([text])
    assert result.label == "neutral"
    monkeypatch.setattr(lexicon, "DEAD_ZONE", 0.0)
    (without_dead_zone,) = FULL.score([text])
    assert without_dead_zone.label == "positive"
