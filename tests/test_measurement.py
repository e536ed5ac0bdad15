"""The measurement protocol end to end: calibration, runs, baseline, outliers, comparison, CLI."""

from __future__ import annotations

import gzip
import json
import time

import pytest

from greencoder.cli import main
from greencoder.core.errors import InputError
from greencoder.core.languages import CPP, JAVA, PYTHON
from greencoder.core.measurement.protocol import (
    MeasurementError,
    MeasurementProtocol,
    compare_measurements,
    measure,
)
from greencoder.core.meters import EnergyReading, EstimateMeter, RunUsage
from greencoder.core.sandbox import Sandbox

from conftest import SHARED_DATA

QUICK = MeasurementProtocol(runs=3, min_seconds=0.2, cooldown_seconds=0, baseline_seconds=0)


@pytest.fixture(scope="module")
def sandbox():
    return Sandbox()


def humaneval_cpp_31() -> str:
    path = SHARED_DATA / "humaneval_x" / "humaneval_cpp.jsonl.gz"
    if not path.exists():
        pytest.skip(f"{path} not available")
    with gzip.open(path, "rt") as handle:
        task = next(json.loads(line) for line in handle if json.loads(line)["task_id"] == "CPP/31")
    return task["prompt"] + task["canonical_solution"]


def figure3_pair() -> tuple[str, str]:
    """The paper's Figure 3: HumanEval-X CPP/31 as written (every divisor tried), and the same
    function skipping even numbers after checking 2."""
    inefficient = humaneval_cpp_31()
    loop = "for (long long i=2;i*i<=n;i++)"
    assert loop in inefficient
    efficient = inefficient.replace(loop, "if (n%2==0) return n==2;\n    for (long long i=3;i*i<=n;i+=2)")
    return inefficient, efficient


@pytest.mark.slow  # the default suite keeps to its 12-minute budget; CI runs it after
def test_figure3_efficient_is_prime_uses_significantly_less_energy(sandbox):
    inefficient, efficient = figure3_pair()
    protocol = MeasurementProtocol(runs=10, min_seconds=0.5, cooldown_seconds=0)
    meter = EstimateMeter()
    a = measure(sandbox, meter, CPP, inefficient, "is_prime(1000000007)", function="is_prime", name="all divisors", protocol=protocol)
    b = measure(sandbox, meter, CPP, efficient, "is_prime(1000000007)", function="is_prime", name="odd divisors", protocol=protocol)
    comparison = compare_measurements(a, b)
    assert a.energy_kind == b.energy_kind == "estimated"
    assert comparison.energy.significant and comparison.energy.p_value < 0.005
    assert comparison.energy.relative_pct < -25  # about half the divisions
    assert b.energy_per_call().mean < a.energy_per_call().mean
    assert all(run.seconds >= 0.5 for run in a.runs + b.runs)


@pytest.mark.slow
def test_figure3_with_the_papers_full_protocol(sandbox):
    inefficient, efficient = figure3_pair()
    protocol = MeasurementProtocol(runs=10, min_seconds=5.0, cooldown_seconds=1.0)
    meter = EstimateMeter()
    a = measure(sandbox, meter, CPP, inefficient, "is_prime(1000000007)", name="all", protocol=protocol)
    b = measure(sandbox, meter, CPP, efficient, "is_prime(1000000007)", name="odd", protocol=protocol)
    comparison = compare_measurements(a, b)
    assert all(run.seconds >= 5.0 for run in a.runs + b.runs)
    assert comparison.energy.significant and comparison.energy.relative_pct < -25


def test_calibration_makes_every_run_last_min_seconds(sandbox):
    source = "def work(n):\n    return sum(i * i for i in range(n))\n"
    result = measure(sandbox, EstimateMeter(), PYTHON, source, "work(1000)", function="work", protocol=QUICK)
    assert result.repeats > 10
    assert len(result.runs) == 3
    for run in result.runs:
        assert run.seconds >= 0.2
        assert run.loop_seconds <= run.seconds
        assert run.reading.kind == "estimated" and run.joules > 0
        assert run.cpu_seconds and run.joules == pytest.approx(run.cpu_seconds * 12.0, rel=1e-6)


def test_java_call_is_measured(sandbox):
    source = "public class Solution {\n  public static long f(int n) { long s = 0; for (int i = 0; i < n; i++) s += i; return s; }\n}\n"
    result = measure(sandbox, EstimateMeter(), JAVA, source, "Solution.f(10000)", function="f", protocol=QUICK)
    assert result.repeats > 1 and all(run.joules > 0 for run in result.runs)


def test_failing_call_is_a_one_line_error(sandbox):
    with pytest.raises(MeasurementError, match=r"failed while measuring .*ZeroDivisionError"):
        measure(sandbox, EstimateMeter(), PYTHON, "def f():\n    return 1 / 0\n", "f()", protocol=QUICK)


def test_compile_error_is_a_one_line_error(sandbox):
    with pytest.raises(MeasurementError, match=r"did not build: .*error"):
        measure(sandbox, EstimateMeter(), CPP, "int f() { return oops; }\n", "f()", protocol=QUICK)


def test_missing_function_is_named(sandbox):
    with pytest.raises(InputError, match="function 'is_prime' not found in primes.py"):
        measure(sandbox, EstimateMeter(), PYTHON, "def f():\n    pass\n", "f()", function="is_prime",
                name="primes.py", protocol=QUICK)


class ConstantPowerMeter:
    """A 'measured' meter reading a constant 50 W: what is left after the baseline is subtracted
    shows whether the protocol subtracts idle power × interval."""

    name, kind = "fake-50W", "measured"

    def describe(self) -> str:
        return "constant 50 W"

    def start(self):
        started = time.monotonic()

        class Session:
            def stop(self, usage: RunUsage | None = None) -> EnergyReading:
                interval = time.monotonic() - started
                return EnergyReading(50.0 * interval, "fake", "measured", {"package-0": 50.0 * interval}, interval)

        return Session()


def test_idle_baseline_is_subtracted_for_measured_meters(sandbox):
    protocol = MeasurementProtocol(runs=2, min_seconds=0.2, cooldown_seconds=0, baseline_seconds=0.2)
    result = measure(sandbox, ConstantPowerMeter(), PYTHON, "def f():\n    return 1\n", "f()", protocol=protocol)
    assert result.baseline_watts == pytest.approx(50.0, rel=0.05)
    for run in result.runs:
        assert run.reading.joules > 5  # 50 W over ≥ 0.2 s before subtraction
        assert run.joules < 0.05 * run.reading.joules  # nothing but idle power: ~0 J left


def test_cooldown_is_waited_before_each_run(sandbox):
    slept = []
    protocol = MeasurementProtocol(runs=3, min_seconds=0.05, cooldown_seconds=7.0, baseline_seconds=0)
    measure(sandbox, EstimateMeter(), PYTHON, "def f():\n    return 1\n", "f()", protocol=protocol, sleep=slept.append)
    assert slept == [7.0, 7.0, 7.0]


def test_estimate_and_measurement_are_not_compared(sandbox):
    estimated = measure(sandbox, EstimateMeter(), PYTHON, "def f():\n    return 1\n", "f()", protocol=QUICK)
    measured = measure(sandbox, ConstantPowerMeter(), PYTHON, "def f():\n    return 1\n", "f()", protocol=QUICK)
    with pytest.raises(MeasurementError, match="estimated"):
        compare_measurements(estimated, measured)


@pytest.mark.slow  # a long duplicate of default coverage: the default suite keeps its 12 minutes
def test_cli_compares_two_files_and_labels_the_estimate(tmp_path, capsys):
    slow = tmp_path / "slow.py"
    fast = tmp_path / "fast.py"
    slow.write_text("def total(n):\n    s = 0\n    for i in range(n):\n        s += i\n    return s\n")
    fast.write_text("def total(n):\n    return n * (n - 1) // 2\n")
    args = ["measure", str(slow), str(fast), "--function", "total", "--call", "total(3000)", "--runs", "8",
            "--min-seconds", "0.2", "--cooldown", "0", "--meter", "estimate"]
    assert main(args + ["--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert [m["name"] for m in report["measurements"]] == ["slow.py", "fast.py"]
    assert all(m["energy_kind"] == "estimated" for m in report["measurements"])
    assert len(report["measurements"][0]["runs"]) == 8
    energy = report["comparisons"][0]["energy"]
    assert energy["relative_pct"] < -50 and energy["significant"]
    assert "ESTIMATED" in captured.err

    assert main(args) == 0
    text = capsys.readouterr().out
    assert "energy/call (J, ESTIMATED)" in text
    assert "fast.py vs slow.py: energy" in text


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    source = tmp_path / "a.py"
    source.write_text("def f():\n    return 1\n")
    assert main(["measure", str(source), "--function", "g", "--call", "g()", "--meter", "estimate",
                 "--runs", "1", "--min-seconds", "0", "--cooldown", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "greencoder: error: function 'g' not found in a.py"
