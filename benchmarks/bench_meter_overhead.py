"""CPU overhead of the energy meters' own background samplers, as a share of one core.

    .venv/bin/python benchmarks/bench_meter_overhead.py [--seconds 5]

The RAPL meter reads its counters on a daemon thread (every 1 s by default) and the NVML meter
samples GPU power on one (10 Hz) for GPUs without an energy counter. Both run during every
measured program, so they must not take the CPU they are measuring. Prints:
1. for each sampler at its default rate, one session of --seconds while the main thread sleeps:
   process CPU time / wall time = the sampler's share of one core (target <= 1 %), next to the same
   figure for the process doing nothing (the floor);
2. the CPU cost of one sample (median of 5 tight loops of 200 samples), to extrapolate to other
   rates and zone counts.
The hardware is synthetic (a powercap tree in a temporary folder with 2 packages, each with a
dram subzone; a fake pynvml with 2 power-only GPUs), so this is greencoder's own cost; real
sysfs and NVML reads cost a kernel or driver call more per read, at the same rate.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable

ZONES = {"intel-rapl:0": "package-0", "intel-rapl:0:0": "dram", "intel-rapl:1": "package-1", "intel-rapl:1:0": "dram"}


def share_of_one_core(run: Callable[[], None]) -> tuple[float, float, float]:
    """(CPU seconds, wall seconds, CPU / wall) of the whole process while `run` executes."""
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu, wall, cpu / wall


def session_for(meter, seconds: float) -> Callable[[], None]:
    def run() -> None:
        session = meter.start()
        time.sleep(seconds)
        session.stop()

    return run


def per_sample_seconds(sample: Callable[[], None], count: int = 200, rounds: int = 5) -> float:
    costs = []
    for _ in range(rounds):
        cpu = time.process_time()
        for _ in range(count):
            sample()
        costs.append((time.process_time() - cpu) / count)
    return statistics.median(costs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each sampling session")
    args = parser.parse_args()

    from greencoder.core.meters.fakes import FakeGpu, PowercapTree, fake_pynvml
    from greencoder.core.meters.nvml import NvmlMeter
    from greencoder.core.meters.rapl import RaplMeter

    with tempfile.TemporaryDirectory() as scratch:
        PowercapTree(scratch, ZONES)
        rapl = RaplMeter(scratch)
        nvml = NvmlMeter(fake_pynvml([FakeGpu(energy_mj=None), FakeGpu(energy_mj=None)]))
        rows = [
            ("idle process (floor)", "-", lambda: time.sleep(args.seconds)),
            (f"RAPL, {len(ZONES)} zones", f"every {rapl.interval:g} s", session_for(rapl, args.seconds)),
            ("NVML power, 2 GPUs", f"every {nvml.power_interval:g} s", session_for(nvml, args.seconds)),
        ]
        print(f"1. sampler CPU while sampling for {args.seconds:g} s (target <= 1 % of one core)")
        for label, rate, run in rows:
            cpu, wall, share = share_of_one_core(run)
            print(f"   {label:22s} {rate:>14s}  cpu {cpu * 1000:7.2f} ms / wall {wall:6.2f} s = {share * 100:6.3f} % of one core")

        rapl_session, nvml_session = rapl.start(), nvml.start()
        rapl_cost = per_sample_seconds(rapl_session.sample)
        nvml_cost = per_sample_seconds(nvml_session.sample)
        rapl_session.stop(), nvml_session.stop()
        print("2. CPU per sample")
        print(f"   RAPL, {len(ZONES)} zones          {rapl_cost * 1e6:8.1f} µs  -> {rapl_cost / rapl.interval * 100:.4f} % at its "
              f"{rapl.interval:g} s interval, {rapl_cost / 0.01 * 100:.2f} % even at 100 Hz")
        print(f"   NVML power, 2 GPUs      {nvml_cost * 1e6:8.1f} µs  -> {nvml_cost / nvml.power_interval * 100:.4f} % at 10 Hz "
              "(fake module: a real NVML call adds driver time)")


if __name__ == "__main__":
    main()
