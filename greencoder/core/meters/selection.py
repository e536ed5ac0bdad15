"""Choosing the energy meter: the best one that provably works here, and why the better ones did not.

"auto" tries rapl → perf → nvml → powermetrics (macOS only) → estimate. Each measured candidate is
validated (a busy loop must read > 0 J) before it is trusted, and every rejection is kept as
(name, reason), so the CLI can print "rapl: /sys/class/powercap missing; perf: power/energy-psys/
reads 0 J; → estimate". A named preference uses that meter only and fails with one line if it
cannot. Validation costs about a second per candidate, so the choice is cached per process.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from greencoder.core.meters.base import DEFAULT_BUSY_SECONDS, EnergyReading, Meter, MeterError
from greencoder.core.meters.estimate import WATTS_PER_CORE_ENV, EstimateMeter
from greencoder.core.meters.nvml import NvmlMeter
from greencoder.core.meters.perf import PerfMeter
from greencoder.core.meters.powermetrics import PowermetricsMeter
from greencoder.core.meters.rapl import RaplMeter

METER_NAMES = ("rapl", "perf", "nvml", "powermetrics", "estimate")
PREFERENCES = ("auto", *METER_NAMES)
MACOS_ONLY = ("powermetrics",)
GPU_ONLY = ("nvml",)

MeterFactory = Callable[[], Meter]


@dataclass(frozen=True)
class SelectedMeter:
    meter: Meter
    rejected: tuple[tuple[str, str], ...] = ()  # (candidate, why not), in the order tried
    validation: EnergyReading | None = None  # the busy-loop reading that proved the meter

    @property
    def name(self) -> str:
        return self.meter.name

    @property
    def kind(self) -> str:
        return self.meter.kind

    def summary(self) -> str:
        """One line: "rapl: <why not>; perf: <why not>; → estimate"."""
        return "; ".join([f"{name}: {reason}" for name, reason in self.rejected] + [f"→ {self.meter.name}"])


def default_factories(watts_per_core: float | None = None) -> dict[str, MeterFactory]:
    """Each meter with its real-machine defaults (sysfs paths, binaries, pynvml)."""
    return {
        "rapl": RaplMeter,
        "perf": PerfMeter,
        "nvml": NvmlMeter,
        "powermetrics": PowermetricsMeter,
        "estimate": lambda: EstimateMeter(watts_per_core),
    }


_cache: dict[tuple, SelectedMeter] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


def select_meter(
    preference: str = "auto",
    *,
    watts_per_core: float | None = None,
    busy_seconds: float = DEFAULT_BUSY_SECONDS,
    factories: Mapping[str, MeterFactory] | None = None,
    platform: str | None = None,
    use_cache: bool = True,
    gpu_workload: bool = False,
) -> SelectedMeter:
    """The meter to use, validated. `factories` replaces how meters are built (tests); a choice made
    with them is not cached. Raises MeterError (one line) for an unknown or unusable named meter."""
    preference = (preference or "auto").strip().lower()
    if preference not in PREFERENCES:
        raise MeterError(f"unknown energy meter {preference!r}; choose one of {', '.join(PREFERENCES)}")
    cacheable = use_cache and factories is None
    key = (preference, watts_per_core, os.environ.get(WATTS_PER_CORE_ENV), busy_seconds, platform, gpu_workload)
    with _cache_lock:  # held while validating, so concurrent callers wait instead of validating twice
        if cacheable and key in _cache:
            return _cache[key]
        built = dict(factories) if factories is not None else default_factories(watts_per_core)
        if preference == "auto":
            selected = _auto(built, busy_seconds, platform or sys.platform, gpu_workload)
        else:
            selected = _named(preference, built, busy_seconds)
        if cacheable:
            _cache[key] = selected
        return selected


def _auto(factories: Mapping[str, MeterFactory], busy_seconds: float, platform: str,
          gpu_workload: bool = False) -> SelectedMeter:
    rejected: list[tuple[str, str]] = []
    for name in METER_NAMES[:-1]:
        if name in MACOS_ONLY and platform != "darwin":
            continue
        if name in GPU_ONLY and not gpu_workload:
            # NVML sees only the GPUs: for a CPU program it would report their idle draw as its energy.
            rejected.append((name, "measures GPUs only, and the program runs on the CPU (--meter nvml forces it)"))
            continue
        try:
            meter = factories[name]()
            reading = meter.validate(busy_seconds)
        except Exception as exc:  # noqa: BLE001 - any failure of a candidate is a reason to try the next
            rejected.append((name, _one_line(exc)))
            continue
        return SelectedMeter(meter, tuple(rejected), reading)
    estimate = factories["estimate"]()  # a bad GREENCODER_WATTS_PER_CORE is the user's to fix: raise
    return SelectedMeter(estimate, tuple(rejected), estimate.validate(busy_seconds))


def _named(name: str, factories: Mapping[str, MeterFactory], busy_seconds: float) -> SelectedMeter:
    try:
        meter = factories[name]()
        reading = meter.validate(busy_seconds)
    except Exception as exc:  # reported in one line; --debug shows the chain
        raise MeterError(f"energy meter {name!r} cannot be used here: {_one_line(exc)}") from exc
    return SelectedMeter(meter, (), reading)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, MeterError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def idle_power(meter: Meter, seconds: float = 1.0, *, sleep: Callable[[float], None] = time.sleep) -> float:
    """Average watts the meter reads while this process sleeps for `seconds`: the idle baseline the
    measurement protocol subtracts from measured readings. An estimate has no baseline (it counts
    only the run's own CPU time), so it returns 0.0."""
    if meter.kind == "estimated":
        return 0.0
    session = meter.start()
    try:
        sleep(seconds)
    finally:
        reading = session.stop()
    return reading.joules / reading.interval if reading.interval > 0 else 0.0
