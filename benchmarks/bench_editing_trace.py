"""An editing trace replayed through the language server in-process: all reuse off vs on.

    cd REPO && PYTHONPATH=. GREENCODER_THREADS=1 nice -n 10 .venv/bin/python benchmarks/bench_editing_trace.py \
        [--quick] [--model tiny|qwen-shape|both|DIR] [--characters N] [--new-tokens N] [--seed N]

The server is the real `GreencoderLanguageServer` (built by `build_server`), driven through its
handlers as an editor drives it: for every keystroke the document changes (pygls' workspace update,
then the `didChange` handler), the editor cancels its previous inline-completion request if it is
still open (as `$/cancelRequest` does: the handler's task is cancelled) and sends a new one
(`textDocument/inlineCompletion`). Accepts run the accept command, partial accepts send
`greencoder/didPartiallyAcceptCompletion`. The ledger's `greencoder/ledger` notifications go to a sink.

The trace: a real source file (HumanEval-X Python solutions from ../shared/data joined into one
module, as in bench_prefix_cache.py), typed character by character from the start of one solution
with the rest of the module below the cursor, with human-like gaps (log-normal, median 0.12 s),
and, decided by a seeded random generator independent of the model's text:
- pauses (after about half the line ends, and after 40 characters without one): the user waits for
  the suggestion, then reads it for 1-2 s; the latency after a pause is from the last keystroke to
  the answer. After a pause the user in turn does nothing, accepts the suggestion whole (the accept
  command), accepts its first word (a partial accept), or types its first 4 characters by hand;
- hesitations: a 0.5 s gap (longer than the debounce, so a generation starts), after which the user
  types 5 characters of what that generation will suggest (kept running only for characters it has
  already written when they are typed): the user had in mind what the model
  predicts, as happens with a good model (these random models cannot predict source code, so the
  benchmark asks an untimed second copy of the model, which costs the server nothing: its thread's
  CPU time is taken out of the server's, and the virtual clock stands still meanwhile);
- an edit above the cursor (a comment line inserted three lines up) every 60 characters.

Time: the debounce waits on a virtual clock, and idle time (gaps while the model is not working)
is skipped, while time the model spends generating passes for real, so keystrokes arriving during a
generation arrive while it runs, as they would. "Reuse off" turns all reuse off: the runtime's prefix
cache, typed-ahead answers and adopting a running generation, with the same (adaptive) debounce.

Models: (a) the tiny test model; (b) random weights in Qwen2.5-Coder-0.5B's real shape (24 layers,
hidden 896, 14 heads, 2 KV heads, intermediate 4864, vocabulary 151,936; built as
bench_prefix_cache.py builds it): its speed is the real model's, its text is noise.

Printed, off vs on with ratios: tokens prefilled, tokens generated, generations started and
cancelled, answers typed ahead and adopted, CPU seconds of the server, p50/p95 latency after a pause,
joules per accepted character (estimated from CPU time x 12 W per core: labelled "estimated"), and
whether the suggestions after pauses were identical. No assertions: figures for reading.
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import itertools
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_prefix_cache import benchmark_models, source_module

URI = "file:///trace/module.py"
EDIT_LINE = "# reviewed\n"
WATTS_PER_CORE = 12.0


# ---------------------------------------------------------------------------- virtual time

class TrackingExecutor(ThreadPoolExecutor):
    """The server's generation worker, telling the clock whether the model is working."""

    def __init__(self) -> None:
        super().__init__(max_workers=1, thread_name_prefix="greencoder-generate")
        self.pending: set = set()

    def submit(self, fn, /, *args, **kwargs):
        future = super().submit(fn, *args, **kwargs)
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)
        return future


class VirtualClock:
    """Real time while the model works, skipped while it does not; timers (the debounce) fire in order."""

    def __init__(self, executor: TrackingExecutor) -> None:
        self.offset = 0.0
        self.executor = executor
        self._timers: list[tuple[float, int, asyncio.Future]] = []
        self._sequence = itertools.count()

    def now(self) -> float:
        return time.monotonic() + self.offset

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now() + seconds, next(self._sequence), future))
        await future

    def freeze(self, real_seconds: float) -> None:
        """Take `real_seconds` (spent outside the server) off the clock."""
        self.offset -= real_seconds

    async def run(self, until: float | None = None, task: asyncio.Future | None = None) -> None:
        """Let the server work until virtual time `until`, or until `task` is done."""
        idle_turns = 0
        while True:
            for _ in range(8):
                await asyncio.sleep(0)  # let woken handlers run to their next wait
            if task is not None and task.done():
                return
            now = self.now()
            if until is not None and now >= until:
                return
            while self._timers and self._timers[0][2].done():
                heapq.heappop(self._timers)
            next_timer = self._timers[0][0] if self._timers else None
            horizon = min((t for t in (until, next_timer) if t is not None), default=None)
            busy = [asyncio.wrap_future(f) for f in list(self.executor.pending)]
            if busy:
                waits = busy + ([task] if task is not None else [])
                timeout = None if horizon is None else max(0.0, horizon - now)
                await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            elif horizon is not None:
                self.offset += max(0.0, horizon - now)
            else:
                idle_turns += 1
                if idle_turns > 1000:
                    raise RuntimeError("the trace waits for a request that nothing will answer")
                await asyncio.sleep(0)
                continue
            while self._timers and self._timers[0][0] <= self.now():
                _, _, future = heapq.heappop(self._timers)
                if not future.done():
                    future.set_result(None)


# ---------------------------------------------------------------------------- the editor

class Recording:
    """The runtime the server is given, keeping each generation's result (for the breakdown)."""

    def __init__(self, runtime) -> None:
        self._runtime = runtime
        self.results: list = []

    def __getattr__(self, name):
        return getattr(self._runtime, name)

    def generate(self, *args, **kwargs):
        result = self._runtime.generate(*args, **kwargs)
        self.results.append(result)
        return result


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    pause_answers: list[str] = field(default_factory=list)
    cpu: float = 0.0
    virtual_seconds: float = 0.0
    report: dict = field(default_factory=dict)
    hesitations: int = 0
    oracle_cpu: float = 0.0
    generations: list = field(default_factory=list)

    def breakdown(self) -> str:
        """Prompt tokens read per generation, for those that ran to the end and those stopped early."""
        parts = []
        for name, chosen in (("finished", [g for g in self.generations if g.stop_reason != "cancelled"]),
                             ("stopped early", [g for g in self.generations if g.stop_reason == "cancelled"])):
            if chosen:
                parts.append(f"{len(chosen)} {name}: {sum(g.prefill_tokens for g in chosen) / len(chosen):.0f} "
                             f"prefilled + {sum(g.reused_tokens for g in chosen) / len(chosen):.0f} reused, "
                             f"{sum(g.new_tokens for g in chosen) / len(chosen):.1f} generated each")
        return "; ".join(parts)


class Editor:
    """One document in an editor talking to the in-process server."""

    def __init__(self, ls, clock: VirtualClock, text: str, cursor: int) -> None:
        from lsprotocol import types

        self.ls, self.clock, self.text, self.cursor, self.version = ls, clock, text, cursor, 1
        ls.workspace.put_text_document(types.TextDocumentItem(uri=URI, language_id="python", version=1, text=text))
        self.pending: asyncio.Task | None = None
        self.asked_at = 0.0
        self.answer = None

    def position(self, offset: int):
        from lsprotocol import types

        line = self.text.count("\n", 0, offset)
        start = self.text.rfind("\n", 0, offset) + 1
        return types.Position(line=line, character=len(self.text[start:offset].encode("utf-16-le")) // 2)

    def insert(self, at: int, new: str) -> None:
        """An edit: the workspace update pygls does, then the server's didChange handler."""
        from lsprotocol import types

        from greencoder.server.server import did_change

        position = self.position(at)
        self.version += 1
        params = types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=self.version),
            content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=position, end=position),
                                                                   text=new)])
        for change in params.content_changes:
            self.ls.workspace.update_text_document(params.text_document, change)
        self.text = self.text[:at] + new + self.text[at:]
        if at <= self.cursor:
            self.cursor += len(new)
        did_change(self.ls, params)

    def request(self) -> None:
        """Cancel the open request ($/cancelRequest), ask for an inline completion at the cursor."""
        from lsprotocol import types

        from greencoder.server.server import inline_completion

        if self.pending is not None and not self.pending.done():
            self.pending.cancel()
        self.answer = None
        params = types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=self.position(self.cursor),
            context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Automatic))
        self.asked_at = self.clock.now()
        self.pending = asyncio.ensure_future(inline_completion(self.ls, params))
        self.pending.add_done_callback(self._answered)

    def _answered(self, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        items = task.result().items
        self.answer = items[0] if items else None

    def type(self, characters: str) -> None:
        self.insert(self.cursor, characters)
        self.request()

    def accept(self, whole: bool) -> int:
        """Accept the suggestion on screen (whole: the command; else its first word); characters inserted."""
        from greencoder.server.server import accept_suggestion, partially_accepted

        item = self.answer
        if item is None or item.command is None:
            return 0
        text = str(item.insert_text)
        suggestion_id, start = item.command.arguments
        if whole:
            taken = text
            self.type(taken)
            accept_suggestion(self.ls, suggestion_id, start)
        else:
            stripped = text.lstrip()
            word_end = len(text) - len(stripped) + next((i for i, c in enumerate(stripped) if c in " (.:\n"), len(stripped))
            taken = text[:max(1, word_end)]
            self.type(taken)
            partially_accepted(self.ls, {"suggestionId": suggestion_id, "acceptedLength": start + len(taken),
                                         "itemStart": start})
        return len(taken)


# ---------------------------------------------------------------------------- the trace

def human_gap(rng: random.Random) -> float:
    return min(0.45, max(0.05, rng.lognormvariate(-2.12, 0.35)))  # median ~0.12 s


async def replay(ls, oracle, clock: VirtualClock, module: str, start: int, characters: int, seed: int) -> Tally:
    from greencoder.core.languages import PYTHON
    from greencoder.server.completions import CursorRequest
    from pygls.workspace import PositionCodec

    rng = random.Random(seed)
    editor = Editor(ls, clock, module, start)
    source = module[start:start + characters]
    tally = Tally()
    after_pause = itertools.cycle(["nothing", "accept", "word", "type along"])
    since_pause = since_edit = 0
    cpu_start, virtual_start = time.process_time(), clock.now()

    async def pause() -> None:
        await clock.run(task=editor.pending)
        tally.latencies.append(clock.now() - editor.asked_at)
        tally.pause_answers.append(str(editor.answer.insert_text) if editor.answer is not None else "")
        await clock.run(until=clock.now() + rng.uniform(1.0, 2.0))

    async def type_text(text: str) -> None:
        for character in text:
            editor.type(character)
            await clock.run(until=clock.now() + human_gap(rng))

    for index, character in enumerate(source):
        editor.type(character)
        since_pause += 1
        since_edit += 1
        if since_edit >= 60:
            since_edit = 0
            lines_above = editor.text[:editor.cursor].split("\n")
            at = len("\n".join(lines_above[:-3])) + 1 if len(lines_above) > 3 else 0
            await clock.run(until=clock.now() + human_gap(rng))
            editor.insert(at, EDIT_LINE)
            editor.request()
        if (character == "\n" and rng.random() < 0.5) or since_pause >= 40:
            since_pause = 0
            await pause()
            action = next(after_pause)
            if action in ("accept", "word"):
                if editor.accept(whole=action == "accept"):
                    await clock.run(until=clock.now() + human_gap(rng))
            elif action == "type along" and editor.answer is not None:
                await type_text(str(editor.answer.insert_text)[:4])
        elif index % 37 == 18:  # a hesitation, then the characters the model will suggest here
            real = time.monotonic()  # asked before the hesitation, with the clock standing still
            request = CursorRequest(URI, editor.text, *_line_character(editor.text, editor.cursor), PositionCodec(), PYTHON)
            predicted, oracle_cpu = await asyncio.get_running_loop().run_in_executor(None, _oracle_text, oracle, request)
            tally.oracle_cpu += oracle_cpu
            clock.freeze(time.monotonic() - real)
            tally.hesitations += 1
            await clock.run(until=clock.now() + 0.5)
            await type_text(predicted[:5])
        else:
            await clock.run(until=clock.now() + human_gap(rng))
    await pause()
    tally.cpu = time.process_time() - cpu_start - tally.oracle_cpu
    tally.virtual_seconds = clock.now() - virtual_start
    tally.report = ls.ledger.report()
    return tally


def _line_character(text: str, offset: int) -> tuple[int, int]:
    start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset), len(text[start:offset].encode("utf-16-le")) // 2


def _oracle_text(oracle, request) -> tuple[str, float]:
    """What the model suggests at `request` (an untimed copy: its CPU is not the server's)."""
    from dataclasses import replace

    from greencoder.server.cancellation import CancelToken
    from greencoder.server.documents import offset_at

    cpu = time.thread_time()
    service, runtime, settings = oracle
    request = replace(request, offset=offset_at(request.text, request.line, request.character, request.codec))
    suggestion = service._generate(runtime, request, settings, CancelToken())
    return (suggestion.text if suggestion is not None else ""), time.thread_time() - cpu


# ---------------------------------------------------------------------------- server setup and report

def serve(runtime, settings, clock: VirtualClock, reuse: bool):
    from lsprotocol import types

    from greencoder.server.documents import LspWorkspace
    from greencoder.server.server import build_server
    from greencoder.server.typing_rhythm import TypingRhythm

    ls = build_server(settings)
    ls.loop = asyncio.get_running_loop()
    ls.protocol.set_writer(type("Sink", (), {"write": lambda self, data: None, "close": lambda self: None})())
    ls.protocol._workspace = LspWorkspace(None, types.TextDocumentSyncKind.Incremental)
    ls.protocol.client_capabilities = types.ClientCapabilities()  # what `initialize` would set
    service = ls.completions
    service.reuse, service.sleep, service.rhythm, service._executor = reuse, clock.sleep, TypingRhythm(clock.now), clock.executor
    ls.host.loader = lambda _settings, _warn: runtime
    ls.start_loading()
    ls.host.wait()
    return ls


async def run_mode(runtime, oracle, settings, reuse: bool, module: str, start: int, characters: int, seed: int) -> Tally:
    executor = TrackingExecutor()
    clock = VirtualClock(executor)
    recording = Recording(runtime)
    ls = serve(recording, settings, clock, reuse)
    try:
        tally = await replay(ls, oracle, clock, module, start, characters, seed)
        tally.generations = recording.results
        return tally
    finally:
        executor.shutdown(wait=True)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def print_report(label: str, off: Tally, on: Tally) -> None:
    def joules_per_char(tally: Tally) -> float | None:
        chars = tally.report["charactersAccepted"]
        return tally.cpu * WATTS_PER_CORE / chars if chars else None

    rows = [
        ("tokens prefilled", off.report["prefillTokens"], on.report["prefillTokens"], "d"),
        ("tokens generated", off.report["completionTokens"], on.report["completionTokens"], "d"),
        ("generations started", off.report["completions"], on.report["completions"], "d"),
        ("  of them cancelled", off.report["cancelled"], on.report["cancelled"], "d"),
        ("answers typed ahead", off.report["typedAhead"], on.report["typedAhead"], "d"),
        ("answers adopted", off.report.get("adoptedInFlight", 0), on.report.get("adoptedInFlight", 0), "d"),
        ("server CPU seconds", off.cpu, on.cpu, ".1f"),
        ("p50 latency after pause s", statistics.median(off.latencies), statistics.median(on.latencies), ".2f"),
        ("p95 latency after pause s", percentile(off.latencies, 0.95), percentile(on.latencies, 0.95), ".2f"),
        ("characters accepted", off.report["charactersAccepted"], on.report["charactersAccepted"], "d"),
        ("J/accepted char (est.)", joules_per_char(off) or 0.0, joules_per_char(on) or 0.0, ".3f"),
        ("trace seconds (virtual)", off.virtual_seconds, on.virtual_seconds, ".0f"),
    ]
    print(f"\n{label}")
    print(f"  {'':28} {'reuse off':>12} {'reuse on':>12} {'off/on':>9}")
    for name, a, b, fmt in rows:
        print(f"  {name:28} {a:>12{fmt}} {b:>12{fmt}} {ratio(a, b):>9}")
    same = sum(a == b for a, b in zip(off.pause_answers, on.pause_answers, strict=False))
    total = max(len(off.pause_answers), len(on.pause_answers))
    verdict = "yes" if same == total and len(off.pause_answers) == len(on.pause_answers) else "NO"
    print(f"  suggestions after pauses identical: {verdict} ({same}/{total}); J/accepted char is estimated: "
          f"server CPU seconds x {WATTS_PER_CORE:g} W per core / characters accepted")
    print(f"  ledger's estimated J per accepted character: off {off.report['joulesPerAcceptedCharacter']}, "
          f"on {on.report['joulesPerAcceptedCharacter']}")
    if verdict == "NO":
        for index, (a, b) in enumerate(zip(off.pause_answers, on.pause_answers, strict=False)):
            if a != b:
                # a typed-ahead answer is the rest of an earlier suggestion: shorter than a fresh one
                kind = ("on's answer is the start of off's" if a.startswith(b) else
                        "off's answer is the start of on's" if b.startswith(a) else "they differ")
                print(f"    pause {index + 1}: {kind}: off {a[:60]!r} vs on {b[:60]!r}")


def bench_model(label: str, path: Path, args) -> None:
    from greencoder.core.model_loading import ModelSettings
    from greencoder.core.runtime import Runtime
    from greencoder.server.completions import CompletionService, MeterChoice
    from greencoder.server.ledger import EnergyLedger
    from greencoder.server.settings import ServerSettings

    from greencoder.core.meters import select_meter

    base = Runtime.load(ModelSettings(str(path), device="cpu"), threads=1)
    _decodable(base)
    select_meter("estimate", watts_per_core=WATTS_PER_CORE, gpu_workload=True)  # validated once, before both runs
    characters = args.characters or (80 if args.quick else 240)
    settings = ServerSettings(model=str(path), device="cpu", threads=1, max_new_tokens=args.new_tokens,
                              meter="estimate", watts_per_core=WATTS_PER_CORE, on_battery="keep")
    module, start, _ = source_module()
    oracle_runtime = Runtime(base.loaded, base.threads, reuse=False)
    oracle_service = CompletionService(type("Host", (), {"runtime": oracle_runtime})(), EnergyLedger(), lambda: settings,
                                       lambda: MeterChoice("estimate", WATTS_PER_CORE))
    oracle = (oracle_service, oracle_runtime, settings)
    print(f"\n=== {label}: {characters} characters typed, maxNewTokens {args.new_tokens}, context "
          f"{settings.context_tokens} tokens, adaptive debounce, seed {args.seed} ===", flush=True)
    tallies = {}
    for reuse in (False, True):  # off first: a cold start would only flatter "on"
        runtime = Runtime(base.loaded, base.threads, reuse=reuse)
        _warm(runtime)
        tallies[reuse] = asyncio.run(run_mode(runtime, oracle, settings, reuse, module, start, characters, args.seed))
        tally = tallies[reuse]
        print(f"  reuse {'on' if reuse else 'off'}: {len(tally.latencies)} pauses, {tally.hesitations} hesitations, "
              f"{tally.cpu:.1f} s server CPU; latencies after pauses (s): "
              f"{' '.join(f'{x:.2f}' for x in tally.latencies)}\n    generations: {tally.breakdown()}", flush=True)
    print_report(f"{label}: reuse off vs on (off: no prefix cache, no typed-ahead answers, no adoption)",
                 tallies[False], tallies[True])


def _decodable(runtime) -> None:
    """The real-shape model's vocabulary (151,936) is far larger than the stand-in tokenizer's, so its
    random argmax is almost always an id that decodes to nothing: empty suggestions, nothing to type
    along or accept. Zero the (tied) embedding rows past the tokenizer: same shape and speed,
    decodable noise."""
    import torch

    weight = runtime.base_model.get_input_embeddings().weight
    known = len(runtime.tokenizer)
    if weight.shape[0] > known:
        with torch.no_grad():
            weight[known:] = 0
        print(f"  (embedding rows {known}..{weight.shape[0] - 1} zeroed: the model writes only ids the tokenizer "
              f"decodes; the output head is tied: "
              f"{runtime.base_model.get_output_embeddings().weight.data_ptr() == weight.data_ptr()})")


def _warm(runtime) -> None:
    """One tiny generation, so one-time costs (first forward, allocator) fall outside the trace."""
    from greencoder.core.completion import CompletionSettings, complete_at
    from greencoder.core.languages import PYTHON

    complete_at(runtime, "def f(x):\n    return", 20, PYTHON, CompletionSettings(max_new_tokens=1), cache_key="warmup")
    if runtime.prefix_cache is not None:
        runtime.discard_cached("warmup")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="both", help="tiny, qwen-shape, both, or a model folder")
    parser.add_argument("--quick", action="store_true", help="CI size: 80 characters, the tiny model only")
    parser.add_argument("--characters", type=int, help="characters of source typed (default 240; --quick 80)")
    parser.add_argument("--new-tokens", type=int, default=16, help="maxNewTokens of the server (default 16)")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    if args.quick and args.model == "both":
        args.model = "tiny"
    os.environ.setdefault("GREENCODER_THREADS", "1")
    from greencoder.core.quiet import silence_libraries

    silence_libraries()
    threading.current_thread().name = "bench"
    with tempfile.TemporaryDirectory(prefix="greencoder-trace-") as folder:
        for label, path in benchmark_models(args.model, Path(folder)):
            bench_model(label, path, args)


if __name__ == "__main__":
    main()
