"""The checks of benchmarks/gpu_check.sh, one per call, each printing exactly one line.

    python benchmarks/gpu_check.py prepare|generate|prefix-reuse|tune|batch|nvml --work DIR [--cpu] [--small] [--data DIR]
    python benchmarks/gpu_check.py wheel-list            # pinned requirements for the offline wheel folder
    python benchmarks/gpu_check.py install-wheels DIR TARGET

A line reads `PASS|WARN|FAIL|SKIP <check>: <what was seen>`; any exception becomes FAIL with its
first line, so gpu_check.sh can run the next check. `prepare` writes the model folder the others
load: a random model of the default model's real shape (Qwen2.5-Coder-0.5B: 24 layers, hidden 896,
14 heads, 2 KV heads, intermediate 4864, vocabulary 151936, tied embeddings; ~494M parameters) in
bfloat16, with greencoder's tiny byte-level BPE tokenizer (4096 tokens: ids it does not know decode
to nothing, which is fine for throughput). `--small` makes a 2-layer model of the same family
instead, and `--cpu` runs everything on the CPU: the smoke mode that tests the plumbing here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

REAL_SHAPE = {"hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
              "intermediate_size": 4864, "vocab_size": 151936}
SMALL_SHAPE = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
               "intermediate_size": 128, "vocab_size": None}  # None: the tokenizer's 4096
TORCH_STACK = ("torch", "transformers", "peft", "accelerate")
"""What the GPU machine's Python already has (with everything they require)."""
EXTRA_REQUIREMENTS = ("nvidia-ml-py",)
CODE_PROMPT = '''def merge_intervals(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge overlapping closed intervals and return them sorted by start."""
    intervals = sorted(intervals)
    merged: list[tuple[int, int]] = []
    for start, end in intervals:
'''


class CheckFailed(Exception):
    """A check ran but what it saw is wrong; the message is the line's reason."""


def settings(args, dtype: str = "bfloat16"):
    from greencoder.core.model_loading import ModelSettings

    return ModelSettings(str(Path(args.work) / "model"), device="cpu" if args.cpu else "cuda", dtype=dtype)


def load_runtime(args, dtype: str = "bfloat16", reuse: bool = True):
    from greencoder.core.runtime import Runtime

    model_dir = Path(args.work) / "model"
    if not (model_dir / "config.json").is_file():
        raise CheckFailed(f"no model in {model_dir}: the prepare check failed or did not run")
    return Runtime.load(settings(args, dtype), threads=args.threads, reuse=reuse)


def synchronize(args) -> None:
    if not args.cpu:
        import torch

        torch.cuda.synchronize()


# --- checks -------------------------------------------------------------------------------------


def check_prepare(args) -> str:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from greencoder.core.tiny_model import TinyModelSpec, build_tokenizer

    if not args.cpu and not torch.cuda.is_available():
        raise CheckFailed("torch sees no CUDA GPU (use --cpu for the smoke mode)")
    started = time.perf_counter()
    out = Path(args.work) / "model"
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(TinyModelSpec(corpus_bytes=300_000 if args.small else 3_000_000))
    shape = dict(SMALL_SHAPE if args.small else REAL_SHAPE)
    shape["vocab_size"] = shape["vocab_size"] or len(tokenizer)
    config = Qwen2Config(**shape, max_position_embeddings=32768, rope_theta=1_000_000.0, rms_norm_eps=1e-6,
                         tie_word_embeddings=True, use_sliding_window=False, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    with torch.device("cpu" if args.cpu else "cuda"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    parameters = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return (f"PASS prepare: random Qwen2 {shape['num_hidden_layers']} layers x {shape['hidden_size']}, "
            f"{shape['num_attention_heads']}/{shape['num_key_value_heads']} heads, vocab {shape['vocab_size']}: "
            f"{parameters / 1e6:.1f}M parameters, bf16, written in {time.perf_counter() - started:.1f} s")


def check_generate(args) -> str:
    from greencoder.core.generation import GenerationOptions

    started = time.perf_counter()
    runtime = load_runtime(args)
    loaded = time.perf_counter() - started
    info = runtime.info()
    want_device = "cpu" if args.cpu else "cuda"
    if info.dtype != "bfloat16" or not info.device.startswith(want_device):
        raise CheckFailed(f"loaded as {info.dtype} on {info.device}, asked for bfloat16 on {want_device}")
    new_tokens = 16 if args.small else 128
    runtime.generate(CODE_PROMPT, GenerationOptions(max_new_tokens=4))  # warm-up: kernels, allocator
    rates = []
    for _ in range(3):
        synchronize(args)
        result = runtime.generate(CODE_PROMPT, GenerationOptions(max_new_tokens=new_tokens))
        synchronize(args)
        rates.append(result.new_tokens / result.wall_seconds)
    if result.new_tokens != new_tokens:
        raise CheckFailed(f"asked for {new_tokens} tokens, got {result.new_tokens} ({result.stop_reason})")
    return (f"PASS generate: imported and loaded in bf16 on {info.device} in {loaded:.1f} s; {new_tokens} greedy tokens at "
            f"{statistics.median(rates):.1f} tokens/s (batch 1, median of 3, prompt {result.prompt_tokens} tokens)")


def _edits() -> list[str]:
    """An editing session on one document: each request extends or changes the end of the last."""
    base = CODE_PROMPT * 3
    return [base, base + "        if merged and", base + "        if merged and start <= merged[-1][1]:\n",
            base[:-40] + "    for s, e in intervals:\n", base[:-40] + "    for s, e in intervals:\n        if"]


def cache_error(runtime, prompt: str) -> float:
    """Largest difference between the last position's logits computed through greencoder's cached
    decoding path (the prompt, then its last tokens one at a time on the cache) and in one plain
    forward pass: ~0 when the cache is used, large when this transformers ignores how greencoder
    passes it (outputs of a random model can hide that)."""
    import torch

    from greencoder.core.decoding import _forward, new_cache

    ids = runtime.encode(prompt)
    model = runtime.base_model
    with torch.inference_mode():
        cache = new_cache(model)
        _forward(model, cache, 0, 1, ids=ids[:-4])
        for offset in range(len(ids) - 4, len(ids)):
            cached = _forward(model, cache, offset, 1, ids=ids[offset : offset + 1])
        plain = model(input_ids=torch.tensor([ids], device=model.device)).logits[0, -1].float()
    return float((cached[-1] - plain).abs().max())


def _reuse_agreement(args, dtype: str) -> tuple[int, int, int, float]:
    """(identical requests, requests, prompt tokens reused, cache_error) for reuse on vs off at `dtype`."""
    from greencoder.core.generation import GenerationOptions
    from greencoder.core.runtime import Runtime

    on = load_runtime(args, dtype, reuse=True)
    off = Runtime(on.loaded, on.threads, reuse=False)
    options = GenerationOptions(max_new_tokens=8 if args.small else 16)
    same = reused = 0
    prompts = _edits()
    for prompt in prompts:
        with_reuse = on.generate(prompt, options, cache_key="doc")
        without = off.generate(prompt, options)
        same += with_reuse.token_ids == without.token_ids
        reused += with_reuse.reused_tokens
    return same, len(prompts), reused, cache_error(on, prompts[0])


def check_prefix_reuse(args) -> str:
    bf16_same, count, reused, _ = _reuse_agreement(args, "bfloat16")
    fp32_same, _, _, fp32_error = _reuse_agreement(args, "float32")
    if fp32_error > 1e-3:
        raise CheckFailed(f"in fp32, logits through the cache differ from a plain forward pass by {fp32_error:.3g} "
                          "(does this transformers take the cache as `cache=`?)")
    if reused == 0:
        raise CheckFailed("the prefix cache was never used (0 prompt tokens reused)")
    where = "CPU" if args.cpu else "GPU"
    detail = (f"reuse on vs off on {where}: {bf16_same}/{count} requests token-identical in bf16, "
              f"{fp32_same}/{count} in fp32 ({reused} prompt tokens reused in bf16; fp32 logits via the cache vs a plain "
              f"forward: max difference {fp32_error:.1g})")
    if fp32_same < count:
        return f"FAIL prefix-reuse: {detail}"
    if bf16_same < count:
        return f"WARN prefix-reuse: {detail}; bf16 differences come from other kernel shapes (prefill chunk sizes)"
    return f"PASS prefix-reuse: {detail}"


def _pair_files(args) -> list[Path]:
    pairs = Path(args.data) / "pairs"
    files = [pairs / "python_pairs.jsonl.gz", pairs / "cpp_pairs.jsonl.gz"]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise CheckFailed(f"no pair file {missing[0]} (pass --data with the shared data folder)")
    if not args.small:
        return files
    import gzip

    subset = Path(args.work) / "pairs-subset.jsonl"  # smoke mode: the first problems of each file
    with subset.open("w", encoding="utf-8") as out:
        for path in files:
            with gzip.open(path, "rt", encoding="utf-8") as lines:
                for number, line in enumerate(lines):
                    if number >= 24:
                        break
                    out.write(line)
    return [subset]


def check_tune(args) -> str:
    files = _pair_files(args)
    out = Path(args.work) / "tune-run"
    command = [sys.executable, "-m", "greencoder", "tune", "--model", str(Path(args.work) / "model"),
               "--pairs", str(files[0]), *[str(f) for f in files[1:]], "--train-set", "both", "--epochs", "1",
               "--out", str(out), "--overwrite", "--no-progress", "--device", "cpu" if args.cpu else "cuda",
               "--threads", str(args.threads), "--max-length", "64" if args.small else "512"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
        raise CheckFailed(f"greencoder tune exited {done.returncode}: {lines[-1] if lines else 'no output'}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    epoch = next((r for r in records if r.get("epoch") == 1), None)
    if epoch is None:
        raise CheckFailed(f"no epoch 1 in {out / 'metrics.jsonl'}")
    return (f"PASS tune: one epoch of {epoch['examples']} pair entries ({epoch['steps']} steps) at "
            f"{epoch['examples_per_second']:.1f} examples/s (train loss {epoch['train_loss']:.4f}, "
            f"separation {epoch['separation'] if epoch['separation'] is None else round(epoch['separation'], 4)}); "
            f"whole command {seconds:.0f} s")


def _batch_prompts(args, count: int) -> tuple[list[str], str]:
    humaneval = Path(args.data) / "humaneval_x" / "humaneval_python.jsonl.gz"
    if humaneval.is_file():
        from greencoder.evaluation.benchmarks import load_tasks

        tasks = []
        for language in ("cpp", "java", "python"):
            tasks += load_tasks("humaneval-x", language, args.data)[: (count + 2) // 3]
        return [t.prompt() for t in tasks[:count]], "HumanEval-X"
    return [CODE_PROMPT * (1 + i % 4) for i in range(count)], "synthetic (no HumanEval-X under --data)"


def check_batch(args) -> str:
    from greencoder.core.batched_generation import plan_batches
    from greencoder.core.generation import GenerationOptions

    runtime = load_runtime(args)
    batch_size = 8
    prompts, source = _batch_prompts(args, 8)
    ids = [runtime.encode(p) for p in prompts]
    options = GenerationOptions(max_new_tokens=8 if args.small else 64)
    runtime.generate_batch(ids[:2], GenerationOptions(max_new_tokens=2))  # warm-up
    synchronize(args)
    started = time.perf_counter()
    sequential = [runtime.generate(i, options) for i in ids]
    synchronize(args)
    seq_seconds = time.perf_counter() - started
    batched = [None] * len(ids)
    started = time.perf_counter()
    for batch in plan_batches([len(i) for i in ids], batch_size):
        for index, result in zip(batch, runtime.generate_batch([ids[i] for i in batch], options), strict=True):
            batched[index] = result
    synchronize(args)
    bat_seconds = time.perf_counter() - started
    same = sum(s.token_ids == b.token_ids for s, b in zip(sequential, batched, strict=True))
    ratio = seq_seconds / bat_seconds
    verdict = "PASS" if ratio > 1 else "WARN"
    return (f"{verdict} batch: {len(ids)} {source} prompts x {options.max_new_tokens} new tokens, bf16: sequential "
            f"{len(ids) / seq_seconds:.2f} prompts/s, batch {batch_size} {len(ids) / bat_seconds:.2f} prompts/s "
            f"({ratio:.2f}x); {same}/{len(ids)} rows token-identical to sequential (bf16 may differ: padding changes "
            f"kernel shapes)")


def check_nvml(args) -> str:
    import torch

    from greencoder.core.meters.base import MeterUnavailable
    from greencoder.core.meters.nvml import NvmlMeter

    if args.cpu:
        try:
            NvmlMeter().start()
        except MeterUnavailable as exc:
            return f"SKIP nvml: --cpu, and NVML is not usable here ({exc})"
        return "SKIP nvml: --cpu (NVML answered, but the workload is a GPU one)"
    meter = NvmlMeter()
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    session = meter.start()
    started, products = time.perf_counter(), 0
    while time.perf_counter() - started < 5.0:
        for _ in range(20):
            a @ b
        torch.cuda.synchronize()
        products += 20
    seconds = time.perf_counter() - started
    reading = session.stop()
    tflops = products * 2 * 8192**3 / seconds / 1e12
    if reading.joules <= 0:
        raise CheckFailed(f"NVML read {reading.joules} J over {seconds:.1f} s of GPU work")
    return (f"PASS nvml: {reading.joules:.0f} J over {seconds:.1f} s of bf16 8192^3 matrix products "
            f"({tflops:.0f} TFLOP/s), {reading.joules / seconds:.0f} W average; {meter.describe()}")


CHECKS = {"prepare": check_prepare, "generate": check_generate, "prefix-reuse": check_prefix_reuse,
          "tune": check_tune, "batch": check_batch, "nvml": check_nvml}


# --- the offline wheel folder -----------------------------------------------------------------


def _name(requirement: str) -> str:
    import re

    return re.split(r"[\s\[<>=!~;(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _closure(roots, skip: set[str]) -> dict[str, str]:
    """Installed distributions reachable from `roots` through their (non-extra) requirements,
    stopping at names in `skip`: {name: installed version}."""
    from importlib import metadata

    from packaging.requirements import Requirement

    found: dict[str, str] = {}
    todo = list(roots)
    while todo:
        name = _name(todo.pop())
        if name in found or name in skip:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[name] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return found


def wheel_list() -> list[str]:
    """greencoder's requirements (and nvidia-ml-py) as installed here, pinned, minus what the torch
    stack (torch, transformers, peft, accelerate) brings: what a GPU machine with that stack lacks."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    stack = set(_closure(TORCH_STACK, set()))
    needed = _closure([*project["dependencies"], *EXTRA_REQUIREMENTS], stack)
    pinned = [f"{name}=={version}" for name, version in sorted(needed.items())]
    return pinned + [name for name in EXTRA_REQUIREMENTS if name not in needed]  # not installed here: newest


def install_wheels(folder: str, target: str) -> str:
    """Install (no index, no dependency resolution) the wheels in `folder` whose distributions this
    Python does not have yet, into `target` (to put on PYTHONPATH)."""
    from importlib import metadata

    wheels = sorted(Path(folder).glob("*.whl"))
    if not wheels:
        raise CheckFailed(f"no wheels in {folder}")
    missing, present = [], []
    for wheel in wheels:
        name = wheel.name.split("-")[0].lower().replace("_", "-")
        try:
            metadata.version(name)
            present.append(name)
        except metadata.PackageNotFoundError:
            missing.append(wheel)
    if missing:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", target, *map(str, missing)], check=True)
    return f"PASS wheels: installed {len(missing)} into {target}, {len(present)} already present"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("check", choices=[*CHECKS, "wheel-list", "install-wheels"])
    parser.add_argument("paths", nargs="*", help="install-wheels: FOLDER TARGET")
    parser.add_argument("--work", default="/tmp/greencoder-gpu-check")
    parser.add_argument("--data", default=str(REPO_ROOT.parent / "shared" / "data"))
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (smoke mode)")
    parser.add_argument("--small", action="store_true", help="a 2-layer model and short runs (smoke mode)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("GREENCODER_THREADS", "1")))
    args = parser.parse_args()
    if args.check == "wheel-list":
        print("\n".join(wheel_list()))
        return 0
    label = args.check
    try:
        if args.check == "install-wheels":
            if len(args.paths) != 2:
                raise CheckFailed("install-wheels needs FOLDER TARGET")
            line = install_wheels(*args.paths)
        else:
            from greencoder.core.quiet import silence_libraries

            silence_libraries()
            line = CHECKS[args.check](args)
    except CheckFailed as exc:
        line = f"FAIL {label}: {exc}"
    except Exception as exc:  # noqa: BLE001 - one line per check, whatever broke
        first = next((text.strip() for text in str(exc).splitlines() if text.strip()), "")
        line = f"FAIL {label}: {type(exc).__name__}: {first}"
    print(line, flush=True)
    return 0 if line.startswith(("PASS", "WARN", "SKIP")) else 1


if __name__ == "__main__":
    sys.exit(main())
