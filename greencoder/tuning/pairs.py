"""Read efficient/inefficient program pairs from data files into `PairEntry` records.

Contrastive prompt tuning needs, per problem, one faster program and one or more slower ones. Such
pairs come in a few public shapes; this module reads them all into one record so the trainer never
sees a file format. Files may be JSON lines (`.jsonl`), gzipped JSON lines (recognised by the gzip
magic bytes, whatever the name) or a JSON list of objects (`.json`, or any file whose first
non-blank character is `[`). The shape is told per line by its keys:

- greencoder / shared schema: `efficient` (str) and `inefficient` (list of str, or one str), with
  optional `problem_id`, `language`, `problem`, `meta.problem_title` and
  `meta.io_tests.public.{inputs,outputs}`.
- PIE ("Learning Performance-Improving Code Edits"): `src_code` (slower) and `tgt_code` (faster);
  or `input` (slower) and `target` (faster), or `code_v0` (slower) and `code_v1` (faster), when the
  line also has a PIE key such as `submission_id_v0`, `cpu_time_v0` or `problem_id`. PIE lists one
  pair per line; all lines of a file that share (problem_id, language, faster program) become one
  entry with several slower programs, in first-seen order, so a problem with one fast solution is
  not weighted by how many slow ones happened to be sampled as separate pairs.
- GEC-style clone pairs `code_1` / `code_2`: usable only when a field `efficient` (or `faster`)
  names the faster one (1, 2, "code_1" or "code_2"). Without it the line is skipped; a file where
  every line lacks it is an error, since nothing in it can be trained on.

Language, in order: the line's `language`/`lang` field (aliases accepted: "Python", "C++", "py");
else the `language` argument (the CLI's --pairs-language); else a token of the file name or of its
folder's name that names one (`python_splits/train.jsonl`, `cpp_pairs.jsonl`); else an error.

Program text is normalised so the model trains on code shaped like the code it generates:
`\\r\\n` becomes `\\n`; trailing whitespace at the end of the program is removed; and where every
run of line breaks in a program has even length (CodeNet/PIE programs often have every line break
doubled: `'a = 1\\n\\nb = 2\\n\\n\\n\\nprint(b)'`), each run is halved. A program with any odd run
(a single line break somewhere) is left alone, since its blank lines are real.

Bad data never passes silently: a line that is not JSON, not an object, or has no program fields is
an InputError naming `file:line`; usable-but-empty data is a counted skip (`LoadedPairs.skipped`)
with the place it first happened. Skips count lines, except dropped programs of a kept line
(empty, duplicate, or identical to the efficient one), which count one per program.
"""

from __future__ import annotations

import collections
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from greencoder.core.errors import InputError
from greencoder.core.languages import get_language


@dataclass(frozen=True)
class PairEntry:
    """One problem's faster program and its slower equivalents, ready for the contrastive loss."""

    problem_id: str
    language: str
    """Canonical core language name: "python", "cpp" or "java"."""
    efficient: str
    inefficient: tuple[str, ...]
    """At least one slower program of the same problem, none equal to `efficient`."""
    problem: str | None
    """Problem statement, when the file has one (stripped)."""
    title: str | None
    """Problem title (e.g. meta.problem_title), when present."""
    io_example: tuple[str, str] | None
    """The first public (stdin, expected stdout) test, when present."""
    origin: str
    """"path/to/file.jsonl.gz:LINE" (1-based), so messages can point at the data."""


@dataclass
class LoadedPairs:
    """Entries of all files, and what was skipped and where it first happened."""

    entries: list[PairEntry] = field(default_factory=list)
    skipped: collections.Counter = field(default_factory=collections.Counter)
    first_skipped_at: dict[str, str] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)

    def skip(self, reason: str, origin: str, count: int = 1) -> None:
        """Count a skip; the first place is kept so the user can look at an example."""
        self.skipped[reason] += count
        self.first_skipped_at.setdefault(reason, origin)

    def summary(self) -> str:
        """One line for the log: what was loaded, and each skip reason with its first place."""
        pairs = sum(len(entry.inefficient) for entry in self.entries)
        n_files = len(self.files)
        text = f"{len(self.entries)} entries ({pairs} pairs) from {n_files} file{'s' if n_files != 1 else ''}"
        total = sum(self.skipped.values())
        if not total:
            return text + "; nothing skipped"
        reasons = ", ".join(
            f"{count} {reason} (first at {self.first_skipped_at[reason]})" for reason, count in self.skipped.most_common()
        )
        return f"{text}; skipped {total}: {reasons}"


DIRECTION_UNKNOWN = "direction unknown (GEC clone pair without an 'efficient' field)"
_PIE_MARKERS = frozenset(
    {"submission_id_v0", "submission_id_v1", "cpu_time_v0", "cpu_time_v1", "problem_id", "improvement_frac", "user_id"}
)
_PATH_HINTS = {"python": "python", "python3": "python", "py": "python", "cpp": "cpp", "c++": "cpp", "java": "java"}
_NEWLINE_RUN = re.compile(r"\n+")


def normalise_program(text: str) -> str:
    """CRLF to LF, trailing whitespace off, and doubled line breaks halved (see the module docstring)."""
    text = text.replace("\r\n", "\n").rstrip()
    runs = _NEWLINE_RUN.findall(text)
    if runs and all(len(run) % 2 == 0 for run in runs):
        text = _NEWLINE_RUN.sub(lambda match: "\n" * (len(match.group()) // 2), text)
    return text


def path_language(path: str | Path) -> str | None:
    """The language the file name or its folder names (file name first), or None when none or
    several do. Folders further up are not asked: they say more about the user's disk than the data."""
    for part in reversed(Path(path).parts[-2:]):
        tokens = re.split(r"[^a-z0-9+]+", part.lower())
        found = {_PATH_HINTS[token] for token in tokens if token in _PATH_HINTS}
        if len(found) == 1:
            return found.pop()
        if found:
            return None
    return None


# ---------------------------------------------------------------------------------------------
# Reading records


def _open_text(path: Path) -> TextIO:
    """A text stream over the file, un-gzipped when its first bytes are the gzip magic."""
    if not path.exists():
        raise InputError(f"pairs file not found: {path}")
    try:
        with path.open("rb") as probe:
            gzipped = probe.read(2) == b"\x1f\x8b"
        stream = gzip.open(path, "rb") if gzipped else path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read pairs file {path}: {exc.strerror or exc}") from exc
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline="\n")


def _parse_line(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{origin}: not valid JSON ({exc.msg})") from None


def _iter_json_list(text: str, first_line: int, name: str) -> Iterator[tuple[int, Any]]:
    """Items of a JSON list document with the line each starts on (json gives no positions)."""
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")
    position = ws.match(text, 0).end() + 1  # past the "["
    line = first_line + text.count("\n", 0, position)
    expect_item = True
    while True:
        next_position = ws.match(text, position).end()
        line += text.count("\n", position, next_position)
        position = next_position
        if position >= len(text):
            raise InputError(f"{name}:{line}: not valid JSON (the list is not closed with ']')")
        char = text[position]
        if char == "]":
            if ws.match(text, position + 1).end() != len(text):
                raise InputError(f"{name}:{line}: not valid JSON (extra data after the list)")
            return
        if not expect_item:
            if char != ",":
                raise InputError(f"{name}:{line}: not valid JSON (Expecting ',' delimiter)")
            position += 1
            expect_item = True
            continue
        try:
            item, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise InputError(f"{name}:{first_line + exc.lineno - 1}: not valid JSON ({exc.msg})") from None
        yield line, item
        line += text.count("\n", position, end)
        position = end
        expect_item = False


def _iter_records(path: Path, name: str) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON value) for every non-blank line, or every item of a JSON list."""
    with _open_text(path) as stream:
        try:
            lines = iter(stream)
            number = 0
            for line in lines:
                number += 1
                if not line.strip():
                    continue
                if line.lstrip().startswith("["):
                    yield from _iter_json_list(line + stream.read(), number, name)
                    return
                yield number, _parse_line(line, f"{name}:{number}")
                break
            for line in lines:
                number += 1
                if line.strip():
                    yield number, _parse_line(line, f"{name}:{number}")
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(f"cannot read pairs file {name}: damaged or unreadable ({exc})") from exc
        except UnicodeDecodeError as exc:
            raise InputError(f"cannot read pairs file {name}: not UTF-8 text ({exc.reason})") from exc


# ---------------------------------------------------------------------------------------------
# Interpreting one record


@dataclass
class _Draft:
    """An entry being built: PIE lines of one (problem, language, faster program) join it."""

    problem_id: str
    language: str
    efficient: str
    inefficient: list[str]
    problem: str | None
    title: str | None
    io_example: tuple[str, str] | None
    origin: str

    def freeze(self) -> PairEntry:
        return PairEntry(
            self.problem_id, self.language, self.efficient, tuple(self.inefficient),
            self.problem, self.title, self.io_example, self.origin,
        )


def _text_field(record: dict, key: str, origin: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(f"{origin}: field '{key}' must be a string, not {type(value).__name__}")
    return value


def _program_list(record: dict, key: str, origin: str) -> list[str]:
    value = record.get(key)
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) or item is None for item in value):
        return [item or "" for item in value]
    raise InputError(f"{origin}: field '{key}' must be a string or a list of strings")


def _gec_direction(record: dict, origin: str) -> int | None:
    """1 or 2 for the faster of code_1/code_2; None when the line does not say."""
    for key in ("efficient", "faster"):
        value = record.get(key)
        if value is None:
            continue
        normal = str(value).strip().lower()
        if normal in ("1", "code_1"):
            return 1
        if normal in ("2", "code_2"):
            return 2
        raise InputError(f"{origin}: field '{key}' must be 1, 2, \"code_1\" or \"code_2\", not {value!r}")
    return None


def _programs(record: dict, origin: str) -> tuple[str, str, list[str]] | None:
    """(schema, faster program, slower programs), or None for an unlabelled GEC pair."""
    keys = record.keys()
    if "code_1" in keys and "code_2" in keys:
        direction = _gec_direction(record, origin)
        if direction is None:
            return None
        fast, slow = ("code_1", "code_2") if direction == 1 else ("code_2", "code_1")
        return "gec", _text_field(record, fast, origin), [_text_field(record, slow, origin)]
    if "efficient" in keys and "inefficient" in keys:
        return "greencoder", _text_field(record, "efficient", origin), _program_list(record, "inefficient", origin)
    if "src_code" in keys and "tgt_code" in keys:
        return "pie", _text_field(record, "tgt_code", origin), [_text_field(record, "src_code", origin)]
    has_marker = any(key in keys for key in _PIE_MARKERS)
    for slow, fast in (("input", "target"), ("code_v0", "code_v1")):
        if slow in keys and fast in keys and has_marker:
            return "pie", _text_field(record, fast, origin), [_text_field(record, slow, origin)]
    found = ", ".join(sorted(str(key) for key in keys)[:12]) or "none"
    raise InputError(
        f"{origin}: no program fields (expected efficient+inefficient, src_code+tgt_code, PIE input+target, "
        f"or code_1+code_2); keys found: {found}"
    )


def _optional_text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _io_example(record: dict) -> tuple[str, str] | None:
    """The first public (stdin, stdout) test: meta.io_tests.public.{inputs, outputs}[0]."""
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    tests = meta.get("io_tests", record.get("io_tests"))
    public = tests.get("public") if isinstance(tests, dict) else None
    if isinstance(public, dict):
        inputs, outputs = public.get("inputs"), public.get("outputs")
        if isinstance(inputs, list) and isinstance(outputs, list) and inputs and outputs:
            if isinstance(inputs[0], str) and isinstance(outputs[0], str):
                return inputs[0], outputs[0]
    if isinstance(public, list) and public and isinstance(public[0], dict):
        stdin, stdout = public[0].get("input"), public[0].get("output")
        if isinstance(stdin, str) and isinstance(stdout, str):
            return stdin, stdout
    return None


def _title(record: dict) -> str | None:
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    return _optional_text(meta.get("problem_title")) or _optional_text(record.get("title"))


class _FileReader:
    """Turns one file's records into drafts, counting skips into the shared `LoadedPairs`."""

    def __init__(self, path: Path, loaded: LoadedPairs, language: str | None) -> None:
        self.path = path
        self.name = str(path)
        self.loaded = loaded
        self.language = language
        self.path_language = path_language(path)
        self.drafts: list[_Draft] = []
        self.pie_groups: dict[tuple[str, str, str], _Draft] = {}
        self.direction_unknown = 0
        self.records = 0

    def read(self) -> list[PairEntry]:
        for number, record in _iter_records(self.path, self.name):
            self.records += 1
            self.add(record, number)
        if self.records == 0:
            raise InputError(f"pairs file {self.name} holds no records")
        if not self.drafts and self.direction_unknown:
            raise InputError(
                f"{self.name}: the efficient/inefficient direction of its code_1/code_2 pairs is unknown; "
                "add a field 'efficient' (1, 2, \"code_1\" or \"code_2\") naming the faster program"
            )
        return [draft.freeze() for draft in self.drafts]

    def resolve_language(self, record: dict, origin: str) -> str | None:
        """The line's language, or None after counting an unknown one as a skip."""
        for key in ("language", "lang"):
            value = record.get(key)
            if isinstance(value, str) and value.strip():
                try:
                    return get_language(value).name
                except InputError:
                    self.loaded.skip(f"unknown language {value.strip()!r}", origin)
                    return None
        if self.language or self.path_language:
            return self.language or self.path_language
        raise InputError(f"{origin}: no language field and none can be told from the file name; pass --pairs-language")

    def add(self, record: Any, number: int) -> None:
        """Interpret one record (line `number`): a new entry, a PIE group member, or a counted skip."""
        origin = f"{self.name}:{number}"
        if not isinstance(record, dict):
            raise InputError(f"{origin}: expected a JSON object, got {type(record).__name__}")
        programs = _programs(record, origin)
        if programs is None:
            self.direction_unknown += 1
            self.loaded.skip(DIRECTION_UNKNOWN, origin)
            return
        schema, raw_fast, raw_slow = programs
        language = self.resolve_language(record, origin)
        if language is None:
            return
        efficient = normalise_program(raw_fast)
        if not efficient:
            self.loaded.skip("empty efficient program", origin)
            return
        problem_id = str(record.get("problem_id") or "").strip() or f"{self.path.name}:{number}"
        key = (problem_id, language, efficient)
        draft = self.pie_groups.get(key) if schema == "pie" else None
        inefficient = self.keep_programs(efficient, raw_slow, draft.inefficient if draft else [], origin)
        if not inefficient:
            return
        if draft is not None:
            draft.inefficient.extend(inefficient)
            return
        draft = _Draft(
            problem_id, language, efficient, inefficient,
            _optional_text(record.get("problem")), _title(record), _io_example(record), origin,
        )
        self.drafts.append(draft)
        if schema == "pie":
            self.pie_groups[key] = draft

    def keep_programs(self, efficient: str, raw: list[str], already: list[str], origin: str) -> list[str]:
        """Normalised slower programs worth contrasting; drops are counted per program."""
        kept: list[str] = []
        dropped: collections.Counter = collections.Counter()
        for program in (normalise_program(text) for text in raw):
            if not program:
                dropped["empty inefficient program"] += 1
            elif program == efficient:
                dropped["inefficient program identical to the efficient one"] += 1
            elif program in kept or program in already:
                dropped["duplicate inefficient program"] += 1
            else:
                kept.append(program)
        if not raw or (not kept and set(dropped) == {"empty inefficient program"}):
            self.loaded.skip("no inefficient program", origin)
            return []
        for reason, count in dropped.items():
            self.loaded.skip(reason, origin, count)
        return kept


def load_pairs(paths: Sequence[str | Path], language: str | None = None) -> LoadedPairs:
    """Read every pair file into entries; `language` applies to lines that do not name one."""
    if not paths:
        raise InputError("no pair files given")
    default = get_language(language).name if language else None
    loaded = LoadedPairs()
    for path in paths:
        reader = _FileReader(Path(path), loaded, default)
        loaded.entries.extend(reader.read())
        loaded.files.append(str(path))
    return loaded
