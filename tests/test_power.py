"""Power source detection on synthetic /sys/class/power_supply trees and pmset outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from greencoder.core.power import linux_power_state, macos_power_state


def supply(root: Path, name: str, **files: str) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    for key, value in files.items():
        (folder / key).write_text(value + "\n")


def test_a_laptop_unplugged_is_on_battery(tmp_path):
    supply(tmp_path, "AC", type="Mains", online="0")
    supply(tmp_path, "BAT0", type="Battery", status="Discharging", capacity="71")
    state = linux_power_state(tmp_path)
    assert state.source == "battery" and "BAT0" in state.detail


def test_a_laptop_plugged_in_is_on_ac_even_while_its_battery_reports_discharging(tmp_path):
    supply(tmp_path, "ADP1", type="Mains", online="1")
    supply(tmp_path, "BAT0", type="Battery", status="Discharging")
    assert linux_power_state(tmp_path).source == "ac"


def test_usb_c_power_counts_as_external(tmp_path):
    supply(tmp_path, "ucsi-source-psy-USBC000:001", type="USB", online="1")
    supply(tmp_path, "BAT1", type="Battery", status="Charging")
    assert linux_power_state(tmp_path).source == "ac"


def test_a_wireless_mouse_battery_is_not_the_system_battery(tmp_path):
    supply(tmp_path, "hidpp_battery_0", type="Battery", scope="Device", status="Discharging")
    assert linux_power_state(tmp_path).source == "unknown"


@pytest.mark.parametrize("files", [{}, {"BAT0": {"type": "Battery", "status": "Full"}}])
def test_desktops_and_full_batteries_are_not_on_battery(tmp_path, files):
    for name, content in files.items():
        supply(tmp_path, name, **content)
    assert linux_power_state(tmp_path).source == "unknown"
    assert linux_power_state(tmp_path / "missing").source == "unknown"


@pytest.mark.parametrize("output, source", [
    ("Now drawing from 'Battery Power'\n -InternalBattery-0 (id=123)\t80%; discharging; 5:01 remaining\n", "battery"),
    ("Now drawing from 'AC Power'\n -InternalBattery-0 (id=123)\t100%; charged;\n", "ac"),
    ("", "unknown"),
])
def test_macos_pmset(output, source):
    assert macos_power_state(run=lambda command: output).source == source
