"""The local backend and `generate_variant` over the backend interface: same results as the runtime,
per-prompt errors, and every finished line kept when a backend fails part-way."""

from __future__ import annotations

import json

import pytest

from conftest import SHARED_DATA
from greencoder.core.backends import BackendError, BackendInfo, PromptOutcome
from greencoder.core.backends.local import LocalBackend
from greencoder.core.generation import GenerationOptions, GenerationResult
from greencoder.core.meters.estimate import EstimateMeter
from greencoder.evaluation.records import RecordFile
from greencoder.evaluation.variants import Variant

OPTIONS = GenerationOptions(max_new_tokens=6, stop_sequences=("\ndef",))


def test_the_local_backend_gives_what_the_runtime_gives_and_a_too_long_prompt_is_that_prompts_error(tiny_runtime):
    backend = LocalBackend(None, runtime=tiny_runtime)
    prompts = ["def add(a, b):\n", "x " * (tiny_runtime.context_tokens + 10), "def f():\n"]
    outcomes = list(backend.generate(prompts, OPTIONS))
    assert [o.index for o in outcomes] == [0, 1, 2]
    assert outcomes[0].result.text == tiny_runtime.generate(prompts[0], OPTIONS).text
    assert outcomes[1].result is None and "context" in outcomes[1].error
    info = backend.describe()
    assert info.kind == "local" and info.energy == "here" and info.device == "cpu"


class ScriptedBackend:
    """Yields the given outcomes, then raises what it is told to (a dead endpoint)."""

    def __init__(self, outcomes, failure=None, energy="elsewhere"):
        self.outcomes, self.failure, self.energy = outcomes, failure, energy

    def describe(self):
        return BackendInfo("openai" if self.energy == "elsewhere" else "local", "m", None, self.energy,
                           "http://h/v1", None, "http://h/v1")

    def generate(self, prompts, options):
        yield from self.outcomes
        if self.failure:
            raise self.failure

    def close(self):
        pass


def result(text: str) -> GenerationResult:
    return GenerationResult(text, 5, 0, 2, 0.01, 0.001, "eos")


@pytest.fixture
def tasks():
    if not (SHARED_DATA / "humaneval_x").is_dir():
        pytest.skip("shared benchmark data missing")
    from greencoder.evaluation.benchmarks import load_tasks

    return load_tasks("humaneval-x", "python", SHARED_DATA)[:3]


def test_a_failing_backend_keeps_every_finished_line(tasks, tmp_path):
    from greencoder.evaluation.generate import generate_variant

    records = RecordFile(tmp_path / "generations.jsonl")
    backend = ScriptedBackend([PromptOutcome(1, result("    return 1\n"), reported={"usage": {"completion_tokens": 2}})],
                              BackendError("endpoint http://h/v1 failed: gone"))
    with pytest.raises(BackendError):
        generate_variant(Variant("baseline"), tasks, records, backend, None, progress=False, log=lambda line: None)
    [line] = [json.loads(text) for text in (tmp_path / "generations.jsonl").read_text().splitlines()]
    assert line["task_id"] == tasks[1].task_id and line["energy"] is None and line["backend"] == "openai"
    assert line["endpoint_reported"] == {"usage": {"completion_tokens": 2}}


def test_a_prompt_error_under_the_estimate_meter_is_recorded_not_raised(tasks, tmp_path):
    """Regression: the error path closed its meter interval with empty usage, which the estimate meter
    (the default wherever no counter exists) refuses with MeterError, ending the run."""
    from greencoder.evaluation.generate import generate_variant

    records = RecordFile(tmp_path / "generations.jsonl")
    backend = ScriptedBackend([PromptOutcome(0, error="prompt too long"), PromptOutcome(2, result("    pass\n"))],
                              energy="here")
    assert generate_variant(Variant("baseline"), tasks, records, backend, EstimateMeter(1.0), progress=False,
                            log=lambda line: None) == 2
    lines = [json.loads(text) for text in (tmp_path / "generations.jsonl").read_text().splitlines()]
    assert lines[0]["error"] == "prompt too long" and lines[1]["energy"]["kind"] == "estimated"


def test_batched_local_backend_gives_the_unbatched_results_and_splits_the_cost(tiny_runtime):
    prompts = ["def add(a, b):\n", "x " * (tiny_runtime.context_tokens + 10), "def f():\n", "class A:\n    def g(self):\n"]
    alone = {o.index: o for o in LocalBackend(None, runtime=tiny_runtime).generate(prompts, OPTIONS)}
    batched = list(LocalBackend(None, batch_size=2, runtime=tiny_runtime).generate(prompts, OPTIONS))
    assert sorted(o.index for o in batched) == [0, 1, 2, 3]
    for outcome in batched:
        if outcome.index == 1:
            assert outcome.result is None and "context" in outcome.error
        else:
            assert outcome.result.text == alone[outcome.index].result.text
    assert [o.closes_interval for o in batched].count(True) == 2  # two batches of two
    assert sum(o.share for o in batched) == pytest.approx(2.0)
