"""The fallback when no counter can be read: joules = the run's CPU seconds × watts per core.

It is labelled `kind="estimated"` everywhere and its note states both factors and where the watts
came from. The CPU seconds must come from the executor (cgroup cpu.stat or rusage); without them
stop() refuses, because wall time would silently count waiting as work.

Default: 12.0 W per core, the power per core the Green Algorithms calculator (Lannelongue, Grealey
& Inouye, "Green Algorithms: Quantifying the Carbon Footprint of Computation", Advanced Science
8(12), 2100707, 2021, doi:10.1002/advs.202100707) uses for a CPU of unknown model: the row
`Any,,,12.0` (TDP_per_core) of data/latest/TDP_cpu.csv in github.com/GreenAlgorithms/green-algorithms-tool,
unchanged since its data/v1.0. It is a share of TDP, i.e. a full-load figure, and covers the cores
only: no memory, no idle baseline, no PUE. A machine-specific value (your CPU's TDP / cores) goes in
GREENCODER_WATTS_PER_CORE or the `watts_per_core` argument.
"""

from __future__ import annotations

import math
import os
import time

from greencoder.core.meters.base import EnergyReading, MeterError, RunUsage

WATTS_PER_CORE_ENV = "GREENCODER_WATTS_PER_CORE"
DEFAULT_WATTS_PER_CORE = 12.0
DEFAULT_SOURCE = (
    "Green Algorithms calculator's per-core power for an unknown CPU "
    "(Lannelongue et al. 2021, green-algorithms-tool data/TDP_cpu.csv, model 'Any')"
)


def parse_watts(value: str | float, origin: str) -> float:
    """A positive, finite number of watts, or a one-line MeterError naming where it came from."""
    try:
        watts = float(value)
    except (TypeError, ValueError):
        raise MeterError(f"{origin} must be a number of watts per core, got {value!r}") from None
    if not math.isfinite(watts) or watts <= 0:
        raise MeterError(f"{origin} must be a positive number of watts per core, got {value!r}")
    return watts


def resolve_watts_per_core(watts_per_core: float | None = None) -> tuple[float, str]:
    """(watts, where they came from): the caller's value, else the environment, else the default."""
    if watts_per_core is not None:
        return parse_watts(watts_per_core, "watts per core"), "given"
    configured = os.environ.get(WATTS_PER_CORE_ENV)
    if configured:
        return parse_watts(configured, WATTS_PER_CORE_ENV), f"from {WATTS_PER_CORE_ENV}"
    return DEFAULT_WATTS_PER_CORE, f"default: {DEFAULT_SOURCE}"


class EstimateMeter:
    """CPU seconds × watts per core; no hardware involved, so it works everywhere."""

    name = "estimate"
    kind = "estimated"

    def __init__(self, watts_per_core: float | None = None) -> None:
        self.watts_per_core, self.basis = resolve_watts_per_core(watts_per_core)

    def start(self) -> EstimateSession:
        return EstimateSession(self.watts_per_core, self.basis)

    def validate(self, busy_seconds: float = 0.0) -> None:
        """Nothing to check: a run that used CPU cannot be estimated at 0 J."""
        return None

    def describe(self) -> str:
        return f"estimate: CPU seconds × {self.watts_per_core:g} W/core ({self.basis})"


class EstimateSession:
    def __init__(self, watts_per_core: float, basis: str) -> None:
        self._watts = watts_per_core
        self._basis = basis
        self._started = time.perf_counter()

    def stop(self, usage: RunUsage | None = None) -> EnergyReading:
        interval = time.perf_counter() - self._started
        if usage is None or usage.cpu_seconds is None:
            raise MeterError(
                "the energy estimate needs the run's CPU seconds (from the cgroup or rusage) and got "
                "none; it will not guess from wall time"
            )
        if usage.cpu_seconds < 0:
            raise MeterError(f"CPU seconds cannot be negative, got {usage.cpu_seconds}")
        cpu_source = f" ({usage.cpu_source})" if usage.cpu_source else ""
        return EnergyReading(
            joules=usage.cpu_seconds * self._watts,
            source="estimate",
            kind="estimated",
            domains={"cpu": usage.cpu_seconds * self._watts},
            interval=usage.wall_seconds if usage.wall_seconds is not None else interval,
            note=f"estimate: {usage.cpu_seconds:.2f} CPU-s{cpu_source} × {self._watts:g} W/core ({self._basis})",
        )
