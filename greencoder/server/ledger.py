"""The session's energy ledger: what completions cost, and what was measured in the user's code.

Editors show it (status bar, statusline) from the `greencoder/ledger` notification the server sends
whenever it changes, and from the `greencoder/energyReport` request. Joules are kept apart by kind,
so an estimate is never added to a measurement. Everything a completion costs is charged to it,
not just the model's forward passes: choosing the meter, building the prompt and cleaning the text.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class EnergyLedger:
    completions: int = 0
    cancelled: int = 0
    """Generations stopped early by a newer request, an edit or $/cancelRequest (their cost still counts)."""
    completion_tokens: int = 0
    completion_seconds: float = 0.0
    completion_cpu_seconds: float = 0.0
    completion_joules: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    measurements: int = 0
    measured_joules: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    last_measurement: dict | None = None
    listener: Callable[[], None] | None = field(default=None, repr=False)
    """Called (from any thread) after every change."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_completion(self, tokens: int, seconds: float, joules: float, kind: str, cancelled: bool = False,
                       cpu_seconds: float = 0.0) -> None:
        with self._lock:
            self.completions += 1
            self.cancelled += cancelled
            self.completion_tokens += tokens
            self.completion_seconds += seconds
            self.completion_cpu_seconds += cpu_seconds
            self.completion_joules[kind] += joules
        self._changed()

    def add_measurement(self, summary: dict, joules: float, kind: str) -> None:
        with self._lock:
            self.measurements += 1
            self.measured_joules[kind] += joules
            self.last_measurement = summary
        self._changed()

    def _changed(self) -> None:
        if self.listener is not None:
            self.listener()

    def report(self) -> dict:
        with self._lock:
            return {
                "completions": self.completions,
                "cancelled": self.cancelled,
                "completionTokens": self.completion_tokens,
                "completionSeconds": round(self.completion_seconds, 4),
                "completionCpuSeconds": round(self.completion_cpu_seconds, 4),
                "completionJoules": {k: round(v, 6) for k, v in self.completion_joules.items()},
                "measurements": self.measurements,
                "measuredJoules": {k: round(v, 6) for k, v in self.measured_joules.items()},
                "lastMeasurement": self.last_measurement,
            }
