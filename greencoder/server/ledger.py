"""The session's energy ledger: what completions cost, and what was measured in the user's code.

Editors show it (status bar, statusline) through the custom request `greencoder/energyReport`.
Joules are kept apart by kind, so an estimate is never added to a measurement.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class EnergyLedger:
    completions: int = 0
    cancelled: int = 0
    """Generations stopped early by a newer request or $/cancelRequest (their cost still counts)."""
    completion_tokens: int = 0
    completion_seconds: float = 0.0
    completion_joules: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    measurements: int = 0
    measured_joules: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    last_measurement: dict | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_completion(self, tokens: int, seconds: float, joules: float, kind: str, cancelled: bool = False) -> None:
        with self._lock:
            self.completions += 1
            self.cancelled += cancelled
            self.completion_tokens += tokens
            self.completion_seconds += seconds
            self.completion_joules[kind] += joules

    def add_measurement(self, summary: dict, joules: float, kind: str) -> None:
        with self._lock:
            self.measurements += 1
            self.measured_joules[kind] += joules
            self.last_measurement = summary

    def report(self) -> dict:
        with self._lock:
            return {
                "completions": self.completions,
                "cancelled": self.cancelled,
                "completionTokens": self.completion_tokens,
                "completionSeconds": round(self.completion_seconds, 4),
                "completionJoules": {k: round(v, 6) for k, v in self.completion_joules.items()},
                "measurements": self.measurements,
                "measuredJoules": {k: round(v, 6) for k, v in self.measured_joules.items()},
                "lastMeasurement": self.last_measurement,
            }
