"""Runtime generation vs raw `model.generate`, and tokens/s at 1 vs 2 torch threads.

    .venv/bin/python benchmarks/bench_generate.py [--model DIR_OR_ID] [--adapter DIR] [--new-tokens 64]

Without --model a tiny model is built in a temporary folder (--medium: ~30M parameters, so each token
costs about what a small real model's does and fixed per-token overheads weigh less). Prints:
1. the median time of greenCoder's `Runtime.generate` and of a bare `model.generate` with the same
   greedy settings on the same prompt and model, interleaved, and their ratio (target <= 1.05);
2. tokens/s with 1 and 2 threads, with the other cores idle and with one core kept busy by another
   process (each figure from a fresh process, since BLAS/OpenMP read their thread count at start).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

PROMPT = 'def sieve(limit: int) -> list[int]:\n    """Return the primes below limit."""\n'


def medium_spec():
    """A ~30M-parameter random model's sizes: each token costs about what a small real model's does."""
    from greencoder.core.tiny_model import TinyModelSpec

    return TinyModelSpec(hidden_size=512, intermediate_size=1376, num_layers=8, num_heads=8)


def load(model: str, adapter: str | None, threads: int):
    from greencoder.core.model_loading import ModelSettings
    from greencoder.core.runtime import Runtime

    return Runtime.load(ModelSettings(model, adapter, device="cpu"), threads=threads)


def tokens_per_second(model: str, adapter: str | None, threads: int, new_tokens: int) -> float:
    from greencoder.core.generation import GenerationOptions

    runtime = load(model, adapter, threads)
    runtime.generate(PROMPT, GenerationOptions(max_new_tokens=4))
    rates = []
    for _ in range(3):
        result = runtime.generate(PROMPT, GenerationOptions(max_new_tokens=new_tokens))
        rates.append(result.new_tokens / result.wall_seconds)
    return statistics.median(rates)


def compare_with_raw(model: str, adapter: str | None, new_tokens: int, repeats: int) -> None:
    import torch

    from greencoder.core.generation import GenerationOptions, greedy_generation_config

    runtime = load(model, adapter, threads=1)
    options = GenerationOptions(max_new_tokens=new_tokens, stop_sequences=("\nif __name__", "\nprint("))
    ids = torch.tensor([runtime.encode(PROMPT)])
    config = greedy_generation_config(runtime.model, runtime.tokenizer, options)

    def ours() -> int:
        return runtime.generate(PROMPT, options).new_tokens

    def raw() -> int:
        with torch.inference_mode():
            out = runtime.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), generation_config=config)
        return out.shape[1] - ids.shape[1]

    ours(), raw()  # warm up
    times = {"runtime": [], "raw": []}
    counts = {}
    for _ in range(repeats):
        for name, call in (("runtime", ours), ("raw", raw)):
            start = time.perf_counter()
            counts[name] = call()
            times[name].append(time.perf_counter() - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"1. generate, {counts['runtime']} vs {counts['raw']} new tokens, median of {repeats}, 1 thread")
    print(f"   runtime.generate  {medians['runtime'] * 1000:8.1f} ms")
    print(f"   model.generate    {medians['raw'] * 1000:8.1f} ms")
    print(f"   ratio             {medians['runtime'] / medians['raw']:8.3f}   (target <= 1.05)")


def thread_table(model: str, adapter: str | None, new_tokens: int) -> None:
    print(f"2. tokens/s by torch threads ({os.cpu_count()} CPUs here)")
    for busy in (False, True):
        hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
        try:
            rates = {}
            for threads in (1, 2):
                env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
                cmd = [sys.executable, __file__, "--model", model, "--new-tokens", str(new_tokens), "--worker-threads", str(threads)]
                if adapter:
                    cmd += ["--adapter", adapter]
                out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
                rates[threads] = float(out.stdout.strip().splitlines()[-1])
        finally:
            if hog:
                hog.kill()
        label = "one core busy" if busy else "cores idle   "
        print(f"   {label}: 1 thread {rates[1]:7.1f} tok/s | 2 threads {rates[2]:7.1f} tok/s | 2/1 = {rates[2] / rates[1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model")
    parser.add_argument("--adapter")
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--medium", action="store_true", help="build a ~30M-parameter random model instead")
    parser.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from greencoder.core.quiet import silence_libraries

    silence_libraries()
    if args.worker_threads:
        print(tokens_per_second(args.model, args.adapter, args.worker_threads, args.new_tokens))
        return
    with tempfile.TemporaryDirectory() as scratch:
        model = args.model
        if model is None:
            from greencoder.core.tiny_model import TinyModelSpec, make_tiny_model

            spec = medium_spec() if args.medium else TinyModelSpec()
            model = str(make_tiny_model(scratch, spec))
            print(f"model: random model ({spec.num_layers} layers x {spec.hidden_size}) built in {model}")
        compare_with_raw(model, args.adapter, args.new_tokens, args.repeats)
        thread_table(model, args.adapter, args.new_tokens)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
