"""The benchmarks `greencoder evaluate` knows, each a module with the same three functions:

    load_tasks(data_dir: Path, language: str) -> list[Task]
    build_program(task: Task, solution: str) -> Program     # compile + run: exit 0 means correct
    build_workload(task: Task, solution: str) -> Workload   # the test as a repeatable call, for energy
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from greencoder.core.errors import InputError
from greencoder.evaluation.tasks import BENCHMARKS, LANGUAGES, Program, Task, Workload

_MODULES = {"humaneval-x": "humaneval_x", "leetcode-hard": "leetcode_hard"}


def benchmark_module(benchmark: str) -> ModuleType:
    if benchmark not in _MODULES:
        raise InputError(f"unknown benchmark {benchmark!r}: choose {', '.join(BENCHMARKS)}")
    return importlib.import_module(f"greencoder.evaluation.benchmarks.{_MODULES[benchmark]}")


def load_tasks(benchmark: str, language: str, data_dir: str | Path) -> list[Task]:
    """The benchmark's tasks in `language`, read from `data_dir` (the folder holding the benchmark's files)."""
    if language not in LANGUAGES:
        raise InputError(f"unknown language {language!r} for {benchmark}: choose {', '.join(LANGUAGES)}")
    return benchmark_module(benchmark).load_tasks(Path(data_dir), language)


def build_program(task: Task, solution: str) -> Program:
    return benchmark_module(task.benchmark).build_program(task, solution)


def build_workload(task: Task, solution: str) -> Workload:
    return benchmark_module(task.benchmark).build_workload(task, solution)
