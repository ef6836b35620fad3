"""The figures people see in the chat fields and on the chart, for a signal made by the real
agents (tests/factories.py); expected values are worked out from the factory's inputs."""

from __future__ import annotations

from dataclasses import replace

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox

from bot.commands.signal import modality_fields
from bot.render.chart import build_figure
from intel.features import BookWall, OrderBookFeatures
from intel.models import Action
from tests.factories import make_signal, make_snapshot

# The BUY scenario: flows in 25 M / out 125 M over 10 transfers; bid:ask volume 3:1 within the
# scoring band, best bid/ask 62,140/62,160, walls at 61,250 and 63,050; six fearful posts and
# Fear & Greed 22 (−56), blended half and half with Reddit's −100: −78.
SPREAD_BPS = 20 / 62_150 * 10_000


def test_chat_fields_carry_each_modalitys_score_and_figures() -> None:
    fields = {field.name: field.value for field in modality_fields(make_signal())}
    assert fields == {
        "Whales": "+50 · net exchange flow +$100.0M · in $25.0M / out $125.0M · 10 transfers"
        " · data: test flows",
        "Order book": f"+50 · imbalance +0.50 (±0.5%) · spread {SPREAD_BPS:.1f} bps"
        " · support $61,250 · resistance $63,050",
        "Sentiment": "-78 · Reddit mood -100 over 6 posts · Fear & Greed 22/100 · engine lexicon"
        " · Extreme Fear (Fear & Greed by Alternative.me)",
    }


def test_a_sell_shows_flows_into_exchanges_and_the_greedy_crowd() -> None:
    fields = {field.name: field.value for field in modality_fields(make_signal(action=Action.SELL))}
    assert fields["Whales"].startswith("-50 · net exchange flow -$100.0M · in $125.0M / out $25.0M")
    assert fields["Order book"].startswith("-50 · imbalance -0.50 (±0.5%)")
    assert fields["Sentiment"].startswith("+78 · Reddit mood +100 over 6 posts · Fear & Greed 78")


def test_the_chart_marks_support_and_resistance_at_their_prices() -> None:
    figure = build_figure(make_signal(), make_snapshot())
    labels = {
        text.get_text(): text.get_position()[0]
        for text in figure.findobj(Text)
        if "support" in text.get_text() or "resistance" in text.get_text()
    }
    assert labels == {" support\n $61,250": 61_250.0, " resistance\n $63,050": 63_050.0}


def test_the_chart_captions_the_reddit_mood_and_post_count() -> None:
    figure = build_figure(make_signal(), make_snapshot())
    captions = [text.get_text() for text in figure.findobj(Text)]
    assert "Reddit -100 · 6 posts · lexicon" in captions


def label_extents(figure: Figure, words: tuple[str, ...]) -> list[Bbox]:
    renderer = FigureCanvasAgg(figure).get_renderer()
    return [
        text.get_window_extent(renderer)
        for text in figure.findobj(Text)
        if any(word in text.get_text() for word in words)
    ]


def test_wall_labels_close_on_the_axis_never_collide() -> None:
    """Walls $40 apart on a ±2 % axis: the labels, drawn side by side, would run into each
    other (even touching bounding boxes read as one label); they must keep a clear gap."""
    signal = make_signal()
    report = signal.reports["orderbook"]
    book = report.features_as(OrderBookFeatures)
    assert book is not None
    close = replace(book, support=BookWall(62_130.0, 1e6), resistance=BookWall(62_170.0, 1e6))
    reports = {**signal.reports, "orderbook": replace(report, features=close)}
    figure = build_figure(replace(signal, reports=reports), make_snapshot())
    support, resistance = label_extents(figure, ("support",)), label_extents(figure, ("resist",))
    assert len(support) == len(resistance) == 1
    gap_px = 6.0  # about one character at the labels' 7 pt
    assert not support[0].padded(gap_px).overlaps(resistance[0])
