"""Server parts without a client: settings merging, the ledger, answers before the model is ready."""

from __future__ import annotations

import asyncio
import time

import pytest

from greencoder.core.errors import InputError
from greencoder.core.languages import PYTHON
from greencoder.server.ledger import EnergyLedger
from greencoder.server.settings import ServerSettings, merge


def test_settings_accept_camel_and_snake_case_nested_or_flat():
    base = ServerSettings(max_new_tokens=128)
    assert merge(base, {"maxNewTokens": 32, "debounce_ms": 10}).max_new_tokens == 32
    assert merge(base, {"greencoder": {"benchRuns": 3, "instruction": True}}).bench_runs == 3
    assert merge(base, {"adapter": None, "editor.fontSize": 14}) == base  # unknown keys ignored
    assert merge(base, None) is base


@pytest.mark.parametrize("values, message", [
    ({"maxNewTokens": "lots"}, "'max_new_tokens' must be int"),
    ({"maxNewTokens": 0}, "out of range"),
    ({"instruction": "yes"}, "'instruction' must be bool"),
    ({"device": "tpu"}, "'device' must be auto, cpu, cuda"),
    ({"model": ""}, None),
    ("not an object", "must be an object"),
])
def test_bad_settings_name_the_key(values, message):
    if message is None:
        assert merge(ServerSettings(), values).model is None
        return
    with pytest.raises(InputError, match=message):
        merge(ServerSettings(), values)


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
    from greencoder.server.completions import CompletionService
    from greencoder.server.model_host import ModelHost

    host = ModelHost(lambda event: None)
    service = CompletionService(host, EnergyLedger(), lambda: ServerSettings(debounce_ms=500), lambda: None)
    started = time.monotonic()
    assert asyncio.run(service.suggest("file:///a.py", "def f():\n    ", 13, PYTHON)) is None
    assert time.monotonic() - started < 0.1  # no debounce wait, no model
