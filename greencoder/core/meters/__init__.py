"""Energy meters: hardware counters where the machine has them, a labelled estimate where not.

`select_meter()` picks the best meter that works here (RAPL sysfs → perf power events → NVML →
powermetrics on macOS → CPU-time estimate), validating each with a busy loop and keeping the reason
every better one was rejected. A meter's `start()` returns a session; `session.stop(usage)` returns
an `EnergyReading` that says whether it was measured or estimated and where the number came from.
Nothing here imports a heavy or optional library at import time (pynvml loads on first use).
"""

from greencoder.core.meters.base import (
    DEFAULT_BUSY_SECONDS,
    EnergyReading,
    Kind,
    Meter,
    MeterError,
    MeterSession,
    MeterUnavailable,
    RunUsage,
    busy_loop,
    measure_busy_loop,
)
from greencoder.core.meters.estimate import (
    DEFAULT_SOURCE,
    DEFAULT_WATTS_PER_CORE,
    WATTS_PER_CORE_ENV,
    EstimateMeter,
    resolve_watts_per_core,
)
from greencoder.core.meters.nvml import NvmlMeter
from greencoder.core.meters.perf import PerfMeter, parse_perf_csv
from greencoder.core.meters.powermetrics import PowermetricsMeter, PowerSample, parse_powermetrics
from greencoder.core.meters.rapl import RaplMeter, RaplZone, discover_zones
from greencoder.core.meters.selection import (
    METER_NAMES,
    PREFERENCES,
    SelectedMeter,
    clear_cache,
    idle_power,
    select_meter,
)

__all__ = [
    "DEFAULT_BUSY_SECONDS",
    "DEFAULT_SOURCE",
    "DEFAULT_WATTS_PER_CORE",
    "METER_NAMES",
    "PREFERENCES",
    "WATTS_PER_CORE_ENV",
    "EnergyReading",
    "EstimateMeter",
    "Kind",
    "Meter",
    "MeterError",
    "MeterSession",
    "MeterUnavailable",
    "NvmlMeter",
    "PerfMeter",
    "PowerSample",
    "PowermetricsMeter",
    "RaplMeter",
    "RaplZone",
    "RunUsage",
    "SelectedMeter",
    "busy_loop",
    "clear_cache",
    "discover_zones",
    "idle_power",
    "measure_busy_loop",
    "parse_perf_csv",
    "parse_powermetrics",
    "resolve_watts_per_core",
    "select_meter",
]
