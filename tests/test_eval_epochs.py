"""The paper's variants: every epoch of a tune run as its own variant (`NAME-ep:N`), and a report
that shows all epochs or one per variant, naming the rule that chose it beside tune's own choice.

Tune runs here are real folders in the real format, written by tuning's RunDirectory with real
PEFT adapters (copies of the tiny model's), without training: resolution reads only the folder.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from greencoder.cli import main
from greencoder.core.errors import InputError
from greencoder.evaluation.variants import resolve_variants, split_epoch_name

SEPARATIONS = {1: 0.010, 2: 0.020, 3: 0.050}
"""Validation separation per epoch: tune chooses epoch 3."""


def make_tune_run(path: Path, adapter: Path, separations: dict[int, float], committed_leftover: bool = True,
                  train_set: str = "both", loss: str = "triplet") -> Path:
    """A tune run folder as `greencoder tune` commits it, one real adapter per epoch; plus the
    leftovers of a kill (an uncommitted epoch folder) that must never be read."""
    from greencoder.tuning.run_directory import EpochRecord, RunDirectory, RunState

    def record(epoch: int, separation: float | None) -> EpochRecord:
        return EpochRecord(epoch, 1.0 / (epoch + 1), 0.5, separation, 0.5, 0.4, 0.6)

    run = RunDirectory(path)
    state = RunState({"model": "tiny", "train_set": train_set, "loss": loss}, {"train_entries": 4}, [record(0, 0.0)])
    run.begin(state)
    for epoch, separation in separations.items():
        run.commit_epoch(state, record(epoch, separation), lambda p: shutil.copytree(adapter, p),
                         lambda p: p.write_bytes(b"optimizer"))
    if committed_leftover:
        shutil.copytree(adapter, path / f"epoch-{max(separations, default=0) + 1}")  # killed before its commit
    return path


@pytest.fixture(scope="module")
def tune_run(tiny_adapter_dir, tmp_path_factory) -> Path:
    return make_tune_run(tmp_path_factory.mktemp("tune") / "run", tiny_adapter_dir, SEPARATIONS)


def names(specs: list[str], instruction: bool = False) -> list[str]:
    return [v.name for v in resolve_variants(specs, instruction)]


# ---------------------------------------------------------------------------------------------
# resolution


def test_an_epoch_pattern_gives_one_variant_per_finished_epoch(tune_run):
    variants = resolve_variants([f"cpt={tune_run}/epoch-*"], False)
    assert [v.name for v in variants] == ["baseline", "cpt-ep:1", "cpt-ep:2", "cpt-ep:3"]  # never the uncommitted epoch-4
    for variant in variants[1:]:
        assert variant.adapter == str(tune_run / f"epoch-{variant.epoch}") and variant.name.endswith(f":{variant.epoch}")
        assert (variant.tune_run, variant.tune_choice, variant.tune_rule) == (str(tune_run), 3, "validation separation")
        assert split_epoch_name(variant.name) == ("cpt", variant.epoch)
    assert names([f"cpt={tune_run}/epoch-[12]"]) == ["baseline", "cpt-ep:1", "cpt-ep:2"]


def test_without_a_name_the_variants_get_the_papers_names(tune_run):
    """`RUN/epoch-*` unquoted and expanded by the shell to its only match is the same variant."""
    assert names([f"{tune_run}/epoch-*"]) == ["baseline", "both-triplet-ep:1", "both-triplet-ep:2", "both-triplet-ep:3"]
    single, = resolve_variants([f"{tune_run}/epoch-2"], False)[1:]
    assert (single.name, single.adapter) == ("both-triplet-ep:2", str(tune_run / "epoch-2"))
    best, = resolve_variants([str(tune_run)], False)[1:]  # the run folder: tune's choice
    assert (best.name, best.adapter, best.epoch) == ("both-triplet-ep:3", str(tune_run / "epoch-3"), 3)
    # the same epoch named twice (pattern and folder) is one variant
    assert names([f"{tune_run}/epoch-*", str(tune_run)]) == names([f"{tune_run}/epoch-*"])


def test_instruction_copies_keep_their_epoch(tune_run):
    variants = resolve_variants([f"cpt={tune_run}/epoch-[13]"], True)
    assert [v.name for v in variants] == ["baseline", "cpt-ep:1", "cpt-ep:3", "cpt-ep:1+instruction", "cpt-ep:3+instruction"]
    instructed = variants[-1]
    assert instructed.instruction and instructed.epoch == 3 and instructed.tune_choice == 3
    assert split_epoch_name(instructed.name) == ("cpt+instruction", 3)


def test_named_folders_keep_the_users_name_and_learn_their_epoch(tune_run):
    chosen, = resolve_variants([f"mine={tune_run}/epoch-1"], False)[1:]
    assert (chosen.name, chosen.epoch, chosen.tune_choice) == ("mine", 1, 3)
    whole, = resolve_variants([f"mine={tune_run}"], False)[1:]
    assert (whole.name, whole.adapter, whole.epoch) == ("mine", str(tune_run), 3)


def test_an_existing_folder_with_pattern_characters_is_a_plain_adapter(tiny_adapter_dir, tmp_path):
    odd = shutil.copytree(tiny_adapter_dir, tmp_path / "odd[1]")
    plain, = resolve_variants([f"odd={odd}"], False)[1:]
    assert (plain.name, plain.adapter, plain.epoch) == ("odd", str(odd), None)


def test_bad_epoch_specs_are_one_clear_line(tune_run, tiny_adapter_dir, tmp_path):
    empty = tmp_path / "empty"
    make_tune_run(empty, tiny_adapter_dir, {}, committed_leftover=False)
    corrupt = make_tune_run(tmp_path / "corrupt", tiny_adapter_dir, {1: 0.1, 2: 0.2}, committed_leftover=False)
    (corrupt / "epoch-2" / "adapter_config.json").write_text("{torn")
    twin = make_tune_run(tmp_path / "twin", tiny_adapter_dir, {1: 0.1}, committed_leftover=False)
    torn = tmp_path / "torn"
    torn.mkdir()
    (torn / "run.json").write_text('{"format": "greencoder-tune-run/1", "hist')
    cases = [
        ([f"cpt={tune_run}/epoch-9*"], "epoch-9* matches no finished epoch of tune run"),
        ([f"cpt={empty}/epoch-*"], f"tune run {empty} has no finished epoch yet"),
        ([f"cpt={tiny_adapter_dir}/epoch-*"], "is not a greencoder tune run (it has no run.json)"),
        ([f"cpt={tmp_path}/missing/epoch-*"], f"variant 'cpt={tmp_path}/missing/epoch-*': {tmp_path}/missing does not exist"),
        ([f"cpt={corrupt}/epoch-*"], "epoch-2 of tune run"),
        ([f"cpt={tmp_path}/*/epoch-*"], "only the epoch folder may be a pattern"),
        ([str(torn)], f"tune run {torn}: run.json is unreadable"),
        ([f"{tune_run}/epoch-4"], "epoch 4 of tune run"),  # folder on disk, never committed
        ([f"{tune_run}/epoch-*", f"{twin}/epoch-*"], "two tune runs with the same settings: name them"),
        ([f"bad name={tune_run}/epoch-*"], "variant name 'bad name'"),
        (["plain-word"], "or a tune run's folder or epoch pattern"),
    ]
    for specs, message in cases:
        with pytest.raises(InputError) as caught:
            resolve_variants(specs, False)
        text = str(caught.value)
        assert message in text and "\n" not in text, (specs, text)
    assert "corrupt adapter" in str(pytest.raises(InputError, resolve_variants, [f"cpt={corrupt}/epoch-*"], False).value)


def test_a_pattern_expanded_by_the_shell_is_refused_with_a_hint(tune_run, tmp_path, capsys):
    """Unquoted, `--variant RUN/epoch-*` reaches greencoder as several words."""
    status = main(["evaluate", "--variant", f"{tune_run}/epoch-1", f"{tune_run}/epoch-2", f"{tune_run}/epoch-3",
                   "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err.strip().splitlines()
    assert status == 1 and len(error) == 1 and "quote it (--variant 'NAME=RUN/epoch-*')" in error[0]
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# the report, from synthetic records

COLUMNS = [("humaneval-x", "cpp"), ("humaneval-x", "java"), ("humaneval-x", "python"),
           ("leetcode-hard", "cpp"), ("leetcode-hard", "java"), ("leetcode-hard", "python")]
LABELS = ["HumanEval-X C++", "HumanEval-X Java", "HumanEval-X Python", "LeetCode C++", "LeetCode Java", "LeetCode Python"]
TASKS = 3
PASSED = {  # variant -> tasks passed per column (of TASKS); ep:2 and ep:3 tie on Total (the earliest wins)
    "baseline": [1, 1, 2, 0, 0, 1],
    "instruction": [2, 1, 2, 0, 1, 1],
    "cpt-ep:1": [1, 0, 1, 0, 0, 0],
    "cpt-ep:2": [3, 2, 2, 1, 0, 1],
    "cpt-ep:3": [2, 2, 3, 1, 1, 0],
    "cpt-ep:10": [0, 0, 1, 0, 0, 0],
}
RATIOS = {  # variant -> energy % of baseline per compared task in HumanEval-X Python, and whether significant
    "instruction": [(90.0, True), (120.0, False)],
    "cpt-ep:2": [(80.0, True), (70.0, True)],
    "cpt-ep:3": [(95.0, False)],
}


def synthetic_results(out: Path, tune_run: Path | None) -> Path:
    """Records in the formats the pipeline writes (records.py, scoring.py, efficiency.py)."""
    from greencoder.evaluation.pipeline import EvaluateSettings, write_run_file

    out.mkdir(parents=True)
    with open(out / "correctness.jsonl", "w") as handle:
        for variant, passed in PASSED.items():
            for (benchmark, language), count in zip(COLUMNS, passed, strict=True):
                for index in range(TASKS):
                    ok = index < count
                    handle.write(json.dumps({"variant": variant, "benchmark": benchmark, "language": language,
                                             "task_id": f"{language}/{index}", "status": "ok" if ok else "wrong_answer",
                                             "passed": ok, "isolation": "test"}) + "\n")
    with open(out / "comparisons.jsonl", "w") as handle:
        for variant, ratios in RATIOS.items():
            for index, (ratio, significant) in enumerate(ratios):
                result = {"relative_pct": ratio - 100.0, "significant": significant}
                handle.write(json.dumps({"variant": variant, "benchmark": "humaneval-x", "language": "python",
                                         "task_id": f"python/{index}", "meter": "estimate", "energy_kind": "estimated",
                                         "energy": result, "time": result}) + "\n")
    if tune_run is not None:  # what `evaluate` records of the variants it resolved
        variants = resolve_variants(["baseline", "instruction", f"cpt={tune_run}/epoch-*"], False)
        write_run_file(out, EvaluateSettings(out=str(out)), variants, TASKS * 6, "test")
    return out


def cell(passed: int, tasks: int) -> str:
    return f"{100.0 * passed / tasks:.1f} ({passed}/{tasks})"


def expected_table4_row(variant: str) -> list[str]:
    passed = PASSED[variant]
    return [variant, cell(sum(passed), TASKS * 6), *(cell(p, TASKS) for p in passed)]


@pytest.fixture(scope="module")
def quick_plots():
    """Plots are drawn by the pipeline tests; here every report would redraw the same figures."""
    from greencoder.evaluation import report

    saved = report.plot_pass_at_1, report.plot_energy_ratios
    report.plot_pass_at_1 = report.plot_energy_ratios = lambda table, path: path
    yield
    report.plot_pass_at_1, report.plot_energy_ratios = saved


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_table4_and_5_keep_the_papers_layout_with_every_epoch(tune_run, tmp_path, quick_plots):
    from greencoder.evaluation.report import write_report

    out = write_report(synthetic_results(tmp_path / "out", tune_run), epochs="all")
    order = ["baseline", "instruction", "cpt-ep:1", "cpt-ep:2", "cpt-ep:3", "cpt-ep:10"]  # epochs by number
    rows = read_csv(out / "table4.csv")
    assert rows[0] == ["Variant", "Total", *LABELS]
    assert rows[1:] == [expected_table4_row(v) for v in order]
    markdown = (out / "table4.md").read_text().splitlines()
    assert [c.strip() for c in markdown[0].split("|")[1:-1]] == rows[0]
    assert [[c.strip() for c in line.split("|")[1:-1]] for line in markdown[2:8]] == rows[1:]
    assert "Rows: every evaluated epoch" in markdown[-1]
    energy = read_csv(out / "table5_energy.csv")
    assert energy[0] == ["Variant", *LABELS] and [r[0] for r in energy[1:]] == ["instruction", "cpt-ep:2", "cpt-ep:3"]
    for row in energy[1:]:
        ratios = RATIOS[row[0]]
        significant = [r for r, s in ratios if s]
        mean = f"{sum(significant) / len(significant):.1f} " if significant else ""
        assert row[3] == f"{mean}({len(significant)}/{len(ratios)})" and row[1] == row[2] == row[4] == ""
    data = json.loads((out / "table5.json").read_text())
    assert data["rows"][1]["energy"]["HumanEval-X Python"]["percent_of_baseline"] == pytest.approx(75.0)


def test_best_epoch_per_variant_names_its_rule_beside_tunes_choice(tune_run, tmp_path, quick_plots):
    from greencoder.evaluation.report import write_report

    out = write_report(synthetic_results(tmp_path / "out", tune_run), epochs="best")
    rows = read_csv(out / "table4.csv")
    assert [r[0] for r in rows[1:]] == ["baseline", "instruction", "cpt-ep:2"]  # 2 ties 3 on Total: the earliest
    assert rows[3] == expected_table4_row("cpt-ep:2")
    assert [r[0] for r in read_csv(out / "table5_energy.csv")[1:]] == ["instruction", "cpt-ep:2"]
    epochs = read_csv(out / "epochs.csv")
    assert epochs[0] == ["Variant", "Total pass@1 by epoch", "Best by benchmark pass@1", "Total pass@1",
                         "Chosen by tune", "Tune's rule", "Total pass@1 (tune's choice)"]
    by_epoch = ", ".join(f"{e}: {100 * sum(PASSED[f'cpt-ep:{e}']) / 18:.1f}" for e in (1, 2, 3, 10))
    assert epochs[1] == ["cpt", by_epoch, "cpt-ep:2", cell(9, 18), "cpt-ep:3", "validation separation", cell(9, 18)]
    report = (out / "report.md").read_text()
    for text in ("best epoch by benchmark pass@1", "as the paper did", "choosing the epoch on the test benchmark is optimistic",
                 "ties: the earliest epoch", "**Chosen by tune**: the epoch `greencoder tune` chose on its validation split"):
        assert text in report, text
    assert "Rows: each tuned variant at its best epoch by benchmark pass@1" in (out / "table5.md").read_text()
    choice = json.loads((out / "epochs.json").read_text())[0]
    assert choice["best_by_pass_at_1"]["epoch"] == 2 and choice["chosen_by_tune"]["epoch"] == 3
    assert choice["pass_at_1"]["10"] == pytest.approx(100 / 18)


def test_tunes_choice_as_rows_and_unknown_where_no_run_was_recorded(tune_run, tmp_path, quick_plots):
    from greencoder.evaluation.report import write_report

    out = write_report(synthetic_results(tmp_path / "with-run", tune_run), epochs="validation")
    assert [r[0] for r in read_csv(out / "table4.csv")[1:]] == ["baseline", "instruction", "cpt-ep:3"]
    # records made elsewhere (no run.json): every epoch stays, and the report says why
    out = write_report(synthetic_results(tmp_path / "elsewhere", None), epochs="validation")
    assert len(read_csv(out / "table4.csv")) == 7
    report = (out / "report.md").read_text()
    assert "unknown (no tune run recorded)" in report and "every epoch is shown: no tune run is recorded" in report


def test_report_cli_takes_the_epoch_choice(tune_run, tmp_path, capsys, quick_plots):
    folder = synthetic_results(tmp_path / "out", tune_run)
    assert main(["report", str(folder), "--epochs", "best"]) == 0
    assert "| cpt-ep:2 " in capsys.readouterr().out
    assert main(["report", str(folder), "--epochs", "first"]) == 2  # click's own one-line usage error


# ---------------------------------------------------------------------------------------------
# end to end, as a user runs it


@pytest.mark.slow  # trains two epochs and generates with four variants: ~75 s on a shared 2-core machine
def test_tune_then_every_epoch_evaluated_and_reported(tiny_model_dir, tmp_path):
    from conftest import SHARED_DATA
    from conftest import run_greencoder as run_cli
    from tuning_data import write_synthetic_pairs

    if not (SHARED_DATA / "humaneval_x").is_dir():
        pytest.skip("shared benchmark data missing")
    pairs = write_synthetic_pairs(tmp_path / "pairs.jsonl", problems=16)
    tuned = run_cli("tune", "--model", str(tiny_model_dir), "--pairs", str(pairs), "--train-set", "python",
                    "--loss", "triplet", "--epochs", "2", "--batch-size", "8", "--max-length", "64",
                    "--validation-fraction", "0.25", "--device", "cpu", "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert tuned.returncode == 0, tuned.stderr
    chosen = json.loads((tmp_path / "run" / "run.json").read_text())["best_epoch"]
    out = tmp_path / "results"
    evaluated = run_cli("evaluate", "--model", str(tiny_model_dir), "--variant", f"{tmp_path / 'run'}/epoch-*",
                        "--benchmark", "humaneval-x", "--language", "python", "--limit", "2", "--max-new-tokens", "16",
                        "--data", str(SHARED_DATA), "--out", str(out), "--device", "cpu", "--no-progress", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    generations = [json.loads(line) for line in (out / "generations.jsonl").read_text().splitlines()]
    assert sorted({(g["variant"], g["adapter"]) for g in generations}) == [
        ("baseline", None),
        ("python-triplet-ep:1", str(tmp_path / "run" / "epoch-1")),
        ("python-triplet-ep:2", str(tmp_path / "run" / "epoch-2"))]
    reported = run_cli("report", str(out), "--epochs", "best", cwd=tmp_path)
    assert reported.returncode == 0, reported.stderr
    choice = json.loads((out / "report" / "epochs.json").read_text())[0]
    assert choice["variant"] == "python-triplet" and choice["chosen_by_tune"]["epoch"] == chosen
    assert choice["chosen_by_tune"]["rule"] == "validation separation"
    rows = read_csv(out / "report" / "table4.csv")
    assert [r[0] for r in rows[1:]] == ["baseline", choice["best_by_pass_at_1"]["variant"]]
    assert "choosing the epoch on the test benchmark is optimistic" in reported.stdout
