"""Correctness checking speed: 1 vs N workers, and the harness's per-task overhead.

    .venv/bin/python benchmarks/bench_evaluate.py [--data ../shared/data] [--tasks 12] [--workers 2] [--rounds 2]

1. Scaling: the canonical solutions of the first --tasks HumanEval-X tasks per language (C++, Java,
   Python) are checked as `greencoder evaluate` checks them (build the test program, compile and
   run it in the sandbox), once with 1 worker and once with --workers, alternating for --rounds;
   prints checks/s of each and the scaling ratio (N workers / 1; the ideal on N free cores is N).
2. Per-task overhead: for the same tasks, the compiled test run directly (a plain subprocess in a
   temporary folder, no sandbox) against the same test run by greencoder's harness (sandbox job:
   isolation, limits, cgroup, classification), both after an untimed build; and the whole check
   (write files, compile, run, classify) against a direct compile + run. Medians per language.

Sandbox start-up itself is measured in bench_sandbox_overhead.py; this one is the evaluation view.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

LANGUAGES = ("cpp", "java", "python")


def load(data: str, count: int):
    from greencoder.evaluation.benchmarks import build_program, load_tasks

    tasks = []
    for language in LANGUAGES:
        tasks += load_tasks("humaneval-x", language, data)[:count]
    return [(task, build_program(task, task.canonical)) for task in tasks]


def check_all(checker, programs, workers: int) -> tuple[float, int]:
    """(seconds, passed) for checking every program with `workers` threads."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda item: checker.run_program(item[0].language, item[1]), programs))
    return time.perf_counter() - started, sum(r.passed for r in results)


def direct_commands(sandbox, language: str, program) -> tuple[list[list[str]], list[str]]:
    """The sandbox's own compile and run commands (same tools, same flags), to run with no sandbox."""
    from greencoder.core.languages import get_language

    lang, toolchains = get_language(language), sandbox.toolchains
    compile_commands = toolchains.compile_commands(lang, program.entry, list(program.files), sandbox.compile_limits)
    run = toolchains.run_command(lang, program.entry, [], sandbox.run_limits)
    return [c.argv for c in compile_commands], run.argv


def timed(argv: list[str], cwd: str) -> float:
    started = time.perf_counter()
    # Test programs read their run's nonce from stdin before anything else (see evaluation.correctness).
    subprocess.run(argv, cwd=cwd, check=True, input=b"0123456789abcdef\n", stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def overhead(checker, programs) -> dict[str, dict[str, list[float]]]:
    from greencoder.core.languages import get_language

    figures: dict[str, dict[str, list[float]]] = {lang: {"direct_run": [], "sandbox_run": [], "direct_check": [], "sandbox_check": []}
                                                 for lang in LANGUAGES}
    for task, program in programs:
        language = task.language
        sandbox = checker.sandbox(program.cxx_flags, program.cxx_link_flags)
        with tempfile.TemporaryDirectory() as folder:
            for name, text in program.files.items():
                Path(folder, name).write_text(text)
            compile_commands, run = direct_commands(sandbox, language, program)
            compile_seconds = sum(timed(argv, folder) for argv in compile_commands)
            run_seconds = timed(run, folder)
        figures[language]["direct_run"].append(run_seconds)
        figures[language]["direct_check"].append(compile_seconds + run_seconds)
        with sandbox.prepare(get_language(language), program.files, program.entry) as job:
            job.build()
            started = time.perf_counter()
            result = job.run(stdin=program.stdin, expected_stdout=program.expected_stdout)
            figures[language]["sandbox_run"].append(time.perf_counter() - started)
            assert result.ok, (task.key, result.reason)
        started = time.perf_counter()
        checker.run_program(language, program)
        figures[language]["sandbox_check"].append(time.perf_counter() - started)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data"))
    parser.add_argument("--tasks", type=int, default=12, help="tasks per language")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("GREENCODER_THREADS", "1")

    from greencoder.evaluation.correctness import Checker

    checker = Checker()
    programs = load(args.data, args.tasks)
    print(f"{len(programs)} canonical HumanEval-X programs ({args.tasks} per language), sandbox: {checker.isolation}")
    check_all(checker, programs[:3], 1)  # warm the compilers' page cache

    print(f"\n1. checks per second, 1 vs {args.workers} workers ({args.rounds} alternating rounds)")
    rates: dict[int, list[float]] = {1: [], args.workers: []}
    for round_index in range(args.rounds):
        order = (1, args.workers) if round_index % 2 == 0 else (args.workers, 1)
        for workers in order:
            seconds, passed = check_all(checker, programs, workers)
            assert passed == len(programs), f"only {passed}/{len(programs)} canonical programs passed"
            rates[workers].append(len(programs) / seconds)
            print(f"   round {round_index + 1}, {workers} worker(s): {len(programs) / seconds:6.2f} checks/s ({seconds:.1f} s)")
    one, many = statistics.median(rates[1]), statistics.median(rates[args.workers])
    print(f"   median: 1 worker {one:.2f} checks/s, {args.workers} workers {many:.2f} checks/s; "
          f"scaling ratio {many / one:.2f} (ideal {args.workers} on {os.cpu_count()} CPUs)")

    print("\n2. per-task overhead of the sandboxed harness vs running the compiled test directly (medians, ms)")
    figures = overhead(checker, programs)
    print(f"   {'language':8} {'direct run':>11} {'sandbox run':>12} {'overhead':>9} {'ratio':>6}   "
          f"{'direct compile+run':>19} {'greencoder check':>17} {'ratio':>6}")
    for language in LANGUAGES:
        f = {k: statistics.median(v) * 1000 for k, v in figures[language].items()}
        print(f"   {language:8} {f['direct_run']:11.1f} {f['sandbox_run']:12.1f} {f['sandbox_run'] - f['direct_run']:9.1f} "
              f"{f['sandbox_run'] / f['direct_run']:6.2f}   {f['direct_check']:19.1f} {f['sandbox_check']:17.1f} "
              f"{f['sandbox_check'] / f['direct_check']:6.2f}")


if __name__ == "__main__":
    main()
