"""Meter selection: validated candidates in order, reasons for every rejection, one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from greencoder.core.meters import selection
from greencoder.core.meters.base import EnergyReading, MeterError
from greencoder.core.meters.estimate import WATTS_PER_CORE_ENV, EstimateMeter
from greencoder.core.meters.fakes import write_fake_perf, write_power_events
from greencoder.core.meters.nvml import NvmlMeter
from greencoder.core.meters.perf import PerfMeter
from greencoder.core.meters.powermetrics import PowermetricsMeter
from greencoder.core.meters.rapl import RaplMeter
from greencoder.core.meters.selection import idle_power, select_meter

NO_NVML = "nvidia-ml-py is not installed (pip install 'greencoder[nvidia]')"
GPU_ONLY_REASON = "measures GPUs only, and the program runs on the CPU (--meter nvml forces it)"


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    monkeypatch.delenv(WATTS_PER_CORE_ENV, raising=False)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # as on a machine without nvidia-ml-py
    selection.clear_cache()
    yield
    selection.clear_cache()


def bare_machine(tmp_path: Path, perf_meter=None) -> dict:
    """Factories for a machine like the development VM: no powercap, no power PMU, no NVML."""
    return {
        "rapl": lambda: RaplMeter(tmp_path / "powercap"),
        "perf": perf_meter or (lambda: PerfMeter("perf", tmp_path / "events")),
        "nvml": NvmlMeter,
        "powermetrics": lambda: PowermetricsMeter(str(tmp_path / "powermetrics"), use_sudo=False),
        "estimate": EstimateMeter,
    }


def test_auto_ends_at_the_estimate_with_every_reason(tmp_path):
    selected = select_meter(factories=bare_machine(tmp_path), platform="linux", busy_seconds=0.05)
    assert selected.name == "estimate" and selected.kind == "estimated"
    assert selected.rejected == (
        ("rapl", f"{tmp_path / 'powercap'} missing"),
        ("perf", f"{tmp_path / 'events'} missing"),
        ("nvml", GPU_ONLY_REASON),
    )
    assert selected.summary() == (
        f"rapl: {tmp_path / 'powercap'} missing; perf: {tmp_path / 'events'} missing; nvml: {GPU_ONLY_REASON}; → estimate"
    )


def test_nvml_is_tried_in_order_for_gpu_workloads(tmp_path):
    selected = select_meter(factories=bare_machine(tmp_path), platform="linux", busy_seconds=0.05, gpu_workload=True)
    assert selected.rejected[2] == ("nvml", NO_NVML)


def test_nvml_is_never_chosen_automatically_for_cpu_programs(tmp_path):
    """A GPU machine without RAPL: NVML works, but it would report the GPUs' idle draw as the CPU
    program's energy, so auto passes over it to the estimate."""
    from greencoder.core.meters.fakes import FakeGpu, fake_pynvml

    gpus = fake_pynvml([FakeGpu(energy_mj=None, power_mw=60_000.0)])
    factories = {**bare_machine(tmp_path), "nvml": lambda: NvmlMeter(gpus, power_interval=0.01)}
    assert select_meter(factories=factories, platform="linux", busy_seconds=0.05).name == "estimate"
    assert select_meter(factories=factories, platform="linux", busy_seconds=0.05, gpu_workload=True).name == "nvml"


def test_powermetrics_is_a_candidate_on_macos_only(tmp_path):
    selected = select_meter(factories=bare_machine(tmp_path), platform="darwin", busy_seconds=0.05)
    assert [name for name, _ in selected.rejected] == ["rapl", "perf", "nvml", "powermetrics"]
    assert "not found" in selected.rejected[-1][1]


def test_perf_psys_reading_zero_is_rejected_with_its_reason(tmp_path):
    perf = write_fake_perf(tmp_path / "perf", {"power/energy-psys/": "0.00"})
    events = write_power_events(tmp_path / "events", ["energy-psys"])
    factories = bare_machine(tmp_path, lambda: PerfMeter(str(perf), events, startup_timeout=0.05))
    selected = select_meter(factories=factories, platform="linux", busy_seconds=0.05)
    assert selected.name == "estimate"
    assert ("perf", "power/energy-psys/ reads 0 J") in selected.rejected
    assert "perf: power/energy-psys/ reads 0 J; nvml:" in selected.summary()


def test_auto_takes_the_first_meter_that_validates(tmp_path):
    perf = write_fake_perf(tmp_path / "perf", {"power/energy-pkg/": "12.34", "power/energy-psys/": "0.00"})
    events = write_power_events(tmp_path / "events", ["energy-pkg", "energy-psys"])
    factories = bare_machine(tmp_path, lambda: PerfMeter(str(perf), events, startup_timeout=0.05))
    selected = select_meter(factories=factories, platform="linux", busy_seconds=0.05)
    assert selected.name == "perf" and selected.kind == "measured"
    assert [name for name, _ in selected.rejected] == ["rapl"]
    assert selected.validation.joules == pytest.approx(12.34)
    assert selected.meter.events == ["energy-pkg"]  # psys dropped for every later run


def test_a_crashing_candidate_is_skipped_with_its_error(tmp_path):
    def broken():
        raise RuntimeError("boom")

    factories = {**bare_machine(tmp_path), "rapl": broken}
    selected = select_meter(factories=factories, platform="linux", busy_seconds=0.05)
    assert selected.rejected[0] == ("rapl", "RuntimeError: boom")


def test_named_unavailable_meter_is_a_one_line_error(tmp_path):
    with pytest.raises(MeterError) as caught:
        select_meter("rapl", factories=bare_machine(tmp_path))
    assert str(caught.value) == f"energy meter 'rapl' cannot be used here: {tmp_path / 'powercap'} missing"
    with pytest.raises(MeterError, match=r"^energy meter 'nvml' cannot be used here: nvidia-ml-py is not installed"):
        select_meter("NVML", factories=bare_machine(tmp_path))
    with pytest.raises(MeterError, match=r"^unknown energy meter 'joulemeter'; choose one of auto, rapl, perf"):
        select_meter("joulemeter")
    assert select_meter("estimate", factories=bare_machine(tmp_path)).name == "estimate"


def test_real_defaults_on_this_machine():
    """Whatever this machine has: every candidate before the chosen one is listed with a reason."""
    selected = select_meter(busy_seconds=0.05, use_cache=False)
    order = [name for name in selection.METER_NAMES if sys.platform == "darwin" or name != "powermetrics"]
    assert [name for name, _ in selected.rejected] == order[: order.index(selected.name)]
    assert all(reason for _, reason in selected.rejected)


def test_auto_choice_is_cached_per_process(tmp_path, monkeypatch):
    built = []

    def counting(watts_per_core=None):
        factories = bare_machine(tmp_path)
        return {name: (lambda name=name, f=f: built.append(name) or f()) for name, f in factories.items()}

    monkeypatch.setattr(selection, "default_factories", counting)
    first = select_meter(busy_seconds=0.05)
    assert select_meter(busy_seconds=0.05) is first
    assert built == ["rapl", "perf", "estimate"]
    selection.clear_cache()
    select_meter(busy_seconds=0.05)
    assert len(built) == 6


class StubMeter:
    name = "stub"
    kind = "measured"

    def start(self):
        return self

    def stop(self, usage=None):
        return EnergyReading(joules=6.0, source="stub", kind="measured", interval=2.0)


def test_idle_power_is_average_watts_and_zero_for_the_estimate():
    slept = []
    assert idle_power(StubMeter(), 2.0, sleep=slept.append) == pytest.approx(3.0)
    assert slept == [2.0]
    assert idle_power(EstimateMeter(), 2.0, sleep=slept.append) == 0.0
    assert slept == [2.0]  # the estimate does not even wait
