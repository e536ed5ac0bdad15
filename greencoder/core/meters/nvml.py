"""NVIDIA GPU energy through NVML (the `pynvml` module of nvidia-ml-py: `pip install 'greencoder[nvidia]'`).

Per GPU, the preferred source is `nvmlDeviceGetTotalEnergyConsumption`: a millijoule counter since
the driver loaded (Volta and newer), so the energy of a run is a difference of two reads. Older
GPUs raise NVMLError_NotSupported there; for those a daemon thread samples
`nvmlDeviceGetPowerUsage` (milliwatts) at 10 Hz and integrates it with the trapezoid rule.
Domains are `gpu-0`, `gpu-1`, ...; the total is their sum. It covers the GPUs only: a CPU-only
program measured with this meter reads the GPUs' idle power, which describe() says.

The module is injectable (constructor argument) so tests run without a GPU or the package.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from greencoder.core.meters._sampling import PeriodicSampler
from greencoder.core.meters.base import (
    DEFAULT_BUSY_SECONDS,
    EnergyReading,
    MeterError,
    MeterUnavailable,
    RunUsage,
    measure_busy_loop,
)

DEFAULT_POWER_INTERVAL = 0.1  # seconds: 10 Hz


@dataclass(frozen=True)
class Gpu:
    label: str  # "gpu-0"
    handle: Any
    mode: str  # "counter" (energy counter, mJ) or "power" (sampled mW, integrated)
    model: str = ""


def load_pynvml() -> ModuleType:
    try:
        import pynvml
    except ImportError:
        raise MeterUnavailable("nvidia-ml-py is not installed (pip install 'greencoder[nvidia]')") from None
    return pynvml


def is_not_supported(nvml: Any, exc: BaseException) -> bool:
    """Whether an NVML error means "this GPU has no such counter" (NVML_ERROR_NOT_SUPPORTED)."""
    cls = getattr(nvml, "NVMLError_NotSupported", None)
    if isinstance(cls, type) and isinstance(exc, cls):
        return True
    return getattr(exc, "value", None) == getattr(nvml, "NVML_ERROR_NOT_SUPPORTED", 3)


def trapezoid(samples: list[tuple[float, float]]) -> float:
    """Joules from (seconds, watts) samples in time order, by the trapezoid rule."""
    return sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in zip(samples, samples[1:], strict=False))


class NvmlMeter:
    """Energy of every NVIDIA GPU: the energy counter where there is one, integrated power elsewhere."""

    name = "nvml"
    kind = "measured"

    def __init__(
        self,
        module: Any = None,
        *,
        power_interval: float = DEFAULT_POWER_INTERVAL,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if power_interval <= 0:
            raise ValueError("power_interval must be positive")
        self.power_interval = power_interval
        self.clock = clock  # stamps the power samples; injectable so tests can integrate exactly
        self.skipped: dict[str, str] = {}  # GPU -> why it is not measured
        self._module = module
        self._nvml: Any = None
        self._gpus: list[Gpu] | None = None

    @property
    def nvml(self) -> Any:
        if self._nvml is None:
            nvml = self._module if self._module is not None else load_pynvml()
            try:
                nvml.nvmlInit()
            except nvml.NVMLError as exc:
                raise MeterUnavailable(f"NVML init failed: {exc}") from None
            self._nvml = nvml
        return self._nvml

    @property
    def gpus(self) -> list[Gpu]:
        if self._gpus is None:
            self._gpus = self._probe()
        return self._gpus

    def _probe(self) -> list[Gpu]:
        nvml = self.nvml
        try:
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as exc:
            raise MeterUnavailable(f"NVML could not count GPUs: {exc}") from None
        if count == 0:
            raise MeterUnavailable("NVML found no NVIDIA GPU")
        gpus = []
        for index in range(count):
            label = f"gpu-{index}"
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
                mode = self._mode(handle)
            except nvml.NVMLError as exc:
                self.skipped[label] = str(exc)
                continue
            gpus.append(Gpu(label, handle, mode, _model(nvml, handle)))
        if not gpus:
            reasons = "; ".join(f"{label}: {why}" for label, why in self.skipped.items())
            raise MeterUnavailable(f"no GPU reports energy or power: {reasons}")
        return gpus

    def _mode(self, handle: Any) -> str:
        nvml = self.nvml
        try:
            nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
            return "counter"
        except nvml.NVMLError as exc:
            if not is_not_supported(nvml, exc):
                raise
        nvml.nvmlDeviceGetPowerUsage(handle)  # NotSupported here too: the GPU is skipped
        return "power"

    def start(self) -> NvmlSession:
        return NvmlSession(self.nvml, self.gpus, self.power_interval, self.clock)

    def validate(self, busy_seconds: float = DEFAULT_BUSY_SECONDS) -> EnergyReading:
        """GPUs draw power even when idle, so any working one reads > 0 J over the busy loop;
        GPUs that read 0 are dropped, and the meter is rejected if all do."""
        gpus = self.gpus
        reading = measure_busy_loop(self, busy_seconds)
        dead = [gpu for gpu in gpus if reading.domains.get(gpu.label, 0.0) <= 0.0]
        if len(dead) == len(gpus):
            labels = ", ".join(gpu.label for gpu in dead)
            raise MeterUnavailable(f"{labels} read 0 J during a {busy_seconds:g} s busy loop")
        for gpu in dead:
            self.skipped[gpu.label] = "read 0 J during validation"
        self._gpus = [gpu for gpu in gpus if gpu not in dead]
        return reading

    def describe(self) -> str:
        if self._gpus is None:
            return "NVIDIA GPUs through NVML (not probed yet)"
        parts = []
        for gpu in self._gpus:
            how = "energy counter" if gpu.mode == "counter" else f"power sampled every {self.power_interval:g} s"
            parts.append(f"{gpu.label}{f' ({gpu.model})' if gpu.model else ''}: {how}")
        text = "NVML, GPUs only (no CPU energy): " + "; ".join(parts)
        if self.skipped:
            text += " (skipped: " + "; ".join(f"{k}: {v}" for k, v in self.skipped.items()) + ")"
        return text

    def close(self) -> None:
        """Release NVML (optional: the process exiting does the same)."""
        if self._nvml is not None:
            try:
                self._nvml.nvmlShutdown()
            except self._nvml.NVMLError:
                pass
            self._nvml = None
            self._gpus = None


class NvmlSession:
    """Counter reads at both ends for counter GPUs; a 10 Hz power sampler for the others."""

    def __init__(
        self, nvml: Any, gpus: list[Gpu], power_interval: float, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self._nvml = nvml
        self._clock = clock
        self._counter_gpus = [gpu for gpu in gpus if gpu.mode == "counter"]
        self._power_gpus = [gpu for gpu in gpus if gpu.mode == "power"]
        self._power: dict[str, list[tuple[float, float]]] = {gpu.label: [] for gpu in self._power_gpus}
        self._reading: EnergyReading | None = None
        self._sampler: PeriodicSampler | None = None
        try:
            self._start_mj = self._energy_mj()
            self.sample()
        except nvml.NVMLError as exc:
            raise MeterError(f"NVML read failed at start: {exc}") from None
        self._started = time.perf_counter()
        if self._power_gpus:
            self._sampler = PeriodicSampler(self.sample, power_interval, "greencoder-nvml")
            self._sampler.start()

    def _energy_mj(self) -> dict[str, int]:
        return {gpu.label: self._nvml.nvmlDeviceGetTotalEnergyConsumption(gpu.handle) for gpu in self._counter_gpus}

    def sample(self) -> None:
        """Read the power of every power-sampled GPU once, stamped with one clock reading."""
        if not self._power_gpus:
            return
        now = self._clock()
        for gpu in self._power_gpus:
            self._power[gpu.label].append((now, self._nvml.nvmlDeviceGetPowerUsage(gpu.handle) / 1000.0))

    def stop(self, usage: RunUsage | None = None) -> EnergyReading:
        if self._reading is not None:
            return self._reading
        if self._sampler is not None:
            self._sampler.stop()
        interval = time.perf_counter() - self._started
        if self._sampler is not None and self._sampler.error is not None:
            raise MeterError(f"NVML power sampling failed during the run: {self._sampler.error}")
        try:
            end_mj = self._energy_mj()
            self.sample()
        except self._nvml.NVMLError as exc:
            raise MeterError(f"NVML read failed at stop: {exc}") from None
        domains = {label: (end_mj[label] - self._start_mj[label]) / 1000.0 for label in end_mj}
        domains.update({label: trapezoid(samples) for label, samples in self._power.items()})
        domains = dict(sorted(domains.items(), key=lambda item: int(item[0].split("-")[1])))
        note = "GPUs only"
        if self._power_gpus:
            counts = ", ".join(f"{label}: {len(samples)} power samples" for label, samples in self._power.items())
            note += f"; {counts}, trapezoid rule"
        self._reading = EnergyReading(
            joules=sum(domains.values()), source="nvml", kind="measured", domains=domains, interval=interval, note=note
        )
        return self._reading


def _model(nvml: Any, handle: Any) -> str:
    try:
        name = nvml.nvmlDeviceGetName(handle)
    except Exception:  # noqa: BLE001 - the model name is decoration only
        return ""
    return name.decode() if isinstance(name, bytes) else str(name)
