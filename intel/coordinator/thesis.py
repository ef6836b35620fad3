"""Thesis sentences and risk factors written from the numbers behind a rules decision."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from intel.features import OrderBookFeatures, SentimentFeatures, WhaleFeatures
from intel.models import Action, AgentReport
from intel.textfmt import format_signed, format_usd

if TYPE_CHECKING:
    from intel.coordinator.rules import Assessment

__all__ = ["key_drivers", "risk_factors", "write_thesis"]

Reports = Mapping[str, AgentReport]


def write_thesis(a: Assessment, reports: Reports) -> str:
    sentences = [
        _whale_sentence(reports.get("whales")),
        _mood_sentence(a, reports.get("sentiment")),
        _verdict_sentence(a),
    ]
    book = _book_sentence(a, reports.get("orderbook"))
    if book:
        sentences.append(book)
    return " ".join(s for s in sentences if s)


def key_drivers(a: Assessment) -> list[str]:
    """The figures behind the call, most important first: the divergence, then its two sides,
    then the order book when it moved the confidence."""
    drivers = [f"Divergence {format_signed(a.divergence)} ({a.divergence_level})"]
    if a.whale_score is not None:
        drivers.append(f"Whale score {format_signed(a.whale_score)}")
    if a.retail_mood is not None:
        drivers.append(f"Retail mood {format_signed(a.retail_mood)} ({a.retail_tone})")
    if a.orderbook_score is not None and a.orderbook_effect != 0:
        effect = "confirms" if a.orderbook_effect > 0 else "leans against"
        drivers.append(f"Order book {format_signed(a.orderbook_score)} {effect} the call")
    return drivers


def risk_factors(a: Assessment, reports: Reports) -> list[str]:
    risks: list[str] = []
    if a.high_volatility:
        risks.append(f"High volatility: hourly moves of {a.volatility_pct:.2f} % (1 σ, 24 h)")
    for name in a.missing:
        report = reports.get(name)
        reason = report.reason if report and report.reason else "no data"
        risks.append(f"{name} unavailable: {reason}")
    for name in a.degraded:
        report = reports.get(name)
        risks.append(f"{name} degraded: {report.reason if report else 'partial data'}")
    if a.orderbook_effect < 0:
        risks.append("The order book leans against the call")
    report = reports.get("orderbook")
    book = report.features_as(OrderBookFeatures) if report else None
    if book and book.spoofing_events > 0:
        risks.append(
            f"Possible spoofing: {book.spoofing_events} wall(s) vanished before price reached them"
        )
    if a.action is not Action.HOLD and not a.high_divergence:
        risks.append("Divergence is moderate, not high: a weaker setup")
    if not risks:
        risks.append("Signals can flip quickly around news; size positions accordingly")
    return risks


def _whale_sentence(report: AgentReport | None) -> str:
    if report is None or report.score is None:
        return "Whale flows are unavailable."
    flows = report.features_as(WhaleFeatures)
    if flows is None:
        return f"Whale accumulation score {format_signed(report.score)}."
    hours = int(flows.window_h)
    if flows.transfer_count == 0:
        return f"No whale transfers to or from exchanges in the last {hours} h."
    net = flows.net_flow_usd
    direction = "out of" if net >= 0 else "into"
    stance = "accumulation" if net >= 0 else "distribution"
    return (
        f"Whales moved a net {format_usd(abs(net))} {direction} exchanges over {hours} h "
        f"({flows.transfer_count} transfers, {stance} score {format_signed(report.score)})."
    )


def _mood_sentence(a: Assessment, report: AgentReport | None) -> str:
    if report is None or report.score is None:
        return "Retail sentiment is unavailable."
    mood = report.features_as(SentimentFeatures)
    parts = []
    if mood and mood.fear_greed:
        parts.append(f"Fear & Greed {mood.fear_greed.value}")
    if mood and mood.reddit:
        reddit = mood.reddit
        parts.append(f"Reddit mood {format_signed(reddit.mood)} over {reddit.post_count} posts")
    detail = f" ({'; '.join(parts)})" if parts else ""
    return f"Retail is {a.retail_tone}: mood {format_signed(report.score)}{detail}."


def _verdict_sentence(a: Assessment) -> str:
    level = a.divergence_level
    if a.action is Action.BUY:
        return (
            f"Smart money accumulating into retail fear: divergence "
            f"{format_signed(a.divergence)} ({level})."
        )
    if a.action is Action.SELL:
        return (
            f"Smart money distributing into retail greed: divergence "
            f"{format_signed(a.divergence)} ({level})."
        )
    if a.whale_score is None:
        return "Without whale flows there is no divergence to act on."
    return (
        f"{_no_call_reason(a, a.whale_score)} (divergence {format_signed(a.divergence)}, {level})."
    )


def _no_call_reason(a: Assessment, whale: float) -> str:
    """Why a HOLD: the side short of its configured threshold, or both leaning the same way."""
    whales = "accumulating" if whale > 0 else "distributing"
    whale_clear = abs(whale) >= a.whale_threshold
    mood = format_signed(a.retail_mood or 0.0)
    if not whale_clear and a.retail_tone == "neutral":
        return (
            f"No call: whale score {format_signed(whale)} and retail mood {mood} are both inside "
            f"their thresholds, ±{a.whale_threshold:g} and ±{a.mood_threshold:g}"
        )
    if not whale_clear:
        return (
            f"No call: retail is {a.retail_tone} but whales show no clear intent, "
            f"score {format_signed(whale)} short of ±{a.whale_threshold:g}"
        )
    if a.retail_tone == "neutral":
        wanted = "greed at +" if whale < 0 else "fear at -"
        return (
            f"No call: whales are {whales}, score {format_signed(whale)}, but retail mood {mood} "
            f"is short of {wanted}{a.mood_threshold:g}"
        )
    return (
        f"No call: whales are {whales} while retail is {a.retail_tone}: both lean the same way, "
        "so there is no divergence to trade"
    )


def _book_sentence(a: Assessment, report: AgentReport | None) -> str:
    if report is None or report.score is None:
        return ""
    lean = "bids" if report.score > 0 else "asks"
    effect = {1: "confirming the call", -1: "against the call", 0: ""}[a.orderbook_effect]
    tail = f", {effect}" if effect else ""
    return f"The order book leans to the {lean} ({format_signed(report.score)}){tail}."
