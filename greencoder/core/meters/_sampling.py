"""A background sampler thread shared by the meters that must look at hardware during a run.

RAPL counters wrap and NVML's power reading is instantaneous, so both need samples *during* the
run, not only at its ends. The thread sleeps on an Event (no polling), so between samples it costs
nothing, and stop() wakes it at once instead of waiting out the interval.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class PeriodicSampler:
    """Calls `sample()` every `interval` seconds on a daemon thread until stop().

    An exception in `sample()` ends the thread and is kept in `error`, so the session can report
    it at stop() instead of it vanishing on a background thread."""

    def __init__(self, sample: Callable[[], None], interval: float, name: str) -> None:
        if interval <= 0:
            raise ValueError("sampling interval must be positive")
        self.interval = interval
        self.error: BaseException | None = None
        self.samples = 0
        self._sample = sample
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            try:
                self._sample()
            except BaseException as exc:  # noqa: BLE001 - reported by the session at stop()
                self.error = exc
                return
            self.samples += 1
