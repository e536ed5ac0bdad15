"""Synthetic pair files for the tuning tests.

Each problem has an efficient and an inefficient Python program of the same shape that differ by
one consistent pattern (a set lookup against repeated `list.count` scans), with names and
constants varying per problem. The anchor is a short statement that mentions neither pattern, so
before training the anchor sits about equally close to both programs; a soft prompt that learns
the pattern raises the separation on held-out problems.
"""

from __future__ import annotations

import json
import random
from pathlib import Path


def synthetic_entries(problems: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for index in range(problems):
        name = rng.choice(["items", "values", "data", "numbers", "xs", "arr"])
        limit = rng.randint(2, 99)
        head = f"def solve_{index}({name}):\n    limit = {limit}\n"
        efficient = head + f"    seen = set({name})\n    return sum(1 for v in seen if v < limit)\n"
        inefficient = head + f"    seen = list({name})\n    return sum(1 for v in seen if seen.count(v) and v < limit)\n"
        rows.append({
            "problem_id": f"p{index}",
            "language": "python",
            "problem": f"Count the distinct values below {limit}.",
            "efficient": efficient,
            "inefficient": [inefficient],
        })
    return rows


def write_synthetic_pairs(path: Path, problems: int = 48, seed: int = 0) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in synthetic_entries(problems, seed)), encoding="utf-8")
    return path
