"""Signals stored by earlier releases still load and render: JSON written by `signal --json` before
features were typed (tests/fixtures/signal_*.json, with the text `signal` printed for the same
moments; created times aligned), partial documents and ones with keys no code reads."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands.signal import modality_fields
from bot.render.text import render_text
from intel.features import (
    BandImbalance,
    BookWall,
    FearGreedFigures,
    Features,
    OrderBookFeatures,
    RedditFigures,
    SentimentFeatures,
    WhaleFeatures,
)
from intel.serialize import (
    features_from_json,
    features_to_json,
    signal_from_json,
    signal_to_json,
)
from tests.factories import make_reports

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MOMENTS = ("btc_2025-10-06T16-00Z", "btc_2024-08-09T00-05Z", "eth_2025-10-10T21-00Z")


def stored(moment: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / f"signal_{moment}.json").read_text())
    return document


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_stored_signal_renders_as_it_did_when_it_was_made(moment: str) -> None:
    printed = (FIXTURES / f"signal_{moment}.txt").read_text(encoding="utf-8").rstrip("\n")
    assert render_text(signal_from_json(stored(moment))) == printed


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_stored_signal_is_written_back_byte_for_byte(moment: str) -> None:
    document = stored(moment)
    again = signal_to_json(signal_from_json(document))
    # Keys added since (the contract only ever adds) come with their empty value ...
    assert again.pop("notes") == []
    assert again.pop("key_drivers") == []
    assert again.pop("model") is None
    assert again.pop("raw_confidence") == document["confidence"]  # stored before calibration
    assert again.pop("calibrated") is False
    # ... and the rest keeps the same names, order and numbers: a renamed or dropped figure fails.
    assert json.dumps(again) == json.dumps(document)


def test_stored_figures_are_read_into_the_typed_records() -> None:
    document = stored("eth_2025-10-10T21-00Z")
    reports = signal_from_json(document).reports
    figures = {name: document["reports"][name]["features"] for name in reports}

    flows = reports["whales"].features_as(WhaleFeatures)
    assert flows is not None
    assert flows.net_flow_usd == figures["whales"]["net_flow_usd"] == -62_532_685.0
    assert flows.inflow_coins == figures["whales"]["inflow_coins"]
    assert flows.transfer_count == 1

    book = reports["orderbook"].features_as(OrderBookFeatures)
    assert book is not None
    assert [(b.band_pct, b.imbalance) for b in book.imbalances] == [
        (0.1, figures["orderbook"]["imbalance_0_1pct"]),
        (0.5, figures["orderbook"]["imbalance_0_5pct"]),
        (1.0, figures["orderbook"]["imbalance_1pct"]),
        (2.0, figures["orderbook"]["imbalance_2pct"]),
    ]
    assert book.mid_price == figures["orderbook"]["mid"] == 3980.5
    assert book.support is not None
    assert book.support.price == 3979.5
    assert book.snapshot_count == 1

    mood = reports["sentiment"].features_as(SentimentFeatures)
    assert mood is not None
    assert mood.reddit is not None
    assert mood.fear_greed is not None
    assert (mood.reddit.mood, mood.reddit.post_count) == (-56.7, 8)
    assert (mood.fear_greed.value, mood.fear_greed.mood) == (64, 28.0)


def test_an_unavailable_report_has_no_figures() -> None:
    whales = signal_from_json(stored("btc_2024-08-09T00-05Z")).reports["whales"]
    assert whales.features is None
    assert whales.features_as(WhaleFeatures) is None


def test_a_partial_document_loads_and_shows_what_it_has() -> None:
    document = copy.deepcopy(stored("eth_2025-10-10T21-00Z"))
    for key in ("high_divergence", "price"):
        del document[key]
    del document["reports"]["whales"]["notes"]
    del document["reports"]["sentiment"]["engine"]
    del document["reports"]["whales"]["features"]["active_hours"]  # a required whale figure
    del document["reports"]["orderbook"]["features"]["support_size_quote"]
    del document["reports"]["orderbook"]["features"]["imbalance_0_5pct"]
    del document["reports"]["sentiment"]["features"]["post_count"]  # Reddit's figures incomplete

    signal = signal_from_json(document)
    text = render_text(signal)

    assert signal.price is None
    assert signal.high_divergence is False
    assert signal.reports["whales"].features is None
    line = {row.split()[0]: row for row in text.splitlines() if row[:1].isalpha()}
    assert line["Whales"] == "Whales       -56  "  # score kept, no figures left to show
    assert "imbalance +0.08 (±0.1%)" in line["Order"]  # next band in the renderer's order
    assert "support" not in line["Order"]
    assert "resistance $3,982.50" in line["Order"]
    assert "Reddit" not in line["Sentiment"]
    assert "Fear & Greed 64/100" in line["Sentiment"]
    assert "engine" not in line["Sentiment"]
    assert [field.name for field in modality_fields(signal)] == [
        "Whales",
        "Order book",
        "Sentiment",
    ]


def test_keys_no_code_reads_are_ignored() -> None:
    """The old test factory's figures (and any unknown name) load as no figures, not an error."""
    document = copy.deepcopy(stored("btc_2025-10-06T16-00Z"))
    reports = document["reports"]
    reports["whales"]["features"] = {"net_outflow_usd": 41_500_000.0, "transfer_count": 37.0}
    reports["orderbook"] = {**reports["sentiment"], "features": {"imbalance_top20": 0.18}}
    reports["sentiment"]["features"] = {"posts": 12.0, "fear_greed": 64.0}

    signal = signal_from_json(document)

    assert all(report.features is None for report in signal.reports.values())
    assert "Whales       -26  data: via Whale Alert" in render_text(signal)


def test_features_are_written_under_the_contract_names() -> None:
    """The names and order the first release wrote, for figures made by today's agents; names
    added since come after them."""
    names = {
        name: list(features_to_json(report.features)) for name, report in make_reports().items()
    }
    written = {
        name: list(report["features"])
        for name, report in stored("eth_2025-10-10T21-00Z")["reports"].items()
    }
    written["orderbook"].append("book_reach_pct")
    assert names == written


FINITE = st.floats(-1e12, 1e12, allow_nan=False)
COUNTS = st.integers(0, 10_000)
WALLS = st.one_of(st.none(), st.builds(BookWall, FINITE, FINITE))
BANDS = st.lists(st.sampled_from([0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0]), unique=True)
FEATURES = st.one_of(
    st.builds(
        WhaleFeatures,
        FINITE,
        FINITE,
        FINITE,
        COUNTS,
        FINITE,
        COUNTS,
        st.one_of(st.none(), FINITE),
        st.one_of(st.none(), FINITE),
    ),
    st.builds(
        OrderBookFeatures,
        BANDS.flatmap(
            lambda bands: st.tuples(*(st.builds(BandImbalance, st.just(b), FINITE) for b in bands))
        ),
        FINITE,
        FINITE,
        FINITE,
        FINITE,
        WALLS,
        WALLS,
        COUNTS,
        COUNTS,
    ),
    st.builds(
        SentimentFeatures,
        st.builds(RedditFigures, FINITE, COUNTS, COUNTS, COUNTS, FINITE),
        st.one_of(st.none(), st.builds(FearGreedFigures, st.integers(0, 100), FINITE, FINITE)),
    ),
    st.builds(
        SentimentFeatures,
        st.none(),
        st.builds(FearGreedFigures, st.integers(0, 100), FINITE, FINITE),
    ),
)
AGENT_OF = {WhaleFeatures: "whales", OrderBookFeatures: "orderbook", SentimentFeatures: "sentiment"}


@settings(max_examples=300, deadline=None)
@given(FEATURES)
def test_every_record_survives_its_json_form(features: Features) -> None:
    figures = json.loads(json.dumps(features_to_json(features)))
    assert features_from_json(AGENT_OF[type(features)], figures) == features
