"""Is this machine running on battery? (Linux sysfs power supplies, macOS `pmset -g batt`.)

An assistant that generates on every keystroke drains a laptop's battery; users of other
assistants ask for a way to hold back when unplugged. This module only observes the power source;
what to do about it is the server's policy.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

Source = Literal["ac", "battery", "unknown"]
LINUX_POWER_SUPPLY = Path("/sys/class/power_supply")
_EXTERNAL_TYPES = {"mains", "usb", "usb_c", "usb_pd", "usb_pd_drp", "wireless", "ups"}


@dataclass(frozen=True)
class PowerState:
    source: Source
    detail: str
    """Where that was read from, for logs and the status."""


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return ""


def linux_power_state(root: Path = LINUX_POWER_SUPPLY) -> PowerState:
    """From /sys/class/power_supply: on AC if an external supply is online; on battery if a system
    battery is discharging and no external supply is online; unknown without supplies (desktops,
    VMs, containers), which callers treat as AC."""
    if not root.is_dir():
        return PowerState("unknown", f"no {root}")
    external_online, discharging = [], []
    for supply in sorted(root.iterdir()):
        kind = _read(supply / "type").lower()
        if kind in _EXTERNAL_TYPES and _read(supply / "online") == "1":
            external_online.append(supply.name)
        elif kind == "battery" and _read(supply / "scope").lower() != "device":  # not a mouse's battery
            if _read(supply / "status").lower() == "discharging":
                discharging.append(supply.name)
    if external_online:
        return PowerState("ac", f"{', '.join(external_online)} online")
    if discharging:
        return PowerState("battery", f"{', '.join(discharging)} discharging")
    return PowerState("unknown", "no supply online and no battery discharging")


def macos_power_state(run: Callable[[list[str]], str] | None = None) -> PowerState:
    """From `pmset -g batt`, whose first line says "Now drawing from 'Battery Power'" or "'AC Power'"."""
    def pmset(command: list[str]) -> str:
        return subprocess.run(command, capture_output=True, text=True, timeout=5, check=False).stdout

    try:
        output = (run or pmset)(["pmset", "-g", "batt"])
    except (OSError, subprocess.SubprocessError) as exc:
        return PowerState("unknown", f"pmset failed: {exc}")
    first = output.splitlines()[0] if output else ""
    if "Battery Power" in first:
        return PowerState("battery", "pmset: Battery Power")
    if "AC Power" in first:
        return PowerState("ac", "pmset: AC Power")
    return PowerState("unknown", f"pmset said {first!r}")


def power_state(platform: str | None = None, linux_root: Path = LINUX_POWER_SUPPLY) -> PowerState:
    platform = platform or sys.platform
    if platform.startswith("linux"):
        return linux_power_state(linux_root)
    if platform == "darwin":
        return macos_power_state()
    return PowerState("unknown", f"power source not read on {platform}")
