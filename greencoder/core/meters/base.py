"""The meter interface: start before a run, stop after it, get joules with their provenance.

Every reading says where its number came from (`source`), whether a hardware counter produced it
(`kind="measured"`) or it was computed from CPU time (`kind="estimated"`), the per-domain split
(package-0, dram, gpu-0, ...) and the interval it covers. Code that prints or tabulates energy
must carry `kind` along, so an estimate is never presented as a measurement.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

from greencoder.core.errors import GreencoderError

Kind = Literal["measured", "estimated"]

DEFAULT_BUSY_SECONDS = 1.0
"""How long the validation busy loop runs: long enough for a working counter to move well clear
of zero (RAPL counters update about every millisecond), short enough to try several meters."""


class MeterError(GreencoderError):
    """A meter the user asked for cannot be used, or a reading could not be made; one line says why."""


class MeterUnavailable(MeterError):
    """This meter cannot be used here; the message says why (missing, unreadable, reads 0 J)."""


@dataclass(frozen=True)
class RunUsage:
    """What the executor knows about the run the meter bracketed; the estimate meter needs it."""

    cpu_seconds: float | None = None
    wall_seconds: float | None = None
    cpu_source: str | None = None  # "cgroup" or "rusage"


@dataclass(frozen=True)
class EnergyReading:
    joules: float
    source: str
    kind: Kind
    domains: dict[str, float] = field(default_factory=dict)
    interval: float = 0.0  # seconds between start and stop
    note: str = ""  # e.g. the estimate's basis, or "idle baseline subtracted"

    def to_dict(self) -> dict:
        return asdict(self)


class MeterSession(Protocol):
    def stop(self, usage: RunUsage | None = None) -> EnergyReading:
        """End the interval and return its energy."""


class Meter(Protocol):
    name: str
    kind: Kind

    def start(self) -> MeterSession:
        """Begin an interval (counters read, sampler started)."""

    def describe(self) -> str:
        """One line for humans: what is measured and how."""

    def validate(self, busy_seconds: float = DEFAULT_BUSY_SECONDS) -> EnergyReading | None:
        """Prove the meter works here: a busy loop must read > 0 J, else raise MeterUnavailable
        saying why. Measured meters may drop dead domains (a perf event reading 0 J) on the way.
        The estimate returns None: it cannot read 0 J for a run that used CPU."""


def busy_loop(seconds: float = DEFAULT_BUSY_SECONDS) -> int:
    """Keep one core busy in pure Python for `seconds`, so a working counter must move.

    Returns the iteration count only so the loop has an observable result."""
    deadline = time.perf_counter() + seconds
    count = 0
    while time.perf_counter() < deadline:
        for _ in range(1000):
            count += 1
    return count


def measure_busy_loop(meter: Meter, seconds: float = DEFAULT_BUSY_SECONDS) -> EnergyReading:
    """One reading over a busy loop: the raw material of every measured meter's validation."""
    session = meter.start()
    try:
        busy_loop(seconds)
    finally:
        reading = session.stop()
    return reading
