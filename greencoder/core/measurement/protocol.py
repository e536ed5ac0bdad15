"""The paper's measurement protocol: how the energy and time of one call are measured.

The call is repeated inside one program until a run lasts at least `min_seconds` (5 s: short runs
drown in meter resolution and start-up), the program is run `runs` times (10) with a cooldown
between runs (5 s, so heat and turbo state of one run do not leak into the next), an idle
baseline is subtracted for hardware meters, and outliers are removed with the MAD before
summarising. Everything is configurable; tests use short runs and no cooldown.

Costs are the host's figures, never the program's: energy per call is the meter's reading of the
whole run over the calls asked for, time per call the host's wall time of the whole run over the
same count (start-up included in both, and made small by the 5 s runs). What the program reports
(its nonce, the repeat count, its own loop time) is checked against the host's figures and the
measurement refused when they disagree; the loop time only steers calibration. After every run
the host checks that the job's built files are unchanged (job_guard.py).
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace

from greencoder.core.errors import GreencoderError
from greencoder.core.languages import Language
from greencoder.core.meters import EnergyReading, Meter, RunUsage, idle_power
from greencoder.core.sandbox import ExecutionResult, Job, Limits, Sandbox
from greencoder.core.statistics import (
    DEFAULT_ALPHA,
    DEFAULT_THRESHOLD,
    Comparison,
    Summary,
    compare,
    summarize,
)

from .harness import (
    HarnessOutputError,
    HarnessReport,
    build_harness,
    parse_harness_output,
)
from .job_guard import JobGuard, JobTampered, protect

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class MeasurementError(GreencoderError):
    """The program could not be measured: it did not compile, failed, or timed out."""


@dataclass(frozen=True)
class MeasurementProtocol:
    runs: int = 10
    min_seconds: float = 5.0
    cooldown_seconds: float = 5.0
    baseline_seconds: float = 5.0  # idle baseline length, measured meters only
    outlier_threshold: float = DEFAULT_THRESHOLD
    alpha: float = DEFAULT_ALPHA
    calibration_margin: float = 1.15  # aim this much above min_seconds, so noise keeps runs above it
    max_run_seconds: float = 600.0  # the per-run deadline never exceeds this
    max_calibration_steps: int = 12  # 100x per step: 10^22 calls, far beyond any real loop
    max_repeats: int = 10**15  # fits C++'s long long and Java's long with room to spare

    def __post_init__(self) -> None:
        if self.runs < 1:
            raise ValueError("runs must be at least 1")
        if self.min_seconds < 0 or self.cooldown_seconds < 0 or self.baseline_seconds < 0:
            raise ValueError("durations must not be negative")


@dataclass(frozen=True)
class RunRecord:
    repeats: int
    joules: float
    seconds: float  # wall time of the whole program run, by the host's clock (the meter bracketed the same run)
    loop_seconds: float  # the repeated calls alone, as the program timed them: checked against `seconds`, not used
    cpu_seconds: float | None
    reading: EnergyReading

    @property
    def joules_per_call(self) -> float:
        """The meter's energy of the whole run over the calls asked for (start-up included, as for time)."""
        return self.joules / self.repeats

    @property
    def seconds_per_call(self) -> float:
        """The host's wall time of the whole run over the calls asked for: never the program's own figure."""
        return self.seconds / self.repeats


@dataclass
class Measurement:
    """Everything needed to re-analyse one program's measurement; `to_dict()` is the raw record."""

    name: str
    language: str
    call: str
    repeats: int
    meter: str
    energy_kind: str  # "measured" or "estimated": carried into every table and plot
    meter_note: str
    isolation: str
    baseline_watts: float
    protocol: MeasurementProtocol
    runs: list[RunRecord] = field(default_factory=list)

    @property
    def joules(self) -> list[float]:
        return [run.joules for run in self.runs]

    @property
    def seconds(self) -> list[float]:
        return [run.seconds for run in self.runs]

    def energy(self) -> Summary:
        return summarize(self.joules, self.protocol.outlier_threshold)

    def time(self) -> Summary:
        return summarize(self.seconds, self.protocol.outlier_threshold)

    def energy_per_call(self) -> Summary:
        return summarize([run.joules_per_call for run in self.runs], self.protocol.outlier_threshold)

    def time_per_call(self) -> Summary:
        return summarize([run.seconds_per_call for run in self.runs], self.protocol.outlier_threshold)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "language": self.language, "call": self.call, "repeats": self.repeats,
            "meter": self.meter, "energy_kind": self.energy_kind, "meter_note": self.meter_note,
            "isolation": self.isolation, "baseline_watts": self.baseline_watts, "protocol": asdict(self.protocol),
            "runs": [{**{k: v for k, v in asdict(run).items() if k != "reading"}, "reading": run.reading.to_dict(),
                      "joules_per_call": run.joules_per_call, "seconds_per_call": run.seconds_per_call}
                     for run in self.runs],
            "energy_joules": self.energy().to_dict(), "time_seconds": self.time().to_dict(),
            "energy_joules_per_call": self.energy_per_call().to_dict(),
            "time_seconds_per_call": self.time_per_call().to_dict(),
        }


@dataclass(frozen=True)
class MeasurementComparison:
    """b against a: Mann-Whitney U on per-call energy and time (the two programs are calibrated to
    different repeat counts, so per-run values would compare different amounts of work)."""

    a: Measurement
    b: Measurement
    energy: Comparison
    time: Comparison

    def to_dict(self) -> dict:
        return {"a": self.a.name, "b": self.b.name, "energy": self.energy.to_dict(), "time": self.time.to_dict()}


def compare_measurements(a: Measurement, b: Measurement, alpha: float | None = None) -> MeasurementComparison:
    if a.energy_kind != b.energy_kind:
        raise MeasurementError("cannot compare a measured energy with an estimated one")
    alpha = a.protocol.alpha if alpha is None else alpha
    threshold = a.protocol.outlier_threshold
    energy = compare([r.joules_per_call for r in a.runs], [r.joules_per_call for r in b.runs], alpha, threshold)
    time_ = compare([r.seconds_per_call for r in a.runs], [r.seconds_per_call for r in b.runs], alpha, threshold)
    return MeasurementComparison(a, b, energy, time_)


def measure(sandbox: Sandbox, meter: Meter, language: Language, source: str, call: str, *,
            function: str | None = None, name: str = "program", protocol: MeasurementProtocol = MeasurementProtocol(),
            progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep,
            driver: Mapping[str, str] | None = None, declarations: str = "") -> Measurement:
    """Measure `call` evaluated against `source`; raises MeasurementError with a one-line reason.
    `driver`/`declarations`: trusted files built next to the user's, see harness.build_harness."""
    progress = progress or (lambda stage, done, total: None)
    program = build_harness(language, source, call, function, source_name=name, driver=driver,
                            declarations=declarations)
    with sandbox.prepare(language, program.files, program.entry) as job:
        built = job.build()
        if not built.ok:
            raise MeasurementError(f"{name} did not build: {built.reason}")
        protect(job.directory, program.protected)
        guard = JobGuard.after_build(job.directory, name)
        repeats = _calibrate(job, guard, protocol, name, progress)
        baseline = 0.0
        if meter.kind == "measured" and protocol.baseline_seconds > 0:
            progress("idle baseline", 0, 1)
            baseline = idle_power(meter, protocol.baseline_seconds)
        measurement = Measurement(
            name=name, language=language.name, call=call, repeats=repeats, meter=meter.name, energy_kind=meter.kind,
            meter_note=meter.describe(), isolation=sandbox.isolation.label, baseline_watts=baseline, protocol=protocol,
        )
        for index in range(protocol.runs):
            progress("measuring", index, protocol.runs)
            if protocol.cooldown_seconds > 0:
                sleep(protocol.cooldown_seconds)
            record = _measured_run(job, guard, meter, repeats, protocol, baseline, name)
            if index == 0 and record.seconds < protocol.min_seconds:
                # Calibration undershot (first call cached, frequency change): rescale once and restart.
                repeats = _scale(repeats, protocol.min_seconds * protocol.calibration_margin, record.loop_seconds, protocol)
                measurement.repeats = repeats
                record = _measured_run(job, guard, meter, repeats, protocol, baseline, name)
            measurement.runs.append(record)
        progress("measuring", protocol.runs, protocol.runs)
        return measurement


def _run_limits(job: Job, expected_seconds: float, protocol: MeasurementProtocol) -> Limits:
    base = job.sandbox.run_limits
    wall = min(protocol.max_run_seconds, max(base.wall_seconds, 3 * expected_seconds + 10))
    return replace(base, wall_seconds=wall, cpu_seconds=wall)


@dataclass(frozen=True)
class CheckedRun:
    """One harness run whose report agreed with what the host saw."""

    result: ExecutionResult
    report: HarnessReport


def _run(job: Job, guard: JobGuard, repeats: int, expected_seconds: float, protocol: MeasurementProtocol,
         name: str) -> CheckedRun:
    nonce = secrets.token_hex(16)
    result = job.run([str(repeats)], stdin=(nonce + "\n").encode(), limits=_run_limits(job, expected_seconds, protocol))
    try:
        guard.check()
    except JobTampered as exc:
        raise MeasurementError(str(exc)) from None
    if not result.ok:
        raise MeasurementError(f"{name} failed while measuring ({repeats} calls): {result.status.value}: {result.reason}")
    try:
        report = parse_harness_output(result.stdout, nonce, repeats)
    except HarnessOutputError as exc:
        raise MeasurementError(f"{name}: {exc}") from None
    # The program's own clock cannot have seen more time than the host's, which brackets the whole run.
    if report.loop_seconds > result.wall_seconds * 1.02 + 0.05:
        raise MeasurementError(f"{name}: the harness reports a {report.loop_seconds:.3g} s loop in a run the host saw "
                               f"last {result.wall_seconds:.3g} s: refused")
    return CheckedRun(result, report)


def _scale(repeats: int, target_seconds: float, observed_seconds: float, protocol: MeasurementProtocol) -> int:
    """The repeat count expected to last `target_seconds`, never more than max_repeats."""
    if observed_seconds <= 0 or not math.isfinite(observed_seconds):
        wanted = repeats * 100
    else:
        wanted = math.ceil(repeats * min(target_seconds / observed_seconds, 1e6))
    return min(max(repeats + 1, wanted), protocol.max_repeats)


def _calibrate(job: Job, guard: JobGuard, protocol: MeasurementProtocol, name: str, progress: Progress) -> int:
    """The repeat count whose loop lasts about min_seconds × margin. Grows by at most 100× per
    step while runs are too short to time reliably, then extrapolates once; gives up after
    max_calibration_steps (a loop whose time never grows: an empty call, a lying clock)."""
    target = protocol.min_seconds * protocol.calibration_margin
    repeats = 1
    for step in range(protocol.max_calibration_steps):
        progress("calibrating", step, 0)
        loop = _run(job, guard, repeats, 1.0 if step == 0 else target / 10, protocol, name).report.loop_seconds
        if loop >= target or target == 0:
            return repeats
        if loop >= min(0.2, target / 10):  # long enough to extrapolate from
            return _scale(repeats, target, loop, protocol)
        if repeats >= protocol.max_repeats:
            break
        repeats = min(repeats * 100, _scale(repeats, target, loop, protocol))
    raise MeasurementError(f"{name}: calibration gave up after {protocol.max_calibration_steps} steps: "
                           f"{repeats} calls still took under {min(0.2, target / 10):g} s")


def _measured_run(job: Job, guard: JobGuard, meter: Meter, repeats: int, protocol: MeasurementProtocol,
                  baseline_watts: float, name: str) -> RunRecord:
    session = meter.start()
    try:
        checked = _run(job, guard, repeats, protocol.min_seconds * protocol.calibration_margin, protocol, name)
    except BaseException:
        try:  # release samplers; the reading is discarded
            session.stop(RunUsage())
        except Exception:  # noqa: BLE001 - the run's own error is the one to report
            pass
        raise
    result = checked.result
    reading = session.stop(RunUsage(cpu_seconds=result.cpu_seconds, wall_seconds=result.wall_seconds,
                                    cpu_source=result.cpu_source))
    joules = reading.joules
    if baseline_watts and reading.kind == "measured":
        joules = max(0.0, joules - baseline_watts * reading.interval)
    return RunRecord(repeats=repeats, joules=joules, seconds=result.wall_seconds, loop_seconds=checked.report.loop_seconds,
                     cpu_seconds=result.cpu_seconds, reading=reading)
