"""`python -m bot calibrate`: fit the calibration map on the shipped history and write it.

The rules' signals for every configured symbol, one an hour over the period (`intel.history`),
are scored (`intel.outcome`); a purged walk-forward fits the map on the earlier part and judges
it on the later one (`intel.calibration_fit`). The map is written with what it was fitted on and
the before/after figures; by default over the package's shipped map, which the product reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.cli import EXIT_OK
from bot.config import BotConfig
from intel.calibration import DEFAULT_MAP_PATH, CalibrationMap, FitScope, save_map
from intel.errors import UserInputError
from intel.models import Signal
from intel.timeutil import iso, parse_time

__all__ = ["register", "run_calibration"]

DEFAULT_FROM, DEFAULT_TO = "2024-11-05", "2025-10-12"  # the recorded whale flows: calls exist


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    calibrate = subparsers.add_parser(
        "calibrate",
        parents=[common],
        help="fit the map from raw to calibrated confidence and write it",
        description="Fits a monotone map from the rules' raw confidence of BUY/SELL calls to "
        "the share of such calls that came out right, on the shipped history (purged "
        "walk-forward), and writes it with its before/after figures.",
    )
    calibrate.add_argument("--from", dest="start", metavar="DATE", default=DEFAULT_FROM)
    calibrate.add_argument("--to", dest="end", metavar="DATE", default=DEFAULT_TO)
    calibrate.add_argument(
        "--out", type=Path, metavar="PATH", default=None, help="default: the shipped map"
    )
    calibrate.add_argument("--step-hours", type=int, default=1, help=argparse.SUPPRESS)
    calibrate.add_argument("--json", action="store_true", help="print the figures as JSON")
    calibrate.set_defaults(handler=_cmd_calibrate)


def _cmd_calibrate(args: argparse.Namespace, config: BotConfig) -> int:
    start, end = parse_time(args.start), parse_time(args.end)
    if end <= start + timedelta(days=7):
        raise UserInputError("--to must be at least a week after --from to fit anything")
    if not 1 <= args.step_hours <= 24:
        raise UserInputError("--step-hours must be 1..24")
    out = args.out or config.calibration.map_path or DEFAULT_MAP_PATH
    if out.parent and not out.parent.is_dir():
        raise UserInputError(f"cannot write {out}: folder {out.parent} does not exist")
    calibration = asyncio.run(run_calibration(config, start, end, args.step_hours))
    save_map(calibration, out)
    if args.json:
        print(json.dumps({"map": str(out), **calibration.evaluation}, indent=2))
    else:
        print(render_report(calibration, out))
    return EXIT_OK


async def run_calibration(
    config: BotConfig, start: datetime, end: datetime, step_h: int = 1
) -> CalibrationMap:
    """Signals over history for every configured symbol, scored, split, fitted and judged.

    UserInputError when the period holds too few calls to fit."""
    from intel.calibration_fit import (
        calibration_figures,
        call_set,
        describe_period,
        fit_map,
        modalities_present,
        no_demonstrated_edge,
        purged_split,
    )
    from intel.history import signals_over_history
    from intel.sources.replay_candles import ReplayCandleSource
    from intel.sources.replay_files import DEFAULT_REPLAY_DIR

    # The map is fitted on the rules' raw confidence (signals made without a map) with the
    # lexicon engine: what its scope records. (History always uses the rules coordinator.)
    raw_rules = config.calibration.model_copy(update={"enabled": False})
    lexicon = config.agents.sentiment.model_copy(update={"engine": "lexicon"})
    agents = config.agents.model_copy(update={"sentiment": lexicon})
    replay = config.model_copy(update={"calibration": raw_rules, "agents": agents})
    signals: list[Signal] = []
    for symbol in config.symbols:
        signals += await signals_over_history(replay, symbol, start, end, timedelta(hours=step_h))
    source = ReplayCandleSource(config.data.replay_dir or DEFAULT_REPLAY_DIR)
    candles = {symbol: source.history(symbol) for symbol in config.symbols}
    calls = call_set(signals, candles, end + timedelta(days=3))
    if len(calls.raw) < 100:
        raise UserInputError(f"only {len(calls.raw)} BUY/SELL calls in the period: too few to fit")
    fit_part, later = purged_split(calls)
    first, last = describe_period(signals)
    scope = FitScope(
        start=first,
        end=iso(fit_part.as_of[-1]),
        symbols=config.symbols,
        modalities=modalities_present([s for s in signals if s.as_of <= fit_part.as_of[-1]]),
        coordinator="rules",
        sentiment_engine="lexicon",
        step_h=step_h,
    )
    fitted = fit_map(fit_part, scope, config.coordinator)
    base_rate = float(fit_part.right.mean())
    figures = calibration_figures(later, fitted, base_rate)
    flat = fitted.flat or no_demonstrated_edge(figures)
    evaluation = {
        "period": {"start": first, "end": last},
        "fit": {"start": first, "end": iso(fit_part.as_of[-1]), "calls": len(fit_part.raw)},
        "evaluation": {
            "start": iso(later.as_of[0]),
            "end": iso(later.as_of[-1]),
            "calls": len(later.raw),
        },
        "base_rate_fit": base_rate,
        "flat": flat,
        "figures": figures,
        "buckets": _bucket_shares(later.raw, fitted),
    }
    return CalibrationMap(
        fitted.raw_knots, fitted.probabilities, scope, flat, fitted.cutoffs, evaluation
    )


def _bucket_shares(raw: Any, calibration: CalibrationMap) -> dict[str, float]:
    """Share of the later period's calls in each 10-point calibrated bucket."""
    values = [calibration.apply(round(r * 100)) for r in raw]
    shares: dict[str, float] = {}
    for value in values:
        low = min(90, value // 10 * 10)
        key = f"{low}-{low + 10}"
        shares[key] = shares.get(key, 0.0) + 1 / len(values)
    return dict(sorted(shares.items()))


def render_report(calibration: CalibrationMap, out: Path) -> str:
    """The before/after figures as text, one line per market regime."""
    ev = calibration.evaluation
    lines = [
        f"Calibration map written to {out}",
        f"fitted on {ev['fit']['start']} → {ev['fit']['end']} ({ev['fit']['calls']} calls); "
        f"judged on {ev['evaluation']['start']} → {ev['evaluation']['end']} "
        f"({ev['evaluation']['calls']} calls), after a 48 h gap",
        f"modalities: {', '.join(calibration.scope.modalities)}",
    ]
    if calibration.flat:
        lines.append(
            "No demonstrated edge at this horizon: on the later period calibrated confidence "
            "does not tell right calls from wrong ones better than chance (AUC interval ≤ 0.5)."
        )
    for regime, sides in ev["figures"].items():
        for side in ("before", "after"):
            f = sides[side]
            if not f.get("calls"):
                lines.append(f"{regime:9} {side:6} no calls")
                continue
            lines.append(
                f"{regime:9} {side:6} calls {f['calls']:5d}  right {f['share_right']:.3f}  "
                f"ECE {f['ece']:.3f}  Brier {f['brier']:.3f} (base rate {f['brier_base_rate']:.3f})"
                f"  skill {_num(f['brier_skill'])}  spread {f['spread']:.3f}  AUC {_num(f['auc'])}"
            )
    shares = " · ".join(f"{k}: {v * 100:.0f} %" for k, v in ev["buckets"].items())
    lines.append(f"calls per calibrated bucket (later period): {shares}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.3f}"
