"""Adaptive debounce: learn the typist's inter-key gap so bursts of typing start no generation.

A fixed 75 ms debounce with keys 120 ms apart starts a generation on every keystroke, and all but
the last are thrown away. Like Tabby, the server keeps a sliding average of each document's recent
inter-key gaps (gaps longer than a pause are not typing) and waits a little longer than that after
the last keystroke: within a burst the next key arrives first and supersedes the waiting request;
after the last key the generation starts promptly. `debounceMs` set to a number fixes the wait.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Callable

PAUSE_SECONDS = 1.0
"""A gap longer than this is a pause, not typing rhythm."""
MARGIN = 1.3
MIN_SECONDS, MAX_SECONDS = 0.04, 0.4
DEFAULT_SECONDS = 0.075
WINDOW = 16


class TypingRhythm:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._gaps: dict[str, deque[float]] = {}
        self._last: dict[str, float] = {}

    def keystroke(self, key: str) -> None:
        now = self.clock()
        last = self._last.get(key)
        self._last[key] = now
        if last is not None and now - last <= PAUSE_SECONDS:
            self._gaps.setdefault(key, deque(maxlen=WINDOW)).append(now - last)

    def forget(self, key: str) -> None:
        self._gaps.pop(key, None)
        self._last.pop(key, None)

    def debounce_seconds(self, key: str, fixed_ms: int | None) -> float:
        """How long to wait after the last keystroke before generating."""
        if fixed_ms is not None:
            return fixed_ms / 1000
        gaps = self._gaps.get(key)
        if not gaps or len(gaps) < 3:
            return DEFAULT_SECONDS
        average = sum(gaps) / len(gaps)
        return min(MAX_SECONDS, max(MIN_SECONDS, MARGIN * average))

    def wait_seconds(self, key: str, fixed_ms: int | None, factor: float = 1.0) -> float:
        """What is left of the debounce, counted from the document's last keystroke (not from the
        request, which may come late)."""
        debounce = self.debounce_seconds(key, fixed_ms) * factor
        last = self._last.get(key)
        if last is None:
            return debounce
        return max(0.0, last + debounce - self.clock())
