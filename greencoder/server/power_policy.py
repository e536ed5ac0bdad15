"""What the server does on battery: keep going, reduce, or generate only when asked.

The `onBattery` setting chooses; on AC (or where the source cannot be read) the server always runs
in full. "reduce" waits three times longer after typing, generates at most 32 tokens and one line;
"explicit" generates only for explicitly invoked completions (a key the user pressed), never for
ones the editor triggers while typing. The policy in force is shown in the ledger.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

from greencoder.core.power import PowerState, power_state
from greencoder.server.settings import ServerSettings

REDUCED_MAX_NEW_TOKENS = 32
REDUCED_DEBOUNCE_FACTOR = 3.0


@dataclass(frozen=True)
class PowerPolicy:
    source: str
    """ac, battery or unknown."""
    setting: str
    """keep, reduce or explicit: what the user chose for battery power."""

    @property
    def in_force(self) -> str:
        """full, reduce or explicit."""
        if self.source != "battery" or self.setting == "keep":
            return "full"
        return self.setting

    def allows(self, explicit: bool) -> bool:
        return self.in_force != "explicit" or explicit

    def apply(self, settings: ServerSettings) -> ServerSettings:
        if self.in_force != "reduce":
            return settings
        return replace(settings, max_new_tokens=min(settings.max_new_tokens, REDUCED_MAX_NEW_TOKENS))

    @property
    def debounce_factor(self) -> float:
        return REDUCED_DEBOUNCE_FACTOR if self.in_force == "reduce" else 1.0

    @property
    def single_line(self) -> bool:
        return self.in_force == "reduce"

    def to_dict(self) -> dict:
        return {"source": self.source, "onBattery": self.setting, "inForce": self.in_force}


class PowerWatch:
    """The power source, read at most every `ttl` seconds (reading it costs a few file reads)."""

    def __init__(self, read: Callable[[], PowerState] = power_state, ttl: float = 15.0,
                 clock: Callable[[], float] = time.monotonic):
        self.read = read
        self.ttl = ttl
        self.clock = clock
        self._state: PowerState | None = None
        self._read_at = 0.0

    def state(self) -> PowerState:
        now = self.clock()
        if self._state is None or now - self._read_at >= self.ttl:
            self._state, self._read_at = self.read(), now
        return self._state

    def policy(self, setting: str) -> PowerPolicy:
        return PowerPolicy(self.state().source, setting)
