"""perf power events, with a fake `perf` that behaves like `perf stat -a -x, -o FILE` under SIGINT."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from greencoder.core.meters.base import MeterUnavailable
from greencoder.core.meters.fakes import write_fake_perf, write_power_events
from greencoder.core.meters.perf import PerfMeter, available_events, parse_perf_csv

# What `perf stat -a -x, -e ... -o FILE` writes (format as recorded in public perf logs, e.g.
# "475.42,Joules,power/energy-pkg/,20005659301,100.00,,"); task-clock is there to be ignored.
PERF_OUTPUT = """# started on Sun Nov 22 00:54:39 2026

475.42,Joules,power/energy-pkg/,20005659301,100.00,,
<not supported>,Joules,power/energy-ram/,0,100.00,,
<not counted>,Joules,power/energy-psys/,0,0.00,,
408.14,msec,task-clock,408137614,100.00,2.000,CPUs utilized
"""


def events_dir(tmp_path: Path, *events: str, name: str = "events") -> Path:
    return write_power_events(tmp_path / name, list(events))


def fake_perf(tmp_path: Path, values: dict[str, str]) -> Path:
    return write_fake_perf(tmp_path / "perf", values)


def meter(perf: Path, events: Path) -> PerfMeter:
    return PerfMeter(str(perf), events, startup_timeout=0.05)


def test_parse_perf_csv():
    assert parse_perf_csv(PERF_OUTPUT) == {
        "power/energy-pkg/": 475.42,
        "power/energy-ram/": None,
        "power/energy-psys/": None,
    }


def test_available_events(tmp_path):
    folder = events_dir(tmp_path, "energy-psys", "energy-cores", "energy-pkg")
    assert available_events(folder) == ["energy-pkg", "energy-psys"]  # cores: a part of pkg, not read
    with pytest.raises(MeterUnavailable, match=r"nowhere missing$"):
        available_events(tmp_path / "nowhere")
    with pytest.raises(MeterUnavailable, match=r"no energy-pkg/energy-psys/energy-ram event"):
        available_events(events_dir(tmp_path, "energy-cores", name="cores-only"))


def test_session_runs_perf_stat_and_reads_joules(tmp_path):
    perf = fake_perf(tmp_path, {"power/energy-pkg/": "12.34", "power/energy-ram/": "1.50"})
    reading = meter(perf, events_dir(tmp_path, "energy-pkg", "energy-ram")).start().stop()
    assert reading.joules == pytest.approx(12.34)  # ram is reported, not added (as with RAPL zones)
    assert reading.domains == {"power/energy-pkg/": 12.34, "power/energy-ram/": 1.5}
    assert (reading.source, reading.kind) == ("perf", "measured")
    argv = Path(f"{perf}.argv").read_text().split()
    assert argv[:5] == ["stat", "-a", "-x,", "-e", "power/energy-pkg/,power/energy-ram/"] and argv[5] == "-o"
    assert not os.path.exists(argv[6])  # the temporary output file is cleaned up


def test_event_reading_zero_joules_is_dropped(tmp_path):
    perf = fake_perf(tmp_path, {"power/energy-pkg/": "12.34", "power/energy-psys/": "0.00"})
    perf_meter = meter(perf, events_dir(tmp_path, "energy-pkg", "energy-psys"))
    reading = perf_meter.validate(busy_seconds=0.05)
    assert reading.joules == pytest.approx(12.34)
    assert perf_meter.events == ["energy-pkg"]
    assert perf_meter.dropped == {"energy-psys": "power/energy-psys/ reads 0 J"}
    assert "dropped: power/energy-psys/ reads 0 J" in perf_meter.describe()
    perf_meter.start().stop()
    assert "power/energy-psys/" not in Path(f"{perf}.argv").read_text()  # later runs count pkg only


def test_psys_only_reading_zero_rejects_the_meter(tmp_path):
    perf = fake_perf(tmp_path, {"power/energy-psys/": "0.00"})
    with pytest.raises(MeterUnavailable, match=r"^power/energy-psys/ reads 0 J$"):
        meter(perf, events_dir(tmp_path, "energy-psys")).validate(busy_seconds=0.05)


def test_not_counted_events_reject_with_their_reason(tmp_path):
    perf = fake_perf(tmp_path, {"power/energy-pkg/": "<not supported>"})
    with pytest.raises(MeterUnavailable, match=r"^power/energy-pkg/ not counted$"):
        meter(perf, events_dir(tmp_path, "energy-pkg")).validate(busy_seconds=0.05)


def test_perf_failing_at_start_says_what_perf_said(tmp_path):
    perf = tmp_path / "perf"
    perf.write_text(
        "#!/bin/sh\necho 'Error:' >&2\n"
        "echo 'Access to performance monitoring and observability operations is limited.' >&2\nexit 255\n"
    )
    perf.chmod(0o755)
    with pytest.raises(MeterUnavailable, match=r"perf stat exited at start: Access to performance monitoring"):
        PerfMeter(str(perf), events_dir(tmp_path, "energy-pkg"), startup_timeout=2.0).validate(busy_seconds=0.05)


def test_missing_perf_binary(tmp_path):
    with pytest.raises(MeterUnavailable, match=r"no-such-perf not found"):
        PerfMeter("no-such-perf", events_dir(tmp_path, "energy-pkg")).validate(busy_seconds=0.05)
