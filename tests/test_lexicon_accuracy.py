"""The accuracy figures the README states, recomputed from ../shared (skipped where it is absent).

VADER's PhraseBank figure (0.571) is also the one published with the data set, which checks the
evaluation's protocol (±0.05 threshold, AllAgree file) independently of our engine.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "eval_sentiment_phrasebank.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("eval_sentiment_phrasebank", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def script() -> ModuleType:
    if not SCRIPT.is_file():
        pytest.skip("the evaluation script is not in this tree")
    module = _script()
    if not (module.DEFAULT_DATA / "financial_phrasebank").is_dir():
        pytest.skip(f"no labelled data at {module.DEFAULT_DATA}")
    return module


def test_phrasebank_figures(script) -> None:
    rows = script.read_phrasebank(script.DEFAULT_DATA)
    assert len(rows) == 2264
    assert round(script.accuracy(script.vader_scorer(), rows), 3) == 0.571
    assert round(script.accuracy(script.lexicon_scorer(), rows), 3) == 0.746


def test_held_out_tweet_figures(script) -> None:
    rows = script.read_tfn(script.DEFAULT_DATA, held_out=True)
    assert len(rows) == 1971
    assert round(script.accuracy(script.vader_scorer(), rows), 3) == 0.469
    assert round(script.accuracy(script.lexicon_scorer(), rows), 3) == 0.623


def test_the_held_out_fifth_is_fixed_by_hash(script) -> None:
    assert script.is_held_out("BTC to the moon") == script.is_held_out("BTC to the moon")
    rows = script.read_tfn(script.DEFAULT_DATA, held_out=False)
    assert len(rows) + 1971 == 9543
