"""macOS powermetrics: the parser on recorded-format fixtures, the process wrapper with a fake binary."""

from __future__ import annotations

from pathlib import Path

import pytest

from greencoder.core.meters import powermetrics
from greencoder.core.meters.base import MeterError, MeterUnavailable
from greencoder.core.meters.powermetrics import (
    PowermetricsMeter,
    integrate,
    parse_powermetrics,
    powermetrics_argv,
)

DATA = Path(__file__).parent / "data" / "meters"
APPLE = DATA / "powermetrics_apple_silicon.txt"
INTEL = DATA / "powermetrics_intel.txt"

# By hand from the Apple fixture: (elapsed ms, CPU mW) = (10.23, 523), (10.41, 1480), (9.87, 2954);
# the fourth block was cut off before its power lines and does not count.
APPLE_CPU_JOULES = 0.01023 * 0.523 + 0.01041 * 1.480 + 0.00987 * 2.954  # = 0.04991307 J
APPLE_GPU_JOULES = 0.01023 * 0.012 + 0.01041 * 0.009 + 0.00987 * 0.031
# Intel fixture: (10.12 ms, 12.39 W), (10.05 ms, 18.70 W).
INTEL_JOULES = 0.01012 * 12.39 + 0.01005 * 18.70  # = 0.3133218 J


def test_parse_apple_silicon_fixture():
    samples = parse_powermetrics(APPLE.read_text())
    assert [sample.elapsed for sample in samples] == pytest.approx([0.01023, 0.01041, 0.00987])
    assert samples[0].watts == pytest.approx({"cpu": 0.523, "gpu": 0.012, "ane": 0.0, "combined": 0.535})
    assert samples[0].when == "Sat Nov  8 15:54:21 2025 +0900"
    joules, domains, total = integrate(samples)
    assert total == "cpu"
    assert joules == pytest.approx(0.04991307, abs=1e-9)
    assert joules == pytest.approx(APPLE_CPU_JOULES)
    assert domains["gpu"] == pytest.approx(APPLE_GPU_JOULES)
    assert domains["combined"] == pytest.approx(0.01023 * 0.535 + 0.01041 * 1.489 + 0.00987 * 2.985)


def test_parse_intel_fixture():
    samples = parse_powermetrics(INTEL.read_text())
    assert [sample.watts for sample in samples] == [{"package": 12.39}, {"package": 18.70}]
    joules, domains, total = integrate(samples)
    assert total == "package"
    assert joules == pytest.approx(0.3133218, abs=1e-9)
    assert domains == pytest.approx({"package": INTEL_JOULES})


def test_repeated_lines_and_watt_units():
    text = (
        "*** Sampled system activity (Mon Sep  4 10:00:00 2023 +0200) (500.00ms elapsed) ***\n"
        "CPU Power: 1.5 W\nGPU Power: 28 mW\n\n**** GPU usage ****\n\nGPU Power: 99 mW\n"
        "*** Sampled system activity (Mon Sep  4 10:00:01 2023 +0200) (250.00ms elapsed) ***\n"
        "CPU Power: 2000 mW\n"
    )
    samples = parse_powermetrics(text)
    assert samples[0].watts == {"cpu": 1.5, "gpu": 0.028}  # the first GPU Power of the block
    assert integrate(samples)[0] == pytest.approx(0.5 * 1.5 + 0.25 * 2.0)


def test_argv_uses_sudo_when_not_root(monkeypatch):
    base = ["powermetrics", "--samplers", "cpu_power", "-i", "10"]
    assert powermetrics_argv(use_sudo=False) == base
    assert powermetrics_argv(use_sudo=True) == ["sudo", "-n", *base]
    monkeypatch.setattr(powermetrics.os, "geteuid", lambda: 501)
    assert powermetrics_argv()[:2] == ["sudo", "-n"]
    monkeypatch.setattr(powermetrics.os, "geteuid", lambda: 0)
    assert powermetrics_argv() == base


def fake_binary(tmp_path: Path, body: str, name: str = "powermetrics") -> Path:
    script = tmp_path / name
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return script


def fake_powermetrics(tmp_path: Path, fixture: Path) -> Path:
    """Prints the fixture as powermetrics prints samples, then runs until SIGINT, like the tool."""
    return fake_binary(tmp_path, f"trap 'exit 0' INT TERM\ncat '{fixture}'\nwhile :; do sleep 0.01; done\n")


def test_process_wrapper_integrates_the_tool_output(tmp_path):
    meter = PowermetricsMeter(argv=[str(fake_powermetrics(tmp_path, APPLE)), "--samplers", "cpu_power", "-i", "10"])
    reading = meter.start().stop()
    assert reading.joules == pytest.approx(APPLE_CPU_JOULES)
    assert (reading.source, reading.kind) == ("powermetrics", "measured")
    assert reading.domains["gpu"] == pytest.approx(APPLE_GPU_JOULES)
    assert reading.note == "total = cpu; 3 samples covering 0.031 s"
    assert meter.validate(busy_seconds=0.05).joules == pytest.approx(APPLE_CPU_JOULES)


def test_sudo_without_rights_fails_at_start(tmp_path):
    sudo = fake_binary(tmp_path, "echo 'sudo: a password is required' >&2\nexit 1\n", name="sudo")
    meter = PowermetricsMeter(argv=[str(sudo), "-n", "powermetrics", "--samplers", "cpu_power", "-i", "10"])
    with pytest.raises(MeterUnavailable, match=r"exited at start: sudo: a password is required \(powermetrics needs root"):
        meter.validate(busy_seconds=0.05)


def test_missing_binary_and_no_samples(tmp_path):
    with pytest.raises(MeterUnavailable, match=r"not found \(powermetrics ships with macOS only\)"):
        PowermetricsMeter(str(tmp_path / "powermetrics"), use_sudo=False).validate(busy_seconds=0.05)
    header_only = fake_binary(tmp_path, "trap 'exit 0' INT\necho 'Machine model: Mac16,6'\nwhile :; do sleep 0.01; done\n")
    with pytest.raises(MeterError, match=r"powermetrics produced no power sample"):
        PowermetricsMeter(argv=[str(header_only)]).start().stop()
