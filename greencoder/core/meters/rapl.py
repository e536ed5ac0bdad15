"""Linux RAPL energy counters through powercap sysfs (Intel, and AMD since Linux 5.8 via the same driver).

Zones live under /sys/class/powercap: `intel-rapl:N` is a top-level zone (`name` = `package-N`,
or `psys` for the whole platform on recent laptops) and `intel-rapl:N:M` a subzone of it (`core`,
`uncore`, `dram`). Each has `energy_uj`, a microjoule counter that wraps at `max_energy_range_uj`.

* The total is the sum of the package zones. `psys` already contains the packages, so it is used
  only where no package zone exists, never added to them. Subzones (dram, core, ...) are reported
  per domain but not added to the total, so totals agree with perf's `power/energy-pkg/`.
* A counter wraps after 2^32 energy units (≈ 262 kJ with Intel's usual 61 µJ unit, ≈ 65 kJ with
  AMD's 15.3 µJ): minutes to an hour at full load. A long run can wrap it more than once, which two
  end readings cannot tell apart, so a daemon thread reads every counter at an interval shorter
  than half the quickest possible wrap (1 s by default).
* `energy_uj` is root-only on kernels patched for CVE-2020-8694 (PLATYPUS, Nov 2020): reading it
  unprivileged fails with EACCES, and that is reported naming the file.
* `intel-rapl-mmio:N` zones repeat the package domain through another interface; they are skipped
  so nothing is counted twice.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from greencoder.core.meters._sampling import PeriodicSampler
from greencoder.core.meters.base import (
    DEFAULT_BUSY_SECONDS,
    EnergyReading,
    MeterError,
    MeterUnavailable,
    RunUsage,
    measure_busy_loop,
)

DEFAULT_POWERCAP_ROOT = "/sys/class/powercap"
DEFAULT_INTERVAL = 1.0
DEFAULT_MAX_WATTS = 1000.0
"""A power no single RAPL zone reaches (server packages stay below ~500 W): the wrap period at this
power bounds how long the sampler may sleep between reads."""

_ZONE_DIR = re.compile(r"^intel-rapl:(\d+)(?::(\d+))?$")


@dataclass(frozen=True)
class RaplZone:
    label: str  # "package-0", "psys", "package-0/dram"
    path: Path  # the zone's directory
    max_range_uj: int
    top_level: bool

    @property
    def counter(self) -> Path:
        return self.path / "energy_uj"


def read_counter(path: Path) -> int:
    """One counter value in µJ; every way it can fail becomes MeterUnavailable naming the file."""
    try:
        text = path.read_text()
    except PermissionError:
        raise MeterUnavailable(
            f"cannot read {path}: permission denied (energy_uj is root-only on kernels patched for "
            "CVE-2020-8694; run as root or make it readable)"
        ) from None
    except OSError as exc:
        raise MeterUnavailable(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return int(text.strip())
    except ValueError:
        raise MeterUnavailable(f"{path} does not hold a counter value: {text.strip()[:40]!r}") from None


def counter_delta(before: int, after: int, max_range_uj: int) -> int:
    """µJ between two reads of a counter that wraps to 0 after `max_range_uj`; assumes at most one
    wrap in between, which the sampling interval guarantees."""
    if after >= before:
        return after - before
    return after + max_range_uj - before


def sample_interval(requested: float, max_ranges_uj: Iterable[int], max_watts: float = DEFAULT_MAX_WATTS) -> float:
    """The requested interval, shortened to half the quickest wrap (range / max_watts) of any zone."""
    wrap_seconds = min((r / 1e6 / max_watts for r in max_ranges_uj), default=float("inf"))
    return min(requested, wrap_seconds / 2)


def discover_zones(root: str | Path = DEFAULT_POWERCAP_ROOT) -> list[RaplZone]:
    """Every RAPL zone under `root`, top-level zones first, or MeterUnavailable saying what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise MeterUnavailable(f"{root} missing")
    found = []
    for entry in root.iterdir():
        match = _ZONE_DIR.match(entry.name)
        if match:
            sub = match.group(2)
            found.append((int(match.group(1)), -1 if sub is None else int(sub), entry))
    if not found:
        raise MeterUnavailable(f"no intel-rapl zones under {root}")
    found.sort(key=lambda item: (item[1] != -1, item[0], item[1]))  # top-level zones first
    zones: list[RaplZone] = []
    parents: dict[int, str] = {}
    for package, sub, path in found:
        name = _read_name(path)
        top_level = sub == -1
        label = name if top_level else f"{parents.get(package, f'intel-rapl:{package}')}/{name}"
        if any(zone.label == label for zone in zones):
            label = f"{label} ({path.name})"  # two zones with the same name: keep both, distinguishable
        if top_level:
            parents[package] = label
        zones.append(RaplZone(label, path, _read_max_range(path), top_level))
    return zones


def counted_zones(zones: list[RaplZone]) -> list[RaplZone]:
    """The zones whose sum is the total: the packages, else psys, else whatever top-level zones exist."""
    top = [zone for zone in zones if zone.top_level]
    packages = [zone for zone in top if zone.label.startswith("package")]
    if packages:
        return packages
    psys = [zone for zone in top if zone.label.startswith("psys")]
    return psys or top


def _read_name(path: Path) -> str:
    try:
        return (path / "name").read_text().strip() or path.name
    except OSError:
        return path.name


def _read_max_range(path: Path) -> int:
    file = path / "max_energy_range_uj"
    try:
        return int(file.read_text().strip())
    except (OSError, ValueError):
        raise MeterUnavailable(f"cannot read {file}: wraparound could not be handled") from None


class RaplMeter:
    """Energy from the powercap RAPL counters, sampled in the background so wraps are never lost."""

    name = "rapl"
    kind = "measured"

    def __init__(
        self,
        root: str | Path = DEFAULT_POWERCAP_ROOT,
        *,
        interval: float = DEFAULT_INTERVAL,
        max_watts: float = DEFAULT_MAX_WATTS,
    ) -> None:
        if interval <= 0 or max_watts <= 0:
            raise ValueError("interval and max_watts must be positive")
        self.root = Path(root)
        self.requested_interval = interval
        self.max_watts = max_watts
        self.dropped: list[str] = []  # subzones that never moved during validation
        self._zones: list[RaplZone] | None = None

    @property
    def zones(self) -> list[RaplZone]:
        if self._zones is None:
            zones = discover_zones(self.root)
            for zone in zones:
                read_counter(zone.counter)  # fail now, naming the file, rather than mid-run
            self._zones = zones
        return self._zones

    @property
    def interval(self) -> float:
        return sample_interval(self.requested_interval, (zone.max_range_uj for zone in self.zones), self.max_watts)

    def start(self) -> RaplSession:
        return RaplSession(self.zones, counted_zones(self.zones), self.interval)

    def validate(self, busy_seconds: float = DEFAULT_BUSY_SECONDS) -> EnergyReading:
        """A busy loop must move every counted zone; subzones that stay still are dropped."""
        zones = self.zones
        reading = measure_busy_loop(self, busy_seconds)
        counted = {zone.label for zone in counted_zones(zones)}
        dead = [zone for zone in zones if reading.domains.get(zone.label, 0.0) <= 0.0]
        for zone in dead:
            if zone.label in counted:
                raise MeterUnavailable(
                    f"{zone.counter} did not change during a {busy_seconds:g} s busy loop (dead counter)"
                )
        if dead:
            self.dropped = [zone.label for zone in dead]
            self._zones = [zone for zone in zones if zone not in dead]
        return reading

    def describe(self) -> str:
        if self._zones is None:
            return f"RAPL counters under {self.root} (not probed yet)"
        counted = [zone.label for zone in counted_zones(self._zones)]
        others = [zone.label for zone in self._zones if zone.label not in counted]
        text = f"RAPL counters under {self.root}: total = {' + '.join(counted)}"
        if others:
            text += f"; also reported: {', '.join(others)}"
        return text + f"; sampled every {self.interval:g} s"


class RaplSession:
    """One interval: counters read at start, by the sampler thread, and at stop."""

    def __init__(self, zones: list[RaplZone], counted: list[RaplZone], interval: float) -> None:
        self._zones = zones
        self._counted = [zone.label for zone in counted]
        self._lock = threading.Lock()
        self._last = {zone.label: read_counter(zone.counter) for zone in zones}
        self._total_uj = dict.fromkeys(self._last, 0)
        self._started = time.perf_counter()
        self._sampler = PeriodicSampler(self.sample, interval, "greencoder-rapl")
        self._sampler.start()
        self._reading: EnergyReading | None = None

    def sample(self) -> None:
        """Read every counter once and add how far it moved since the last read, wraps included."""
        with self._lock:
            for zone in self._zones:
                now = read_counter(zone.counter)
                self._total_uj[zone.label] += counter_delta(self._last[zone.label], now, zone.max_range_uj)
                self._last[zone.label] = now

    def stop(self, usage: RunUsage | None = None) -> EnergyReading:
        if self._reading is not None:
            return self._reading
        self._sampler.stop()
        interval = time.perf_counter() - self._started
        if self._sampler.error is not None:
            raise MeterError(f"RAPL sampling failed during the run: {self._sampler.error}")
        self.sample()
        domains = {label: uj / 1e6 for label, uj in self._total_uj.items()}
        self._reading = EnergyReading(
            joules=sum(domains[label] for label in self._counted),
            source="rapl",
            kind="measured",
            domains=domains,
            interval=interval,
            note=f"total = {' + '.join(self._counted)}; {self._sampler.samples + 1} samples "
            f"every {self._sampler.interval:g} s",
        )
        return self._reading
