"""A user's `--generations FILE`, read strictly: every problem is `FILE:LINE: what is wrong`.

greencoder's own result files are read leniently (records.py): a kill can leave their last line
torn, and the next run rewrites it. A file a person hands in is different: a line that is not
JSON, not an object, has no usable solution or names a task that does not exist is a mistake to
report, not a line to skip, or pass@1 would quietly be computed over fewer tasks. A last line
without a newline is an ordinary last line here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from greencoder.core.errors import InputError
from greencoder.evaluation.records import KEY_FIELDS
from greencoder.evaluation.tasks import BENCHMARKS, LANGUAGES

TaskIds = Callable[[str, str], set[str] | None]
"""(benchmark, language) -> the task ids that exist, or None where they cannot be known (no data)."""


def read_generations(path: str, task_ids: TaskIds) -> list[dict[str, Any]]:
    """Every line of the file as a checked record; InputError naming file and line otherwise."""
    source = Path(path)
    if not source.is_file():
        raise InputError(f"--generations {path}: no such file")
    try:
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"--generations {path}: cannot read it: {exc.strerror}") from None
    records: list[dict[str, Any]] = []
    seen: dict[tuple, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record = _record(line, f"{path}:{number}", task_ids)
        key = tuple(record[field] for field in KEY_FIELDS)
        if key in seen:
            raise InputError(f"{path}:{number}: {'/'.join(key)} is already on line {seen[key]}")
        seen[key] = number
        records.append(record)
    if not records:
        raise InputError(f"{path}: no generations in the file")
    return records


def _record(line: str, where: str, task_ids: TaskIds) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, found {type(record).__name__}")
    for field in KEY_FIELDS:
        if not isinstance(record.get(field), str) or not record[field]:
            raise InputError(f"{where}: {field!r} must be a non-empty string")
    if record["benchmark"] not in BENCHMARKS:
        raise InputError(f"{where}: unknown benchmark {record['benchmark']!r} (choose {', '.join(BENCHMARKS)})")
    if record["language"] not in LANGUAGES:
        raise InputError(f"{where}: unknown language {record['language']!r} (choose {', '.join(LANGUAGES)})")
    known = task_ids(record["benchmark"], record["language"])
    if known is not None and record["task_id"] not in known:
        raise InputError(f"{where}: {record['benchmark']} has no {record['language']} task {record['task_id']!r}")
    if "error" in record:
        if not isinstance(record["error"], str):
            raise InputError(f"{where}: 'error' must be a string (why the generation failed)")
    elif not isinstance(record.get("solution"), str):
        found = "missing" if "solution" not in record else f"{json.dumps(record['solution'])[:40]}"
        raise InputError(f"{where}: 'solution' must be the solution's code as a string, found {found}")
    return record
