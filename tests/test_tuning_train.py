"""Contrastive prompt tuning end to end on the tiny model: what changes, what is saved, what resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import INIT_TEXT
from conftest import run_greencoder as run_cli
from tuning_data import write_synthetic_pairs

QUIET = lambda line: None  # the tuner's log sink


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory) -> Path:
    return write_synthetic_pairs(tmp_path_factory.mktemp("pairs") / "synthetic.jsonl")


def settings_for(model_dir, pairs_file, out, **overrides):
    from greencoder.tuning.trainer import TuneSettings

    values = dict(model=str(model_dir), pairs=(str(pairs_file),), out=str(out), train_set="python", loss="infonce",
                  epochs=2, lr=1e-2, batch_size=8, max_length=96, seed=0, validation_fraction=0.25, device="cpu")
    values.update(overrides)
    return TuneSettings(**values)


def adapter_tensor(adapter_dir: Path) -> torch.Tensor:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))["prompt_embeddings"]


def trained_metrics(out: Path) -> list[dict]:
    """metrics.jsonl without the timing fields, which differ between runs by nature."""
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in row.items() if k not in ("seconds", "examples_per_second")} for row in rows]


@pytest.fixture(scope="module")
def trained(tiny_model_dir, pairs_file, tmp_path_factory):
    """One 4-epoch InfoNCE run, with the base weights and the initial prompt captured before training."""
    from greencoder.tuning.soft_prompt import soft_prompt_weights
    from greencoder.tuning.trainer import Tuner

    out = tmp_path_factory.mktemp("run")
    tuner = Tuner(settings_for(tiny_model_dir, pairs_file, out, epochs=4), threads=1, log=QUIET, progress=False)
    tuner.prepare()
    model = tuner.accelerator.unwrap_model(tuner.model)
    base_before = {name: p.detach().clone() for name, p in model.get_base_model().named_parameters()}
    prompt_before = soft_prompt_weights(model).detach().clone()
    outcome = tuner.run()
    return {"tuner": tuner, "model": model, "outcome": outcome, "out": out,
            "base_before": base_before, "prompt_before": prompt_before}


def test_only_the_soft_prompt_changes(trained):
    from greencoder.tuning.soft_prompt import soft_prompt_weights

    model = trained["model"]
    after = dict(model.get_base_model().named_parameters())
    assert after.keys() == trained["base_before"].keys() and len(after) > 10
    changed = [name for name, before in trained["base_before"].items() if not torch.equal(before, after[name])]
    assert changed == []
    assert not torch.equal(trained["prompt_before"], soft_prompt_weights(model).detach())


def test_soft_prompt_starts_as_the_init_text_embedding(trained, tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tokenizer(INIT_TEXT)["input_ids"]
    embeddings = trained["model"].get_base_model().get_input_embeddings()
    expected = embeddings(torch.tensor(ids)).detach()
    assert trained["prompt_before"].shape == (len(ids), expected.shape[-1])
    assert torch.equal(trained["prompt_before"], expected)
    config = json.loads((trained["out"] / "epoch-1" / "adapter_config.json").read_text())
    assert config["num_virtual_tokens"] == len(ids)
    assert config["prompt_tuning_init_text"] == INIT_TEXT
    assert config["peft_type"] == "PROMPT_TUNING" and config["task_type"] == "CAUSAL_LM"


def test_separation_on_held_out_problems_rises(trained):
    """The synthetic pattern is learnable: separation on the validation problems (never trained
    on) goes up by a clear margin, and the run records which epoch is best."""
    outcome = trained["outcome"]
    before, after = outcome.record(0), outcome.record(4)
    assert outcome.state.data["validation_problems"] >= 10
    assert after.separation - before.separation > 0.05, (before, after)
    best = outcome.record(outcome.best_epoch)
    assert best.separation == max(outcome.record(e).separation for e in range(1, 5))
    assert after.train_loss < outcome.record(1).train_loss


def test_every_epoch_leaves_an_adapter_and_a_metrics_line(trained):
    out = trained["out"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [0, 1, 2, 3, 4]
    assert rows[0]["train_loss"] is None and all(row["train_loss"] > 0 for row in rows[1:])
    for row in rows:
        assert row["separation"] == pytest.approx(row["cos_efficient"] - row["cos_inefficient"], abs=1e-6)
    for epoch in range(1, 5):
        assert (out / f"epoch-{epoch}" / "adapter_model.safetensors").is_file()
    run = json.loads((out / "run.json").read_text())
    assert run["completed_epochs"] == 4 and run["best_epoch"] == trained["outcome"].best_epoch
    assert run["best_epoch_rule"] == "validation separation"  # read by `evaluate` to show tune's choice beside the report's
    assert sorted(p.name for p in (out / "state").iterdir()) == ["optimizer-epoch-4.pt"]


def test_saved_prompt_loads_with_peft_and_generates_in_the_runtime(trained, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from greencoder.core.generation import GenerationOptions
    from greencoder.core.model_loading import ModelSettings
    from greencoder.core.runtime import Runtime
    from greencoder.tuning.soft_prompt import soft_prompt_weights

    adapter = trained["out"] / "epoch-4"
    in_memory = soft_prompt_weights(trained["model"]).detach()
    reloaded = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(adapter))
    assert torch.equal(soft_prompt_weights(reloaded).detach(), in_memory)

    runtime = Runtime.load(ModelSettings(str(tiny_model_dir), str(adapter), device="cpu"), threads=1)
    assert runtime.num_virtual_tokens == in_memory.shape[0]
    result = runtime.generate("def add(a, b):\n", GenerationOptions(max_new_tokens=4))
    assert result.virtual_tokens == in_memory.shape[0] and 1 <= result.new_tokens <= 4


@pytest.mark.slow  # a long duplicate of default coverage: the default suite keeps its 12 minutes
def test_resumed_run_equals_an_uninterrupted_one(tiny_model_dir, pairs_file, tmp_path):
    from greencoder.tuning.trainer import tune

    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    tune(settings_for(tiny_model_dir, pairs_file, straight, epochs=2), 1, QUIET, progress=False)
    first = tune(settings_for(tiny_model_dir, pairs_file, resumed, epochs=1), 1, QUIET, progress=False)
    second = tune(settings_for(tiny_model_dir, pairs_file, resumed, epochs=2), 1, QUIET, progress=False)
    assert first.trained_epochs == [1] and second.resumed_from == 1 and second.trained_epochs == [2]
    assert torch.equal(adapter_tensor(straight / "epoch-2"), adapter_tensor(resumed / "epoch-2"))
    assert trained_metrics(straight) == trained_metrics(resumed)


@pytest.mark.slow  # a long duplicate of default coverage: the default suite keeps its 12 minutes
def test_same_seed_same_adapter_other_seed_other_adapter(tiny_model_dir, pairs_file, tmp_path):
    from greencoder.tuning.trainer import tune

    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        tune(settings_for(tiny_model_dir, pairs_file, tmp_path / name, epochs=1, seed=seed), 1, QUIET, progress=False)
    assert torch.equal(adapter_tensor(tmp_path / "a" / "epoch-1"), adapter_tensor(tmp_path / "b" / "epoch-1"))
    assert not torch.equal(adapter_tensor(tmp_path / "a" / "epoch-1"), adapter_tensor(tmp_path / "c" / "epoch-1"))


def test_triplet_loss_trains_too(tiny_model_dir, pairs_file, tmp_path):
    from greencoder.tuning.trainer import tune

    outcome = tune(settings_for(tiny_model_dir, pairs_file, tmp_path, loss="triplet", margin=0.2, epochs=2), 1, QUIET, progress=False)
    assert outcome.record(2).separation > outcome.record(0).separation + 0.03


def one_error_line(stderr: str) -> str:
    """The run's error: exactly one line, the last one, after any progress lines."""
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith("greencoder: error: "), stderr
    assert sum("error" in line for line in lines) == 1 and "Traceback" not in stderr, stderr
    return lines[-1]


def cli_args(model_dir: Path, pairs_file: Path, out: Path, epochs: int) -> list[str]:
    return ["tune", "--model", str(model_dir), "--pairs", str(pairs_file), "--train-set", "python", "--loss", "infonce",
            "--epochs", str(epochs), "--out", str(out), "--lr", "1e-2", "--max-length", "96",
            "--validation-fraction", "0.25", "--device", "cpu", "--no-progress"]


@pytest.mark.slow  # 20-30 s each: the default suite keeps to its 12-minute budget
def test_cli_killed_mid_run_resumes_to_the_same_adapter(tiny_model_dir, pairs_file, tmp_path):
    """SIGKILL during epoch 2, run the same command again: it continues after epoch 1 and ends
    with the adapter an uninterrupted run makes."""
    killed = tmp_path / "killed"
    env = {**os.environ, "GREENCODER_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "greencoder", *cli_args(tiny_model_dir, pairs_file, killed, 3)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            run_file = killed / "run.json"
            if run_file.exists() and json.loads(run_file.read_text()).get("completed_epochs", 0) >= 1:
                break
            if process.poll() is not None:
                pytest.fail("tune ended before it could be killed")
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert json.loads((killed / "run.json").read_text())["completed_epochs"] < 3

    resumed = run_cli(*cli_args(tiny_model_dir, pairs_file, killed, 3), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr and "best epoch" in resumed.stdout
    straight = run_cli(*cli_args(tiny_model_dir, pairs_file, tmp_path / "straight", 3), cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    assert torch.equal(adapter_tensor(killed / "epoch-3"), adapter_tensor(tmp_path / "straight" / "epoch-3"))
    assert trained_metrics(killed) == trained_metrics(tmp_path / "straight")
    assert not list(killed.glob("*.partial")) and not list((killed / "state").glob("*.partial"))


@pytest.mark.slow  # 20-30 s each: the default suite keeps to its 12-minute budget
def test_cli_refuses_to_resume_with_other_settings(tiny_model_dir, pairs_file, tmp_path):
    out = tmp_path / "run"
    assert run_cli(*cli_args(tiny_model_dir, pairs_file, out, 1), cwd=tmp_path).returncode == 0
    changed = run_cli(*[a if a != "1e-2" else "5e-3" for a in cli_args(tiny_model_dir, pairs_file, out, 2)], cwd=tmp_path)
    assert changed.returncode == 1
    assert "lr 0.01 -> 0.005" in one_error_line(changed.stderr)
    assert json.loads((out / "run.json").read_text())["completed_epochs"] == 1  # nothing lost
    again = run_cli(*[a if a != "1e-2" else "5e-3" for a in cli_args(tiny_model_dir, pairs_file, out, 1)], "--overwrite", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads((out / "run.json").read_text())["settings"]["lr"] == 0.005


@pytest.mark.parametrize("case", ["missing model", "missing pairs", "foreign out dir", "adapter as model"])
def test_cli_bad_input_is_one_line(case, tiny_model_dir, tiny_adapter_dir, pairs_file, tmp_path):
    args = cli_args(tiny_model_dir, pairs_file, tmp_path / "out", 1)
    expected = {"missing model": "does not exist", "missing pairs": "nowhere.jsonl",
                "foreign out dir": "holds no greencoder tuning run", "adapter as model": "PEFT adapter, not a base model"}[case]
    if case == "missing model":
        args[args.index("--model") + 1] = str(tmp_path / "no-model")
    elif case == "missing pairs":
        args[args.index("--pairs") + 1] = str(tmp_path / "nowhere.jsonl")
    elif case == "foreign out dir":
        (tmp_path / "out").mkdir()
        (tmp_path / "out" / "notes.txt").write_text("mine")
    else:
        args[args.index("--model") + 1] = str(tiny_adapter_dir)
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert expected in one_error_line(result.stderr)
    if case == "foreign out dir":
        assert (tmp_path / "out" / "notes.txt").read_text() == "mine"


@pytest.mark.slow  # the default suite keeps to its 12-minute budget; CI runs it after
def test_progress_bar_and_summary(tiny_model_dir, pairs_file, tmp_path):
    result = run_cli(*[a for a in cli_args(tiny_model_dir, pairs_file, tmp_path / "out", 1) if a != "--no-progress"],
                     "--progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "epoch 1/1" in result.stderr and "ex_s=" in result.stderr and "loss=" in result.stderr
    assert "best epoch: 1" in result.stdout and "separation" in result.stdout
    assert str(tmp_path / "out" / "epoch-1") in result.stdout


@pytest.mark.slow  # 20-30 s each: the default suite keeps to its 12-minute budget
def test_two_processes_train_like_one_with_the_combined_batch(tiny_model_dir, tmp_path):
    """Data-parallel run through torchrun (what `accelerate launch --multi_gpu` starts on GPUs):
    two CPU processes with batches of 4 reach the soft prompt one process reaches with batches of
    8, and only one process writes the run folder."""
    pairs = write_synthetic_pairs(tmp_path / "pairs.jsonl", problems=43)  # 32 train entries: no uneven last batch
    env = {**os.environ, "GREENCODER_THREADS": "1", "OMP_NUM_THREADS": "1"}
    common = ["--model", str(tiny_model_dir), "--pairs", str(pairs), "--train-set", "python", "--loss", "infonce",
              "--epochs", "1", "--lr", "1e-2", "--max-length", "96", "--validation-fraction", "0.25", "--device", "cpu",
              "--no-progress"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "greencoder", "tune"]
    distributed = subprocess.run([*launcher, *common, "--out", str(tmp_path / "two"), "--batch-size", "4"],
                                 env=env, capture_output=True, text=True, timeout=300)
    assert distributed.returncode == 0, distributed.stderr
    assert distributed.stdout.count("best epoch") == 1
    single = run_cli("tune", *common, "--out", str(tmp_path / "one"), "--batch-size", "8", cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    two, one = trained_metrics(tmp_path / "two")[1], trained_metrics(tmp_path / "one")[1]
    assert (two["steps"], two["examples"]) == (4, 32) and (one["steps"], one["examples"]) == (4, 32)
    assert torch.allclose(adapter_tensor(tmp_path / "two" / "epoch-1"), adapter_tensor(tmp_path / "one" / "epoch-1"), atol=1e-5)
    assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)


def test_run_folder_stands_for_its_best_epoch(trained, tiny_model_dir, tmp_path):
    from greencoder.core.errors import AdapterError
    from greencoder.core.model_loading import ModelSettings, load_model

    best = trained["outcome"].best_epoch
    loaded = load_model(ModelSettings(str(tiny_model_dir), str(trained["out"]), device="cpu"))
    assert loaded.adapter_path == str(trained["out"] / f"epoch-{best}")
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "run.json").write_text(json.dumps({"format": "greencoder-tune-run/1", "best_adapter": None}))
    with pytest.raises(AdapterError, match="no finished epoch"):
        load_model(ModelSettings(str(tiny_model_dir), str(unfinished), device="cpu"))


def test_without_a_validation_split_the_best_epoch_is_the_lowest_training_loss(tiny_model_dir, pairs_file, tmp_path):
    from greencoder.tuning.trainer import tune

    outcome = tune(settings_for(tiny_model_dir, pairs_file, tmp_path, validation_fraction=0.0, epochs=2), 1, QUIET, progress=False)
    assert outcome.state.data["validation_entries"] == 0 and outcome.record(2).separation is None
    losses = {e: outcome.record(e).train_loss for e in (1, 2)}
    assert outcome.best_epoch == min(losses, key=losses.get)
    assert json.loads((tmp_path / "run.json").read_text())["best_epoch_rule"] == "training loss (no validation split)"


@pytest.mark.slow
def test_one_epoch_on_the_shared_pair_files(tiny_model_dir, tmp_path):
    """The paper's `both` set from ../shared/data/pairs goes through training as a user runs it."""
    from conftest import SHARED_DATA

    pairs = [SHARED_DATA / "pairs" / "python_pairs.jsonl.gz", SHARED_DATA / "pairs" / "cpp_pairs.jsonl.gz"]
    if not all(p.is_file() for p in pairs):
        pytest.skip("shared pair files are not beside the checkout")
    out = tmp_path / "both"
    result = run_cli("tune", "--model", str(tiny_model_dir), "--pairs", *map(str, pairs), "--train-set", "both",
                     "--epochs", "1", "--max-length", "128", "--out", str(out), "--device", "cpu", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["data"]["loaded"].startswith("1194 entries") and run["data"]["skipped"] == {}
    assert run["data"]["train_entries"] + run["data"]["validation_entries"] == 1194
    assert run["completed_epochs"] == 1 and (out / "epoch-1" / "adapter_model.safetensors").is_file()


@pytest.mark.slow  # a long duplicate of default coverage: the default suite keeps its 12 minutes
def test_cuda_asked_for_without_a_gpu_is_one_line(tiny_model_dir, pairs_file, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    args = cli_args(tiny_model_dir, pairs_file, tmp_path / "out", 1)
    args[args.index("--device") + 1] = "cuda"
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 1 and "no CUDA GPU" in one_error_line(result.stderr)


@pytest.mark.slow  # 20-30 s each: the default suite keeps to its 12-minute budget
def test_bf16_model_trains_a_float32_prompt(tiny_model_dir, pairs_file, tmp_path):
    """The GPU recipe (base model in bf16, soft prompt in float32), exercised on the CPU."""
    from greencoder.tuning.soft_prompt import soft_prompt_weights
    from greencoder.tuning.trainer import Tuner

    tuner = Tuner(settings_for(tiny_model_dir, pairs_file, tmp_path, dtype="bfloat16", epochs=1), threads=1, log=QUIET, progress=False)
    tuner.prepare()
    model = tuner.accelerator.unwrap_model(tuner.model)
    before = soft_prompt_weights(model).detach().clone()
    assert model.get_base_model().dtype == torch.bfloat16 and before.dtype == torch.float32
    outcome = tuner.run()
    after = soft_prompt_weights(model).detach()
    assert after.dtype == torch.float32 and not torch.equal(before, after)
    assert outcome.record(1).train_loss > 0 and adapter_tensor(tmp_path / "epoch-1").dtype == torch.float32
