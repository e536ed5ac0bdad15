"""The session's energy ledger: what completions cost, and what was measured in the user's code.

Editors show it (status bar, statusline) from the `greencoder/ledger` notification the server sends
whenever it changes, and from the `greencoder/energyReport` request. Joules are kept apart by kind,
so an estimate is never added to a measurement. Everything a completion costs is charged to it,
not just the model's forward passes: choosing the meter, building the prompt and cleaning the text.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from typing import Callable

MAX_TRACKED_SUGGESTIONS = 2048


@dataclass
class EnergyLedger:
    completions: int = 0
    cancelled: int = 0
    """Generations stopped early by a newer request, an edit or $/cancelRequest (their cost still counts)."""
    completion_tokens: int = 0
    completion_seconds: float = 0.0
    completion_cpu_seconds: float = 0.0
    completion_joules: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    measurements: int = 0
    measured_joules: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    last_measurement: dict | None = None
    prefill_tokens: int = 0
    """Tokens the model had to read (prompt tokens not found in its cache)."""
    prefill_tokens_saved: int = 0
    """Prompt tokens served from the cache of an earlier request instead of read again."""
    typed_ahead: int = 0
    """Requests answered with the rest of a suggestion the user was typing along, without generating."""
    adopted: int = 0
    """Requests answered from a generation already running when they came (the user typed what it was
    writing), instead of cancelling it and generating again."""
    suggestions_shown: int = 0
    suggestions_accepted: int = 0
    characters_accepted: int = 0
    endpoint_completions: int = 0
    """Completions generated at an OpenAI-compatible endpoint (`serve --endpoint`): their generation
    energy was spent on the endpoint's hardware and is not measured here, so none of it is in
    `completion_joules`."""
    endpoint: str | None = None
    server_joules: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    """What this server's own work for endpoint completions cost here (building prompts, HTTP), by kind."""
    _suggestion_lengths: "OrderedDict[str, int]" = field(default_factory=OrderedDict, repr=False)
    _accepted_ranges: dict[str, list[tuple[int, int]]] = field(default_factory=dict, repr=False)
    listener: Callable[[], None] | None = field(default=None, repr=False)
    """Called (from any thread) after every change."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_completion(self, tokens: int, seconds: float, joules: float, kind: str, cancelled: bool = False,
                       cpu_seconds: float = 0.0, prefill_tokens: int = 0, prefill_tokens_saved: int = 0) -> None:
        with self._lock:
            self.completions += 1
            self.cancelled += cancelled
            self.completion_tokens += tokens
            self.completion_seconds += seconds
            self.completion_cpu_seconds += cpu_seconds
            self.completion_joules[kind] += joules
            self.prefill_tokens += prefill_tokens
            self.prefill_tokens_saved += prefill_tokens_saved
        self._changed()

    def add_endpoint_completion(self, tokens: int, seconds: float, server_joules: float, kind: str,
                                cancelled: bool = False, cpu_seconds: float = 0.0, endpoint: str | None = None) -> None:
        """A completion the endpoint generated: counted and timed, its generation energy left unmeasured;
        `server_joules` is this server's own share, kept apart under its own name."""
        with self._lock:
            self.completions += 1
            self.endpoint_completions += 1
            self.cancelled += cancelled
            self.completion_tokens += tokens
            self.completion_seconds += seconds
            self.completion_cpu_seconds += cpu_seconds
            self.server_joules[kind] += server_joules
            self.endpoint = endpoint or self.endpoint
        self._changed()

    def add_shown(self, suggestion_id: str, characters: int) -> None:
        """A new suggestion reached the editor (its continuations while typing along are not new:
        a second call for the same id counts nothing)."""
        with self._lock:
            if suggestion_id in self._suggestion_lengths:
                return
            self.suggestions_shown += 1
            self._suggestion_lengths[suggestion_id] = characters
            while len(self._suggestion_lengths) > MAX_TRACKED_SUGGESTIONS:
                old, _ = self._suggestion_lengths.popitem(last=False)
                self._accepted_ranges.pop(old, None)
        self._changed()

    def add_typed_ahead(self) -> None:
        with self._lock:
            self.typed_ahead += 1
        self._changed()

    def add_adopted(self) -> None:
        with self._lock:
            self.adopted += 1
        self._changed()

    def add_accept(self, suggestion_id: str, end: int | None = None, start: int = 0) -> bool:
        """The user accepted characters `start`..`end` of a shown suggestion (offsets from its start;
        `end` None: to its end): the item's command on a whole accept (`start` is where the item on
        screen began, after what was typed along), or a partial accept (a word, a line). Characters
        are counted once however often they are reported; characters the user typed along and then
        accepted the rest are not counted as accepted. An unknown id counts nothing. True when known."""
        with self._lock:
            length = self._suggestion_lengths.get(suggestion_id)
            if length is None:
                return False
            end = length if end is None else max(0, min(int(end), length))
            start = max(0, min(int(start), end))
            ranges = self._accepted_ranges.get(suggestion_id)
            if ranges is None:
                self.suggestions_accepted += 1
                ranges = self._accepted_ranges[suggestion_id] = []
            before = _covered(ranges)
            if end > start:
                ranges.append((start, end))
                ranges[:] = _merged(ranges)
            self.characters_accepted += _covered(ranges) - before
        self._changed()
        return True

    def add_measurement(self, summary: dict, joules: float, kind: str) -> None:
        with self._lock:
            self.measurements += 1
            self.measured_joules[kind] += joules
            self.last_measurement = summary
        self._changed()

    def _changed(self) -> None:
        if self.listener is not None:
            self.listener()

    def _endpoint_sentence(self) -> str | None:
        """Where endpoint completions' energy went, in words the editors show as they are."""
        count = self.endpoint_completions
        if not count:
            return None
        noun = "completion was" if count == 1 else "completions were"
        return f"{count} {noun} generated at {self.endpoint}: their energy was spent there and is not measured here"

    def report(self) -> dict:
        with self._lock:
            return {
                "completions": self.completions,
                "cancelled": self.cancelled,
                "completionTokens": self.completion_tokens,
                "completionSeconds": round(self.completion_seconds, 4),
                "completionCpuSeconds": round(self.completion_cpu_seconds, 4),
                "completionJoules": {k: round(v, 6) for k, v in self.completion_joules.items()},
                "measurements": self.measurements,
                "measuredJoules": {k: round(v, 6) for k, v in self.measured_joules.items()},
                "lastMeasurement": self.last_measurement,
                "prefillTokens": self.prefill_tokens,
                "prefillTokensSaved": self.prefill_tokens_saved,
                "typedAhead": self.typed_ahead,
                "adoptedInFlight": self.adopted,
                "suggestionsShown": self.suggestions_shown,
                "suggestionsAccepted": self.suggestions_accepted,
                "charactersAccepted": self.characters_accepted,
                "endpointCompletions": self.endpoint_completions,
                "endpointEnergy": self._endpoint_sentence(),
                "serverJoules": {k: round(v, 6) for k, v in self.server_joules.items()},
                "joulesPerAcceptedCharacter": {
                    kind: (joules / self.characters_accepted if self.characters_accepted else None)
                    for kind, joules in self.completion_joules.items()},
            }


def _merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _covered(ranges: list[tuple[int, int]]) -> int:
    return sum(end - start for start, end in ranges)
