"""The OpenAI backend's overhead: the same model and prompts generated locally, through raw HTTP to
`transformers serve`, and through greencoder's OpenAI backend to that same server.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_openai_backend.py [--medium] [--prompts 6] [--repeats 3] [--new-tokens 32]

A tiny model (--medium: ~30M parameters) is built in a temporary folder and served by
`transformers serve` on loopback (one torch thread, as the local runtime here). Each round runs
every prompt three ways, interleaved so machine noise hits all alike:
- local:   greencoder's local backend (Runtime.generate) in this process;
- raw:     one bare urllib POST to /v1/completions (the server's own cost plus minimal HTTP);
- backend: greencoder's OpenAIBackend (concurrency 1) to the same server.
Prints median seconds per prompt and the ratios side by side: backend/raw is what greencoder's
client adds (JSON, stop cut, retries bookkeeping); backend/local is what serving over HTTP costs
against generating here. Greedy outputs are checked equal across the three.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the loopback server launcher

PROMPTS = [
    'def sieve(limit: int) -> list[int]:\n    """Return the primes below limit."""\n',
    'def fib(n: int) -> int:\n    """The n-th Fibonacci number."""\n',
    'def is_palindrome(text: str) -> bool:\n    """Whether text reads the same backwards."""\n',
    'def flatten(items: list) -> list:\n    """Flatten nested lists."""\n',
    'def gcd(a: int, b: int) -> int:\n    """Greatest common divisor."""\n',
    'def word_count(text: str) -> dict:\n    """Count each word."""\n',
    'def merge_sorted(a: list, b: list) -> list:\n    """Merge two sorted lists."""\n',
    'def transpose(matrix: list) -> list:\n    """Transpose a matrix."""\n',
]


def raw_completion(url: str, model: str, prompt: str, new_tokens: int) -> str:
    body = {"model": model, "prompt": prompt, "max_tokens": new_tokens, "temperature": 0}
    request = urllib.request.Request(url + "/completions", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())["choices"][0]["text"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--medium", action="store_true", help="~30M parameters instead of the tiny model")
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=32)
    args = parser.parse_args()

    from endpoint_support import transformers_serve

    from greencoder.core.backends.local import LocalBackend
    from greencoder.core.backends.openai import EndpointSettings, OpenAIBackend
    from greencoder.core.generation import GenerationOptions
    from greencoder.core.model_loading import ModelSettings
    from greencoder.core.quiet import silence_libraries
    from greencoder.core.tiny_model import TinyModelSpec, make_tiny_model

    silence_libraries()
    prompts = PROMPTS[: args.prompts]
    options = GenerationOptions(max_new_tokens=args.new_tokens)  # no stops: every way generates the same tokens
    with tempfile.TemporaryDirectory() as folder:
        spec = TinyModelSpec(hidden_size=512, intermediate_size=1376, num_layers=8, num_heads=8) if args.medium else None
        model_dir = make_tiny_model(Path(folder) / "model", spec)
        local = LocalBackend(ModelSettings(str(model_dir), None, "cpu", "auto"), threads=1)
        local.describe()  # load now, not inside the first timing
        with transformers_serve(model_dir, Path(folder) / "serve.log") as url:
            remote = OpenAIBackend(EndpointSettings(url, concurrency=1))
            model = remote.probe()
            raw_completion(url, model, prompts[0], 2)  # warm both sides
            list(local.generate(prompts[:1], GenerationOptions(max_new_tokens=2)))
            times: dict[str, list[float]] = {"local": [], "raw": [], "backend": []}
            client_cpu: list[float] = []
            mismatches = 0
            for _ in range(args.repeats):
                for prompt in prompts:
                    start = time.perf_counter()
                    [here] = list(local.generate([prompt], options))
                    times["local"].append(time.perf_counter() - start)
                    start = time.perf_counter()
                    raw = raw_completion(url, model, prompt, args.new_tokens)
                    times["raw"].append(time.perf_counter() - start)
                    start = time.perf_counter()
                    [there] = list(remote.generate([prompt], options))
                    times["backend"].append(time.perf_counter() - start)
                    client_cpu.append(there.result.cpu_seconds)
                    mismatches += not (here.result.text == raw == there.result.text)
            remote.close()
    median = {way: statistics.median(values) for way, values in times.items()}
    print(f"model: {'medium (~30M)' if args.medium else 'tiny'}; {len(prompts)} prompts x {args.repeats} rounds, "
          f"{args.new_tokens} new tokens, 1 torch thread each side; outputs differing: {mismatches}")
    print(f"{'way':<10}{'median s/prompt':>18}{'vs local':>10}{'vs raw':>9}")
    for way in ("local", "raw", "backend"):
        print(f"{way:<10}{median[way]:>18.4f}{median[way] / median['local']:>10.2f}{median[way] / median['raw']:>9.2f}")
    print(f"backend client CPU per request (JSON, stop cut, bookkeeping): median {statistics.median(client_cpu) * 1000:.2f} ms; "
          f"backend - raw: {(median['backend'] - median['raw']) * 1000:+.1f} ms per prompt")


if __name__ == "__main__":
    main()
