"""The tuning data layer: pair files of every supported shape, anchors, training sets, validation split."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from greencoder.core.errors import InputError
from greencoder.tuning.anchors import anchor_text
from greencoder.tuning.pairs import DIRECTION_UNKNOWN, PairEntry, load_pairs, normalise_program
from greencoder.tuning.splits import TRAIN_SETS, select_training_set, split_validation

PAIRS = SHARED_DATA / "pairs"


def write_jsonl(path: Path, records: list, gz: bool = False) -> Path:
    """Write one JSON value per line (a str record is written as is, for broken lines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


def entry(problem_id: str, language: str = "python", **fields) -> PairEntry:
    values = dict(efficient="print(1)", inefficient=("print(2)",), problem=None, title=None, io_example=None, origin="t:1")
    values.update(fields)
    return PairEntry(problem_id=problem_id, language=language, **values)


@pytest.fixture(scope="module")
def shared_pairs():
    files = [PAIRS / "python_pairs.jsonl.gz", PAIRS / "cpp_pairs.jsonl.gz"]
    if not all(f.exists() for f in files):
        pytest.skip(f"shared pair files not found under {PAIRS}")
    return load_pairs(files)


# --- the shared data --------------------------------------------------------------------------


def test_shared_files_load_completely(shared_pairs):
    by_language = {lang: [e for e in shared_pairs.entries if e.language == lang] for lang in ("python", "cpp")}
    assert len(by_language["python"]) == 1098
    assert len(by_language["cpp"]) == 96
    assert sum(len(e.inefficient) for e in shared_pairs.entries) == 1100 + 96
    assert not shared_pairs.skipped
    assert shared_pairs.summary().startswith("1194 entries (1196 pairs) from 2 files; nothing skipped")
    assert all(e.title for e in shared_pairs.entries)
    assert sum(e.problem is not None for e in shared_pairs.entries) == 100  # the Codeforces (PPIE) entries
    assert all(e.io_example for e in by_language["cpp"])
    first = shared_pairs.entries[0]
    assert first.origin.endswith("python_pairs.jsonl.gz:1")
    assert "\nif X > Y:\n    v = A\nelse:" in first.efficient  # doubled line breaks halved


def test_shared_training_sets(shared_pairs):
    entries = shared_pairs.entries
    both = select_training_set(entries, "both")
    python = select_training_set(entries, "python")
    cpp = select_training_set(entries, "cpp")
    assert len(python) == 1098 and len(cpp) == 96
    assert both == [e for e in entries if e in python or e in cpp] and len(both) == 1194
    assert select_training_set(entries, "all") == entries
    with pytest.raises(InputError, match="training set 'java' is empty: the pair files contain only cpp, python"):
        select_training_set(entries, "java")


def test_shared_anchors_identify_the_task_without_code(shared_pairs):
    for e in shared_pairs.entries:
        anchor = anchor_text(e)
        if e.problem:
            assert anchor == e.problem.strip()
            continue
        assert e.title in anchor
        assert ("Python" if e.language == "python" else "C++") in anchor
        for program in (e.efficient, *e.inefficient):
            for line in program.splitlines():
                assert len(line.strip()) <= 20 or line.strip() not in anchor, (e.origin, line)


# --- PIE --------------------------------------------------------------------------------------


def test_pie_src_tgt_gzip_grouped_by_problem_and_faster_program(tmp_path):
    lines = [
        {"problem_id": "p1", "src_code": "slow_a()", "tgt_code": "fast()"},
        {"problem_id": "p2", "src_code": "slow_c()", "tgt_code": "other()"},
        {"problem_id": "p1", "src_code": "slow_b()", "tgt_code": "fast()\n"},
        {"problem_id": "p1", "src_code": "slow_a()", "tgt_code": "fast()"},
    ]
    # gzip told by magic bytes: the name does not say .gz
    path = write_jsonl(tmp_path / "pie.jsonl", lines, gz=True)
    loaded = load_pairs([path], language="py")
    assert [(e.problem_id, e.efficient, e.inefficient) for e in loaded.entries] == [
        ("p1", "fast()", ("slow_a()", "slow_b()")),
        ("p2", "other()", ("slow_c()",)),
    ]
    assert loaded.entries[0].origin == f"{path}:1" and loaded.entries[0].language == "python"
    assert loaded.skipped == {"duplicate inefficient program": 1}
    assert loaded.first_skipped_at["duplicate inefficient program"] == f"{path}:4"


def test_pie_input_target_spelling_needs_a_pie_key(tmp_path):
    lines = [
        {"problem_id": "p9", "language": "C++", "submission_id_v0": "s1", "input": "slow();", "target": "fast();"},
        {"submission_id_v0": "s2", "cpu_time_v0": 10, "input": "slow2();", "target": "fast();", "language": "cpp"},
        {"code_v0": "slow3();", "code_v1": "fast3();", "submission_id_v0": "s3", "problem_id": "p8"},
    ]
    loaded = load_pairs([write_jsonl(tmp_path / "pie_cpp.jsonl.gz", lines, gz=True)])
    assert [(e.language, e.efficient, e.inefficient) for e in loaded.entries] == [
        ("cpp", "fast();", ("slow();",)),
        ("cpp", "fast();", ("slow2();",)),  # no problem_id: its own problem, not grouped with p9
        ("cpp", "fast3();", ("slow3();",)),
    ]
    assert loaded.entries[1].problem_id == "pie_cpp.jsonl.gz:2"
    unmarked = write_jsonl(tmp_path / "plain_python.jsonl", [{"input": "a", "target": "b"}])
    with pytest.raises(InputError, match=r"plain_python.jsonl:1: no program fields"):
        load_pairs([unmarked])


# --- GEC-style --------------------------------------------------------------------------------


def test_gec_pairs_with_a_direction(tmp_path):
    lines = [
        {"code_1": "one_fast()", "code_2": "two_slow()", "efficient": 1, "language": "python"},
        {"code_1": "one_slow()", "code_2": "two_fast()", "efficient": 2, "language": "python"},
        {"code_1": "one_slow()", "code_2": "two_fast2()", "efficient": "code_2", "language": "python"},
        {"code_1": "one_fast2()", "code_2": "two_slow2()", "faster": "code_1", "language": "python"},
        {"code_1": "x()", "code_2": "y()", "language": "python"},
    ]
    loaded = load_pairs([write_jsonl(tmp_path / "gec.jsonl", lines)])
    assert [(e.efficient, e.inefficient) for e in loaded.entries] == [
        ("one_fast()", ("two_slow()",)),
        ("two_fast()", ("one_slow()",)),
        ("two_fast2()", ("one_slow()",)),
        ("one_fast2()", ("two_slow2()",)),
    ]
    assert loaded.skipped == {DIRECTION_UNKNOWN: 1}
    assert loaded.first_skipped_at[DIRECTION_UNKNOWN].endswith("gec.jsonl:5")
    bad = write_jsonl(tmp_path / "bad_python.jsonl", [{"code_1": "a", "code_2": "b", "efficient": 3}])
    with pytest.raises(InputError, match=r"bad_python.jsonl:1: field 'efficient' must be 1, 2"):
        load_pairs([bad])


def test_unlabelled_gec_file_is_an_error(tmp_path):
    shared = PAIRS / "gec_clone_unlabeled.jsonl.gz"
    path = shared if shared.exists() else write_jsonl(tmp_path / "gec.jsonl", [{"code_1": "a", "code_2": "b", "language": "python"}])
    with pytest.raises(InputError, match=r"direction of its code_1/code_2 pairs is unknown; add a field 'efficient'") as info:
        load_pairs([path])
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# --- bad data ---------------------------------------------------------------------------------


def test_malformed_json_names_file_and_line(tmp_path):
    good = {"efficient": "a", "inefficient": ["b"], "language": "python"}
    path = write_jsonl(tmp_path / "pairs.jsonl", [good, "", '{"efficient": "a" "inefficient": []}'])
    with pytest.raises(InputError, match=r"pairs.jsonl:3: not valid JSON \(Expecting ',' delimiter\)"):
        load_pairs([path])


def test_line_without_program_fields_names_file_and_line(tmp_path):
    good = {"efficient": "a", "inefficient": ["b"], "language": "python"}
    path = write_jsonl(tmp_path / "pairs.jsonl", [good, {"problem_id": "p1", "efficient": "a", "language": "python"}])
    with pytest.raises(InputError, match=r"pairs.jsonl:2: no program fields .*keys found: efficient, language, problem_id"):
        load_pairs([path])
    not_object = write_jsonl(tmp_path / "list.jsonl", [good, [1, 2]])
    with pytest.raises(InputError, match=r"list.jsonl:2: expected a JSON object, got list"):
        load_pairs([not_object])


def test_json_list_file_reports_item_lines(tmp_path):
    path = tmp_path / "pairs.json"
    items = [{"efficient": "a", "inefficient": "b", "language": "java"}, {"language": "java"}]
    path.write_text(json.dumps(items, indent=2))
    with pytest.raises(InputError, match=r"pairs.json:7: no program fields"):
        load_pairs([path])
    path.write_text(json.dumps(items[:1], indent=2))
    loaded = load_pairs([path])
    assert loaded.entries[0].inefficient == ("b",) and loaded.entries[0].origin == f"{path}:2"


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match=r"pairs file not found: .*nowhere.jsonl"):
        load_pairs([tmp_path / "nowhere.jsonl"])


def test_counted_skips_are_reported_with_their_first_place(tmp_path):
    lines = [
        {"problem_id": "ok", "efficient": "fast()", "inefficient": ["slow()"], "language": "python"},
        {"problem_id": "none", "efficient": "fast()", "inefficient": [], "language": "python"},
        {"problem_id": "same", "efficient": "fast()\r\n", "inefficient": ["fast()"], "language": "python"},
        {"problem_id": "rusty", "efficient": "fn main(){}", "inefficient": ["fn x(){}"], "language": "rust"},
        {"problem_id": "kept", "efficient": "f()", "inefficient": ["f()", "g()"], "language": "python"},
        {"problem_id": "none2", "efficient": "fast()", "inefficient": [""], "language": "python"},
        {"problem_id": "empty", "efficient": "  \n", "inefficient": ["slow()"], "language": "python"},
        {"problem_id": "rusty2", "efficient": "a", "inefficient": ["b"], "language": "rust"},
    ]
    path = write_jsonl(tmp_path / "a.jsonl", lines)
    loaded = load_pairs([path])
    assert [(e.problem_id, e.inefficient) for e in loaded.entries] == [("ok", ("slow()",)), ("kept", ("g()",))]
    assert loaded.skipped == {
        "no inefficient program": 2,
        "inefficient program identical to the efficient one": 2,
        "unknown language 'rust'": 2,
        "empty efficient program": 1,
    }
    summary = loaded.summary()
    assert summary.startswith("2 entries (2 pairs) from 1 file; skipped 7: ")
    assert f"2 no inefficient program (first at {path}:2)" in summary
    assert f"2 inefficient program identical to the efficient one (first at {path}:3)" in summary
    assert f"2 unknown language 'rust' (first at {path}:4)" in summary
    assert f"1 empty efficient program (first at {path}:7)" in summary


# --- language ---------------------------------------------------------------------------------


def test_language_from_the_file_path(tmp_path):
    pair = {"efficient": "a", "inefficient": ["b"]}
    assert load_pairs([write_jsonl(tmp_path / "python_splits" / "train.jsonl", [pair])]).entries[0].language == "python"
    assert load_pairs([write_jsonl(tmp_path / "cpp_pairs.jsonl", [pair])]).entries[0].language == "cpp"
    assert load_pairs([write_jsonl(tmp_path / "data" / "java" / "x.jsonl", [pair])]).entries[0].language == "java"


def test_language_argument_and_line_field_order(tmp_path):
    pair = {"efficient": "a", "inefficient": ["b"]}
    path = write_jsonl(tmp_path / "cpp_pairs.jsonl", [pair, dict(pair, lang="Java")])
    loaded = load_pairs([path], language="Python")
    assert [e.language for e in loaded.entries] == ["python", "java"]  # argument beats the path; the line beats both
    with pytest.raises(InputError, match="unknown language 'cobol'"):
        load_pairs([path], language="cobol")


def test_missing_language_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [{"efficient": "a", "inefficient": ["b"]}])
    expected = r"train.jsonl:1: no language field and none can be told from the file name; pass --pairs-language"
    with pytest.raises(InputError, match=expected):
        load_pairs([path])


# --- text normalisation -----------------------------------------------------------------------


def test_doubled_line_breaks_are_halved_only_when_every_run_is_even():
    doubled = "A, B = 1, 2\n\n\n\nif A > B:\n\n    v = A\n\n"
    assert normalise_program(doubled) == "A, B = 1, 2\n\nif A > B:\n    v = A"
    mixed = "a = 1\n\nb = 2\nprint(a)\n"
    assert normalise_program(mixed) == "a = 1\n\nb = 2\nprint(a)"
    assert normalise_program("print(1)   \n\n") == "print(1)"
    assert normalise_program("    indented()") == "    indented()"


def test_crlf_becomes_lf(tmp_path):
    assert normalise_program("int main() {\r\n  return 0;\r\n}\r\n") == "int main() {\n  return 0;\n}"
    assert normalise_program("a\r\n\r\nb\r\n\r\n") == "a\nb"  # doubled CRLF: halved after conversion
    path = write_jsonl(tmp_path / "cpp.jsonl", [{"efficient": "x;\r\ny;", "inefficient": "x;\r\n\r\ny;\r\nz;"}])
    loaded = load_pairs([path])
    assert loaded.entries[0].efficient == "x;\ny;" and loaded.entries[0].inefficient == ("x;\n\ny;\nz;",)


# --- anchors ----------------------------------------------------------------------------------


def test_anchor_is_the_statement_when_there_is_one():
    assert anchor_text(entry("p", problem="  Sum two numbers.\n")) == "Sum two numbers."


def test_anchor_without_statement_uses_title_and_example_not_code():
    e = entry(
        "p02", "cpp", title="Frog 2", io_example=("3 1\n10 20 10\n", "20\n"),
        efficient="int main(){ long long best_cost_so_far = 0; }", inefficient=("int main(){ int slow_version_here = 1; }",),
    )
    anchor = anchor_text(e)
    assert anchor == (
        'Write a C++ program for the problem "Frog 2".\n'
        "It reads from standard input and writes to standard output.\n"
        "Example input:\n3 1\n10 20 10\nExample output:\n20"
    )
    assert "main" not in anchor


def test_anchor_clips_long_examples_and_falls_back_to_the_problem_id():
    long_input = "\n".join(f"{i:010d}" for i in range(200))
    anchor = anchor_text(entry("p03", title="Big", io_example=(long_input, "1\n")))
    example = anchor.split("Example input:\n", 1)[1].split("\nExample output:", 1)[0]
    kept = example.removesuffix("\n...")
    assert example.endswith("\n...") and len(kept) <= 400 and long_input.startswith(kept)
    assert all(len(line) == 10 for line in kept.splitlines())  # cut on a line boundary
    assert anchor_text(entry("p04", "java")) == "Write a Java program that solves problem p04."
    assert "Python" in anchor_text(entry("p05", io_example=("1\n", "2\n")))


# --- training sets and the validation split ---------------------------------------------------


def test_training_set_names():
    entries = [entry("a"), entry("b", "cpp"), entry("c", "java")]
    assert TRAIN_SETS == ("python", "cpp", "java", "both", "all")
    assert [e.problem_id for e in select_training_set(entries, "both")] == ["a", "b"]
    assert [e.problem_id for e in select_training_set(entries, "all")] == ["a", "b", "c"]
    assert [e.problem_id for e in select_training_set(entries, "java")] == ["c"]
    with pytest.raises(InputError, match="unknown training set 'rust': choose one of python, cpp, java, both, all"):
        select_training_set(entries, "rust")


def _problems_split(seed: int, entries: list[PairEntry], fraction: float = 0.25):
    train, validation = split_validation(entries, fraction, seed)
    return [e.problem_id for e in train], [e.problem_id for e in validation]


def test_validation_split_is_seeded_and_keeps_problems_together():
    entries = [entry(f"p{i % 20:02d}", efficient=f"fast{i}()") for i in range(100)]  # 20 problems, 5 entries each
    train_ids, validation_ids = _problems_split(7, entries)
    assert (train_ids, validation_ids) == _problems_split(7, entries)
    assert not set(train_ids) & set(validation_ids)
    assert len(set(validation_ids)) == 5 and len(validation_ids) == 25 and len(train_ids) == 75
    train, validation = split_validation(entries, 0.25, 7)
    assert train == [e for e in entries if e in train] and validation == [e for e in entries if e in validation]
    others = {tuple(sorted(set(_problems_split(seed, entries)[1]))) for seed in range(8)}
    assert len(others) > 1  # different seeds give different splits


def test_validation_fraction_bounds():
    entries = [entry("a"), entry("b"), entry("c")]
    assert split_validation(entries, 0.0, 1) == (entries, [])
    train, validation = split_validation(entries, 0.01, 1)
    assert len(validation) == 1 and len(train) == 2  # at least one problem held out
    train, validation = split_validation(entries, 0.99, 1)
    assert len(train) == 1 and len(validation) == 2  # never all of them
    for bad in (-0.1, 1.0, 1.5):
        with pytest.raises(InputError, match="validation fraction must be at least 0 and below 1"):
            split_validation(entries, bad, 1)
    with pytest.raises(InputError, match="training set has 1 problem"):
        split_validation([entry("a"), entry("a", "cpp")], 0.2, 1)
