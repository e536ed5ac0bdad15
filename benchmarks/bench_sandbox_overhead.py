"""What the sandbox adds to starting a program: `Job.run()` vs a plain `subprocess.run` of the same argv.

    .venv/bin/python benchmarks/bench_sandbox_overhead.py [--repeats 20] [--namespaces auto] [--no-cgroup] [--breakdown]

For Python (an empty script), C++ (a prebuilt empty binary; compilation excluded) and Java (an empty
`main`, `java -cp . Main`), each job is prepared and built once; then, one language at a time and
interleaved so that drift affects both alike (alternating which goes first), the same command runs
plainly in the job folder and through the sandbox. Prints the median wall time of each, the
difference and the ratio (target <= 2x), and the isolation the sandboxed runs had.

--breakdown adds a column for the same level without a cgroup. On some kernels a cgroup run right
after a run without one is slower than after another cgroup run, so with it the sandboxed column
comes out a few ms higher than without it.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import time

from greencoder.core.languages import CPP, JAVA, PYTHON
from greencoder.core.sandbox import Sandbox, SandboxPolicy

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


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20, help="timed runs of each command (default 20)")
    parser.add_argument("--languages", default="python,cpp,java", help="comma-separated subset of python,cpp,java")
    parser.add_argument("--namespaces", default="auto", choices=["auto", "bubblewrap", "unshare", "none"])
    parser.add_argument("--no-cgroup", action="store_true", help="sandbox without a per-run cgroup")
    parser.add_argument("--breakdown", action="store_true", help="also time the same level without a cgroup")
    args = parser.parse_args()

    sandbox = Sandbox(SandboxPolicy(namespaces=args.namespaces, use_cgroup=not args.no_cgroup))
    bare = None
    if args.breakdown and sandbox.cgroups:
        bare = Sandbox(SandboxPolicy(namespaces=args.namespaces, use_cgroup=False))
    languages = available_languages(args.languages.split(","))
    print(f"isolation: {sandbox.isolation.label}")
    if sandbox.plan.rejected:
        print(f"rejected:  {'; '.join(sandbox.plan.rejected)}")

    with contextlib.ExitStack() as stack:
        setups = []
        for language in languages:
            files, entry = TRIVIAL[language.name]
            job = stack.enter_context(sandbox.prepare(language, files, entry))
            built = job.build()
            if not built.ok:
                raise SystemExit(f"{language.display_name}: build failed: {built.reason}")
            argv = sandbox.toolchains.run_command(language, job.entry, [], sandbox.run_limits).argv
            env = job.environment()

            def plain(argv=argv, job=job, env=env) -> None:
                subprocess.run(argv, cwd=job.directory, env=env, capture_output=True, check=True)

            def sandboxed(job=job) -> None:
                result = job.run()
                if not result.ok:
                    raise SystemExit(f"{job.language.display_name}: sandboxed run failed: {result.reason}")

            variants = {"plain": plain, "sandboxed": sandboxed}
            if bare is not None:
                bare_job = stack.enter_context(bare.prepare(language, files, entry))
                bare_job.build()

                def without_cgroup(job=bare_job) -> None:
                    result = job.run()
                    if not result.ok:
                        raise SystemExit(f"{job.language.display_name}: run without cgroup failed: {result.reason}")

                variants["no cgroup"] = without_cgroup
            setups.append((language, variants))

        times = {language.name: {name: [] for name in variants} for language, variants in setups}
        for language, variants in setups:  # one language at a time, as evaluation runs them
            for call in variants.values():  # warm up: page cache, our own code, the JVM's CDS archive
                call()
            for repeat in range(args.repeats):
                order = list(variants.items())
                if repeat % 2:
                    order.reverse()
                for name, call in order:
                    times[language.name][name].append(timed(call))

    with_bare = bare is not None
    print(f"\nmedian wall time of {args.repeats} interleaved runs each (ms)")
    header = f"   {'':8} {'plain':>8} {'sandboxed':>10} {'overhead':>9} {'ratio':>7}"
    print(header + (f" {'no cgroup':>10} {'ratio':>7}" if with_bare else ""))
    for language, _ in setups:
        medians = {name: statistics.median(values) * 1000 for name, values in times[language.name].items()}
        plain_ms, sandboxed_ms = medians["plain"], medians["sandboxed"]
        line = (f"   {language.display_name:8} {plain_ms:8.1f} {sandboxed_ms:10.1f} {sandboxed_ms - plain_ms:+9.1f} "
                f"{sandboxed_ms / plain_ms:6.2f}x")
        if with_bare:
            line += f" {medians['no cgroup']:10.1f} {medians['no cgroup'] / plain_ms:6.2f}x"
        print(line)
    print("   target: sandboxed / plain <= 2x")


if __name__ == "__main__":
    main()
