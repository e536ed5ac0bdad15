"""The `greencoder` command: one entry point, a subcommand per job.

Heavy libraries (torch, transformers, peft) are imported inside the commands, after the thread
count is in the environment, so `greencoder --help` is instant and BLAS/OpenMP see the setting.
Every GreencoderError ends the program with one line on stderr and exit status 1; `--debug`
adds the traceback.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from pathlib import Path

import click

from greencoder import __version__
from greencoder.core.errors import GreencoderError, InputError

_state = {"debug": os.environ.get("GREENCODER_DEBUG", "") not in ("", "0")}


def warn(message: str) -> None:
    click.echo(f"greencoder: warning: {message}", err=True)


def _enable_debug(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        _state["debug"] = True
        logging.getLogger().setLevel(logging.DEBUG)
    return value


def debug_option(function):
    """`--debug`, accepted before the subcommand and after it (where users tend to add it)."""
    return click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_enable_debug,
                        help="Show tracebacks and library logs.")(function)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="greencoder")
@debug_option
def cli() -> None:
    """Energy-aware code generation: efficiency soft prompts for code LLMs."""
    logging.basicConfig(
        level=logging.DEBUG if _state["debug"] else logging.WARNING,
        format="greencoder: %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _allow_weak_sandbox(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:
        from greencoder.core.sandbox import allow_weak_sandbox

        allow_weak_sandbox()
    return value


def weak_sandbox_option(function):
    """`--allow-weak-sandbox` on the commands that run untrusted code; the policy lives in the sandbox."""
    return click.option("--allow-weak-sandbox", is_flag=True, expose_value=False, callback=_allow_weak_sandbox,
                        help="Where bubblewrap is unavailable, run untrusted code under weaker isolation (unshare, "
                             "or an unprivileged uid) with a warning; same as GREENCODER_ALLOW_WEAK_SANDBOX=1.")(function)


def threads_option(function):
    function = debug_option(function)
    return click.option(
        "--threads",
        type=click.IntRange(min=1),
        default=None,
        help="torch/BLAS threads (default: GREENCODER_THREADS, else half the CPUs, at most 4).",
    )(function)


def model_options(function):
    """Options every model-using command shares, so they read the same everywhere."""
    for option in reversed(
        [
            click.option("--model", "model", default=None,
                         help="Hugging Face model id or local folder (default: Qwen/Qwen2.5-Coder-0.5B)."),
            click.option("--adapter", default=None, help="Efficiency soft prompt: a PEFT prompt-tuning adapter folder."),
            click.option("--device", default="auto", show_default=True,
                         help="auto (CUDA, then an Apple GPU, then the CPU), cpu, cuda, cuda:N or mps."),
            click.option("--dtype", default="auto", show_default=True, help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16."),
        ]
    ):
        function = option(function)
    return threads_option(function)


def endpoint_options(function):
    """--endpoint and its companions, shared by `evaluate` and `serve` (one meaning everywhere)."""
    options = [
        click.option("--endpoint", default=None, metavar="URL",
                     help="OpenAI-compatible server (vLLM, llama.cpp, Ollama, TGI, transformers serve), "
                          "e.g. http://127.0.0.1:8000/v1; energy is then spent there, not measured here."),
        click.option("--api-key-env", default=None, metavar="VAR",
                     help="Environment variable holding the endpoint's API key (the key is never printed)."),
        click.option("--endpoint-prompt-embeds", is_flag=True,
                     help="The endpoint accepts prompt embeddings (vLLM --enable-prompt-embeds): soft prompts are "
                          "sent there (checked with one request first); without it soft prompts are refused."),
        click.option("--request-timeout", type=click.FloatRange(min=0, min_open=True), default=600.0,
                     help="Seconds one endpoint request may take; failed requests are retried with backoff."),
        click.option("--retries", type=click.IntRange(min=0), default=4,
                     help="Further attempts after an endpoint request fails (connection, timeout, 5xx, 429); "
                          "waits 1 s, 2 s, 4 s, ... between them."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def read_source(file: Path) -> str:
    """A source file's text, or a one-line InputError naming it."""
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {file}: {getattr(exc, 'strerror', None) or exc}") from exc


def prepare_threads(threads: int | None) -> int:
    """Fix the thread count and export it before torch/numpy are imported."""
    from greencoder.core.threads import default_thread_count, set_thread_environment

    count = threads or default_thread_count()
    set_thread_environment(count)
    return count


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--line", "line", type=click.IntRange(min=1), required=True, help="Cursor line, 1-based.")
@click.option("--column", "column", type=click.IntRange(min=1), required=True, help="Cursor column, 1-based, in characters.")
@click.option("--language", default=None, help="python, cpp or java (default: from the file extension).")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=128, show_default=True)
@click.option("--context-tokens", type=click.IntRange(min=16), default=1024, show_default=True,
              help="Token budget for the text around the cursor.")
@click.option("--no-fim", is_flag=True, help="Ignore the text after the cursor even if the model can fill in the middle.")
@click.option("--json", "as_json", is_flag=True, help="Print the completion and its cost as JSON.")
@model_options
def complete(file: Path, line: int, column: int, language: str | None, max_new_tokens: int, context_tokens: int,
             no_fim: bool, as_json: bool, model: str | None, adapter: str | None, device: str, dtype: str,
             threads: int | None) -> None:
    """Print the completion the language server would offer at FILE:LINE:COLUMN."""
    count = prepare_threads(threads)
    from greencoder.core.completion import CompletionSettings, complete_at, position_to_offset
    from greencoder.core.default_model import DEFAULT_MODEL, load_runtime
    from greencoder.core.languages import get_language, language_for_path
    from greencoder.core.model_loading import ModelSettings

    text = read_source(file)
    lang = get_language(language) if language else language_for_path(str(file))
    offset = position_to_offset(text, line - 1, column - 1)
    settings = ModelSettings(model or DEFAULT_MODEL, adapter, device, dtype)
    runtime = load_runtime(settings, count, model_given=model is not None, warn=warn)
    result = complete_at(runtime, text, offset, lang, CompletionSettings(max_new_tokens, context_tokens, use_fim=not no_fim))
    if as_json:
        info = runtime.info()
        generation = result.generation
        click.echo(json.dumps({
            "completion": result.text,
            "multiline": result.multiline,
            "model": info.model,
            "adapter": info.adapter,
            "device": info.device,
            "threads": info.threads,
            "fim": result.context.fim.name if result.context.fim else None,
            "prompt_tokens": generation.prompt_tokens,
            "virtual_tokens": generation.virtual_tokens,
            "new_tokens": generation.new_tokens,
            "wall_ms": round(generation.wall_seconds * 1000, 1),
            "cpu_ms": round(generation.cpu_seconds * 1000, 1),
            "stop_reason": generation.stop_reason,
        }, indent=2))
    else:
        click.echo(result.text)


@cli.command("make-tiny-model")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Write into DIRECTORY even if it is not empty.")
@click.option("--no-fim", is_flag=True, help="Leave out fill-in-the-middle tokens.")
@click.option("--seed", type=int, default=0, show_default=True)
@threads_option
def make_tiny_model_command(directory: Path, force: bool, no_fim: bool, seed: int, threads: int | None) -> None:
    """Build a tiny random-weight model folder (for tests and offline use; its output is noise)."""
    prepare_threads(threads)
    if directory.exists() and any(directory.iterdir()) and not force:
        raise InputError(f"{directory} is not empty; pass --force to write the model into it anyway")
    from greencoder.core.quiet import silence_libraries
    from greencoder.core.tiny_model import TinyModelSpec, make_tiny_model

    silence_libraries()
    path = make_tiny_model(directory, TinyModelSpec(fim=not no_fim, seed=seed))
    click.echo(str(path))


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--call", "call", required=True, help='Expression to measure, in the file\'s language, e.g. "is_prime(1000003)".')
@click.option("--function", "function", default=None, help="Function the call exercises; checked to exist in each file.")
@click.option("--language", default=None, help="python, cpp or java (default: from the file extension).")
@click.option("--runs", type=click.IntRange(min=1), default=10, show_default=True, help="Measured runs per program.")
@click.option("--min-seconds", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Each run repeats the call for at least this long.")
@click.option("--cooldown", type=click.FloatRange(min=0), default=5.0, show_default=True, help="Seconds of rest before each run.")
@click.option("--baseline-seconds", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Idle baseline length (hardware meters only).")
@click.option("--alpha", type=click.FloatRange(min=0, max=1, min_open=True, max_open=True), default=0.005, show_default=True,
              help="Significance level of the Mann-Whitney U test.")
@click.option("--meter", default="auto", show_default=True, help="auto, rapl, perf, nvml, powermetrics or estimate.")
@click.option("--watts-per-core", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Power per busy core for the estimate (default: GREENCODER_WATTS_PER_CORE, else 12 W).")
@click.option("--memory-mib", type=click.IntRange(min=16), default=1024, show_default=True, help="Memory limit of the measured program.")
@click.option("--cxx-flags", default="-std=c++17 -O0", show_default=True, help="g++ flags (the paper's by default).")
@click.option("--unsafe-no-sandbox", is_flag=True, help="Run even where no sandbox is available (the program can touch your files).")
@click.option("--json", "as_json", is_flag=True, help="Print the raw measurements and comparisons as JSON.")
@debug_option
@weak_sandbox_option
def measure(files: tuple[Path, ...], call: str, function: str | None, language: str | None, runs: int,
            min_seconds: float, cooldown: float, baseline_seconds: float, alpha: float, meter: str,
            watts_per_core: float | None, memory_mib: int, cxx_flags: str, unsafe_no_sandbox: bool, as_json: bool) -> None:
    """Measure the energy and time of CALL against each FILE; with several files, compare each
    with the first (Mann-Whitney U)."""
    import shlex
    from dataclasses import replace

    from tqdm import tqdm

    from greencoder.core.languages import get_language, language_for_path
    from greencoder.core.measurement.protocol import MeasurementProtocol, compare_measurements, measure as measure_call
    from greencoder.core.measurement.report import render_json, render_text
    from greencoder.core.meters import select_meter
    from greencoder.core.sandbox import DEFAULT_RUN_LIMITS, Sandbox, SandboxPolicy, Toolchains
    from greencoder.core.statistics import TooFewSamplesError

    sources = [read_source(file) for file in files]
    languages = [get_language(language) if language else language_for_path(str(file)) for file in files]
    if len({lang.name for lang in languages}) > 1:
        raise InputError("the files to compare are in different languages; measure them separately")
    limits = replace(DEFAULT_RUN_LIMITS, memory_bytes=memory_mib * 1024 * 1024)
    sandbox = Sandbox(SandboxPolicy(allow_unsandboxed=unsafe_no_sandbox),
                      Toolchains(cxx_flags=tuple(shlex.split(cxx_flags))), run_limits=limits, warn=warn)
    selected = select_meter(meter, watts_per_core=watts_per_core)
    if selected.rejected:
        click.echo(f"greencoder: energy meter: {selected.summary()}", err=True)
    if selected.kind != "measured":
        warn("no hardware energy counter is usable here: energies are ESTIMATED from CPU time, not measured")
    protocol = MeasurementProtocol(runs=runs, min_seconds=min_seconds, cooldown_seconds=cooldown,
                                   baseline_seconds=baseline_seconds, alpha=alpha)
    measurements = []
    for file, source, lang in zip(files, sources, languages, strict=True):
        with tqdm(total=runs, desc=file.name, unit="run", file=sys.stderr, disable=None, leave=False) as bar:
            def progress(stage: str, done: int, total: int, bar=bar) -> None:
                bar.set_postfix_str(stage)
                bar.n = done if stage == "measuring" else 0
                bar.refresh()

            measurements.append(measure_call(sandbox, selected.meter, lang, source, call, function=function,
                                             name=file.name, protocol=protocol, progress=progress))
    comparisons, errors = [], []
    for other in measurements[1:]:
        try:
            comparisons.append(compare_measurements(measurements[0], other, alpha))
        except TooFewSamplesError as exc:
            errors.append(f"{other.name} vs {measurements[0].name}: not tested: {exc}")
    if as_json:
        click.echo(json.dumps(render_json(measurements, comparisons, errors), indent=2))
    else:
        click.echo(render_text(measurements, comparisons, errors))


@cli.command(context_settings={"show_default": True})
@click.option("--model", required=True, help="Base model: Hugging Face id or local folder (stays frozen).")
@click.option("--pairs", "pairs_option", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Pair file (greencoder/shared schema, PIE src_code/tgt_code, or GEC with a direction); more may follow as arguments.")
@click.argument("more_pairs", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--train-set", type=click.Choice(["python", "cpp", "java", "both", "all"]), default="both",
              help="Languages to train on; both = python + cpp, as in the paper.")
@click.option("--loss", type=click.Choice(["triplet", "infonce"]), default="triplet")
@click.option("--epochs", type=click.IntRange(min=1), default=5)
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Run folder: epoch-N/ adapters, metrics.jsonl, run.json. An existing run there is resumed.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=5e-5)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, help="Entries (problems) per step and process.")
@click.option("--negatives", type=click.IntRange(min=1), default=4, help="At most K inefficient programs per anchor and step.")
@click.option("--max-length", type=click.IntRange(min=8), default=512, help="Tokens kept of each text.")
@click.option("--seed", type=int, default=0)
@click.option("--virtual-tokens", type=click.IntRange(min=1), default=None,
              help="Soft-prompt length (default: the init text's token count).")
@click.option("--init-text", default="Generate energy-efficient code.", help="Text whose embedding the soft prompt starts from.")
@click.option("--margin", type=click.FloatRange(min=0), default=0.05, help="Triplet margin.")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=0.07, help="InfoNCE temperature.")
@click.option("--validation-fraction", type=click.FloatRange(min=0, max=1, max_open=True), default=0.1,
              help="Share of problems held out (seeded, whole problems).")
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.0)
@click.option("--max-grad-norm", type=click.FloatRange(min=0), default=1.0, help="Gradient clipping (0: off).")
@click.option("--gradient-accumulation", type=click.IntRange(min=1), default=1)
@click.option("--pairs-language", default=None, help="Language of pair files that name none (e.g. PIE splits).")
@click.option("--device", default="auto", help="auto, cpu or cuda (several GPUs: accelerate launch).")
@click.option("--dtype", default="auto", help="auto (bf16 on GPU, fp32 on CPU), float32, bfloat16, float16.")
@click.option("--overwrite", is_flag=True, help="Delete a previous run in --out instead of resuming it.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")
@threads_option
def tune(model: str, pairs_option: tuple[Path, ...], more_pairs: tuple[Path, ...], train_set: str, loss: str, epochs: int,
         out: Path, lr: float, batch_size: int, negatives: int, max_length: int, seed: int, virtual_tokens: int | None,
         init_text: str, margin: float, temperature: float, validation_fraction: float, weight_decay: float,
         max_grad_norm: float, gradient_accumulation: int, pairs_language: str | None, device: str, dtype: str,
         overwrite: bool, progress: bool | None, threads: int | None) -> None:
    """Train an efficiency soft prompt (Contrastive Prompt Tuning) on efficient/inefficient program pairs.

    Under `accelerate launch -m greencoder tune ...` the same command trains on several GPUs or machines."""
    count = prepare_threads(threads)
    pairs = [*pairs_option, *more_pairs]
    if not pairs:
        raise InputError("no pair files given: pass --pairs FILE [FILE ...]")
    from greencoder.core.quiet import silence_libraries
    from greencoder.tuning.report import render_summary
    from greencoder.tuning.trainer import TuneSettings, tune as run_tuning

    silence_libraries()
    settings = TuneSettings(
        model=model, pairs=tuple(str(p) for p in pairs), out=str(out), train_set=train_set, loss=loss, epochs=epochs,
        lr=lr, batch_size=batch_size, negatives=negatives, max_length=max_length, seed=seed,
        virtual_tokens=virtual_tokens, init_text=init_text, margin=margin, temperature=temperature,
        validation_fraction=validation_fraction, weight_decay=weight_decay, max_grad_norm=max_grad_norm or None,
        gradient_accumulation=gradient_accumulation, pairs_language=pairs_language, device=device, dtype=dtype,
        overwrite=overwrite,
    )
    outcome = run_tuning(settings, count, log=lambda line: click.echo(f"greencoder: {line}", err=True), progress=progress)
    if outcome.is_main:
        click.echo(render_summary(outcome))


def _split_list(values: tuple[str, ...], allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    """Repeated and comma-separated values, checked and in a fixed order."""
    chosen = [item.strip().lower() for value in values for item in value.split(",") if item.strip()]
    for item in chosen:
        if item not in allowed:
            raise InputError(f"{option} {item!r}: choose from {', '.join(allowed)}")
    return tuple(a for a in allowed if a in chosen) or allowed


@cli.command(context_settings={"show_default": True})
@click.option("--model", default=None, help="Base model (HF id or folder); not needed for --variant canonical or --generations. "
              "With --backend openai: the endpoint's model name (default: the one it lists).")
@click.option("--variant", "variants", multiple=True,
              help="baseline, instruction, canonical, NAME=ADAPTER, or 'NAME=RUN/epoch-*' (every epoch of a tune run, "
                   "as NAME-ep:N; quote it) (repeatable; default: baseline and instruction).")
@click.option("--instruction", is_flag=True, help="Also run every adapter variant with the efficiency instruction.")
@click.option("--benchmark", "benchmarks", multiple=True, help="humaneval-x, leetcode-hard (repeatable or comma-separated; default: both).")
@click.option("--language", "languages", multiple=True, help="cpp, java, python (repeatable or comma-separated; default: all).")
@click.option("--data", "data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder holding humaneval_x/ and leetcode_hard/ (e.g. ../shared/data).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Results folder (resumed if it exists).")
@click.option("--measure", is_flag=True, help="Also measure energy and time of tasks correct in baseline and variant.")
@click.option("--generations", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Score generations produced elsewhere (a generations.jsonl) instead of generating.")
@click.option("--workers", type=click.IntRange(min=1), default=1, help="Parallel correctness checks.")
@click.option("--shard", default=None, help="I/N: this machine's share of generation and correctness.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N tasks per benchmark and language.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=512)
@click.option("--device", default="auto")
@click.option("--dtype", default="auto")
@click.option("--runs", type=click.IntRange(min=1), default=10, help="Measured runs per program.")
@click.option("--min-seconds", type=click.FloatRange(min=0), default=5.0, help="Each measured run lasts at least this long.")
@click.option("--cooldown", type=click.FloatRange(min=0), default=5.0, help="Seconds of rest before each measured run.")
@click.option("--baseline-seconds", type=click.FloatRange(min=0), default=5.0, help="Idle baseline (hardware meters).")
@click.option("--alpha", type=click.FloatRange(min=0, max=1, min_open=True, max_open=True), default=0.005)
@click.option("--meter", default="auto", help="auto, rapl, perf, nvml, powermetrics or estimate.")
@click.option("--watts-per-core", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option("--unsafe-no-sandbox", is_flag=True, help="Run generated code even where no sandbox is available.")
@click.option("--progress/--no-progress", default=None, help="Progress bars (default: when stderr is a terminal).")
@click.option("--backend", type=click.Choice(["local", "openai"]), default="local",
              help="Generate with the local model, or with the OpenAI-compatible server at --endpoint.")
@endpoint_options
@click.option("--batch-size", type=click.IntRange(min=1), default=1, help="Prompts per batch (local backend).")
@click.option("--concurrency", type=click.IntRange(min=1), default=4, help="Requests in flight at once (openai backend).")
@click.argument("stray", nargs=-1, metavar="")
@threads_option
@weak_sandbox_option
def evaluate(model, variants, instruction, benchmarks, languages, data, out, measure, generations, workers, shard, limit,
             max_new_tokens, device, dtype, runs, min_seconds, cooldown, baseline_seconds, alpha, meter, watts_per_core,
             unsafe_no_sandbox, progress, backend, endpoint, api_key_env, endpoint_prompt_embeds, request_timeout,
             retries, batch_size, concurrency, stray, threads) -> None:
    """Generate, score (pass@1), measure and tabulate the paper's benchmark comparisons.

    Under `torchrun` or `accelerate launch -m greencoder evaluate ...` the processes share out the
    generation (one GPU each where there are GPUs); the first writes the results and the report."""
    if stray:
        raise InputError(f"unexpected argument{'s' if len(stray) > 1 else ''} {' '.join(stray)}: if the shell expanded an "
                         "epoch pattern, quote it (--variant 'NAME=RUN/epoch-*') so greencoder sees the pattern")
    from greencoder.evaluation.distributed import ProcessContext

    context = ProcessContext.from_environment()
    count = prepare_threads(threads or context.default_threads())
    from greencoder.core.quiet import silence_libraries
    from greencoder.evaluation.pipeline import EvaluateSettings, evaluate as run_evaluation, parse_shard
    from greencoder.evaluation.tasks import BENCHMARKS, LANGUAGES

    silence_libraries()
    settings = EvaluateSettings(
        out=str(out), data=str(data) if data else None, model=model, variants=variants, instruction=instruction,
        benchmarks=_split_list(benchmarks, BENCHMARKS, "--benchmark"), languages=_split_list(languages, LANGUAGES, "--language"),
        generations=str(generations) if generations else None, workers=workers, shard=parse_shard(shard), limit=limit,
        max_new_tokens=max_new_tokens, device=device, dtype=dtype, measure=measure, meter=meter, watts_per_core=watts_per_core,
        runs=runs, min_seconds=min_seconds, cooldown_seconds=cooldown, baseline_seconds=baseline_seconds, alpha=alpha,
        unsafe_no_sandbox=unsafe_no_sandbox, backend=backend, endpoint=endpoint, api_key_env=api_key_env,
        batch_size=batch_size, concurrency=concurrency, request_timeout=request_timeout,
        retries=retries, endpoint_prompt_embeds=endpoint_prompt_embeds,
    )
    if endpoint and backend != "openai":
        raise InputError("--endpoint needs --backend openai")
    outcome = run_evaluation(settings, count, log=lambda line: click.echo(f"greencoder: {line}", err=True),
                             progress=progress, warn=warn, context=context)
    if not outcome.is_main:
        return
    for note in outcome.notes:
        warn(note)
    click.echo((outcome.report_dir / "report.md").read_text())
    click.echo(f"raw results: {outcome.out}; tables and plots: {outcome.report_dir}")


@cli.command(context_settings={"show_default": True})
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--epochs", type=click.Choice(["all", "best", "validation"]), default="all",
              help="Rows for variants evaluated at several epochs (NAME-ep:N): every epoch; the best by benchmark "
                   "pass@1, as the paper chose (optimistic: chosen on the test set); or the one tune chose on validation.")
@debug_option
def report(directory: Path, epochs: str) -> None:
    """Regenerate Tables 4 and 5 (Markdown, CSV, JSON) and the plots from DIRECTORY's raw results."""
    from greencoder.evaluation.report import write_report

    folder = write_report(directory, epochs=epochs)
    click.echo((folder / "report.md").read_text())
    click.echo(f"written: {', '.join(sorted(p.name for p in folder.iterdir()))} in {folder}")


@cli.command(context_settings={"show_default": True})
@click.option("--model", default=None, help="Base model (default: Qwen/Qwen2.5-Coder-0.5B, tiny fallback offline). "
              "With --endpoint: the endpoint's model (default: the one it lists), whose tokenizer builds prompts.")
@click.option("--adapter", default=None, help="Efficiency soft prompt (adapter folder or tune run folder).")
@click.option("--device", default="auto")
@click.option("--dtype", default="auto")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=128)
@click.option("--context-tokens", type=click.IntRange(min=16), default=1024)
@click.option("--debounce-ms", type=click.IntRange(min=0), default=None,
              help="Fixed wait after the last keystroke; default: adapt to the typist.")
@click.option("--on-battery", type=click.Choice(["keep", "reduce", "explicit"]), default="reduce", show_default=True,
              help="On battery: keep going, reduce (longer wait, one line, fewer tokens), or only when asked.")
@click.option("--instruction", is_flag=True, help="Put the efficiency instruction before the editor context.")
@click.option("--meter", default="auto", help="Energy meter for completion costs and measurements.")
@click.option("--tcp", default=None, metavar="HOST:PORT", help="Listen on TCP instead of stdio.")
@endpoint_options
@threads_option
@weak_sandbox_option
def serve(model, adapter, device, dtype, max_new_tokens, context_tokens, debounce_ms, on_battery, instruction, meter, tcp,
          endpoint, api_key_env, endpoint_prompt_embeds, request_timeout, retries, threads) -> int:
    """Run the language server (stdio by default). These options are defaults; editor settings override them."""
    count = prepare_threads(threads)
    from greencoder.core.quiet import silence_libraries
    from greencoder.server.server import build_server
    from greencoder.server.settings import ServerSettings
    from greencoder.server.transport import serve_stdio, serve_tcp

    silence_libraries()  # stdout carries the protocol only
    defaults = ServerSettings(model=model, adapter=adapter, device=device, dtype=dtype, threads=count,
                              max_new_tokens=max_new_tokens, context_tokens=context_tokens, debounce_ms=debounce_ms,
                              on_battery=on_battery,
                              instruction=instruction, meter=meter)
    shared = None
    if endpoint:  # completions from a shared inference server; --model names its model (and tokenizer)
        from greencoder.core.backends.openai import EndpointSettings, read_api_key

        shared = EndpointSettings(endpoint, api_key_env, None, 1, request_timeout, retries,
                                  prompt_embeds=endpoint_prompt_embeds)
        read_api_key(api_key_env)  # a missing key is one line now, not a failed load later
    elif api_key_env or endpoint_prompt_embeds:
        raise InputError("--api-key-env and --endpoint-prompt-embeds need --endpoint URL")
    server = build_server(defaults, shared)
    if tcp:
        host, _, port = tcp.rpartition(":")
        if not host or not port.isdigit():
            raise InputError(f"--tcp {tcp!r}: use HOST:PORT, e.g. 127.0.0.1:2087")
        return serve_tcp(server, host, int(port))
    return serve_stdio(server)


def launched_rank() -> int:
    """This process's rank under torchrun / accelerate launch (0 when not launched or unreadable)."""
    try:
        return int(os.environ.get("RANK", "0") or 0)
    except ValueError:
        return 0


def main(argv: list[str] | None = None) -> int:
    """Console entry point: run the CLI, turning expected errors into one line and an exit status."""
    try:
        result = cli.main(args=argv, prog_name="greencoder", standalone_mode=False)
    except GreencoderError as exc:
        if _state["debug"]:
            traceback.print_exc()
        rank = launched_rank()
        if rank and isinstance(exc, InputError):
            return 1  # every process of a launched run checks the same input: the first says what is wrong
        click.echo(f"greencoder: error{f' (process {rank})' if rank else ''}: {exc}", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("greencoder: aborted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("greencoder: interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
