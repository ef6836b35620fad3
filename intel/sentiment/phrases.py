"""Multi-word expressions (`intel/data/lexicon/phrases.tsv`) turned into single lexicon tokens.

Each phrase found in a text is replaced by a token of its own (`xphr12`) whose valence the lexicon
engine adds to VADER's lexicon, so VADER's negation, boosters and "but" rules treat a phrase like a
word: "not a bull trap" is read as the negation of "bull trap". The file's syntax is described in
its header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PHRASES", "PhraseTable", "load_phrases"]

PHRASES = Path(__file__).resolve().parent.parent / "data" / "lexicon" / "phrases.tsv"
TOKEN_PREFIX = "xphr"
_SEPARATOR = r"[\s\-]+"
# A wildcard word stops at sentence punctuation so a phrase never spans two sentences.
_ANY_WORD = r"[\w$%'’,]+(?:\.\d+)?"


@dataclass(frozen=True, slots=True)
class PhraseTable:
    """The compiled phrases: `rewrite(text)` and the valence of every token it may insert."""

    pattern: re.Pattern[str]
    valences: dict[str, float]

    def rewrite(self, text: str) -> str:
        return self.pattern.sub(_token_for, text)


def _token_for(match: re.Match[str]) -> str:
    token = match.lastgroup or ""
    # An all-capitals phrase ("LFG", "BUY THE DIP") keeps VADER's emphasis for capitals.
    return f" {token.upper() if match.group(0).isupper() else token} "


def load_phrases(path: Path = PHRASES) -> PhraseTable:
    """Parse the phrase file; ValueError naming the line when a line is malformed."""
    classes: dict[str, str] = {}
    alternatives: list[str] = []
    valences: dict[str, float] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            left, right = line.split("\t")
            if left.startswith("@") and " " not in left:
                classes[left[1:]] = _words(right)
                continue
            token = f"{TOKEN_PREFIX}{len(alternatives)}"
            alternatives.append(f"(?P<{token}>{_compile(left, classes)})")
            valences[token] = float(right)
        except (ValueError, KeyError) as exc:
            raise ValueError(f"{path.name} line {number}: {exc}: {line!r}") from None
    body = "|".join(alternatives)
    return PhraseTable(re.compile(rf"(?<![\w$])(?:{body})(?!\w)", re.IGNORECASE), valences)


def _words(alternatives: str) -> str:
    """`a|b c` → a regex group of the words, spaces or hyphens inside a word matching either."""
    parts = [re.escape(word).replace(r"\-", _SEPARATOR) for word in alternatives.split("|")]
    return "(?:" + "|".join(parts) + ")"


def _compile(pattern: str, classes: dict[str, str]) -> str:
    regex = ""
    for index, slot in enumerate(pattern.split()):
        separator = "" if index == 0 else _SEPARATOR
        if slot == "*":
            regex += f"(?:{_SEPARATOR}{_ANY_WORD}){{0,3}}?"
            continue
        optional = slot.endswith("?")
        name = slot.rstrip("?")
        words = classes[name[1:]] if name.startswith("@") else _words(name)
        regex += f"(?:{separator}{words})?" if optional else f"{separator}{words}"
    return regex
