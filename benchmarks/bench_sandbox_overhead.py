"""What the sandbox adds to starting a program, against a plain subprocess doing the same work.

    .venv/bin/python benchmarks/bench_sandbox_overhead.py [--repeats 20] [--languages python,cpp,java]
        [--namespaces auto] [--no-cgroup] [--no-old]

Two rows per language, each compared like with like:
- `run`: the job is prepared and built once; then the same run command (an empty Python script,
  an empty C++ binary, an empty Java `main`) runs plainly in the job folder (`subprocess.run`) and
  through `Job.run()`;
- `execute`: the whole one-shot evaluation step. Plain: make a temporary folder, write the source,
  compile it with the *same* compiler command line (g++ -std=c++17 -O0, javac with the same flags),
  run it, remove the folder. Sandboxed: `Sandbox.execute()` (job folder, compile and run each in
  the sandbox, clean-up).

Columns: the plain median, the sandbox as it starts programs now (the compiled launcher/init of
native.py), and the previous start path (a Python preexec_fn and the Perl init) in the same run,
interleaved so that the machine's drift affects all alike (the order alternates). Ratios are
sandboxed / plain; the target is <= 2x. Wall time and CPU time (ours and our children's, which
includes bubblewrap, the init and the program) are both shown: on a shared, loaded machine wall
time grows with every extra process that must wait for a CPU. `--no-old` leaves out the previous path.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time

from greencoder.core.languages import CPP, JAVA, PYTHON
from greencoder.core.sandbox import Sandbox, SandboxPolicy
from greencoder.core.sandbox.isolation import without_native

TRIVIAL = {
    PYTHON.name: ({"main.py": "pass\n"}, "main.py"),
    CPP.name: ({"main.cpp": "int main() { return 0; }\n"}, "main.cpp"),
    JAVA.name: ({"Main.java": "public class Main { public static void main(String[] args) { } }\n"}, "Main"),
}
TOOLS = {PYTHON.name: ["python3"], CPP.name: ["g++"], JAVA.name: ["javac", "java"]}


def available_languages(names: list[str]):
    chosen = []
    for language in (PYTHON, CPP, JAVA):
        if language.name not in names:
            continue
        missing = [tool for tool in TOOLS[language.name] if shutil.which(tool) is None]
        if missing:
            print(f"skipping {language.display_name}: {', '.join(missing)} not installed")
        else:
            chosen.append(language)
    return chosen


def timed(call) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and every process it waited for)."""
    before = _cpu()
    start = time.perf_counter()
    call()
    return time.perf_counter() - start, _cpu() - before


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def checked(result, what: str) -> None:
    if not result.ok:
        raise SystemExit(f"{what} failed: {result.status.value}: {result.reason}")


def plain_execute(sandbox: Sandbox, language, files: dict[str, str], entry: str, env: dict[str, str]) -> None:
    """The plain counterpart of Sandbox.execute: a fresh folder, the same compile and run commands."""
    toolchains, limits = sandbox.toolchains, sandbox.run_limits
    folder = tempfile.mkdtemp(prefix="plain-")
    try:
        for name, text in files.items():
            with open(os.path.join(folder, name), "w") as handle:
                handle.write(text)
        env = {**env, "HOME": folder, "TMPDIR": folder}
        for command in toolchains.compile_commands(language, entry, list(files), sandbox.compile_limits):
            subprocess.run(command.argv, cwd=folder, env=env, capture_output=True, check=True)
        argv = toolchains.run_command(language, entry, [], limits).argv
        subprocess.run(argv, cwd=folder, env=env, capture_output=True, check=True)
    finally:
        shutil.rmtree(folder)


def variants_for(language, sandboxes: dict[str, Sandbox], stack: contextlib.ExitStack) -> dict[str, dict]:
    """{row: {column: call}} for one language."""
    files, entry = TRIVIAL[language.name]
    reference = sandboxes["now"]
    job = stack.enter_context(reference.prepare(language, files, entry))
    checked(job.build(), f"{language.display_name} build")
    argv = reference.toolchains.run_command(language, job.entry, [], reference.run_limits).argv
    env = job.environment()
    run_row = {"plain": lambda: subprocess.run(argv, cwd=job.directory, env=env, capture_output=True, check=True)}
    execute_row = {"plain": lambda: plain_execute(reference, language, files, entry, env)}
    for name, sandbox in sandboxes.items():
        own = stack.enter_context(sandbox.prepare(language, files, entry))
        checked(own.build(), f"{language.display_name} build ({name})")
        run_row[name] = lambda own=own: checked(own.run(), f"{language.display_name} run")
        execute_row[name] = lambda sandbox=sandbox: checked(
            sandbox.execute(language, files[next(iter(files))]), f"{language.display_name} execute")
    return {"run": run_row, "execute": execute_row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="timed runs of each command (default 20)")
    parser.add_argument("--languages", default="python,cpp,java", help="comma-separated subset of python,cpp,java")
    parser.add_argument("--namespaces", default="auto", choices=["auto", "bubblewrap", "unshare", "none"])
    parser.add_argument("--no-cgroup", action="store_true", help="sandbox without a per-run cgroup")
    parser.add_argument("--no-old", action="store_true", help="leave out the previous start path")
    args = parser.parse_args()

    sandbox = Sandbox(SandboxPolicy(namespaces=args.namespaces, use_cgroup=not args.no_cgroup))
    sandboxes = {"now": sandbox}
    if not args.no_old and sandbox.plan.native is not None:
        old = Sandbox(sandbox.policy)
        old.plan = without_native(sandbox.plan)
        sandboxes["before"] = old
    languages = available_languages(args.languages.split(","))
    print(f"isolation: {sandbox.isolation.label}")
    if sandbox.plan.native:
        path = "compiled launcher + init (native.py)"
    else:
        path = "Python preexec + " + ("Perl init" if sandbox.plan.perl_init else "shell init")
    print(f"start path now: {path}" + ("; before: Python preexec_fn + Perl init" if "before" in sandboxes else ""))
    if sandbox.plan.rejected:
        print(f"rejected:  {'; '.join(sandbox.plan.rejected)}")

    with contextlib.ExitStack() as stack:
        results = []
        for language in languages:  # one language at a time, as evaluation runs them
            for row, calls in variants_for(language, sandboxes, stack).items():
                for call in calls.values():  # warm up: page cache, our own code, the JVM's CDS archive
                    call()
                times = {name: [] for name in calls}
                for repeat in range(args.repeats if row == "run" else max(3, args.repeats // 4)):
                    order = list(calls.items())
                    if repeat % 2:
                        order.reverse()
                    for name, call in order:
                        times[name].append(timed(call))
                results.append((language, row, {
                    name: (statistics.median(t[0] for t in values) * 1000, statistics.median(t[1] for t in values) * 1000)
                    for name, values in times.items()}))

    columns = list(sandboxes)
    print("\nmedians of interleaved runs (ms); ratio = sandboxed / plain (target <= 2x)")
    print("  run:     the built program's run command, plain subprocess vs Job.run()")
    print("  execute: temp folder + same compile command + run + clean-up, plain vs Sandbox.execute()")
    print("  wall: elapsed time (inflated on a loaded machine, where every process start waits for a CPU);")
    print("  cpu:  CPU time of this process and all it waited for (bwrap, init, program), less load-sensitive")
    for metric, index in (("wall", 0), ("cpu", 1)):
        print(f"\n   {metric:8} {'':8} {'plain':>8}" + "".join(f" {name:>9} {'ratio':>7}" for name in columns))
        for language, row, medians in results:
            plain = medians["plain"][index]
            line = f"   {language.display_name:8} {row:8} {plain:8.1f}"
            for name in columns:
                line += f" {medians[name][index]:9.1f} {medians[name][index] / plain:6.2f}x"
            print(line)


if __name__ == "__main__":
    main()
