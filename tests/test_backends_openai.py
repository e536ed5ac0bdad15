"""The OpenAI-compatible backend at the protocol level, against a scriptable loopback stub: retries
with backoff, timeouts, refusals, the concurrency limit, the API key, stop sequences, soft prompts.
The same backend against a real server is tests/test_backends_endpoint.py."""

from __future__ import annotations

import socket

import pytest
from openai_stub import Stub, completion

from greencoder.core.backends import BackendError, BackendSettings, check_backend, open_backend
from greencoder.core.backends.openai import EndpointSettings, OpenAIBackend
from greencoder.core.errors import InputError
from greencoder.core.generation import GenerationOptions

OPTIONS = GenerationOptions(max_new_tokens=8, stop_sequences=("\ndef",))


def backend(url: str, sleeps: list[float] | None = None, **settings) -> OpenAIBackend:
    recorded = sleeps if sleeps is not None else []
    return OpenAIBackend(EndpointSettings(url, **{"backoff_seconds": 0.5, **settings}), sleep=recorded.append)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_503_and_429_are_retried_with_exponential_backoff_then_succeed():
    replies = {1: (503, {"error": "loading"}, {}), 2: (429, {"error": "slow down"}, {"Retry-After": "0"})}
    with Stub(lambda body, n: replies.get(n) or completion("    return a + b\n")) as stub:
        sleeps: list[float] = []
        [outcome] = list(backend(stub.url, sleeps).generate(["def add(a, b):\n"], OPTIONS))
    assert outcome.result.text == "    return a + b\n" and outcome.error is None
    assert len(stub.requests) == 3 and sleeps == [0.5, 1.0]  # doubled each time
    assert outcome.reported["usage"]["completion_tokens"] == 3 and outcome.result.new_tokens == 3


def test_what_is_sent_is_greedy_with_max_tokens_stops_and_the_listed_model():
    with Stub(lambda body, n: completion("x")) as stub:
        list(backend(stub.url).generate(["p"], OPTIONS))
    [body] = stub.requests
    assert body == {"model": "stub-model", "prompt": "p", "max_tokens": 8, "temperature": 0, "stop": ["\ndef"]}


def test_a_stop_sequence_the_server_kept_is_cut_and_reported_as_the_stop():
    with Stub(lambda body, n: completion("    return 1\ndef other():", finish="stop")) as stub:
        [outcome] = list(backend(stub.url).generate(["def f():\n"], OPTIONS))
    assert outcome.result.text == "    return 1" and outcome.result.stop_reason == "stop_sequence"


def test_length_finish_is_max_new_tokens():
    with Stub(lambda body, n: completion("aaaa", finish="length")) as stub:
        [outcome] = list(backend(stub.url).generate(["p"], OPTIONS))
    assert outcome.result.stop_reason == "max_new_tokens"


def test_a_dead_endpoint_is_one_clear_line_before_anything_is_generated():
    url = closed_port_url()
    with pytest.raises(BackendError) as caught:
        list(backend(url).generate(["p"], OPTIONS))
    message = str(caught.value)
    assert "is not reachable" in message and url in message and "\n" not in message


def test_a_request_that_hangs_times_out_and_is_retried_then_fails_clearly():
    with Stub(lambda body, n: None) as stub:  # holds every completion until the stub stops
        with pytest.raises(BackendError) as caught:
            list(backend(stub.url, request_timeout=0.2, retries=1).generate(["p"], OPTIONS))
    assert len(stub.requests) == 2 and "timeout" in str(caught.value)


def test_refusals_before_any_success_stop_the_run_after_one_they_are_that_prompts_error():
    with Stub(lambda body, n: (400, {"error": {"message": "model 'nope' does not exist"}}, {})) as stub:
        with pytest.raises(BackendError, match="does not exist"):
            list(backend(stub.url, model="nope").generate(["p"], OPTIONS))
    script = lambda body, n: completion("ok") if body["prompt"] == "short" else (400, {"detail": "prompt too long"}, {})
    with Stub(script) as stub:
        outcomes = sorted(backend(stub.url, concurrency=1).generate(["short", "long"], OPTIONS), key=lambda o: o.index)
    assert outcomes[0].result.text == "ok"
    assert outcomes[1].result is None and "prompt too long" in outcomes[1].error


def test_a_dead_endpoint_mid_run_yields_every_finished_result_before_the_error():
    with Stub(lambda body, n: completion(f"r{n}") if n <= 3 else (503, {"error": "gone"}, {})) as stub:
        results = []
        with pytest.raises(BackendError, match="503"):
            for outcome in backend(stub.url, concurrency=1, retries=2).generate([f"p{i}" for i in range(6)], OPTIONS):
                results.append(outcome.index)
    assert results == [0, 1, 2]


def test_at_most_concurrency_requests_are_in_flight():
    with Stub(lambda body, n: completion(body["prompt"])) as stub:
        outcomes = list(backend(stub.url, concurrency=2).generate([f"p{i}" for i in range(8)], OPTIONS))
    assert sorted(o.result.text for o in outcomes) == sorted(f"p{i}" for i in range(8))
    assert 1 <= stub.max_in_flight <= 2


def test_the_api_key_is_sent_from_the_named_variable_and_never_shown(monkeypatch):
    monkeypatch.setenv("GC_TEST_KEY", "sk-secret-123")
    with Stub(lambda body, n: (401, {"error": "bad key"}, {})) as stub:
        client = backend(stub.url, api_key_env="GC_TEST_KEY")
        with pytest.raises(BackendError) as caught:
            list(client.generate(["p"], OPTIONS))
    assert stub.headers[-1].get("Authorization") == "Bearer sk-secret-123"
    assert "sk-secret" not in str(caught.value) and "sk-secret" not in repr(client.client)
    monkeypatch.delenv("GC_TEST_KEY")
    with pytest.raises(InputError, match="GC_TEST_KEY"):
        backend("http://127.0.0.1:1/v1", api_key_env="GC_TEST_KEY")


def test_bad_endpoint_settings_are_one_line():
    with pytest.raises(InputError, match="http://"):
        EndpointSettings("127.0.0.1:8000")
    assert EndpointSettings("http://h:1").base == "http://h:1/v1" == EndpointSettings("http://h:1/v1/").base


def test_a_soft_prompt_is_refused_where_the_endpoint_was_not_declared_to_take_embeddings():
    settings = BackendSettings("openai", endpoint=closed_port_url())  # nothing listens: no request is made
    with pytest.raises(BackendError, match="prompt embeddings"):
        check_backend(settings, "adapters/efficient")
    check_backend(settings, None)  # baseline and instruction variants run there


def test_a_declared_endpoint_that_rejects_embeddings_is_refused_by_the_probe_before_any_task(tiny_model_dir,
                                                                                              tiny_adapter_dir):
    script = lambda body, n: (422, {"detail": "Unexpected fields in the request: {'prompt_embeds'}"}, {})
    settings = lambda url: BackendSettings("openai", model=str(tiny_model_dir), endpoint=url, endpoint_prompt_embeds=True)
    with Stub(script) as stub:
        with pytest.raises(BackendError, match="does not accept prompt embeddings"):
            open_backend(settings(stub.url), str(tiny_adapter_dir)).describe()
    assert len(stub.requests) == 1 and "prompt" not in stub.requests[0]


def test_embeddings_sent_are_the_soft_prompt_then_the_prompt_tokens(tiny_model_dir, tiny_adapter_dir):
    import base64
    import io

    import torch

    from greencoder.core.model_loading import ModelSettings
    from greencoder.core.runtime import Runtime

    with Stub(lambda body, n: completion("x", prompt_tokens=99)) as stub:
        client = open_backend(BackendSettings("openai", model=str(tiny_model_dir), endpoint=stub.url,
                                              endpoint_prompt_embeds=True), str(tiny_adapter_dir))
        [outcome] = list(client.generate(["def f():\n"], OPTIONS))
    sent = torch.load(io.BytesIO(base64.b64decode(stub.requests[-1]["prompt_embeds"])), weights_only=True)
    local = Runtime.load(ModelSettings(str(tiny_model_dir), str(tiny_adapter_dir), "cpu", "auto"), 1, reuse=False)
    ids = torch.tensor([local.encode("def f():\n")])
    expected = torch.cat([local.model.get_prompt(batch_size=1)[0], local.base_model.get_input_embeddings()(ids)[0]])
    assert torch.equal(sent, expected.detach())
    assert outcome.result.virtual_tokens == local.num_virtual_tokens
    assert outcome.result.prompt_tokens == 99 - local.num_virtual_tokens


@pytest.mark.parametrize("settings, adapter, message", [
    (BackendSettings("openai"), None, "needs --endpoint"),
    (BackendSettings("openai", endpoint="http://h:1/v1", batch_size=4), None, "--batch-size is for --backend local"),
    (BackendSettings("local", model="m", endpoint="http://h:1/v1"), None, "--endpoint is for --backend openai"),
    (BackendSettings("local"), None, "needs --model"),
    (BackendSettings("openai", endpoint="http://h:1/v1", endpoint_prompt_embeds=True), "soft", "needs --model"),
])
def test_impossible_backend_combinations_are_one_line(settings, adapter, message):
    with pytest.raises(InputError, match=message) as caught:
        check_backend(settings, adapter)
    assert "\n" not in str(caught.value)


def test_the_cli_refuses_an_endpoint_without_the_openai_backend(tmp_path, capsys):
    from greencoder.cli import main

    assert main(["evaluate", "--endpoint", "http://127.0.0.1:9/v1", "--variant", "canonical", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == "greencoder: error: --endpoint needs --backend openai"


def test_a_stop_that_begins_in_the_prompts_last_characters_cuts_as_local_generation_does():
    """Local generation stops on a stop sequence that begins with the prompt's final characters; so must the
    cut here (a one-character stop such as the server's single-line "\\n" looks only at the new text)."""
    with Stub(lambda body, n: completion("def g():\n    pass")) as stub:
        client = backend(stub.url)
        [outcome] = list(client.generate(["x = 1\n"], OPTIONS))
        [single] = list(client.generate(["x = 1\n"], GenerationOptions(8, ("\n",))))
    assert outcome.result.text == "" and outcome.result.stop_reason == "stop_sequence"
    assert single.result.text == "def g():"
