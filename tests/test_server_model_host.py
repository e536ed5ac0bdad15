"""ModelHost: one load at a time, the newest wish wins, duplicates load nothing, failures fall back."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from greencoder.core.errors import InputError
from greencoder.server.model_host import LoadEvent, ModelHost
from greencoder.server.settings import ServerSettings


@dataclass
class FakeRuntime:
    """Stands in for a loaded model: what the host installs is all these tests look at."""

    model: str

    def info(self):
        return type("Info", (), {"model": self.model, "adapter": None, "device": "cpu"})()


class ScriptedLoader:
    """Each load blocks until the test releases it, so the tests choose the order loads finish in."""

    def __init__(self, failing: tuple[str, ...] = ()):
        self.started: list[str] = []
        self.gates: dict[str, threading.Event] = {}
        self.started_event = threading.Condition()
        self.failing = failing

    def __call__(self, settings: ServerSettings, warn) -> FakeRuntime:
        gate = threading.Event()
        with self.started_event:
            self.started.append(settings.model)
            self.gates[settings.model] = gate
            self.started_event.notify_all()
        assert gate.wait(30)
        if settings.model in self.failing:
            raise InputError(f"no model at {settings.model}")
        return FakeRuntime(settings.model)

    def wait_started(self, count: int) -> None:
        with self.started_event:
            assert self.started_event.wait_for(lambda: len(self.started) >= count, 30)

    def release(self, model: str) -> None:
        self.gates[model].set()


def host_with(loader: ScriptedLoader) -> tuple[ModelHost, list[LoadEvent]]:
    events: list[LoadEvent] = []
    return ModelHost(events.append, loader=loader), events


def test_switching_quickly_serves_the_model_wanted_last():
    loader = ScriptedLoader()
    host, events = host_with(loader)
    host.want(ServerSettings(model="tiny"))
    loader.wait_started(1)
    host.want(ServerSettings(model="medium"))
    host.want(ServerSettings(model="tiny"))  # back to tiny while tiny is still loading
    loader.release("tiny")
    assert host.wait(30)
    assert host.runtime.model == "tiny" and host.state == "ready"
    assert loader.started == ["tiny"]  # medium was never loaded: nobody wants it any more
    assert [e.state for e in events] == ["loading", "ready"]


def test_a_load_that_finishes_after_the_wish_changed_is_not_installed():
    loader = ScriptedLoader()
    host, events = host_with(loader)
    host.want(ServerSettings(model="tiny"))
    loader.wait_started(1)
    host.want(ServerSettings(model="medium"))
    loader.release("tiny")  # tiny finishes, but medium is wanted now
    loader.wait_started(2)
    assert loader.started == ["tiny", "medium"] and host.runtime is None
    loader.release("medium")
    assert host.wait(30)
    assert host.runtime.model == "medium"
    assert [e.state for e in events] == ["loading", "loading", "ready"]  # one progress, ended once


def test_asking_again_for_the_model_loading_or_loaded_starts_nothing():
    loader = ScriptedLoader()
    host, _ = host_with(loader)
    assert host.want(ServerSettings(model="tiny"))
    loader.wait_started(1)
    assert not any(host.want(ServerSettings(model="tiny")) for _ in range(8))
    loader.release("tiny")
    assert host.wait(30)
    assert not host.want(ServerSettings(model="tiny", max_new_tokens=7))
    assert loader.started == ["tiny"] and host.loaded_settings.max_new_tokens == 7


def test_a_failed_load_keeps_the_old_runtime_and_the_wish_falls_back():
    loader = ScriptedLoader(failing=("missing",))
    host, events = host_with(loader)
    host.want(ServerSettings(model="tiny"))
    loader.wait_started(1)
    loader.release("tiny")
    assert host.wait(30)
    host.want(ServerSettings(model="missing"))
    loader.wait_started(2)
    loader.release("missing")
    assert host.wait(30)
    assert host.runtime.model == "tiny" and host.state == "ready"
    assert events[-1].state == "failed" and "no model at missing" in events[-1].message
    assert events[-1].settings.model == "missing"
    assert not host.want(ServerSettings(model="tiny"))  # the wish fell back to what serves
