"""Where a sandbox start's time goes, one layer at a time, for an empty program of each language.

    .venv/bin/python benchmarks/profile_sandbox_start.py [--repeats 30] [--languages cpp,python,java]

Each row adds one layer to the row above and runs the same built program (an empty C++ binary,
an empty Python script, an empty Java main) in the same job folder, interleaved with the other
rows so that the machine's drift hits all of them alike. The difference to the row above is that
layer's cost. Also printed: the costs paid once per process (building the Sandbox: probe, helper,
/etc snapshot) and once per job (the bounded job folder: tmpfs mount, chown, unmount, removal).
Wall time (median, minimum) and CPU time (ours and our children's: bubblewrap, the init, the
program), in ms; on a shared machine wall time waits for CPUs, and the CPU step is the better
estimate of a layer's cost.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import time
from dataclasses import replace

from greencoder.core.languages import CPP, JAVA, PYTHON
from greencoder.core.sandbox import Sandbox, SandboxPolicy
from greencoder.core.sandbox.isolation import plan_isolation, without_native

PROGRAMS = {
    "python": (PYTHON, {"main.py": "pass\n"}, "main.py"),
    "cpp": (CPP, {"main.cpp": "int main() { return 0; }\n"}, "main.cpp"),
    "java": (JAVA, {"Main.java": "public class Main { public static void main(String[] a) { } }\n"}, "Main"),
}


def layers(sandbox: Sandbox, bare: Sandbox, job, bare_job, language) -> dict[str, object]:
    plan, limits = sandbox.plan, sandbox.run_limits
    command = sandbox.toolchains.run_command(language, job.entry, [], limits)
    argv, address_space = command.argv, command.address_space_limit
    directory, env = job.directory, job.environment()
    exposed = sandbox.toolchains.exposed_paths(language)
    sink = os.open(os.devnull, os.O_WRONLY)  # stands for the init's status pipe

    def run(wrapped: list[str], launched: bool = True):
        def call() -> None:
            command_line = plan.launch(wrapped, limits, address_space, [], 2)[0] if launched else wrapped
            subprocess.run(command_line, cwd=directory, env=env, capture_output=True, check=True,
                           pass_fds=(sink,))
        return call

    init = [plan.native, "init", str(sink)]
    inside = ["--chdir", str(directory), "--", plan.native, "init", str(sink)]  # the host's / shows the helper
    minimal = ["bwrap", "--unshare-user", "--ro-bind", "/", "/", *inside]
    everything = ["bwrap", "--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session", "--ro-bind", "/", "/",
                  *inside]
    full = plan.wrap(argv, directory, None, exposed, job.space.scratch, sink, limits.max_disk_bytes)
    old = without_native(plan)
    return {
        "plain subprocess": run(argv, launched=False),
        "+ launcher (uid, rlimits, session)": run(argv),
        "+ init (PID-1 stand-in, no namespace)": run([*init, *argv]),
        "bwrap: user namespace, host / read-only": run([*minimal, *argv]),
        "bwrap: all namespaces, host / read-only": run([*everything, *argv]),
        "bwrap: allow-listed view = the full command": run(full),
        "Job.run without cgroup (pipes, supervise)": lambda: bare_job.run(),
        "Job.run with a cgroup (now)": lambda: job.run(),
        "Job.run, previous path (preexec + Perl)": _with_plan(sandbox, old, job),
    }


def _with_plan(sandbox: Sandbox, plan, job):
    def call() -> None:
        current = sandbox.plan
        sandbox.plan = plan
        try:
            job.run()
        finally:
            sandbox.plan = current
    return call


def timed(call) -> tuple[float, float]:
    """(wall ms, CPU ms of this process and every process it waited for)."""
    before = _cpu()
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000, (_cpu() - before) * 1000


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--languages", default="cpp,python,java")
    args = parser.parse_args()

    started = time.perf_counter()
    sandbox = Sandbox(SandboxPolicy())
    first = (time.perf_counter() - started) * 1000
    plan_isolation.cache_clear()
    started = time.perf_counter()
    Sandbox(SandboxPolicy())
    again = (time.perf_counter() - started) * 1000
    bare = Sandbox(replace(sandbox.policy, use_cgroup=False))
    bare.toolchains = replace(bare.toolchains, cap_jvm_memory=False)  # the same JVM flags as with a cgroup
    if sandbox.plan.native is None:
        raise SystemExit("no compiled helper here (no C compiler): nothing to profile layer by layer")
    print(f"isolation: {sandbox.isolation.label}")
    print(f"once per process: Sandbox() {first:.0f} ms the first time (probe, helper build or reuse, /etc "
          f"snapshot, reaping), {again:.0f} ms for a second plan (the probe run)")
    for name in args.languages.split(","):
        language, files, entry = PROGRAMS[name]
        with sandbox.prepare(language, files, entry) as job, bare.prepare(language, files, entry) as bare_job:
            if not (job.build().ok and bare_job.build().ok):
                raise SystemExit(f"{name}: build failed")
            calls = layers(sandbox, bare, job, bare_job, language)
            for call in calls.values():
                call()
            times = {key: [] for key in calls}
            for repeat in range(args.repeats):
                order = list(calls.items())
                if repeat % 2:
                    order.reverse()
                for key, call in order:
                    times[key].append(timed(call))
        jobs = [timed(lambda lang=language, f=files, e=entry: sandbox.prepare(lang, f, e).close())
                for _ in range(args.repeats)]
        print(f"\n{language.display_name + ' (ms)':44} {'wall median':>11} {'min':>6} {'cpu median':>11} {'step':>6}")
        previous = None
        for key, values in times.items():
            wall = [value[0] for value in values]
            cpu = statistics.median(value[1] for value in values)
            show_step = previous is not None and not key.startswith(("bwrap: user", "Job.run, prev"))
            step = f"{cpu - previous:+6.1f}" if show_step else ""
            print(f"  {key:44} {statistics.median(wall):9.1f} {min(wall):6.1f} {cpu:11.1f} {step:>6}")
            previous = cpu if not key.startswith("Job.run, prev") else previous
        wall = [value[0] for value in jobs]
        print(f"  {'job folder: create + remove (per job)':44} {statistics.median(wall):9.1f} {min(wall):6.1f} "
              f"{statistics.median(value[1] for value in jobs):11.1f}")


if __name__ == "__main__":
    main()
