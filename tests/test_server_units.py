"""Server parts without a client: settings merging, the ledger, answers before the model is ready."""

from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import replace

import pytest

from greencoder.core.completion import (
    MIN_CONTEXT_BUDGET,
    CompletionSettings,
    complete_at,
)
from greencoder.core.errors import InputError
from greencoder.core.languages import PYTHON
from greencoder.core.meters.selection import PREFERENCES
from greencoder.server.ledger import EnergyLedger
from greencoder.server.settings import ServerSettings, check_against_model, merge


def test_settings_accept_camel_and_snake_case_nested_or_flat():
    base = ServerSettings(max_new_tokens=128)
    assert merge(base, {"maxNewTokens": 32, "debounce_ms": 10}) == replace(base, max_new_tokens=32, debounce_ms=10)
    assert merge(base, {"greencoder": {"benchRuns": 3, "instruction": True}}) == replace(base, bench_runs=3, instruction=True)
    assert merge(base, {"greencoder": {"bench_runs": 4}}) == replace(base, bench_runs=4)
    assert merge(base, None) is base


def test_unknown_keys_are_ignored():
    base = ServerSettings(max_new_tokens=64)
    assert merge(base, {"editor.fontSize": 14, "serverCommand": ["x"], "maxNewTokenz": "?"}) is base
    assert merge(base, {"statusRefreshSeconds": 5, "fim": False}) == replace(base, fim=False)


def test_none_or_empty_means_the_default_only_where_a_setting_is_optional():
    base = ServerSettings(model="m", adapter="a", threads=2, watts_per_core=10.0)
    assert merge(base, {"model": "", "adapter": None, "threads": None, "wattsPerCore": None}) == ServerSettings()
    with pytest.raises(InputError, match=r"^greencoder setting 'fim' must be true or false, got null$"):
        merge(base, {"fim": None})
    with pytest.raises(InputError, match=r"^greencoder setting 'threads' must be an integer in \[1, 256\] or null, got ''$"):
        merge(base, {"threads": ""})  # "" stands for "unset" in string settings only


def test_numbers_keep_their_kind():
    merged = merge(ServerSettings(), {"benchMinSeconds": 3, "maxNewTokens": 64.0})
    assert merged.bench_min_seconds == 3.0 and type(merged.bench_min_seconds) is float  # a float takes an int
    assert merged.max_new_tokens == 64 and type(merged.max_new_tokens) is int  # JSON Schema's integer: 64.0 is 64


@pytest.mark.parametrize("values, message", [
    ({"maxNewTokens": "lots"}, "'maxNewTokens' must be an integer in [1, 4096], got 'lots'"),
    ({"maxNewTokens": 1.5}, "'maxNewTokens' must be an integer in [1, 4096], got 1.5"),
    ({"maxNewTokens": "3"}, "'maxNewTokens' must be an integer in [1, 4096], got '3'"),
    ({"maxNewTokens": True}, "'maxNewTokens' must be an integer in [1, 4096], got true"),
    ({"max_new_tokens": 0}, "'max_new_tokens' must be an integer in [1, 4096], got 0"),
    ({"threads": 257}, "'threads' must be an integer in [1, 256] or null, got 257"),
    ({"benchAlpha": 1}, "'benchAlpha' must be a number in (0, 1), got 1"),
    ({"bench_alpha": "0.01"}, "'bench_alpha' must be a number in (0, 1), got '0.01'"),
    ({"benchCooldown": float("inf")}, "'benchCooldown' must be a number in [0, 3600], got inf"),
    ({"wattsPerCore": 0}, "'wattsPerCore' must be a number above 0 or null, got 0"),
    ({"instruction": "yes"}, "'instruction' must be true or false, got 'yes'"),
    ({"fim": 1}, "'fim' must be true or false, got 1"),
    ({"device": "tpu"}, "'device' must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
    ({"device": "cuda:x"}, "'device' must be auto, cpu, cuda, cuda:N or mps, got 'cuda:x'"),
    ({"dtype": "int8"}, "'dtype' must be one of auto, float32, bfloat16, float16, got 'int8'"),
    ({"meter": "wattmeter"}, "'meter' must be one of auto, rapl, perf, nvml, powermetrics, estimate, got 'wattmeter'"),
    ({"model": 7}, "'model' must be a string or null, got 7"),
    ({"greencoder": {"debounceMs": -1}}, "'debounceMs' must be an integer in [0, 10000], got -1"),
    # Two bad values: the first in the schema's order is named.
    ({"benchRuns": 0, "maxNewTokens": 0}, "'maxNewTokens' must be an integer in [1, 4096], got 0"),
])
def test_bad_settings_name_the_key_as_sent_and_what_it_takes(values, message):
    with pytest.raises(InputError, match=f"^greencoder setting {re.escape(message)}$"):
        merge(ServerSettings(), values)


def test_settings_must_be_an_object():
    with pytest.raises(InputError, match=r"^greencoder settings must be an object, got str$"):
        merge(ServerSettings(), "not an object")


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"])
def test_every_device_the_engine_knows_is_accepted(device):
    assert merge(ServerSettings(), {"device": device}).device == device


@pytest.mark.parametrize("meter", PREFERENCES)
def test_every_meter_the_cli_accepts_is_accepted(meter):
    assert merge(ServerSettings(), {"meter": meter}).meter == meter


def test_model_key_holds_exactly_the_settings_that_reload_the_model():
    base = ServerSettings()
    for values in ({"model": "m"}, {"adapter": "a"}, {"device": "cpu"}, {"dtype": "float32"}):
        assert merge(base, values).model_key != base.model_key, values
    # threads is applied by the generating thread before each completion: no reload
    for values in ({"maxNewTokens": 8}, {"meter": "estimate"}, {"fim": False}, {"benchRuns": 2}, {"threads": 3}):
        assert merge(base, values).model_key == base.model_key, values


@pytest.mark.parametrize("max_new_tokens, limit, virtual, message", [
    (128, 2048, 0, None),
    (2040, 2048, 0, None),  # 8 tokens of code still fit
    (2041, 2048, 0, ("'maxNewTokens' = 2041 leaves no room for code in the model's context of 2048 tokens "
                     f"(at least {MIN_CONTEXT_BUDGET} tokens of code need a place): use at most 2040")),
    (2030, 2048, 20, ("'maxNewTokens' = 2030 leaves no room for code in the model's context of 2048 tokens "
                      f"(20 soft-prompt tokens and at least {MIN_CONTEXT_BUDGET} tokens of code need a place): "
                      "use at most 2020")),
    (40000, 32768, 0, "'maxNewTokens' = 40000 exceeds the model's context of 32768 tokens: use at most 32760"),
    (16, 8, 0, "'maxNewTokens' = 16 exceeds the model's context of 8 tokens"),
])
def test_max_new_tokens_is_checked_against_the_models_context(max_new_tokens, limit, virtual, message):
    problem = check_against_model(ServerSettings(max_new_tokens=max_new_tokens), limit, virtual)
    assert problem == (None if message is None else f"greencoder setting {message}")


@pytest.mark.parametrize("runtime_fixture", ["tiny_runtime", "tiny_runtime_with_adapter"])
def test_check_against_model_draws_the_line_where_completion_does(runtime_fixture, request):
    """The largest maxNewTokens check_against_model accepts still completes; one more cannot."""
    runtime = request.getfixturevalue(runtime_fixture)
    limit, virtual = runtime.context_tokens, runtime.num_virtual_tokens
    largest = limit - virtual - MIN_CONTEXT_BUDGET
    cancelled = threading.Event()
    cancelled.set()  # generate nothing: only the budget check runs
    assert check_against_model(ServerSettings(max_new_tokens=largest), limit, virtual) is None
    complete_at(runtime, "x = 1\n", 6, PYTHON, CompletionSettings(max_new_tokens=largest), cancelled)
    assert check_against_model(ServerSettings(max_new_tokens=largest + 1), limit, virtual) is not None
    with pytest.raises(InputError, match="leaves no room for context"):
        complete_at(runtime, "x = 1\n", 6, PYTHON, CompletionSettings(max_new_tokens=largest + 1), cancelled)


def test_ledger_keeps_measured_and_estimated_apart():
    ledger = EnergyLedger()
    ledger.add_completion(10, 0.1, 1.5, "estimated")
    ledger.add_completion(5, 0.1, 0.5, "measured", cancelled=True)
    ledger.add_measurement({"function": "f"}, 2.0, "estimated")
    report = ledger.report()
    assert report["completionJoules"] == {"estimated": 1.5, "measured": 0.5}
    assert (report["completions"], report["cancelled"], report["completionTokens"]) == (2, 1, 15)
    assert report["measuredJoules"] == {"estimated": 2.0} and report["lastMeasurement"] == {"function": "f"}


def test_requests_before_the_model_is_ready_get_nothing_at_once():
    """No model yet: the answer is empty at once, without waiting out the (here 10-minute) debounce."""
    from pygls.workspace import PositionCodec

    from greencoder.server.completions import CompletionService, CursorRequest
    from greencoder.server.model_host import ModelHost

    host = ModelHost(lambda event: None)
    service = CompletionService(host, EnergyLedger(), lambda: ServerSettings(debounce_ms=600_000), lambda: None)
    request = CursorRequest("file:///a.py", "def f():\n    ", 1, 4, PositionCodec(), PYTHON)
    assert asyncio.run(asyncio.wait_for(service.suggest(request), timeout=30)) is None
