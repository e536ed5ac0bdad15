"""NVML GPU energy, with a stand-in pynvml module (no GPU, no nvidia-ml-py needed)."""

from __future__ import annotations

import sys
import time

import pytest

from greencoder.core.meters.base import MeterUnavailable
from greencoder.core.meters.fakes import FakeGpu, NVMLError_DriverNotLoaded, fake_pynvml
from greencoder.core.meters.nvml import NvmlMeter, trapezoid

HOUR = 3600.0


def test_energy_counter_difference_per_gpu():
    gpus = [FakeGpu(energy_mj=1_000_000), FakeGpu(energy_mj=50)]
    meter = NvmlMeter(fake_pynvml(gpus))
    session = meter.start()
    gpus[0].energy_mj += 12_345
    gpus[1].energy_mj += 500
    reading = session.stop()
    assert reading.domains == {"gpu-0": pytest.approx(12.345), "gpu-1": pytest.approx(0.5)}
    assert reading.joules == pytest.approx(12.845)
    assert (reading.source, reading.kind) == ("nvml", "measured")
    assert "GPUs only (no CPU energy)" in meter.describe()


def test_not_supported_counter_falls_back_to_integrated_power():
    """Power 100 W at t=0, 200 W at t=1 and t=3: trapezoid = 1 s × 150 W + 2 s × 200 W = 550 J."""
    gpu = FakeGpu(energy_mj=None, power_mw=100_000)
    meter = NvmlMeter(fake_pynvml([gpu]), power_interval=HOUR, clock=iter([0.0, 1.0, 3.0]).__next__)
    session = meter.start()
    gpu.power_mw = 200_000
    session.sample()  # what the 10 Hz thread does
    reading = session.stop()
    assert reading.joules == pytest.approx(550.0)
    assert reading.domains == {"gpu-0": pytest.approx(550.0)}
    assert "3 power samples" in reading.note
    assert "power sampled every" in meter.describe()


def test_mixed_gpus_counter_and_power():
    gpus = [FakeGpu(energy_mj=0), FakeGpu(energy_mj=None, power_mw=40_000)]
    meter = NvmlMeter(fake_pynvml(gpus), power_interval=HOUR, clock=iter([10.0, 12.5]).__next__)
    session = meter.start()
    gpus[0].energy_mj = 7_000
    reading = session.stop()
    assert reading.domains == {"gpu-0": pytest.approx(7.0), "gpu-1": pytest.approx(100.0)}  # 40 W × 2.5 s
    assert reading.joules == pytest.approx(107.0)


def test_background_power_sampling_at_10_hz():
    meter = NvmlMeter(fake_pynvml([FakeGpu(energy_mj=None, power_mw=50_000)]))
    session = meter.start()
    time.sleep(0.35)
    reading = session.stop()
    samples = int(reading.note.split(": ")[1].split()[0])
    assert samples >= 4  # start, ~3 from the thread, stop
    assert reading.joules == pytest.approx(50.0 * reading.interval, rel=0.05)


def test_trapezoid():
    assert trapezoid([(0.0, 0.0), (2.0, 10.0)]) == 10.0
    assert trapezoid([(0.0, 5.0)]) == 0.0


def test_init_failure_and_no_gpu_and_nothing_supported():
    with pytest.raises(MeterUnavailable, match=r"^NVML init failed: Driver Not Loaded$"):
        NvmlMeter(fake_pynvml([FakeGpu()], init_error=NVMLError_DriverNotLoaded())).validate(busy_seconds=0.05)
    with pytest.raises(MeterUnavailable, match=r"^NVML found no NVIDIA GPU$"):
        NvmlMeter(fake_pynvml([])).validate(busy_seconds=0.05)
    with pytest.raises(MeterUnavailable, match=r"no GPU reports energy or power: gpu-0: Not Supported"):
        NvmlMeter(fake_pynvml([FakeGpu(energy_mj=None, power_mw=None)])).validate(busy_seconds=0.05)


def test_missing_module(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml now raises ImportError
    with pytest.raises(MeterUnavailable, match=r"nvidia-ml-py is not installed"):
        NvmlMeter().validate(busy_seconds=0.05)


def test_validation_rejects_a_counter_that_never_moves_and_accepts_power():
    with pytest.raises(MeterUnavailable, match=r"^gpu-0 read 0 J during a 0.05 s busy loop$"):
        NvmlMeter(fake_pynvml([FakeGpu(energy_mj=123)])).validate(busy_seconds=0.05)
    reading = NvmlMeter(fake_pynvml([FakeGpu(energy_mj=None, power_mw=30_000)])).validate(busy_seconds=0.05)
    assert reading.joules == pytest.approx(30.0 * reading.interval, rel=0.1)
