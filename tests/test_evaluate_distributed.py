"""`greencoder evaluate` in several processes (torchrun / accelerate launch): the split, the one
writer, and whole runs that must give what one process gives, also after a kill."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from queue import Queue

import pytest

from conftest import REPO_ROOT, SHARED_DATA
from conftest import run_greencoder as run_cli

QUIET = lambda line: None


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def keys(records: list[dict]) -> list[tuple]:
    return [(r["variant"], r["benchmark"], r["language"], r["task_id"]) for r in records]


def task(number: int):
    from greencoder.evaluation.tasks import Task

    return Task("humaneval-x", "python", f"Python/{number}", f"def f{number}():\n", f"f{number}")


# --- the split -----------------------------------------------------------------------------------

@pytest.mark.parametrize("count, world", [(0, 2), (1, 2), (7, 2), (7, 3), (12, 4), (3, 5)])
def test_shares_cover_every_item_once_and_differ_by_at_most_one(count, world):
    from greencoder.evaluation.distributed import share

    items = list(range(count))
    shares = [share(items, rank, world) for rank in range(world)]
    assert sorted(i for part in shares for i in part) == items
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    assert all(part == sorted(part) for part in shares)  # each process keeps the run's order


def test_share_refuses_a_rank_outside_the_world():
    from greencoder.evaluation.distributed import share

    with pytest.raises(ValueError):
        share([1, 2], 2, 2)


def test_pending_pairs_skip_what_the_file_holds(tmp_path):
    from greencoder.evaluation.distributed import pending_pairs
    from greencoder.evaluation.records import RecordFile
    from greencoder.evaluation.variants import Variant

    records = RecordFile(tmp_path / "generations.jsonl")
    records.append({"variant": "baseline", "benchmark": "humaneval-x", "language": "python", "task_id": "Python/1"})
    variants, tasks = [Variant("baseline"), Variant("instruction", instruction=True)], [task(0), task(1), task(2)]
    assert pending_pairs(variants, tasks, records) == [(0, 0), (0, 2), (1, 0), (1, 1), (1, 2)]


# --- which process this is -------------------------------------------------------------------------

def test_the_launch_is_read_from_the_environment():
    from greencoder.evaluation.distributed import ProcessContext

    assert ProcessContext.from_environment({}) == ProcessContext(0, 1, 0, 1)
    launched = ProcessContext.from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert launched == ProcessContext(3, 4, 1, 2) and launched.distributed and not launched.is_main
    assert ProcessContext.from_environment({"RANK": "1", "WORLD_SIZE": "2"}) == ProcessContext(1, 2, 1, 2)


@pytest.mark.parametrize("env, message", [
    ({"RANK": "x", "WORLD_SIZE": "2"}, "RANK='x'"),
    ({"RANK": "2", "WORLD_SIZE": "2"}, "do not fit"),
    ({"RANK": "0", "WORLD_SIZE": "0"}, "do not fit"),
])
def test_a_broken_launch_environment_is_one_clear_error(env, message):
    from greencoder.core.errors import InputError
    from greencoder.evaluation.distributed import ProcessContext

    with pytest.raises(InputError, match=message):
        ProcessContext.from_environment(env)


def test_each_process_takes_its_own_device_and_its_part_of_the_cpus(monkeypatch):
    from greencoder.core.errors import InputError
    from greencoder.evaluation import distributed
    from greencoder.evaluation.distributed import ProcessContext

    single, second = ProcessContext(), ProcessContext(1, 2, 1, 2)
    assert single.device("cuda:1") == "cuda:1" and second.device("cpu") == "cpu"
    with pytest.raises(InputError, match="CUDA_VISIBLE_DEVICES"):
        second.device("cuda:1")
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert second.device("auto") == "cuda:0" and ProcessContext(5, 8, 3, 4).device("cuda") == "cuda:0"
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert ProcessContext(5, 8, 3, 4).device("cuda") == "cuda:3"

    monkeypatch.setattr(distributed, "available_cpus", lambda: 16)
    monkeypatch.delenv("GREENCODER_THREADS", raising=False)
    assert ProcessContext(5, 8, 3, 4).default_threads() == 4 and single.default_threads() is None
    monkeypatch.setattr(distributed, "available_cpus", lambda: 2)
    assert ProcessContext(2, 3, 2, 3).default_threads() == 1
    monkeypatch.setenv("GREENCODER_THREADS", "2")
    assert second.default_threads() is None  # the user's setting stands


# --- the one writer, with an in-memory channel ---------------------------------------------------------

class Pipes:
    """Channel's interface over queues, one pair per process talking to process 0 (as point-to-point
    messages between two processes are: in order, and apart from other pairs')."""

    VANISHED = object()

    def __init__(self, peers):
        self.to_main = {peer: Queue() for peer in peers}
        self.to_peer = {peer: Queue() for peer in peers}

    def main_side(self):
        pipes = self

        class Main:
            def send(self, peer: int, message: dict) -> None:
                pipes.to_peer[peer].put(json.loads(json.dumps(message)))

            def receive(self, peer: int) -> dict:
                message = pipes.to_main[peer].get(timeout=30)
                if message is Pipes.VANISHED:
                    raise ConnectionError("Connection closed by peer")
                return message

        return Main()

    def peer_side(self, me: int):
        pipes = self

        class Peer:
            def send(self, peer: int, message: dict) -> None:
                assert peer == 0
                pipes.to_main[me].put(json.loads(json.dumps(message)))

            def receive(self, peer: int) -> dict:
                return pipes.to_peer[me].get(timeout=30)

        return Peer()


def record(number: int) -> dict:
    return {"variant": "baseline", "benchmark": "humaneval-x", "language": "python", "task_id": f"Python/{number}"}


def test_the_writer_appends_each_record_once_before_it_answers(tmp_path):
    from greencoder.evaluation.distributed import Collector, PeerSink
    from greencoder.evaluation.records import RecordFile

    pipes = Pipes([1])
    collector = Collector(pipes.main_side(), RecordFile(tmp_path / "generations.jsonl"), [1])
    sink = PeerSink(pipes.peer_side(1))
    assert not sink.has(("baseline", "humaneval-x", "python", "Python/0"))
    for number in range(3):
        sink.append(record(number))
    sink.close()  # returns only after process 0 answered, i.e. after the lines are on disk
    assert keys(lines(tmp_path / "generations.jsonl")) == keys([record(n) for n in range(3)])
    assert collector.finish() == 3


def test_a_failed_or_vanished_process_is_named_and_its_lines_kept(tmp_path):
    from greencoder.core.errors import GreencoderError
    from greencoder.evaluation.distributed import Collector, PeerSink
    from greencoder.evaluation.records import RecordFile

    pipes = Pipes([1, 2])
    failing = PeerSink(pipes.peer_side(1))
    failing.append(record(0))
    closing = threading.Thread(target=failing.close, kwargs={"error": "OutOfMemoryError: CUDA out of memory"})
    closing.start()
    pipes.peer_side(2).send(0, {"record": record(1)})
    pipes.to_main[2].put(Pipes.VANISHED)
    collector = Collector(pipes.main_side(), RecordFile(tmp_path / "generations.jsonl"), [1, 2])
    with pytest.raises(GreencoderError) as error:
        collector.finish()
    closing.join(timeout=30)
    message = str(error.value)
    assert "process 1: OutOfMemoryError: CUDA out of memory" in message and "process 2: lost contact" in message
    assert "run the same command again" in message
    assert sorted(keys(lines(tmp_path / "generations.jsonl"))) == sorted(keys([record(0), record(1)]))


def test_one_process_generates_everything_itself(tmp_path):
    from greencoder.evaluation.distributed import ProcessContext, generate_all
    from greencoder.evaluation.records import RecordFile
    from greencoder.evaluation.variants import Variant

    calls = []
    generated = generate_all(ProcessContext(), [Variant("baseline")], [task(0), task(1)], RecordFile(tmp_path / "g.jsonl"),
                             lambda variant, tasks, records: calls.append([t.task_id for t in tasks]) or len(tasks))
    assert generated == 2 and calls == [["Python/0", "Python/1"]]


# --- real processes --------------------------------------------------------------------------------------

WORKER = """
import json, sys
from pathlib import Path
from greencoder.evaluation.distributed import ProcessContext, generate_all
from greencoder.evaluation.records import RecordFile
from greencoder.evaluation.tasks import Task
from greencoder.evaluation.variants import Variant

out = Path(sys.argv[1])
context = ProcessContext.from_environment()
tasks = [Task("humaneval-x", "python", f"Python/{n}", "def f():\\n", "f") for n in range(7)]
variants = [Variant("baseline"), Variant("instruction", instruction=True)]

def generate(variant, chosen, records):
    for task in chosen:
        if sys.argv[2] == "fail" and context.rank == 1 or sys.argv[2] == "fail0" and context.rank == 0:
            raise RuntimeError("model failed to load")
        records.append({"variant": variant.name, "benchmark": task.benchmark, "language": task.language,
                        "task_id": task.task_id, "rank": context.rank})
    return len(chosen)

records = RecordFile(out / "generations.jsonl") if context.is_main else None
try:
    count = generate_all(context, variants, tasks, records, generate, log=lambda line: None)
except Exception as exc:
    print(json.dumps({"rank": context.rank, "error": str(exc)}))
    sys.exit(1)
print(json.dumps({"rank": context.rank, "generated": count}))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_workers(out: Path, mode: str, world: int = 2) -> list[subprocess.CompletedProcess]:
    """WORKER in `world` processes, with the environment torchrun gives them (without torchrun's
    own start-up, to keep this test cheap)."""
    port = str(free_port())
    processes = []
    for rank in range(world):
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "RANK": str(rank), "WORLD_SIZE": str(world),
               "LOCAL_RANK": str(rank), "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port}
        processes.append(subprocess.Popen([sys.executable, "-c", WORKER, str(out), mode], env=env, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    return [subprocess.CompletedProcess(p.args, p.wait(timeout=120), *p.communicate()) for p in processes]


@pytest.mark.slow  # three processes importing torch: ~20 s on a busy 2-core machine
def test_processes_share_the_pending_pairs_and_one_writes_them(tmp_path):
    done = [{**record(n), "rank": "earlier run"} for n in (0, 3)]
    (tmp_path / "generations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in done))
    results = launch_workers(tmp_path, "ok", world=3)  # two receiving threads in process 0 at once
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    reports = [json.loads(r.stdout.splitlines()[-1]) for r in results]
    assert reports[0]["generated"] == 12  # 2 variants x 7 tasks - 2 done, counted by the writer
    assert reports[1]["generated"] == reports[2]["generated"] == 4
    written = lines(tmp_path / "generations.jsonl")
    expected = {("baseline" if v == 0 else "instruction", "humaneval-x", "python", f"Python/{t}")
                for v in range(2) for t in range(7)}
    assert len(written) == 14 and set(keys(written)) == expected  # every pair once, none twice
    assert {r["rank"] for r in written[2:]} == {0, 1, 2}


@pytest.mark.slow  # two processes importing torch: ~15 s on a busy 2-core machine
def test_a_failure_in_another_process_keeps_the_lines_and_is_named(tmp_path):
    results = launch_workers(tmp_path, "fail")
    assert [r.returncode for r in results] == [1, 1]
    main = json.loads(results[0].stdout.splitlines()[-1])
    assert "process 1: RuntimeError: model failed to load" in main["error"]
    written = lines(tmp_path / "generations.jsonl")
    assert len(written) == 7 and {r["rank"] for r in written} == {0}  # process 0's share is on disk


@pytest.mark.slow  # two processes importing torch: ~15 s on a busy 2-core machine
def test_a_failure_in_process_0_waits_for_the_others_and_keeps_their_lines(tmp_path):
    """Process 0 fails at its first task: it still writes what the other process finishes, then
    ends with its own error (not a crash of the threads blocked in the process group)."""
    results = launch_workers(tmp_path, "fail0")
    assert [r.returncode for r in results] == [1, 0], [r.stderr for r in results]
    assert json.loads(results[0].stdout.splitlines()[-1])["error"] == "model failed to load"
    written = lines(tmp_path / "generations.jsonl")
    assert len(written) == 7 and {r["rank"] for r in written} == {1}


# --- whole runs on the tiny model --------------------------------------------------------------------

needs_data = pytest.mark.skipif(not (SHARED_DATA / "humaneval_x").is_dir(), reason="shared benchmark data missing")


def evaluate_args(model: Path, out: Path, limit: int = 4) -> list[str]:
    return ["evaluate", "--model", str(model), "--variant", "baseline", "--variant", "instruction",
            "--benchmark", "humaneval-x", "--language", "python", "--data", str(SHARED_DATA), "--out", str(out),
            "--limit", str(limit), "--max-new-tokens", "40", "--device", "cpu", "--no-progress"]


def torchrun(processes: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes),
            "-m", "greencoder", *args]


def cli_env() -> dict[str, str]:
    return {**os.environ, "GREENCODER_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}


def generation_fields(records: list[dict]) -> list[dict]:
    """What must not depend on the number of processes: all but the timing and energy fields."""
    drop = {"finished_at", "wall_seconds", "cpu_seconds", "energy"}
    return sorted(({k: v for k, v in r.items() if k not in drop} for r in records), key=lambda r: json.dumps(r, sort_keys=True))


@pytest.fixture(scope="module")
def one_process(tiny_model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one") / "out"
    result = run_cli(*evaluate_args(tiny_model_dir, out, limit=5))
    assert result.returncode == 0, result.stderr
    return out


@needs_data
@pytest.mark.slow  # two model processes under torchrun: ~40 s here
def test_two_processes_give_the_records_one_process_gives(tiny_model_dir, one_process, tmp_path):
    out = tmp_path / "two"
    result = subprocess.run(torchrun(2, *evaluate_args(tiny_model_dir, out, limit=5)), env=cli_env(),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("# greencoder evaluation") == 1  # the report, from process 0 alone
    assert "shared among 2 processes" in result.stderr
    for name in ("generations.jsonl", "correctness.jsonl"):
        got, expected = lines(out / name), lines(one_process / name)
        assert len(got) == 10 and len(set(keys(got))) == 10, name
        if name == "generations.jsonl":
            assert generation_fields(got) == generation_fields(expected)
        else:
            assert sorted((keys([r])[0], r["status"]) for r in got) == sorted((keys([r])[0], r["status"]) for r in expected)
    assert json.loads((out / "run.json").read_text())["invocations"][-1]["processes"] == 2
    assert (out / "report" / "table4.json").read_text() == (one_process / "report" / "table4.json").read_text()


def kill_when_written(command: list[str], path: Path, at_least: int) -> None:
    """Start `command`, wait until `path` has `at_least` lines, then SIGKILL the launcher and every
    process it started, all at once (as a scheduler or the OOM killer ends a job)."""
    import psutil

    process = subprocess.Popen(command, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while len(lines(path)) < at_least:
            if process.poll() is not None:
                pytest.fail("the run ended before it could be killed")
            if time.monotonic() > deadline:
                pytest.fail(f"{path} never reached {at_least} lines")
            time.sleep(0.02)  # polling the file the run writes; nothing is timed
        family = [process.pid, *(child.pid for child in psutil.Process(process.pid).children(recursive=True))]
        for pid in family:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    finally:
        process.wait(timeout=60)


@needs_data
@pytest.mark.slow  # three runs of model processes: ~2 min here
@pytest.mark.parametrize("resume_with", [2, 1])
def test_a_killed_two_process_run_resumes_without_losing_or_repeating(tiny_model_dir, one_process, tmp_path, resume_with):
    """Killed after some lines, the run resumes with the same command (2 processes) or with
    another process count (1), and ends with what an uninterrupted run writes."""
    out = tmp_path / "killed"
    kill_when_written(torchrun(2, *evaluate_args(tiny_model_dir, out, limit=5)), out / "generations.jsonl", 3)
    before = lines(out / "generations.jsonl")
    assert 3 <= len(before) < 10 and len(set(keys(before))) == len(before)
    resume = torchrun(resume_with, *evaluate_args(tiny_model_dir, out, limit=5)) if resume_with > 1 else \
        [sys.executable, "-m", "greencoder", *evaluate_args(tiny_model_dir, out, limit=5)]
    resumed = subprocess.run(resume, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    after = lines(out / "generations.jsonl")
    assert after[: len(before)] == before  # finished lines stay as they were
    assert len(after) == 10 and len(set(keys(after))) == 10
    assert generation_fields(after) == generation_fields(lines(one_process / "generations.jsonl"))
    assert len(lines(out / "correctness.jsonl")) == 10


@needs_data
@pytest.mark.slow  # two model processes: ~30 s here
def test_accelerate_launch_starts_cpu_processes_that_share_the_run(tiny_model_dir, tmp_path):
    import shutil

    accelerate = shutil.which("accelerate") or str(Path(sys.executable).with_name("accelerate"))
    if not Path(accelerate).exists():
        pytest.skip("the accelerate command is not installed")
    out = tmp_path / "out"
    args = evaluate_args(tiny_model_dir, out, limit=3)
    result = subprocess.run([accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                             "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "greencoder", *args],
                            env=cli_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "shared among 2 processes" in result.stderr and result.stdout.count("# greencoder evaluation") == 1
    written = lines(out / "generations.jsonl")
    assert len(written) == 6 and len(set(keys(written))) == 6
    assert json.loads((out / "run.json").read_text())["invocations"][-1]["processes"] == 2


@needs_data
def test_a_bad_option_in_a_launched_run_is_reported_once(tmp_path, monkeypatch, capsys):
    """Every process checks the same input; only process 0 prints the one line."""
    from greencoder.cli import main

    args = ["evaluate", "--variant", "baseline", "--data", str(SHARED_DATA), "--out", str(tmp_path / "out")]
    for rank, printed in (("1", ""), ("0", "greencoder: error: variants baseline need --model")):
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("LOCAL_RANK", rank)
        assert main(args) == 1
        assert capsys.readouterr().err.strip() == printed
    assert not (tmp_path / "out").exists()
