"""Raw results as append-only JSON lines: the one source every table and plot is made from.

    OUT/generations[-shard-I-of-N].jsonl   one line per (variant, benchmark, language, task)
    OUT/correctness[-shard-I-of-N].jsonl   one line per (variant, benchmark, language, task)
    OUT/energy.jsonl                       one line per measured (variant, benchmark, language, task)
    OUT/comparisons.jsonl                  one line per (variant, benchmark, language, task) vs baseline

Each line is written whole and flushed to disk before the next task starts, so a kill loses at
most the line being written; a torn last line is ignored (and overwritten) on the next run, which
skips every key already present. Shards write files of their own, so results of several machines
can be copied into one folder and read together.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

KEY_FIELDS = ("variant", "benchmark", "language", "task_id")


def record_key(record: dict[str, Any]) -> tuple[str, str, str, str]:
    return tuple(str(record[f]) for f in KEY_FIELDS)  # type: ignore[return-value]


def shard_suffix(shard: tuple[int, int] | None) -> str:
    return f"-shard-{shard[0]}-of-{shard[1]}" if shard and shard[1] > 1 else ""


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """Complete JSON lines of `path`; a torn or corrupt line (from a kill) is skipped."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                return  # torn last line
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                yield record


def read_all(directory: Path, kind: str) -> list[dict[str, Any]]:
    """Records of every file of `kind` (all shards) in `directory`, later lines winning per key."""
    merged: dict[tuple, dict[str, Any]] = {}
    for path in sorted(directory.glob(f"{kind}*.jsonl")):
        for record in read_records(path):
            try:
                merged[record_key(record)] = record
            except KeyError:
                continue
    return list(merged.values())


class RecordFile:
    """One append-only results file, safe to append to from several worker threads."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self.done: dict[tuple, dict[str, Any]] = {}
        for record in read_records(path):
            try:
                self.done[record_key(record)] = record
            except KeyError:
                continue
        self._drop_torn_tail()

    def _drop_torn_tail(self) -> None:
        """Cut a partial last line left by a kill, so the next append starts on a fresh line."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "r+b") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return
            position = handle.seek(0, os.SEEK_END)
            while position > 0:  # back to the last newline, a block at a time
                step = min(65536, position)
                handle.seek(position - step)
                cut = handle.read(step).rfind(b"\n")
                if cut >= 0:
                    handle.truncate(position - step + cut + 1)
                    return
                position -= step
            handle.truncate(0)

    def has(self, key: tuple) -> bool:
        return key in self.done

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(line)
                handle.flush()
                os.fsync(handle.fileno())
            self.done[record_key(record)] = record
