"""macOS energy from Apple's `powermetrics`, the tool the paper measured with.

`powermetrics --samplers cpu_power -i 10` prints one text block per 10 ms sample. Each starts with
`*** Sampled system activity (<date>) (10.23ms elapsed) ***` and holds, on Apple silicon,
`CPU Power: 523 mW` (also `GPU Power`, `ANE Power`, `Combined Power (CPU + GPU + ANE)`), or on
Intel Macs `Intel energy model derived package power (CPUs+GT+SA): 2.34W`. The energy of a run is
Σ power × elapsed over its samples: CPU Power on Apple silicon, package power on Intel (the RAPL
package domain, so totals mean the same thing as on Linux). GPU/ANE/combined are reported as
domains. It needs root: when not root the command is run through `sudo -n`, which fails at once,
with sudo's message, instead of prompting for a password.

The parser is a pure function over the text; the session runs the tool in the background, writing
to a temporary file, and stops it with SIGINT.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field

from greencoder.core.meters._background_process import interrupt, last_stderr_line
from greencoder.core.meters.base import (
    DEFAULT_BUSY_SECONDS,
    EnergyReading,
    MeterError,
    MeterUnavailable,
    RunUsage,
    measure_busy_loop,
)

DEFAULT_BINARY = "powermetrics"
DEFAULT_INTERVAL_MS = 10  # 100 Hz, as in the paper
STARTUP_TIMEOUT = 2.0
STOP_TIMEOUT = 5.0
TOTAL_DOMAINS = ("cpu", "package")  # Apple silicon's CPU Power, else Intel's package power

_HEADER = re.compile(r"^\*\*\* Sampled system activity \((?P<when>.*)\) \((?P<ms>[\d.]+)\s*ms elapsed\) \*\*\*")
_POWER_LINES = (
    ("cpu", re.compile(r"^CPU Power:\s*([\d.]+)\s*(mW|W)$")),
    ("gpu", re.compile(r"^GPU Power:\s*([\d.]+)\s*(mW|W)$")),
    ("ane", re.compile(r"^ANE Power:\s*([\d.]+)\s*(mW|W)$")),
    ("combined", re.compile(r"^Combined Power \(CPU \+ GPU \+ ANE\):\s*([\d.]+)\s*(mW|W)$")),
    ("package", re.compile(r"^Intel energy model derived package power \(CPUs\+GT\+SA\):\s*([\d.]+)\s*(mW|W)$")),
)


@dataclass(frozen=True)
class PowerSample:
    elapsed: float  # seconds the sample covers
    watts: dict[str, float] = field(default_factory=dict)  # "cpu", "gpu", "ane", "combined", "package"
    when: str = ""  # powermetrics' own time stamp, for messages


def parse_powermetrics(text: str) -> list[PowerSample]:
    """The samples in powermetrics text output that carry at least one power line.

    A block cut short when the tool was stopped has no power line yet and is left out. Where a
    line repeats within a block (GPU Power appears under both "Processor usage" and "GPU usage")
    the first one counts."""
    samples: list[PowerSample] = []
    current: PowerSample | None = None
    for raw in text.splitlines():
        line = raw.strip()
        header = _HEADER.match(line)
        if header:
            if current is not None and current.watts:
                samples.append(current)
            current = PowerSample(float(header.group("ms")) / 1000.0, {}, header.group("when"))
            continue
        if current is None or "power" not in line.lower():
            continue
        for key, pattern in _POWER_LINES:
            match = pattern.match(line)
            if match and key not in current.watts:
                value = float(match.group(1))
                current.watts[key] = value / 1000.0 if match.group(2) == "mW" else value
                break
    if current is not None and current.watts:
        samples.append(current)
    return samples


def integrate(samples: list[PowerSample]) -> tuple[float, dict[str, float], str]:
    """(total joules, joules per domain, the domain that is the total): Σ watts × elapsed."""
    domains: dict[str, float] = {}
    for sample in samples:
        for key, watts in sample.watts.items():
            domains[key] = domains.get(key, 0.0) + watts * sample.elapsed
    total_key = next((key for key in TOTAL_DOMAINS if key in domains), "cpu")
    return domains.get(total_key, 0.0), domains, total_key


def powermetrics_argv(
    binary: str = DEFAULT_BINARY, interval_ms: int = DEFAULT_INTERVAL_MS, *, use_sudo: bool | None = None
) -> list[str]:
    """The command line; prefixed with `sudo -n` when not root (use_sudo=None decides by the euid)."""
    argv = [binary, "--samplers", "cpu_power", "-i", str(interval_ms)]
    if use_sudo is None:
        use_sudo = os.geteuid() != 0
    return ["sudo", "-n", *argv] if use_sudo else argv


class PowermetricsMeter:
    """CPU energy on macOS from powermetrics' cpu_power sampler, integrated over a run."""

    name = "powermetrics"
    kind = "measured"

    def __init__(
        self,
        binary: str = DEFAULT_BINARY,
        *,
        interval_ms: int = DEFAULT_INTERVAL_MS,
        argv: list[str] | None = None,
        use_sudo: bool | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.argv = list(argv) if argv is not None else powermetrics_argv(binary, interval_ms, use_sudo=use_sudo)
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout

    def start(self) -> PowermetricsSession:
        return PowermetricsSession(self.argv, self.startup_timeout, self.stop_timeout)

    def validate(self, busy_seconds: float = DEFAULT_BUSY_SECONDS) -> EnergyReading:
        reading = measure_busy_loop(self, busy_seconds)
        if reading.joules <= 0:
            raise MeterUnavailable(f"powermetrics read 0 J during a {busy_seconds:g} s busy loop")
        return reading

    def describe(self) -> str:
        return f"`{' '.join(self.argv)}`: CPU Power (Apple silicon) or package power (Intel) × elapsed per sample"


class PowermetricsSession:
    """powermetrics running from start() to stop(), its text output collected in a temporary file."""

    def __init__(self, argv: list[str], startup_timeout: float, stop_timeout: float) -> None:
        self._stop_timeout = stop_timeout
        self._reading: EnergyReading | None = None
        self._output = tempfile.TemporaryFile(mode="w+b", prefix="greencoder-powermetrics-")
        try:
            self._process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=self._output, stderr=subprocess.PIPE
            )
        except OSError as exc:
            self._output.close()
            if isinstance(exc, FileNotFoundError):
                raise MeterUnavailable(f"{argv[0]} not found (powermetrics ships with macOS only)") from None
            raise MeterUnavailable(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
        self._wait_for_output(startup_timeout)
        self._started = time.perf_counter()

    def _wait_for_output(self, timeout: float) -> None:
        """Catch a failed start (no sudo rights, unknown sampler) before the run, not after it."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if self._process.poll() is not None:
                reason = last_stderr_line(self._process)
                self._output.close()
                if "password" in reason:
                    reason += " (powermetrics needs root: run as root or allow it in sudoers without a password)"
                raise MeterUnavailable(f"powermetrics exited at start: {reason}")
            if os.fstat(self._output.fileno()).st_size > 0:
                return
            time.sleep(0.005)

    def stop(self, usage: RunUsage | None = None) -> EnergyReading:
        if self._reading is not None:
            return self._reading
        interval = time.perf_counter() - self._started
        try:
            interrupt(self._process, self._stop_timeout, "powermetrics")
        except MeterError:
            self._output.close()
            raise
        self._output.seek(0)
        text = self._output.read().decode(errors="replace")
        self._output.close()
        samples = parse_powermetrics(text)
        if not samples:
            reason = last_stderr_line(self._process)
            raise MeterError(f"powermetrics produced no power sample in {interval:.3f} s: {reason}")
        joules, domains, total = integrate(samples)
        covered = sum(sample.elapsed for sample in samples)
        self._reading = EnergyReading(
            joules=joules,
            source="powermetrics",
            kind="measured",
            domains=domains,
            interval=interval,
            note=f"total = {total}; {len(samples)} samples covering {covered:.3f} s",
        )
        return self._reading
