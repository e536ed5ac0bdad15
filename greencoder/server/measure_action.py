"""The "Measure energy" action: measure the function under the cursor in the sandbox, in the background.

Measuring takes a while (the protocol's runs, each at least --min-seconds long, with a cooldown
before each), so it runs on a thread of its own, never on the completion worker, with work-done
progress the user can cancel between runs. The result is kept per (document, function): the next
measurement of the same function, after an edit, is compared with it (Mann-Whitney U).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from typing import Callable

from greencoder.core.errors import GreencoderError
from greencoder.core.languages import Language
from greencoder.core.measurement.protocol import Measurement, MeasurementProtocol, compare_measurements, measure
from greencoder.core.statistics import TooFewSamplesError
from greencoder.server.ledger import EnergyLedger
from greencoder.server.settings import ServerSettings


class MeasurementCancelled(GreencoderError):
    """The user cancelled the measurement's progress."""


def _quantity(value: float, unit: str) -> str:
    for scale, prefix in ((1, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n")):
        if abs(value) >= scale or scale == 1e-9:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


@dataclass
class MeasurementOutcome:
    """One measurement of a function, as data (`data()`, what editors render) and as text (the
    diagnostic's message and the hover, for editors that know nothing of greencoder)."""

    function: str
    call: str
    uri: str = ""
    measurement: Measurement | None = None
    error: str | None = None
    comparison: dict | None = None

    def data(self) -> dict:
        """The measurement as numbers (joules and seconds per call): the Diagnostic's `data`, the
        ledger's `lastMeasurement`. See the README's "Structured results"."""
        base = {"kind": "greencoder.measurement", "function": self.function, "call": self.call, "uri": self.uri,
                "status": "failed" if self.error else "ok", "error": self.error}
        m = self.measurement
        if m is None:
            return {**base, "energyKind": None, "meter": None, "isolation": None, "energy": None, "time": None,
                    "runs": 0, "removed": 0, "repeats": 0, "comparison": None}
        energy, time_ = m.energy_per_call(), m.time_per_call()
        return {**base, "energyKind": m.energy_kind, "meter": m.meter, "isolation": m.isolation,
                "energy": _spread(energy), "time": _spread(time_), "runs": energy.n, "removed": energy.n_removed,
                "repeats": m.repeats, "comparison": self.comparison}

    def summary(self) -> str:
        """One line for the diagnostic's message and the progress end."""
        if self.error:
            return f"greencoder: measuring {self.function} failed: {self.error}"
        m = self.measurement
        energy, time_ = m.energy_per_call(), m.time_per_call()
        kind = "ESTIMATED from CPU time" if m.energy_kind == "estimated" else f"measured ({m.meter})"
        text = (f"{self.function}: {_quantity(energy.mean, 'J')} ± {_quantity(energy.std or 0.0, 'J')} per call, "
                f"{_quantity(time_.mean, 's')} ± {_quantity(time_.std or 0.0, 's')} per call, "
                f"{energy.n} runs of {m.repeats} calls; energy {kind}")
        return text + (f"; {comparison_text(self.comparison)}" if self.comparison else "")

    def hover(self) -> str:
        if self.error:
            return f"**greencoder** — measuring `{self.function}` failed: {self.error}"
        m = self.measurement
        energy, time_ = m.energy_per_call(), m.time_per_call()
        kind = "**estimated from CPU time** (no hardware energy counter)" if m.energy_kind == "estimated" else f"measured with {m.meter}"
        lines = [f"**greencoder** — `{self.call}`", "",
                 f"- energy per call: {_quantity(energy.mean, 'J')} (sd {_quantity(energy.std or 0.0, 'J')}, cv {energy.cv or 0:.1%})",
                 f"- time per call: {_quantity(time_.mean, 's')} (sd {_quantity(time_.std or 0.0, 's')})",
                 f"- runs kept: {energy.n} (outliers removed: {energy.n_removed}), {m.repeats} calls per run",
                 f"- energy: {kind}", f"- sandbox: {m.isolation}"]
        if self.comparison:
            lines.append(f"- {comparison_text(self.comparison)}")
        return "\n".join(lines)


def _spread(summary) -> dict:
    return {"mean": summary.mean, "sd": summary.std, "cv": summary.cv}


def compare(previous: Measurement, current: Measurement, alpha: float) -> dict:
    """The change from `previous` to `current` as data (Mann-Whitney U on the per-call runs)."""
    try:
        comparison = compare_measurements(previous, current, alpha)
    except (TooFewSamplesError, GreencoderError) as exc:
        return {"energyChangePct": None, "timeChangePct": None, "pValue": None, "alpha": alpha,
                "significant": False, "error": str(exc)}
    return {"energyChangePct": comparison.energy.relative_pct, "timeChangePct": comparison.time.relative_pct,
            "pValue": comparison.energy.p_value, "alpha": alpha, "significant": bool(comparison.energy.significant),
            "error": None}


def comparison_text(comparison: dict) -> str:
    if comparison.get("error"):
        return f"not compared with the previous measurement ({comparison['error']})"
    change = comparison["energyChangePct"]
    verdict = "significant" if comparison["significant"] else "not significant"
    shown = f"{change:+.1f} %" if change is not None else "n/a"
    return (f"vs previous: energy {shown} (Mann-Whitney p = {comparison['pValue']:.2g}, {verdict} at "
            f"α = {comparison['alpha']})")


class MeasureService:
    def __init__(self, ledger: EnergyLedger, settings: Callable[[], ServerSettings], warn: Callable[[str], None]):
        self.ledger = ledger
        self.settings = settings
        self.warn = warn
        self.previous: dict[tuple[str, str], Measurement] = {}
        self.results: dict[tuple[str, str], MeasurementOutcome] = {}
        self._sandbox = None
        self._sandbox_key = None
        self._lock = threading.Lock()

    def sandbox(self, settings: ServerSettings):
        from greencoder.core.sandbox import DEFAULT_RUN_LIMITS, Sandbox, Toolchains

        key = settings.bench_memory_mib
        if self._sandbox is None or key != self._sandbox_key:
            limits = replace(DEFAULT_RUN_LIMITS, memory_bytes=settings.bench_memory_mib * 1024 * 1024)
            self._sandbox = Sandbox(toolchains=Toolchains(), run_limits=limits, warn=self.warn)
            self._sandbox_key = key
        return self._sandbox

    def run(self, uri: str, source: str, language: Language, function: str, call: str,
            progress: Callable[[str, int, int], None], cancelled: threading.Event) -> MeasurementOutcome:
        """Measure `call` in `source` (blocking: call from a worker thread)."""
        from greencoder.core.meters import select_meter

        settings = self.settings()
        outcome = MeasurementOutcome(function, call, uri)

        def report(stage: str, done: int, total: int) -> None:
            if cancelled.is_set():
                raise MeasurementCancelled("cancelled")
            progress(stage, done, total)

        try:
            meter = select_meter(settings.meter, watts_per_core=settings.watts_per_core).meter
            protocol = MeasurementProtocol(runs=settings.bench_runs, min_seconds=settings.bench_min_seconds,
                                           cooldown_seconds=settings.bench_cooldown, alpha=settings.bench_alpha,
                                           baseline_seconds=min(5.0, settings.bench_min_seconds))
            measurement = measure(self.sandbox(settings), meter, language, source, call, function=function,
                                  name=function, protocol=protocol, progress=report, sleep=lambda s: cancelled.wait(s))
        except MeasurementCancelled:
            outcome.error = "cancelled"
            return outcome
        except GreencoderError as exc:
            outcome.error = str(exc)
        else:
            outcome.measurement = measurement
            key = (uri, function)
            with self._lock:
                previous = self.previous.get(key)
                self.previous[key] = measurement
            if previous is not None:
                outcome.comparison = compare(previous, measurement, settings.bench_alpha)
            self.ledger.add_measurement(outcome.data(), sum(measurement.joules), measurement.energy_kind)
        with self._lock:
            self.results[(uri, function)] = outcome
        return outcome
