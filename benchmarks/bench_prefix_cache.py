"""Prefix reuse in the completion core: an editing trace replayed through `complete_at`, reuse off vs on.

    GREENCODER_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_prefix_cache.py [--quick]
        [--model tiny|qwen-shape|both|DIR] [--keystrokes N] [--new-tokens N] [--context N] [--lookup N]

The trace is a real source file (HumanEval-X Python solutions from ../shared/data, joined into one
module) in which the body of one function is typed character by character, with the code after it
still below the cursor, and a comment line inserted a few lines above the cursor every few
keystrokes. Every keystroke asks for a completion, straight through the core (no server, no
debounce). Models: (a) the tiny test model; (b) a random-weight model of Qwen2.5-Coder-0.5B's real
shape (24 layers, hidden 896, 14 heads, 2 KV heads, intermediate 4864, vocabulary 151,936) with a
tokenizer carrying Qwen's FIM tokens, so it gets the PSM layout the real model documents. Its text
is nonsense; its costs are the real model's.

Printed, side by side with ratios: tokens prefilled, tokens generated, CPU seconds, median latency,
and whether every suggestion was identical. Also: how much of each prompt the FIM layouts leave
reusable on the same trace (tokenizer only), the cost of tokenizing a large file whole vs the
window, and prompt-lookup decoding off vs on (--lookup N draft tokens; off by default in the
product, see the printed numbers for why).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
QWEN_FIM_TOKENS = ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>", "<|file_sep|>"]
EDIT_LINE = "# reviewed\n"


def source_module(problems: int = 12) -> tuple[str, int, int]:
    """A Python module of HumanEval solutions, and the span (start, end) of the body to type:
    the second-to-last solution, so one more function stays below the cursor."""
    with gzip.open(SHARED_DATA / "humaneval_x" / "humaneval_python.jsonl.gz", "rt", encoding="utf-8") as rows:
        items = [json.loads(line) for _, line in zip(range(problems), rows, strict=False)]
    text, span = "", (0, 0)
    for index, item in enumerate(items):
        text += item["prompt"]
        if index == len(items) - 2:
            span = (len(text), len(text) + len(item["canonical_solution"]))
        text += item["canonical_solution"] + "\n\n"
    return text, span[0], span[1]


def editing_trace(keystrokes: int, edit_every: int) -> list[tuple[str, int]]:
    """(document, cursor) per keystroke: the body typed from its start, a comment line inserted
    three lines above the cursor every `edit_every` keystrokes (that request replaces the keystroke)."""
    module, start, end = source_module()
    body = module[start:end]
    head, tail = module[:start], module[end:]
    typed, trace = "", []
    for step in range(1, keystrokes + 1):
        if edit_every and step % edit_every == 0:
            lines_above = (head + typed).split("\n")
            at = len("\n".join(lines_above[:-3])) + 1
            head = head[:at] + EDIT_LINE + head[at:] if at <= len(head) else head
        else:
            typed = body[: len(typed) + 1]
        trace.append((head + typed + tail, len(head) + len(typed)))
    return trace


def tiny_model(folder: Path) -> Path:
    from greencoder.core.tiny_model import make_tiny_model

    return make_tiny_model(folder / "tiny")


def qwen_shape_model(folder: Path) -> Path:
    """Random weights in Qwen2.5-Coder-0.5B's shape, saved with a tokenizer that has Qwen's FIM tokens."""
    import torch
    from transformers import AutoModelForCausalLM, Qwen2Config

    from greencoder.core.tiny_model import TinyModelSpec, build_tokenizer

    out = folder / "qwen-shape"
    tokenizer = build_tokenizer(TinyModelSpec(fim=False, max_length=32768))
    tokenizer.add_special_tokens({"additional_special_tokens": QWEN_FIM_TOKENS})
    config = Qwen2Config(
        vocab_size=151_936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
        num_key_value_heads=2, max_position_embeddings=32768, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    del model
    return out


@dataclass
class Tally:
    prefilled: int = 0
    first_prefill: int | None = None
    reused: int = 0
    generated: int = 0
    cpu: float = 0.0
    latencies: list[float] | None = None
    texts: list[str] | None = None
    tokens: list[list[int]] | None = None

    def add(self, completion, cpu: float, wall: float) -> None:
        generation = completion.generation
        if self.first_prefill is None:
            self.first_prefill = generation.prefill_tokens
        self.prefilled += generation.prefill_tokens
        self.reused += generation.reused_tokens
        self.generated += generation.new_tokens
        self.cpu += cpu
        for name, value in (("latencies", wall), ("texts", completion.text), ("tokens", generation.token_ids)):
            if getattr(self, name) is None:
                setattr(self, name, [])
            getattr(self, name).append(value)


def replay(runtimes: dict, trace, settings) -> dict[str, Tally]:
    """Each keystroke through every runtime, interleaved (alternating who goes first), so machine
    load falls on all alike."""
    from greencoder.core.completion import complete_at
    from greencoder.core.languages import PYTHON

    tallies = {name: Tally() for name in runtimes}
    names = list(runtimes)
    for step, (text, offset) in enumerate(trace):
        for name in names if step % 2 == 0 else reversed(names):
            runtime, options = runtimes[name]
            wall, cpu = time.perf_counter(), time.process_time()
            completion = complete_at(runtime, text, offset, PYTHON, options or settings, cache_key="trace.py")
            tallies[name].add(completion, time.process_time() - cpu, time.perf_counter() - wall)
    return tallies


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def report(title: str, first: tuple[str, Tally], second: tuple[str, Tally]) -> None:
    (a_name, a), (b_name, b) = first, second
    rows = [
        ("tokens prefilled", a.prefilled, b.prefilled, "d"),
        ("  after the 1st request", a.prefilled - a.first_prefill, b.prefilled - b.first_prefill, "d"),
        ("tokens generated", a.generated, b.generated, "d"),
        ("CPU seconds", a.cpu, b.cpu, ".2f"),
        ("median latency ms", statistics.median(a.latencies) * 1000, statistics.median(b.latencies) * 1000, ".0f"),
    ]
    print(f"\n{title}")
    print(f"  {'':20} {a_name:>12} {b_name:>12} {a_name + '/' + b_name:>16}")
    for label, x, y, fmt in rows:
        print(f"  {label:20} {x:>12{fmt}} {y:>12{fmt}} {ratio(x, y):>16}")
    same = sum(ta == tb for ta, tb in zip(a.tokens, b.tokens, strict=True))
    texts = sum(ta == tb for ta, tb in zip(a.texts, b.texts, strict=True))
    verdict = "yes" if same == len(a.tokens) and texts == len(a.texts) else "NO"
    print(f"  suggestions identical: {verdict} ({same}/{len(a.tokens)} token sequences, {texts}/{len(a.texts)} texts)")


def layout_reuse(tokenizer, trace, budget: int) -> None:
    """Share of each prompt already computed for the previous keystroke, per FIM layout (tokenizer only)."""
    from greencoder.core.prefix_cache import common_prefix_length
    from greencoder.core.prompt import (
        PSM,
        SPM,
        choose_layout,
        detect_fim,
        editor_context,
    )

    fim = detect_fim(tokenizer)
    if fim is None:
        return
    print(f"\nFIM layouts on this trace (tokenizer only, budget {budget} tokens): prompt tokens re-read per request")
    for layout in (PSM, SPM):
        if choose_layout(fim, layout) != layout:
            print(f"  {layout}: not offered: the {fim.name} format documents {', '.join(fim.layouts)} only")
            continue
        previous: list[int] = []
        reread = total = 0
        for text, offset in trace:
            ids = editor_context(tokenizer, text[:offset], text[offset:], budget, layout=layout).input_ids
            reread += len(ids) - min(common_prefix_length(previous, ids), len(ids) - 1)
            total += len(ids)
            previous = ids
        print(f"  {layout}: {reread / len(trace):7.1f} of {total / len(trace):7.1f} per request ({reread / total:.1%})")


def tokenization_cost(tokenizer, budget: int) -> None:
    from greencoder.core.prompt import editor_context

    module, _, _ = source_module()
    big = module * max(1, 1_300_000 // len(module))
    cursor = len(big) // 2
    from transformers.utils import logging

    logging.set_verbosity_error()  # "sequence longer than the model's maximum": the point of this measurement
    start = time.process_time()
    tokenizer(big[:cursor], add_special_tokens=False)
    tokenizer(big[cursor:], add_special_tokens=False)
    whole = time.process_time() - start
    start = time.process_time()
    editor_context(tokenizer, big[:cursor], big[cursor:], budget)
    window = time.process_time() - start
    print(f"\nTokenizing a {len(big) / 1e6:.1f} MB file per request: whole file {whole * 1000:.0f} ms CPU, "
          f"window {window * 1000:.1f} ms CPU ({ratio(whole, window)})")


def bench_model(label: str, path: Path, args) -> None:
    from greencoder.core.completion import CompletionSettings
    from greencoder.core.model_loading import ModelSettings
    from greencoder.core.runtime import Runtime

    runtime = Runtime.load(ModelSettings(str(path), device="cpu"), threads=1)
    plain = Runtime(runtime.loaded, runtime.threads, reuse=False)
    keystrokes = args.keystrokes or (12 if label.startswith("(b)") else 30 if args.quick else 60)
    trace = editing_trace(keystrokes, args.edit_every)
    settings = CompletionSettings(max_new_tokens=args.new_tokens, context_tokens=args.context)
    print(f"\n=== {label}: {path.name}, {keystrokes} keystrokes ({keystrokes // args.edit_every if args.edit_every else 0} "
          f"edits above the cursor), maxNewTokens {args.new_tokens}, context {args.context} tokens ===")
    layout_reuse(runtime.tokenizer, trace, args.context)
    if label.startswith("(a)"):
        tokenization_cost(runtime.tokenizer, args.context)
    complete_at_warmup(runtime, plain, settings)
    tallies = replay({"off": (plain, None), "on": (runtime, None)}, trace, settings)
    report("Prefix reuse (reuse off vs on)", ("off", tallies["off"]), ("on", tallies["on"]))
    if args.lookup:
        drafted = replace(settings, prompt_lookup_tokens=args.lookup)
        with_reuse = Runtime(runtime.loaded, runtime.threads)
        drafting = Runtime(runtime.loaded, runtime.threads)
        tallies = replay({"plain": (with_reuse, settings), "lookup": (drafting, drafted)}, trace, settings)
        report(f"Prompt lookup ({args.lookup} draft tokens; both with reuse)", ("plain", tallies["plain"]),
               ("lookup", tallies["lookup"]))


def complete_at_warmup(*runtimes) -> None:
    """One small request each, so one-time costs (first forward, allocator) fall outside the trace."""
    from greencoder.core.completion import complete_at
    from greencoder.core.languages import PYTHON

    *models, settings = runtimes
    for runtime in models:
        complete_at(runtime, "def f(x):\n    return", 20, PYTHON, replace(settings, max_new_tokens=1), cache_key="warmup")


def benchmark_models(choice: str, folder: Path) -> list[tuple[str, Path]]:
    """The models `--model tiny|qwen-shape|both|DIR` names, built in `folder`, with their labels."""
    models: list[tuple[str, Path]] = []
    if choice in ("tiny", "both"):
        models.append(("(a) tiny model", tiny_model(folder)))
    if choice in ("qwen-shape", "both"):
        models.append(("(b) Qwen2.5-Coder-0.5B shape, random weights", qwen_shape_model(folder)))
    if choice not in ("tiny", "qwen-shape", "both"):
        models.append(("(c) " + choice, Path(choice)))
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="both", help="tiny, qwen-shape, both, or a model folder")
    parser.add_argument("--quick", action="store_true", help="short traces: 30 keystrokes on (a), 12 on (b)")
    parser.add_argument("--keystrokes", type=int, help="keystrokes per trace (default 60 on (a), 12 on (b))")
    parser.add_argument("--edit-every", type=int, default=6, help="insert a line above the cursor every N keystrokes")
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--lookup", type=int, default=0, help="also compare prompt lookup with N draft tokens")
    args = parser.parse_args()
    os.environ.setdefault("GREENCODER_THREADS", "1")
    from greencoder.core.quiet import silence_libraries

    silence_libraries()
    with tempfile.TemporaryDirectory(prefix="greencoder-bench-") as folder:
        for label, path in benchmark_models(args.model, Path(folder)):
            bench_model(label, path, args)
            sys.stdout.flush()


if __name__ == "__main__":
    main()
