"""greencoder's tuner vs a bare PEFT prompt-tuning loop: examples/s and peak memory.

    .venv/bin/python benchmarks/bench_tune.py [--size small|tiny] [--model DIR] [--pairs FILE]
        [--entries 96] [--batch-size 8] [--max-length 256] [--loss triplet|infonce]
        [--rounds 3] [--threads 1] [--device auto|cpu|cuda] [--dtype auto]

Both variants train the same soft prompt on the same data: one "example" is one pair entry (its
anchor, its efficient program and its inefficient programs). Model loading, tokenisation and the
per-epoch file writes are outside every timing. Prints:

1. examples/s of greenCoder's tuner, the real code path (`Tuner.prepare()` once, then
   `Tuner.train_epoch()` + `Tuner.commit()` per round; the rate is `EpochRecord.examples_per_second`,
   which the tuner measures over its batch loop only), next to a bare loop written out below:
   `get_peft_model` with the same `PromptTuningConfig`, the same tokenised texts in the same batches
   (same order, batch size, max length and right padding), a forward pass with
   `output_hidden_states=True` (and `logits_to_keep=1` where the model takes it, as the tuner does),
   mean pooling over the real tokens after the virtual ones, the same loss, `backward()`, the same
   gradient clipping and an AdamW step. The two alternate (A B, B A, ...) for --rounds epochs each
   so drift hits both alike; medians, the ratio greencoder/bare and PASS/FAIL against >= 0.9 are
   printed. Both start from the same prompt and see the same batches, so their per-round training
   losses must agree: a check that the two do the same maths.
2. peak memory of one epoch of each, each variant in a fresh process (the script re-runs itself):
   peak RSS from /proc's VmHWM (not `ru_maxrss`, which Linux carries over from the parent across
   fork and exec), after setup and during the epoch (the peak is reset in between), and on CUDA
   `torch.cuda.max_memory_allocated()` likewise; then the ratios greencoder/bare.

The model: --size small (default) builds a random ~30M-parameter Llama (8 layers x 512) in a
temporary folder, so that the model's compute dominates each step as it does with real models;
--size tiny (~3.5M parameters, 4 x 192) runs ~10x faster but exaggerates fixed per-step overheads.
--model DIR uses a real model folder instead. Without --pairs, a synthetic pair file is written
with tests/tuning_data.py's generator (--entries problems, one inefficient program each; no
validation split, so both variants time training steps only). The defaults take about 2 minutes on
a 2-core VM.

Threads: torch reads its thread count from the environment at import, and on 2-core VMs 2 threads
ran 20-50x slower than 1 for this work, so the default is --threads 1 (set before torch is imported).

On a GPU machine (--device auto picks CUDA, or --device cuda), --dtype auto loads the model in bf16
as `greencoder tune` does, with the soft prompt in float32, so the figures are the bf16 one-epoch
examples/s of both variants, and memory includes the CUDA peak.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.9
SIZES = {
    "tiny": dict(),
    "small": dict(hidden_size=512, intermediate_size=1376, num_layers=8, num_heads=8),
}


# --------------------------------------------------------------------------- settings shared by both


def set_thread_environment(threads: int) -> None:
    """Before torch is imported: BLAS/OpenMP read these once, at start."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


def tune_settings(args, out: str, epochs: int):
    from greencoder.tuning.trainer import TuneSettings

    # Every language trains; no validation split, so both variants do training steps only.
    return TuneSettings(model=args.model, pairs=(args.pairs,), out=out, train_set="all", loss=args.loss,
                        epochs=epochs, batch_size=args.batch_size, max_length=args.max_length,
                        validation_fraction=0.0, device=args.device, dtype=args.dtype, overwrite=True)


def device_of(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- greenCoder's tuner


class GreencoderVariant:
    """The real tuner: prepared once, then one `train_epoch` (+ `commit`) per round."""

    name = "greencoder"

    def __init__(self, args, out: str, epochs: int):
        from greencoder.tuning.trainer import Tuner

        self.tuner = Tuner(tune_settings(args, out, epochs), threads=args.threads, log=lambda line: None, progress=False)
        self.tuner.prepare()
        self.tuner.begin()
        self.device = self.tuner.accelerator.device
        self.epoch = 0

    def run_epoch(self) -> dict:
        self.epoch += 1
        synchronize(self.device)
        started = time.perf_counter()
        record = self.tuner.train_epoch(self.epoch)
        synchronize(self.device)
        wall = time.perf_counter() - started
        self.tuner.commit(record)  # file writes, as `tune` does; outside both timings
        return {"rate": record.examples_per_second, "wall_rate": record.examples / wall,
                "examples": record.examples, "steps": record.steps, "loss": record.train_loss}


# --------------------------------------------------------------------------- the bare PEFT loop


class BareVariant:
    """Plain transformers + PEFT + torch, the same work as the tuner with nothing around it."""

    name = "bare"

    def __init__(self, args):
        import torch
        from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        # Data preparation is not timed; greenCoder's readers give exactly the texts the tuner sees.
        from greencoder.core.model_loading import resolve_dtype
        from greencoder.tuning.anchors import anchor_text
        from greencoder.tuning.batches import tokenize_entries
        from greencoder.tuning.losses import make_loss
        from greencoder.tuning.pairs import load_pairs
        from greencoder.tuning.soft_prompt import INIT_TEXT
        from greencoder.tuning.splits import select_training_set, split_validation

        self.settings = s = tune_settings(args, out="unused", epochs=args.rounds)
        torch.set_num_threads(args.threads)
        self.device = device_of(args.device)
        source = str(Path(args.model).expanduser().resolve())
        tokenizer = AutoTokenizer.from_pretrained(source)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.pad = tokenizer.pad_token_id
        torch.manual_seed(s.seed)
        base = AutoModelForCausalLM.from_pretrained(source, dtype=resolve_dtype(s.dtype, self.device)).to(self.device)
        self.virtual_tokens = len(tokenizer(INIT_TEXT)["input_ids"])
        config = PromptTuningConfig(task_type=TaskType.CAUSAL_LM, prompt_tuning_init=PromptTuningInit.TEXT,
                                    prompt_tuning_init_text=INIT_TEXT, num_virtual_tokens=self.virtual_tokens,
                                    tokenizer_name_or_path=source)
        self.model = get_peft_model(base, config)  # freezes the base model
        encoder = self.model.prompt_encoder[self.model.active_adapter]
        encoder.float()  # a float32 prompt over a bf16 model, as the tuner keeps it
        self.prompt = encoder.embedding.weight
        self.optimizer = torch.optim.AdamW([self.prompt], lr=s.lr, weight_decay=s.weight_decay)
        self.loss_fn = make_loss(s.loss, s.margin, s.temperature)
        self.forward_extra = {"logits_to_keep": 1} if "logits_to_keep" in _forward_parameters(base) else {}

        entries = select_training_set(load_pairs(s.pairs, language=s.pairs_language).entries, s.train_set)
        entries, _ = split_validation(entries, s.validation_fraction, s.seed)
        self.tokens = tokenize_entries(tokenizer, entries, anchor_text, s.max_length)
        self.epoch = 0

    def epoch_batches(self, epoch: int) -> list[list]:
        """The epoch's samples (same order and negatives as the tuner's), cut into batches."""
        from greencoder.tuning.batches import EpochSamples, epoch_order

        s = self.settings
        samples = EpochSamples(self.tokens, epoch_order(len(self.tokens), s.seed, epoch), s.negatives, s.seed, epoch)
        samples = [samples[i] for i in range(len(samples))]
        return [samples[i : i + s.batch_size] for i in range(0, len(samples), s.batch_size)]

    def collate(self, batch):
        """Right-padded ids and mask: anchors, then efficient programs, then every anchor's negatives."""
        import torch

        texts = [sample.anchor for sample in batch] + [sample.efficient for sample in batch]
        owners = []
        for row, sample in enumerate(batch):
            texts.extend(sample.negatives)
            owners.extend([row] * len(sample.negatives))
        width = max(len(t) for t in texts)
        ids = torch.tensor([t + [self.pad] * (width - len(t)) for t in texts])
        mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in texts])
        return ids.to(self.device), mask.to(self.device), torch.tensor(owners).to(self.device)

    def run_epoch(self) -> dict:
        import torch

        self.epoch += 1
        s = self.settings
        batches = self.epoch_batches(self.epoch)
        torch.manual_seed(s.seed * 1_000 + self.epoch)
        self.model.train()
        loss_total = torch.zeros((), device=self.device)
        examples = 0
        synchronize(self.device)
        started = time.perf_counter()
        for batch in batches:
            input_ids, mask, owners = self.collate(batch)
            output = self.model(input_ids=input_ids, attention_mask=mask, output_hidden_states=True, **self.forward_extra)
            hidden = output.hidden_states[-1][:, self.virtual_tokens :, :]
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            embeddings = ((hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)).float()
            n = len(batch)
            loss = self.loss_fn(embeddings[:n], embeddings[n : 2 * n], embeddings[2 * n :], owners)
            loss.backward()
            if s.max_grad_norm:
                torch.nn.utils.clip_grad_norm_([self.prompt], s.max_grad_norm)
            self.optimizer.step()
            self.optimizer.zero_grad()
            loss_total += loss.detach()
            examples += n
        synchronize(self.device)
        seconds = time.perf_counter() - started
        rate = examples / seconds
        return {"rate": rate, "wall_rate": rate, "examples": examples, "steps": len(batches),
                "loss": float(loss_total) / max(len(batches), 1)}

    def check_batches_match(self, tuner) -> None:
        """The bare loop's first batch is bit for bit the one greenCoder's Collator builds."""
        import torch

        from greencoder.tuning.batches import Collator

        first = self.epoch_batches(1)[0]
        ours = self.collate(first)
        theirs = Collator(self.pad)(first)
        same = (torch.equal(ours[0].cpu(), theirs["input_ids"]) and torch.equal(ours[1].cpu(), theirs["attention_mask"])
                and torch.equal(ours[2].cpu(), theirs["negative_owner"]))
        if not same or [t.anchor for t in tuner.train_tokens] != [t.anchor for t in self.tokens]:
            raise SystemExit("bare loop and tuner do not see the same batches; fix the benchmark")


def _forward_parameters(base) -> set[str]:
    import inspect

    return set(inspect.signature(base.forward).parameters)


# --------------------------------------------------------------------------- memory, one process each


def current_rss_mib() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mib() -> float:
    """This process's peak RSS. /proc's VmHWM where there is one: `ru_maxrss` carries the parent's
    peak across fork and exec on Linux, so a child started by a process holding two models would
    report the parent's figure."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


def reset_peak_rss() -> bool:
    """Start a new VmHWM peak from the current RSS (Linux >= 4.0); False where that is impossible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_worker(args) -> None:
    """Child process: set up one variant, train one epoch, print peak memory as JSON."""
    import torch

    with tempfile.TemporaryDirectory() as scratch:
        variant = GreencoderVariant(args, scratch, epochs=1) if args.worker == "greencoder" else BareVariant(args)
        cuda = variant.device.type == "cuda"
        setup_rss = peak_rss_mib()
        setup_cuda = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        before_training = current_rss_mib()
        separate = reset_peak_rss()
        result = variant.run_epoch()
        training_rss = peak_rss_mib() if separate else None
        print(json.dumps({
            "rate": result["rate"],
            "rss": max(setup_rss, training_rss) if separate else peak_rss_mib(),
            "setup_rss": setup_rss,
            "training_rss": training_rss,
            "before_training": before_training,
            "cuda": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
            "setup_cuda": setup_cuda,
        }))


def child_command(args, worker: str) -> list[str]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", worker, "--model", args.model, "--pairs", args.pairs]
    for option in ("batch_size", "max_length", "loss", "threads", "device", "dtype"):
        cmd += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    return cmd


def measure_memory(args) -> dict[str, dict]:
    results = {}
    for worker in ("greencoder", "bare"):
        done = subprocess.run(child_command(args, worker), capture_output=True, text=True, cwd=REPO_ROOT)
        if done.returncode != 0:
            raise SystemExit(f"{worker} memory run failed:\n{done.stderr[-4000:]}")
        results[worker] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


# --------------------------------------------------------------------------- main


def throughput(args, scratch: str) -> tuple[dict, dict]:
    greencoder = GreencoderVariant(args, str(Path(scratch) / "run"), epochs=args.rounds)
    bare = BareVariant(args)
    bare.check_batches_match(greencoder.tuner)
    runs = {"greencoder": [], "bare": []}
    print(f"\n1. training throughput: {args.rounds} rounds of one epoch each, alternating (examples/s)")
    for round_index in range(args.rounds):
        order = [greencoder, bare] if round_index % 2 == 0 else [bare, greencoder]
        for variant in order:
            runs[variant.name].append(variant.run_epoch())
        g, b = runs["greencoder"][-1], runs["bare"][-1]
        first = "greencoder" if round_index % 2 == 0 else "bare"
        print(f"   round {round_index + 1} ({first} first): greencoder {g['rate']:8.2f} | bare {b['rate']:8.2f}"
              f" | ratio {g['rate'] / b['rate']:.3f} | train loss {g['loss']:.6f} vs {b['loss']:.6f}")
    info = {"steps": runs["bare"][0]["steps"], "examples": runs["bare"][0]["examples"],
            "device": str(greencoder.device),
            "dtype": str(greencoder.tuner.accelerator.unwrap_model(greencoder.tuner.model).get_base_model().dtype),
            "virtual_tokens": bare.virtual_tokens, "parameters": sum(p.numel() for p in bare.model.get_base_model().parameters())}
    return runs, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder (default: a random model of --size built in a temporary folder)")
    parser.add_argument("--size", choices=sorted(SIZES), default="small",
                        help="random model to build without --model: small (default, ~30M parameters) or tiny (~3.5M)")
    parser.add_argument("--pairs", help="pair file (default: synthetic, from tests/tuning_data.py)")
    parser.add_argument("--entries", type=int, default=96, help="problems in the synthetic pair file (default 96)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--loss", choices=["triplet", "infonce"], default="triplet")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads (default 1; see the docstring)")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, float32 on CPU), float32, bfloat16, float16")
    parser.add_argument("--rounds", type=int, default=3, help="epochs of each variant, alternated (default 3)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory runs")
    parser.add_argument("--worker", choices=["greencoder", "bare"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    set_thread_environment(args.threads)
    sys.path.insert(0, str(REPO_ROOT))
    from greencoder.core.quiet import silence_libraries

    silence_libraries()
    if args.worker:
        memory_worker(args)
        return

    with tempfile.TemporaryDirectory() as scratch:
        if args.model is None:
            from greencoder.core.tiny_model import TinyModelSpec, make_tiny_model

            spec = TinyModelSpec(**SIZES[args.size])
            args.model = str(make_tiny_model(Path(scratch) / "model", spec))
            print(f"model: random {args.size} model ({spec.num_layers} layers x {spec.hidden_size}) built in {args.model}")
        else:
            print(f"model: {args.model}")
        if args.pairs is None:
            sys.path.insert(0, str(REPO_ROOT / "tests"))
            from tuning_data import write_synthetic_pairs

            args.pairs = str(write_synthetic_pairs(Path(scratch) / "pairs.jsonl", problems=args.entries))
            print(f"pairs: {args.entries} synthetic entries (tests/tuning_data.py)")
        else:
            print(f"pairs: {args.pairs}")

        runs, info = throughput(args, scratch)
        print(f"   setup: {info['device']}, {info['dtype']}, {args.threads} thread(s), {info['parameters'] / 1e6:.1f}M parameters,"
              f" {info['virtual_tokens']} virtual tokens, loss {args.loss}, batch {args.batch_size}, max length {args.max_length},"
              f" {info['examples']} examples = {info['steps']} steps per epoch")
        ours = statistics.median(r["rate"] for r in runs["greencoder"])
        ours_wall = statistics.median(r["wall_rate"] for r in runs["greencoder"])
        bare = statistics.median(r["rate"] for r in runs["bare"])
        ratio = ours / bare
        print(f"   greencoder tuner, EpochRecord.examples_per_second   {ours:9.2f} examples/s (median)")
        print(f"   greencoder tuner, whole train_epoch() call          {ours_wall:9.2f} examples/s (median; epoch"
              " setup included)")
        print(f"   bare PEFT loop                                      {bare:9.2f} examples/s (median)")
        print(f"   ratio greencoder/bare {ratio:.3f}   (target >= {TARGET_RATIO})   {'PASS' if ratio >= TARGET_RATIO else 'FAIL'}")
        losses_agree = all(abs(g["loss"] - b["loss"]) <= 1e-3 * max(1.0, abs(b["loss"]))
                           for g, b in zip(runs["greencoder"], runs["bare"], strict=True))
        print(f"   same maths: per-round training losses {'agree' if losses_agree else 'DIFFER (the two do not do the same work)'}")

        if not args.no_memory:
            print("\n2. peak memory of one epoch, each variant in a fresh process (MiB)")
            memory = measure_memory(args)
            for name in ("greencoder", "bare"):
                m = memory[name]
                training = "n/a" if m["training_rss"] is None else f"{m['training_rss']:8.1f}"
                if m["training_rss"] is not None and m["before_training"] is not None:
                    training += f" (+{m['training_rss'] - m['before_training']:6.1f})"
                line = f"   {name:10} RSS peak {m['rss']:8.1f} | setup peak {m['setup_rss']:8.1f} | training peak {training}"
                if m["cuda"] is not None:
                    line += f" | CUDA peak: setup {m['setup_cuda']:8.1f}, training {m['cuda']:8.1f}"
                print(line + f" | {m['rate']:.2f} examples/s")
            g, b = memory["greencoder"], memory["bare"]
            line = f"   ratio greencoder/bare: RSS peak {g['rss'] / b['rss']:.3f}"
            if g["training_rss"] is not None and b["training_rss"] is not None:
                line += f", training RSS peak {g['training_rss'] / b['training_rss']:.3f}"
            if g["cuda"]:
                line += f", CUDA training peak {g['cuda'] / b['cuda']:.3f}"
            print(line)

if __name__ == "__main__":
    main()
