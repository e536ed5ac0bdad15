"""Evaluation generation throughput (tasks/s): one process vs several (torchrun), per batch size.

    .venv/bin/python benchmarks/bench_evaluate_throughput.py [--model DIR] [--tasks 16] [--new-tokens 64]
        [--processes 1,2] [--batch-sizes 1,8] [--cpus N] [--rounds 2]

Runs `greencoder evaluate --variant baseline` on the first --tasks HumanEval-X Python tasks, as a
user runs it (a fresh OUT each time): one process, or `torchrun --nproc_per_node P -m greencoder
evaluate`. Several processes share --cpus torch threads (default: the CPUs this process may use)
evenly; one process runs both with greencoder's default thread count (half the CPUs: the
reference row) and with all --cpus threads (--one-process-threads), so the processes are compared
with one process given the same cores as well as with the default. On a busy 2-core machine one
process with 2 threads is several times slower than with 1 (see greencoder/core/threads.py), so
`--one-process-threads default` saves minutes there. Without --model a random model of ~30M
parameters is built (bench_generate.py's --medium shape: each token costs about what a small real
model's does).

Tasks/s is the generation phase as a user waits for it: from the command's start (start-up and
model loading included) to the last generation line's `finished_at`; scoring and the report come
after it and are not counted. "steady" leaves start-up out: lines after each process's first, over
the time from the first line to the last. Configurations alternate within each round (timings on a
shared machine are noisy, so compare the ratios of one run), and ratios are against the first
configuration (one process, the first batch size).

`--batch-sizes` is used only where `greencoder evaluate --help` lists `--batch-size` (batched
generation); otherwise the column is batch size 1 alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def environment(threads: int) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "GREENCODER_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
            "HF_HUB_OFFLINE": "1"}


def supports_batch_size() -> bool:
    help_text = subprocess.run([sys.executable, "-m", "greencoder", "evaluate", "--help"], env=environment(1),
                               capture_output=True, text=True, check=True).stdout
    return "--batch-size" in help_text


def command(processes: int, batch_size: int | None, args: argparse.Namespace, out: Path) -> list[str]:
    launcher = [sys.executable, "-m", "greencoder"] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes), "-m", "greencoder"]
    evaluate = ["evaluate", "--model", args.model, "--variant", "baseline", "--benchmark", "humaneval-x",
                "--language", "python", "--data", args.data, "--out", str(out), "--limit", str(args.tasks),
                "--max-new-tokens", str(args.new_tokens), "--device", "cpu", "--no-progress"]
    return launcher + evaluate + (["--batch-size", str(batch_size)] if batch_size else [])


def run_once(processes: int, threads: int, batch_size: int | None, args: argparse.Namespace, scratch: Path
             ) -> dict[str, float]:
    out = Path(tempfile.mkdtemp(dir=scratch))
    started = time.time()
    result = subprocess.run(command(processes, batch_size, args, out / "out"), env=environment(threads),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"evaluate failed ({processes} processes, batch {batch_size}):\n{result.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "out" / "generations.jsonl").read_text().splitlines()]
    assert len(records) == args.tasks and not any("error" in r for r in records), "every task must be generated"
    finished = sorted(r["finished_at"] for r in records)
    # Steady state: the lines after each process's first; which process wrote a line is not recorded,
    # so the first `processes` lines stand for the processes' first ones.
    steady = (len(finished) - processes) / (finished[-1] - finished[processes - 1]) if len(finished) > processes else float("nan")
    return {"tasks_per_second": len(records) / (finished[-1] - started), "steady": steady,
            "tokens": sum(r["new_tokens"] for r in records)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder or id (default: build a ~30M-parameter random model)")
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data"))
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--processes", default="1,2", help="comma-separated process counts")
    parser.add_argument("--batch-sizes", default="1,8", help="comma-separated --batch-size values (where supported)")
    parser.add_argument("--cpus", type=int, default=None, help="torch threads in all, split among the processes")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--one-process-threads", default="default,all",
                        help="thread counts for one process: default (greencoder's), all (--cpus), or numbers")
    args = parser.parse_args()
    from greencoder.core.threads import available_cpus, default_thread_count

    args.cpus = args.cpus or available_cpus()
    os.environ.pop("GREENCODER_THREADS", None)
    default_threads = default_thread_count()
    processes = [int(p) for p in args.processes.split(",")]
    batch_sizes: list[int | None] = [int(b) for b in args.batch_sizes.split(",")] if supports_batch_size() else [None]
    if batch_sizes == [None]:
        print("greencoder evaluate has no --batch-size here: batch size 1 only")
    configurations = []  # (processes, threads per process, batch size)
    for batch in batch_sizes:
        for count in processes:
            shares = [default_threads if t == "default" else args.cpus if t == "all" else int(t)
                      for t in args.one_process_threads.split(",")] if count == 1 else [max(1, args.cpus // count)]
            configurations += [(count, threads, batch) for threads in dict.fromkeys(shares)]

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        if args.model is None:
            from bench_generate import medium_spec

            from greencoder.core.quiet import silence_libraries
            from greencoder.core.tiny_model import make_tiny_model

            silence_libraries()
            spec = medium_spec()
            args.model = str(make_tiny_model(scratch / "model", spec))
            print(f"model: random model ({spec.num_layers} layers x {spec.hidden_size}, ~30M parameters)")
        print(f"{args.tasks} HumanEval-X Python tasks, {args.new_tokens} new tokens at most, {args.cpus} CPUs, "
              f"{args.rounds} alternating rounds")
        results: dict[tuple, list[dict[str, float]]] = {c: [] for c in configurations}
        for round_index in range(args.rounds):
            order = configurations if round_index % 2 == 0 else configurations[::-1]
            for configuration in order:
                count, threads, batch = configuration
                figures = run_once(count, threads, batch, args, scratch)
                results[configuration].append(figures)
                print(f"   round {round_index + 1}: {count} process(es) x {threads} threads, "
                      f"batch {batch or 1}: {figures['tasks_per_second']:.3f} tasks/s (steady {figures['steady']:.3f}), "
                      f"{figures['tokens']} tokens")

    reference = statistics.median(r["tasks_per_second"] for r in results[configurations[0]])
    reference_steady = statistics.median(r["steady"] for r in results[configurations[0]])
    print(f"\n{'processes':>9} {'threads':>7} {'batch':>5} {'tasks/s':>8} {'steady':>7} {'ratio':>6} {'steady ratio':>12}")
    for configuration in configurations:
        count, threads, batch = configuration
        rate = statistics.median(r["tasks_per_second"] for r in results[configuration])
        steady = statistics.median(r["steady"] for r in results[configuration])
        print(f"{count:>9} {threads:>7} {batch or 1:>5} {rate:8.3f} {steady:7.3f} {rate / reference:6.2f} "
              f"{steady / reference_steady:12.2f}")


if __name__ == "__main__":
    main()
