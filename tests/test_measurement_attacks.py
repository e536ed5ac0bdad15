"""Energies a program cannot fake, and one program that cannot stop a measurement run.

The cost per call is the host's figure (its clock, the meter) over the calls it asked for; what
the program prints is only checked. These tests make programs (and, where the sandbox is not the
point, stub jobs) that print forged reports, lie about their loop, never let it grow, or rewrite
the harness between runs, and check each is refused with one line instead of believed or crashing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from greencoder.core.languages import CPP, PYTHON
from greencoder.core.measurement import protocol as protocol_module
from greencoder.core.measurement.harness import build_harness, report_line
from greencoder.core.measurement.job_guard import JobGuard
from greencoder.core.measurement.protocol import (
    MeasurementError,
    MeasurementProtocol,
    RunRecord,
    measure,
)
from greencoder.core.meters import EnergyReading, EstimateMeter
from greencoder.core.sandbox import ExecutionResult, Isolation, Sandbox, Status

QUICK = MeasurementProtocol(runs=2, min_seconds=0.2, cooldown_seconds=0, baseline_seconds=0)


@pytest.fixture(scope="module")
def sandbox():
    return Sandbox()


# ---------------------------------------------------------------------------------------------
# stub jobs: what the protocol does with what a run reports


class StubJob:
    """Runs nothing: answers each run with the stdout `answer(repeats, nonce)` builds, in `wall` seconds."""

    def __init__(self, answer, wall: float = 0.01):
        self.answer, self.wall, self.runs = answer, wall, 0
        self.sandbox = Sandbox.__new__(Sandbox)
        self.sandbox.run_limits = protocol_module.Limits()

    def run(self, args, stdin=None, limits=None):
        self.runs += 1
        nonce = stdin.decode().strip()
        return ExecutionResult(Status.OK, "ok", "run", Isolation(), exit_code=0,
                               stdout=self.answer(int(args[0]), nonce), wall_seconds=self.wall)


class NoGuard(JobGuard):
    def check(self) -> None:
        pass


NO_GUARD = NoGuard(Path("."), "stub", {})


def test_a_loop_time_that_never_grows_gives_up_in_bounded_steps():
    job = StubJob(lambda repeats, nonce: report_line(nonce, repeats, 0) + "\n")
    protocol = MeasurementProtocol(runs=1, min_seconds=5, cooldown_seconds=0, baseline_seconds=0)
    with pytest.raises(MeasurementError, match="calibration gave up after 12 steps"):
        protocol_module._calibrate(job, NO_GUARD, protocol, "stub", lambda *a: None)
    assert job.runs <= protocol.max_calibration_steps


def test_a_loop_longer_than_the_host_saw_is_refused():
    job = StubJob(lambda repeats, nonce: report_line(nonce, repeats, 50 * 10**9) + "\n", wall=0.5)
    with pytest.raises(MeasurementError, match="reports a 50 s loop in a run the host saw last 0.5 s"):
        protocol_module._run(job, NO_GUARD, 3, 1.0, QUICK, "stub")


def test_a_400_digit_loop_time_is_refused_not_an_overflow():
    job = StubJob(lambda repeats, nonce: f'GREENCODER_HARNESS {{"nonce": "{nonce}", "repeats": {repeats}, '
                                         f'"loop_ns": {"9" * 400}}}\n')
    with pytest.raises(MeasurementError, match="malformed harness report"):
        protocol_module._calibrate(job, NO_GUARD, QUICK, "stub", lambda *a: None)


def test_scaling_is_capped():
    assert protocol_module._scale(10, 5.0, 1e-300, QUICK) == 10**7  # at most a million-fold per step
    assert protocol_module._scale(10**14, 5.0, 1e-9, QUICK) == QUICK.max_repeats
    assert protocol_module._scale(10, 5.0, float("inf"), QUICK) == 1000
    assert protocol_module._scale(QUICK.max_repeats, 5.0, 0.0, QUICK) == QUICK.max_repeats


def test_cost_per_call_is_the_hosts_figure_not_the_programs():
    reading = EnergyReading(10.0, "estimate", "estimated", {}, 2.0)
    record = RunRecord(repeats=100, joules=10.0, seconds=2.0, loop_seconds=0.000001, cpu_seconds=2.0, reading=reading)
    assert record.seconds_per_call == pytest.approx(0.02) and record.joules_per_call == pytest.approx(0.1)


# ---------------------------------------------------------------------------------------------
# real programs in the sandbox


def test_a_fake_report_printed_at_import_is_refused(sandbox):
    source = ("import os\nprint('GREENCODER_HARNESS {\"nonce\": \"guess\", \"repeats\": 1, \"loop_ns\": 1}', flush=True)\n"
              "os._exit(0)\ndef f():\n    return 1\n")
    with pytest.raises(MeasurementError, match="nonce"):
        measure(sandbox, EstimateMeter(), PYTHON, source, "f()", protocol=QUICK)


def test_the_harness_is_read_only_to_the_program(sandbox):
    source = ("import os\nhere = os.path.dirname(os.path.abspath(__file__))\n"
              "with open(os.path.join(here, 'greencoder_harness.py'), 'a') as handle:\n"
              "    handle.write('\\n# rewritten\\n')\n"
              "def f():\n    return 1\n")
    with pytest.raises(MeasurementError, match="PermissionError.*greencoder_harness.py"):
        measure(sandbox, EstimateMeter(), PYTHON, source, "f()", protocol=QUICK)


def test_a_program_that_replaces_the_harness_between_runs_is_refused(sandbox):
    source = ("import os\nhere = os.path.dirname(os.path.abspath(__file__))\n"
              "path = os.path.join(here, 'greencoder_harness.py')\n"
              "text = open(path).read()\nos.unlink(path)\n"
              "with open(path, 'w') as handle:\n    handle.write(text + '\\n# replaced\\n')\n"
              "def f():\n    return 1\n")
    with pytest.raises(MeasurementError, match="changed greencoder's built file 'greencoder_harness.py'"):
        measure(sandbox, EstimateMeter(), PYTHON, source, "f()", protocol=QUICK)


def test_a_program_that_plants_a_module_is_refused(sandbox):
    source = ("import os\nhere = os.path.dirname(os.path.abspath(__file__))\n"
              "open(os.path.join(here, 'sitecustomize.py'), 'w').write('')\n"
              "def f():\n    return 1\n")
    with pytest.raises(MeasurementError, match="planted 'sitecustomize.py'"):
        measure(sandbox, EstimateMeter(), PYTHON, source, "f()", protocol=QUICK)


def test_an_honest_program_that_writes_a_data_file_is_measured(sandbox):
    source = "def f():\n    with open('scratch.txt', 'w') as handle:\n        handle.write('x')\n"
    assert len(measure(sandbox, EstimateMeter(), PYTHON, source, "f()", protocol=QUICK).runs) == 2


# ---------------------------------------------------------------------------------------------
# evaluate --measure: a correct solution plus harness-rewiring lines still does all the work


@pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
def test_a_humaneval_solution_cannot_rewire_the_workload(tmp_path):
    from greencoder.evaluation.benchmarks import build_workload, load_tasks

    if not (SHARED_DATA / "humaneval_x").is_dir():
        pytest.skip("HumanEval-X data missing")
    task = load_tasks("humaneval-x", "cpp", SHARED_DATA)[0]
    body = task.canonical[len(task.signature):]
    solution = (task.signature + '    puts("call");\n' + body
                + "\n#define for(...) if (false)\n#define greencoder_test_main() 0\n")
    workload = build_workload(task, solution)
    program = build_harness(CPP, workload.source, workload.call, driver=workload.driver,
                            declarations=workload.declarations)
    for name, text in program.files.items():
        (tmp_path / name).write_text(text)
    built = subprocess.run(["g++", *workload.cxx_flags, "-o", "prog", program.entry, *workload.cxx_link_flags], check=False,
                           cwd=tmp_path, capture_output=True, text=True)
    assert built.returncode == 0, built.stderr

    def calls(repeats: int) -> int:
        out = subprocess.run(["./prog", str(repeats)], cwd=tmp_path, input="n\n", capture_output=True, text=True, check=True,
                             timeout=60).stdout
        return out.splitlines().count("call")

    once = calls(1)
    assert once > 0 and calls(3) == 3 * once
