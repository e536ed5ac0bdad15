"""What is compared: the prompt conditions of the paper, and the reference solutions.

- `baseline`: the base model, no soft prompt, no instruction.
- `instruction`: the base model with "Write efficient code for the following problem:" first.
- `NAME=PATH`: the base model with the soft prompt in PATH (an adapter folder, or a `greencoder
  tune` run folder, meaning its best epoch); with `--instruction` each adapter also runs as
  `NAME+instruction`.
- `canonical`: no model; the benchmark's reference solutions, which validate the harness.
- `NAME` alone: a variant whose generations come from `--generations FILE` (made elsewhere).

Efficiency is always measured against `baseline`, so it is added whenever a model variant is (or
when the --generations file has one); a file of other variants alone is scored without a model, and
has no baseline to compare energies against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from greencoder.core.errors import InputError

BASELINE = "baseline"
INSTRUCTION = "instruction"
CANONICAL = "canonical"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class Variant:
    name: str
    adapter: str | None = None
    instruction: bool = False
    canonical: bool = False
    external: bool = False
    """Generated elsewhere (--generations): scored and measured, never generated here."""

    @property
    def needs_model(self) -> bool:
        return not self.canonical and not self.external

    def to_dict(self) -> dict:
        return {"name": self.name, "adapter": self.adapter, "instruction": self.instruction,
                "canonical": self.canonical, "external": self.external}


def parse_variant(text: str, external_names: frozenset[str] = frozenset()) -> Variant:
    """`baseline`, `instruction`, `canonical`, `NAME=ADAPTER_PATH`, or a NAME of `external_names`."""
    text = text.strip()
    if text in external_names and text != CANONICAL:
        return Variant(text, instruction=text == INSTRUCTION, external=True)
    if text == BASELINE:
        return Variant(BASELINE)
    if text == INSTRUCTION:
        return Variant(INSTRUCTION, instruction=True)
    if text == CANONICAL:
        return Variant(CANONICAL, canonical=True)
    name, sep, path = text.partition("=")
    name, path = name.strip(), path.strip()
    if not sep or not name or not path:
        raise InputError(f"variant {text!r}: use baseline, instruction, canonical or NAME=ADAPTER_PATH")
    if not _NAME.match(name) or name in (BASELINE, INSTRUCTION, CANONICAL):
        raise InputError(f"variant name {name!r}: use letters, digits, '_', '.', '-', and not a reserved name")
    return Variant(name, adapter=path)


def resolve_variants(specs: list[str], instruction_too: bool, external_names: frozenset[str] = frozenset()) -> list[Variant]:
    """The variants to run, baseline first, each name once. No specs: baseline and instruction."""
    parsed = ([parse_variant(s, external_names) for s in specs] if specs
              else [Variant(BASELINE), Variant(INSTRUCTION, instruction=True)])
    if instruction_too:
        parsed += [Variant(f"{v.name}+instruction", v.adapter, True) for v in parsed if v.adapter]
    if not any(v.name == BASELINE for v in parsed):
        if BASELINE in external_names and any(not v.canonical for v in parsed):
            parsed.insert(0, Variant(BASELINE, external=True))
        elif any(v.needs_model for v in parsed):  # generations made elsewhere never need a model for a baseline
            parsed.insert(0, Variant(BASELINE))
    seen: dict[str, Variant] = {}
    for variant in parsed:
        if variant.name in seen and seen[variant.name] != variant:
            raise InputError(f"variant name {variant.name!r} is given twice with different meanings")
        seen.setdefault(variant.name, variant)
    return sorted(seen.values(), key=lambda v: v.name != BASELINE)
