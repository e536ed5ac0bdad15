"""The OpenAI backend against a real server: `transformers serve` running the tiny model on loopback.

End to end (generate -> score -> report) through `greencoder evaluate --backend openai`, the same
generations as the local backend gives, a soft prompt refused by an endpoint without embeddings,
and a dead endpoint mid-run that a re-run of the same command resumes with no line lost or doubled.
Starting the server costs seconds, so these are in the slow set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from endpoint_support import DyingProxy, free_port, transformers_serve

from conftest import SHARED_DATA
from greencoder.core.backends import BackendError

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (SHARED_DATA / "humaneval_x").is_dir(), reason="shared benchmark data missing")]
QUIET = lambda line: None


@pytest.fixture(scope="module")
def endpoint(tiny_model_dir, tmp_path_factory):
    pytest.importorskip("fastapi", reason="needs the transformers[serving] extra")
    with transformers_serve(tiny_model_dir, tmp_path_factory.mktemp("serve") / "serve.log") as url:
        yield url


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def settings(out: Path, **overrides):
    from greencoder.evaluation.pipeline import EvaluateSettings

    values = dict(out=str(out), data=str(SHARED_DATA), variants=("baseline",), benchmarks=("humaneval-x",),
                  languages=("python",), limit=2, max_new_tokens=32, device="cpu", backend="openai", concurrency=2)
    return EvaluateSettings(**{**values, **overrides})


def test_evaluate_through_the_endpoint_end_to_end_matches_local_generation(endpoint, tiny_model_dir, tmp_path):
    from greencoder.evaluation.pipeline import evaluate

    remote = evaluate(settings(tmp_path / "remote", endpoint=endpoint), threads=1, log=QUIET, progress=False)
    local = evaluate(settings(tmp_path / "local", backend="local", model=str(tiny_model_dir)), threads=1, log=QUIET,
                     progress=False)
    assert remote.generated == local.generated == 2 and remote.scored == 2
    records = sorted(lines(tmp_path / "remote" / "generations.jsonl"), key=lambda r: r["task_id"])
    reference = sorted(lines(tmp_path / "local" / "generations.jsonl"), key=lambda r: r["task_id"])
    for record, expected in zip(records, reference, strict=True):
        assert record["backend"] == "openai" and record["endpoint"] == endpoint
        assert record["energy"] is None and "not measured here" in record["energy_note"]
        assert record["endpoint_reported"]["usage"]["completion_tokens"] == record["new_tokens"] > 0
        assert record["model"] == str(tiny_model_dir)
        # greedy float32 on the same weights: the same tokens, the same cut, the same cleaned solution
        assert (record["raw"], record["cleaned"], record["prompt_tokens"]) == \
            (expected["raw"], expected["cleaned"], expected["prompt_tokens"])
    assert len(lines(tmp_path / "remote" / "correctness.jsonl")) == 2
    report = (remote.report_dir / "report.md").read_text()
    assert "not measured here (endpoint)" in report


def test_a_soft_prompt_is_refused_before_any_generation(endpoint, tiny_model_dir, tiny_adapter_dir, tmp_path):
    from greencoder.evaluation.pipeline import evaluate

    variants = ("baseline", f"cpt={tiny_adapter_dir}")
    with pytest.raises(BackendError, match="not declared"):  # not declared: refused without asking the endpoint
        evaluate(settings(tmp_path / "a", endpoint=endpoint, variants=variants), threads=1, log=QUIET, progress=False)
    assert not (tmp_path / "a" / "generations.jsonl").exists()
    declared = settings(tmp_path / "b", endpoint=endpoint, variants=("cpt=" + str(tiny_adapter_dir),),
                        model=str(tiny_model_dir), endpoint_prompt_embeds=True)
    with pytest.raises(BackendError, match="does not accept prompt embeddings") as caught:  # the probe: HTTP 422
        evaluate(declared, threads=1, log=QUIET, progress=False)
    assert "\n" not in str(caught.value)
    assert [r["variant"] for r in lines(tmp_path / "b" / "generations.jsonl")] == ["baseline"] * 2


def test_a_dead_endpoint_mid_run_keeps_every_finished_line_and_the_same_command_resumes(endpoint, tmp_path):
    from greencoder.evaluation.pipeline import evaluate

    port = free_port()
    proxy = DyingProxy(endpoint, port, completions=2)
    run = settings(tmp_path, endpoint=proxy.url, limit=5, concurrency=1, retries=1)
    with pytest.raises(BackendError) as caught:
        evaluate(run, threads=1, log=QUIET, progress=False)
    message = str(caught.value)
    assert proxy.url.removesuffix("/v1") in message and "\n" not in message
    first = (tmp_path / "generations.jsonl").read_text().splitlines()
    assert len(first) == 2
    DyingProxy(endpoint, port)  # the endpoint is back, at the same address
    outcome = evaluate(run, threads=1, log=QUIET, progress=False)
    after = (tmp_path / "generations.jsonl").read_text().splitlines()
    assert outcome.generated == 3 and after[:2] == first and len(after) == 5
    assert len({(r["variant"], r["task_id"]) for r in map(json.loads, after)}) == 5
    assert len(lines(tmp_path / "correctness.jsonl")) == 5
