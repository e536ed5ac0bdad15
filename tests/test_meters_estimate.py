"""The CPU-time estimate: joules = CPU seconds × watts per core, always labelled as an estimate."""

from __future__ import annotations

import pytest

from greencoder.core.errors import GreencoderError
from greencoder.core.meters.base import MeterError, RunUsage
from greencoder.core.meters.estimate import (
    DEFAULT_WATTS_PER_CORE,
    WATTS_PER_CORE_ENV,
    EstimateMeter,
)


@pytest.fixture(autouse=True)
def no_env_override(monkeypatch):
    monkeypatch.delenv(WATTS_PER_CORE_ENV, raising=False)


def test_joules_are_cpu_seconds_times_watts_per_core():
    reading = EstimateMeter(watts_per_core=10.0).start().stop(RunUsage(cpu_seconds=3.21, wall_seconds=5.0, cpu_source="cgroup"))
    assert reading.joules == pytest.approx(32.1)
    assert (reading.source, reading.kind) == ("estimate", "estimated")
    assert reading.interval == 5.0
    assert reading.note == "estimate: 3.21 CPU-s (cgroup) × 10 W/core (given)"


def test_default_is_green_algorithms_12_watts_and_the_note_says_so():
    assert DEFAULT_WATTS_PER_CORE == 12.0
    meter = EstimateMeter()
    reading = meter.start().stop(RunUsage(cpu_seconds=2.5, cpu_source="rusage"))
    assert reading.joules == pytest.approx(30.0)
    assert reading.note.startswith("estimate: 2.50 CPU-s (rusage) × 12 W/core (default: Green Algorithms")
    assert "Lannelongue et al. 2021" in reading.note and "TDP_cpu.csv" in reading.note
    assert meter.validate() is None


def test_missing_cpu_seconds_is_an_error_not_a_guess_from_wall_time():
    session = EstimateMeter().start()
    with pytest.raises(MeterError, match=r"needs the run's CPU seconds .* will not guess from wall time"):
        session.stop(RunUsage(wall_seconds=3.0))
    with pytest.raises(GreencoderError):
        session.stop(None)


def test_environment_overrides_the_default_and_the_argument_overrides_both(monkeypatch):
    monkeypatch.setenv(WATTS_PER_CORE_ENV, "7.5")
    reading = EstimateMeter().start().stop(RunUsage(cpu_seconds=2.0))
    assert reading.joules == pytest.approx(15.0)
    assert reading.note == f"estimate: 2.00 CPU-s × 7.5 W/core (from {WATTS_PER_CORE_ENV})"
    assert EstimateMeter(watts_per_core=4.0).watts_per_core == 4.0


@pytest.mark.parametrize("value", ["lots", "-3", "0", "nan", "inf"])
def test_bad_environment_value_is_one_line_error(monkeypatch, value):
    monkeypatch.setenv(WATTS_PER_CORE_ENV, value)
    with pytest.raises(MeterError, match=rf"^{WATTS_PER_CORE_ENV} must be a .*number of watts per core, got '{value}'$"):
        EstimateMeter()
