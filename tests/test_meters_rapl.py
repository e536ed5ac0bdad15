"""RAPL through powercap sysfs, on synthetic trees whose counters the tests advance."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest

from greencoder.core.meters.base import MeterError, MeterUnavailable
from greencoder.core.meters.fakes import PowercapTree
from greencoder.core.meters.rapl import RaplMeter, counter_delta, sample_interval

HOUR = 3600.0  # a sampling interval the background thread never reaches within a test


@contextlib.contextmanager
def moving_counters(tree: PowercapTree, steps: dict[str, int], tick: float = 0.002):
    """Hardware stand-in: advance the given counters by `steps` µJ every `tick` seconds."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(tick):
            for folder, uj in steps.items():
                tree.advance(folder, uj)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_single_package_reads_the_counter_difference(tmp_path):
    tree = PowercapTree(tmp_path, {"intel-rapl:0": "package-0"}, start_uj=5_000_000)
    session = RaplMeter(tmp_path, interval=HOUR).start()
    tree.advance("intel-rapl:0", 2_500_000)
    reading = session.stop()
    assert reading.joules == pytest.approx(2.5)
    assert (reading.source, reading.kind) == ("rapl", "measured")
    assert reading.domains == {"package-0": pytest.approx(2.5)}
    assert reading.interval > 0


def test_several_packages_are_summed_and_subzones_reported_not_added(tmp_path):
    tree = PowercapTree(
        tmp_path,
        {
            "intel-rapl:0": "package-0",
            "intel-rapl:0:0": "core",
            "intel-rapl:0:1": "dram",
            "intel-rapl:1": "package-1",
            "intel-rapl:1:0": "dram",
            "intel-rapl-mmio:0": "package-0",  # the same package through MMIO: must not count twice
        },
    )
    (tmp_path / "intel-rapl").mkdir()  # the control-type folder, not a zone
    meter = RaplMeter(tmp_path, interval=HOUR)
    session = meter.start()
    for folder, uj in [
        ("intel-rapl:0", 3_000_000),
        ("intel-rapl:0:0", 1_000_000),
        ("intel-rapl:0:1", 500_000),
        ("intel-rapl:1", 2_000_000),
        ("intel-rapl:1:0", 250_000),
        ("intel-rapl-mmio:0", 99_000_000),
    ]:
        tree.advance(folder, uj)
    reading = session.stop()
    assert reading.joules == pytest.approx(5.0)  # package-0 + package-1 only
    assert reading.domains == pytest.approx(
        {"package-0": 3.0, "package-1": 2.0, "package-0/core": 1.0, "package-0/dram": 0.5, "package-1/dram": 0.25}
    )
    assert "total = package-0 + package-1" in meter.describe()


def test_psys_is_the_total_only_without_a_package_zone(tmp_path):
    only_psys = tmp_path / "laptop"
    tree = PowercapTree(only_psys, {"intel-rapl:0": "psys"})
    session = RaplMeter(only_psys, interval=HOUR).start()
    tree.advance("intel-rapl:0", 7_000_000)
    reading = session.stop()
    assert reading.joules == pytest.approx(7.0) and reading.domains == pytest.approx({"psys": 7.0})

    both = tmp_path / "both"
    tree = PowercapTree(both, {"intel-rapl:0": "package-0", "intel-rapl:1": "psys"})
    session = RaplMeter(both, interval=HOUR).start()
    tree.advance("intel-rapl:0", 4_000_000)
    tree.advance("intel-rapl:1", 9_000_000)  # psys contains the package: never added to it
    reading = session.stop()
    assert reading.joules == pytest.approx(4.0)
    assert reading.domains == pytest.approx({"package-0": 4.0, "psys": 9.0})


def test_wraparound_once(tmp_path):
    tree = PowercapTree(tmp_path, {"intel-rapl:0": "package-0"}, max_range_uj=1_000_000, start_uj=900_000)
    session = RaplMeter(tmp_path, interval=HOUR, max_watts=1e-9).start()  # thread idle: the test samples
    tree.advance("intel-rapl:0", 300_000)
    assert tree.values["intel-rapl:0"] == 200_000  # the counter wrapped
    assert session.stop().joules == pytest.approx(0.3)
    assert counter_delta(900_000, 200_000, 1_000_000) == 300_000


def test_several_wraps_are_kept_by_intermediate_samples(tmp_path):
    """Five steps of 0.7 J on a 1 J counter wrap it three times; only sampling between wraps
    recovers 3.5 J (the two end values alone would say 0.5 J)."""
    tree = PowercapTree(tmp_path, {"intel-rapl:0": "package-0"}, max_range_uj=1_000_000)
    session = RaplMeter(tmp_path, interval=HOUR, max_watts=1e-9).start()
    for _ in range(5):
        tree.advance("intel-rapl:0", 700_000)
        session.sample()  # what the background thread does every interval
    assert tree.values["intel-rapl:0"] == 500_000
    assert session.stop().joules == pytest.approx(3.5)


def test_background_thread_catches_repeated_wraps(tmp_path):
    """The real sampler thread, on a 1 J counter advanced 4 J in 50 mJ steps."""
    tree = PowercapTree(tmp_path, {"intel-rapl:0": "package-0"}, max_range_uj=1_000_000)
    meter = RaplMeter(tmp_path, interval=0.01, max_watts=20.0)
    assert meter.interval == pytest.approx(0.01)  # 1 J at 20 W wraps in 50 ms: 10 ms is fast enough
    session = meter.start()
    for _ in range(80):
        tree.advance("intel-rapl:0", 50_000)
        time.sleep(0.004)
    reading = session.stop()
    assert reading.joules == pytest.approx(4.0)
    assert int(reading.note.split(" samples")[0].split()[-1]) > 4  # it sampled many times in between


def test_interval_is_capped_below_the_quickest_wrap():
    assert sample_interval(1.0, [262143328850]) == 1.0  # Intel: 262 kJ wraps in 262 s even at 1 kW
    assert sample_interval(1.0, [65532610987]) == 1.0  # AMD: 65.5 kJ, 65 s at 1 kW
    assert sample_interval(1.0, [10_000_000], max_watts=100.0) == pytest.approx(0.05)  # 10 J at 100 W: 0.1 s wrap
    assert sample_interval(0.2, []) == 0.2


def test_dead_counter_is_rejected(tmp_path):
    PowercapTree(tmp_path, {"intel-rapl:0": "package-0"}, start_uj=123)
    with pytest.raises(MeterUnavailable, match=r"intel-rapl:0/energy_uj did not change during a 0.05 s busy loop"):
        RaplMeter(tmp_path).validate(busy_seconds=0.05)


def test_validation_passes_on_moving_counters_and_drops_dead_subzones(tmp_path):
    tree = PowercapTree(tmp_path, {"intel-rapl:0": "package-0", "intel-rapl:0:0": "core", "intel-rapl:0:1": "dram"})
    meter = RaplMeter(tmp_path)
    with moving_counters(tree, {"intel-rapl:0": 20_000, "intel-rapl:0:0": 10_000}):
        reading = meter.validate(busy_seconds=0.05)
    assert reading.joules > 0 and reading.domains["package-0/core"] > 0
    assert meter.dropped == ["package-0/dram"]
    assert [zone.label for zone in meter.zones] == ["package-0", "package-0/core"]


def test_one_dead_package_rejects_the_meter(tmp_path):
    tree = PowercapTree(tmp_path, {"intel-rapl:0": "package-0", "intel-rapl:1": "package-1"})
    with moving_counters(tree, {"intel-rapl:0": 20_000}):
        with pytest.raises(MeterUnavailable, match=r"intel-rapl:1/energy_uj did not change"):
            RaplMeter(tmp_path).validate(busy_seconds=0.05)


def test_unreadable_energy_uj_names_the_file(tmp_path, monkeypatch):
    """energy_uj is mode 0400 on patched kernels; root (as in CI) can read anyway, so the
    permission error is injected where the file is opened."""
    PowercapTree(tmp_path, {"intel-rapl:0": "package-0"})
    real_read_text = Path.read_text

    def read_text(self: Path, *args, **kwargs):
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    with pytest.raises(MeterUnavailable) as caught:
        RaplMeter(tmp_path).validate(busy_seconds=0.05)
    assert str(caught.value).startswith(f"cannot read {tmp_path / 'intel-rapl:0' / 'energy_uj'}: permission denied")


def test_missing_tree_and_empty_tree(tmp_path):
    with pytest.raises(MeterUnavailable, match=r"powercap missing$"):
        RaplMeter(tmp_path / "powercap").validate(busy_seconds=0.05)
    with pytest.raises(MeterUnavailable, match=r"no intel-rapl zones under"):
        RaplMeter(tmp_path).validate(busy_seconds=0.05)


def test_counter_vanishing_mid_run_is_reported_at_stop(tmp_path):
    PowercapTree(tmp_path, {"intel-rapl:0": "package-0"})
    session = RaplMeter(tmp_path, interval=0.005).start()
    (tmp_path / "intel-rapl:0" / "energy_uj").unlink()
    time.sleep(0.05)
    with pytest.raises(MeterError, match=r"RAPL sampling failed during the run: cannot read .*energy_uj"):
        session.stop()
