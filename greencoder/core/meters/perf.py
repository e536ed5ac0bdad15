"""RAPL through `perf stat` power events, for machines where powercap sysfs is absent or unreadable.

The kernel's `power` PMU exposes the same RAPL domains as perf events (`power/energy-pkg/`,
`power/energy-psys/`, `power/energy-ram/`); perf scales them to joules and handles wraparound
itself. A session runs `perf stat -a -x, -e <events> -o <file>` in the background and stops it
with SIGINT, after which perf writes one CSV line per event ("475.42,Joules,power/energy-pkg/,...",
or "<not supported>" / "<not counted>" in place of the value).

Some VMs list the events but count nothing: `power/energy-psys/` exists and reads 0 J. Validation
drops every event that reads 0 J over a busy loop and rejects the meter when none is left. The
total follows rapl.py: energy-pkg if counted, else energy-psys (which contains the package, so the
two are never added); energy-ram is reported as a domain only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from greencoder.core.meters._background_process import interrupt, last_stderr_line
from greencoder.core.meters.base import (
    DEFAULT_BUSY_SECONDS,
    EnergyReading,
    MeterError,
    MeterUnavailable,
    RunUsage,
    busy_loop,
)

DEFAULT_EVENTS_DIR = "/sys/bus/event_source/devices/power/events"
EVENTS = ("energy-pkg", "energy-psys", "energy-ram")
TOTAL_PREFERENCE = ("energy-pkg", "energy-psys", "energy-ram")  # the first counted one is the total
STARTUP_TIMEOUT = 1.0  # perf usually has its counters open within ~10 ms
STOP_TIMEOUT = 5.0


def event_name(event: str) -> str:
    """`energy-pkg` -> `power/energy-pkg/`, the spelling perf takes and prints."""
    return f"power/{event}/"


def available_events(events_dir: str | Path = DEFAULT_EVENTS_DIR) -> list[str]:
    """The energy events the kernel exposes, in EVENTS order, or MeterUnavailable saying why none."""
    events_dir = Path(events_dir)
    if not events_dir.is_dir():
        raise MeterUnavailable(f"{events_dir} missing")
    events = [event for event in EVENTS if (events_dir / event).is_file()]
    if not events:
        raise MeterUnavailable(f"no {'/'.join(EVENTS)} event in {events_dir}")
    return events


def parse_perf_csv(text: str) -> dict[str, float | None]:
    """Joules per event from `perf stat -x,` output: {"power/energy-pkg/": 12.34, ...}.

    Comment and blank lines are skipped; "<not supported>" and "<not counted>" become None."""
    values: dict[str, float | None] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(",")
        if len(fields) < 3:
            continue
        value, unit, event = fields[0].strip(), fields[1].strip(), fields[2].strip()
        if value.startswith("<"):
            values[event] = None
            continue
        try:
            joules = float(value)
        except ValueError:
            continue
        if unit and unit.lower() not in ("joules", "j"):
            continue  # not an energy line
        values[event] = joules
    return values


def total_events(events: list[str]) -> list[str]:
    """Which of `events` make the total: one of them, never the overlapping pkg + psys."""
    for event in TOTAL_PREFERENCE:
        if event in events:
            return [event]
    return []


class PerfMeter:
    """Energy from perf's RAPL power events, counted system-wide by a background `perf stat`."""

    name = "perf"
    kind = "measured"

    def __init__(
        self,
        perf: str = "perf",
        events_dir: str | Path = DEFAULT_EVENTS_DIR,
        *,
        startup_timeout: float = STARTUP_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.perf = perf
        self.events_dir = Path(events_dir)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.dropped: dict[str, str] = {}  # event -> why validation dropped it
        self._events: list[str] | None = None

    @property
    def events(self) -> list[str]:
        if self._events is None:
            events = available_events(self.events_dir)
            self._binary()
            self._events = events
        return self._events

    def _binary(self) -> str:
        binary = shutil.which(self.perf)
        if binary is None:
            raise MeterUnavailable(f"{self.perf} not found (install linux-perf / linux-tools)")
        return binary

    def start(self) -> PerfSession:
        return PerfSession(self._binary(), self.events, self.startup_timeout, self.stop_timeout)

    def validate(self, busy_seconds: float = DEFAULT_BUSY_SECONDS) -> EnergyReading:
        """Count a busy loop; events reading 0 J (or not counted) are dropped, and if none is left
        the meter is rejected naming each event and why."""
        session = self.start()
        try:
            busy_loop(busy_seconds)
        finally:
            reading = session.stop()
        reasons = {}
        for event in self.events:
            value = session.raw.get(event_name(event))
            if value is None:
                reasons[event] = f"{event_name(event)} not counted"
            elif value <= 0:
                reasons[event] = f"{event_name(event)} reads 0 J"
        if len(reasons) == len(self.events):
            raise MeterUnavailable("; ".join(reasons.values()))
        self.dropped.update(reasons)
        self._events = [event for event in self.events if event not in reasons]
        return reading

    def describe(self) -> str:
        if self._events is None:
            return f"perf power events from {self.events_dir} (not probed yet)"
        text = f"perf stat -a, events {', '.join(map(event_name, self._events))}; total = " + " + ".join(
            map(event_name, total_events(self._events))
        )
        if self.dropped:
            text += f" (dropped: {'; '.join(self.dropped.values())})"
        return text


class PerfSession:
    """A `perf stat -a` process counting from start() to stop()."""

    def __init__(self, binary: str, events: list[str], startup_timeout: float, stop_timeout: float) -> None:
        self.events = events
        self.raw: dict[str, float | None] = {}
        self._stop_timeout = stop_timeout
        self._reading: EnergyReading | None = None
        fd, self._output = tempfile.mkstemp(prefix="greencoder-perf-", suffix=".csv")
        os.close(fd)
        argv = [binary, "stat", "-a", "-x,", "-e", ",".join(map(event_name, events)), "-o", self._output]
        self._process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=dict(os.environ, LC_ALL="C"),  # a decimal point, whatever the user's locale
        )
        self._started = time.perf_counter()
        self._wait_until_counting(startup_timeout)

    def _wait_until_counting(self, timeout: float) -> None:
        """Return once perf has opened its counters (they are enabled right after), so the run does
        not start uncounted; an early exit is an error that says what perf said."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self._process.poll() is not None:
                reason = last_stderr_line(self._process)
                self._cleanup()
                raise MeterUnavailable(f"perf stat exited at start: {reason}")
            if _has_perf_event_fd(self._process.pid):
                time.sleep(0.01)
                break
            time.sleep(0.005)
        self._started = time.perf_counter()

    def stop(self, usage: RunUsage | None = None) -> EnergyReading:
        if self._reading is not None:
            return self._reading
        interval = time.perf_counter() - self._started
        early = self._process.poll() is not None
        try:
            interrupt(self._process, self._stop_timeout, "perf stat")
        except MeterError:
            self._cleanup()
            raise
        try:
            text = Path(self._output).read_text(errors="replace")
            self.raw = parse_perf_csv(text)
            if early and not self.raw:
                raise MeterError(f"perf stat exited during the run: {last_stderr_line(self._process)}")
        finally:
            self._cleanup()
        domains = {name: joules for name, joules in self.raw.items() if joules is not None}
        counted = [event_name(event) for event in total_events(self.events)]
        self._reading = EnergyReading(
            joules=sum(domains.get(name, 0.0) for name in counted),
            source="perf",
            kind="measured",
            domains=domains,
            interval=interval,
            note=f"total = {' + '.join(counted)}",
        )
        return self._reading

    def _cleanup(self) -> None:
        if self._process.stderr:
            self._process.stderr.close()
        try:
            os.unlink(self._output)
        except OSError:
            pass


def _has_perf_event_fd(pid: int) -> bool:
    """Whether process `pid` holds a perf_event file descriptor yet (Linux /proc)."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == "anon_inode:[perf_event]":
                return True
        except OSError:
            continue
    return False
