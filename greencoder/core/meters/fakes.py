"""Synthetic hardware for tests and benchmarks: a powercap RAPL tree, perf's power events and a
`perf` stand-in, and an NVML stand-in.

The development VMs have neither RAPL nor a GPU, so every meter takes its hardware as a parameter
(a sysfs root, a binary, a module) and these fakes supply it, with counters the caller advances.
"""

from __future__ import annotations

import os
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INTEL_MAX_RANGE_UJ = 262143328850  # max_energy_range_uj as a typical Intel package reports it


def write_atomically(path: Path, text: str) -> None:
    """Replace a file's content in one step, so a concurrent reader never sees it half written."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


class PowercapTree:
    """A /sys/class/powercap look-alike: `intel-rapl:N[:M]` folders with name, energy_uj and
    max_energy_range_uj. Zones are given as {folder: name}, e.g. {"intel-rapl:0": "package-0"}."""

    def __init__(
        self, root: str | Path, zones: dict[str, str], *, max_range_uj: int = INTEL_MAX_RANGE_UJ, start_uj: int = 0
    ) -> None:
        self.root = Path(root)
        self.max_range_uj = max_range_uj
        self.values: dict[str, int] = {}
        self.root.mkdir(parents=True, exist_ok=True)
        for folder, name in zones.items():
            zone = self.root / folder
            zone.mkdir()
            (zone / "name").write_text(name + "\n")
            (zone / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
            self.set(folder, start_uj)

    def set(self, folder: str, uj: int) -> None:
        self.values[folder] = uj
        write_atomically(self.root / folder / "energy_uj", f"{uj}\n")

    def advance(self, folder: str, uj: int) -> None:
        """Add `uj` to a counter, wrapping at max_energy_range_uj as the hardware does."""
        self.set(folder, (self.values[folder] + uj) % self.max_range_uj)


def write_power_events(folder: str | Path, events: list[str]) -> Path:
    """A /sys/bus/event_source/devices/power/events look-alike holding `events` (with .scale/.unit)."""
    folder = Path(folder)
    folder.mkdir(parents=True)
    for event in events:
        (folder / event).write_text("event=0x02\n")
        (folder / f"{event}.scale").write_text("2.3283064365386962890625e-10\n")
        (folder / f"{event}.unit").write_text("Joules\n")
    return folder


def write_fake_perf(path: str | Path, joules: dict[str, str]) -> Path:
    """A `perf` stand-in (POSIX sh): takes -e/-o like `perf stat`, runs until SIGINT, then writes the
    CSV line perf would for each requested event ("12.34,Joules,power/energy-pkg/,...") with the
    value given here ("0.00", "<not supported>"; "<not counted>" for events not given) and exits
    130 as perf does. Its arguments are saved in `<path>.argv`."""
    path = Path(path)
    cases = "\n".join(f'      "{event}") value="{value}" ;;' for event, value in joules.items())
    path.write_text(
        f"""#!/bin/sh
echo "$@" > "$0.argv"
out=""; events=""
while [ $# -gt 0 ]; do
  case "$1" in
    -o) out="$2"; shift ;;
    -e) events="$2"; shift ;;
  esac
  shift
done
finish() {{
  {{
    echo "# started on Sun Nov 22 00:54:39 2026"
    echo
    for event in $(echo "$events" | tr ',' ' '); do
      value="<not counted>"
      case "$event" in
{cases}
      esac
      echo "$value,Joules,$event,1001234567,100.00,,"
    done
  }} > "$out"
  exit 130
}}
trap finish INT
while :; do sleep 0.01; done
"""
    )
    path.chmod(0o755)
    return path


class NVMLError(Exception):
    """Like pynvml.NVMLError: carries the NVML return code in `value`."""

    _messages = {1: "Uninitialized", 3: "Not Supported", 9: "Driver Not Loaded", 12: "NVML Shared Library Not Found"}

    def __init__(self, value: int = 999) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return self._messages.get(self.value, f"NVML Error with code {self.value}")


def _error_class(name: str, value: int) -> type[NVMLError]:
    def __init__(self: NVMLError) -> None:
        NVMLError.__init__(self, value)

    return type(name, (NVMLError,), {"__init__": __init__})


NVMLError_NotSupported = _error_class("NVMLError_NotSupported", 3)
NVMLError_DriverNotLoaded = _error_class("NVMLError_DriverNotLoaded", 9)
NVMLError_LibraryNotFound = _error_class("NVMLError_LibraryNotFound", 12)


@dataclass
class FakeGpu:
    name: str = "NVIDIA Fake GPU"
    energy_mj: int | None = 0  # None: the energy counter is not supported (pre-Volta)
    power_mw: float | None = 50_000.0  # None: power reading not supported either


def fake_pynvml(gpus: list[FakeGpu], *, init_error: NVMLError | None = None) -> Any:
    """A module object with the slice of the pynvml API the NVML meter uses."""
    module = types.ModuleType("fake_pynvml")

    def nvmlInit() -> None:
        if init_error is not None:
            raise init_error

    def total_energy(gpu: FakeGpu) -> int:
        if gpu.energy_mj is None:
            raise NVMLError_NotSupported()
        return gpu.energy_mj

    def power_usage(gpu: FakeGpu) -> int:
        if gpu.power_mw is None:
            raise NVMLError_NotSupported()
        return int(gpu.power_mw)

    module.NVMLError = NVMLError
    module.NVMLError_NotSupported = NVMLError_NotSupported
    module.NVML_ERROR_NOT_SUPPORTED = 3
    module.nvmlInit = nvmlInit
    module.nvmlShutdown = lambda: None
    module.nvmlDeviceGetCount = lambda: len(gpus)
    module.nvmlDeviceGetHandleByIndex = lambda index: gpus[index]
    module.nvmlDeviceGetName = lambda gpu: gpu.name
    module.nvmlDeviceGetTotalEnergyConsumption = total_energy
    module.nvmlDeviceGetPowerUsage = power_usage
    return module
