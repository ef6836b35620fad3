"""Calibrated confidence: a monotone map from the rules' raw confidence of a BUY or SELL to the
share of such calls that came out right (`intel.outcome`), fitted on replay history.

The map is a piecewise-linear curve through fitted knots (isotonic regression's steps, see
`intel.calibration_fit`), read with `numpy.interp`, so using it needs no fitting library. It
records what it was fitted on; a signal made under another configuration (live data, another
sentiment engine or coordinator) gets a note saying its confidence is calibrated on replay history
with fewer modalities. A HOLD is not a bet: its confidence keeps its meaning (how far the market is
from a call) and is never mapped. A flat map means no demonstrated edge: surfaces say so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from intel.errors import ConfigError
from intel.models import Action, AgentReport

__all__ = [
    "DEFAULT_MAP_PATH",
    "NO_EDGE_NOTE",
    "CalibrationMap",
    "Calibrator",
    "FitScope",
    "load_map",
    "save_map",
]

DEFAULT_MAP_PATH = Path(__file__).resolve().parent / "data" / "calibration" / "rules_map.json"
MAP_VERSION = 1
# The note a calibrated call carries when the map shows no edge; surfaces test for it.
NO_EDGE_NOTE = (
    "No demonstrated edge at this horizon: on replay history calls like this were right about "
    "as often as chance"
)


@dataclass(frozen=True, slots=True)
class FitScope:
    """What a map was fitted on."""

    start: str  # ISO-8601 UTC, the first and last signal moment of the fit period
    end: str
    symbols: tuple[str, ...]
    modalities: tuple[str, ...]  # the modalities that had data for some signal of the period
    coordinator: str
    sentiment_engine: str
    data_mode: str = "replay"
    step_h: int = 1
    round_trip_fee_bps: float = 20.0
    method: str = "isotonic"


@dataclass(frozen=True, slots=True)
class CalibrationMap:
    """P(right) at raw confidence knots (0..100 → 0..1), increasing; `cutoffs` are the rules'
    timeframe and sizing cut-offs re-expressed on the calibrated scale (0..100)."""

    raw_knots: tuple[float, ...]
    probabilities: tuple[float, ...]
    scope: FitScope
    flat: bool
    cutoffs: Mapping[str, int] = field(default_factory=dict)
    evaluation: Mapping[str, Any] = field(default_factory=dict)

    def apply(self, raw_confidence: int) -> int:
        """The calibrated confidence (0..100) of a BUY/SELL with this raw confidence."""
        value = np.interp(raw_confidence, self.raw_knots, self.probabilities)
        return round(float(value) * 100)


@dataclass(frozen=True, slots=True)
class Calibrator:
    """Applies a map to a call's confidence and says when the signal lies outside its scope."""

    map: CalibrationMap
    data_mode: str

    def calibrate(
        self, action: Action, raw_confidence: int, coordinator: str, reports: Mapping[str, Any]
    ) -> tuple[int, tuple[str, ...]]:
        """(confidence shown, notes). A HOLD keeps its raw confidence and gets no note."""
        if action is Action.HOLD:
            return raw_confidence, ()
        notes: list[str] = []
        if self.map.flat:
            notes.append(NO_EDGE_NOTE)
        if not self._in_scope(coordinator, reports):
            notes.append(
                "Confidence is calibrated on replay history with fewer modalities "
                f"({', '.join(self.map.scope.modalities)}; {self.map.scope.coordinator} "
                f"coordinator, {self.map.scope.sentiment_engine} sentiment)"
            )
        return self.map.apply(raw_confidence), tuple(notes)

    def _in_scope(self, coordinator: str, reports: Mapping[str, Any]) -> bool:
        scope = self.map.scope
        sentiment = reports.get("sentiment")
        engine = sentiment.engine if isinstance(sentiment, AgentReport) else None
        return (
            self.data_mode == scope.data_mode
            and coordinator == scope.coordinator
            and engine in (None, scope.sentiment_engine)
        )


def save_map(calibration: CalibrationMap, path: Path) -> None:
    """Write the map as JSON (versioned)."""
    document = {"version": MAP_VERSION, **asdict(calibration)}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, default=_jsonable) + "\n", encoding="utf-8")


def load_map(path: Path = DEFAULT_MAP_PATH) -> CalibrationMap:
    """Read a map written by `save_map`; ConfigError naming the file when it is unusable."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("version") != MAP_VERSION:
            raise ValueError(f"version {document.get('version')!r}, expected {MAP_VERSION}")
        knots = tuple(float(x) for x in document["raw_knots"])
        probabilities = tuple(float(p) for p in document["probabilities"])
        if not knots or len(knots) != len(probabilities) or list(knots) != sorted(knots):
            raise ValueError("knots must be increasing and match the probabilities")
        if not all(0.0 <= p <= 1.0 for p in probabilities):
            raise ValueError("probabilities must lie in 0..1")
        scope = document["scope"]
        return CalibrationMap(
            raw_knots=knots,
            probabilities=probabilities,
            scope=FitScope(
                **{
                    **scope,
                    "symbols": tuple(scope["symbols"]),
                    "modalities": tuple(scope["modalities"]),
                }
            ),
            flat=bool(document["flat"]),
            cutoffs={str(k): int(v) for k, v in document.get("cutoffs", {}).items()},
            evaluation=document.get("evaluation", {}),
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"calibration.map_path: cannot use {path}: {exc}") from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON: {type(value).__name__}")
