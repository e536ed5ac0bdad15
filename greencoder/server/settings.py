"""The server's settings: defaults from the command line, overridden by the editor.

Editors send settings in `initializationOptions`, in `workspace/configuration` answers (section
"greencoder") and in `workspace/didChangeConfiguration`. Keys may be camelCase (VS Code) or
snake_case (Lua tables). A bad value is rejected with a one-line message naming the key, and the
last good settings stay in force, so a typo in an editor's settings never stops completions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from greencoder.core.errors import InputError

SECTION = "greencoder"


@dataclass(frozen=True)
class ServerSettings:
    model: str | None = None
    """None: the default model (see greencoder.core.default_model)."""
    adapter: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    threads: int | None = None
    max_new_tokens: int = 128
    context_tokens: int = 1024
    debounce_ms: int = 75
    instruction: bool = False
    """Put the efficiency instruction as a comment before the editor context."""
    fim: bool = True
    meter: str = "auto"
    watts_per_core: float | None = None
    bench_runs: int = 10
    bench_min_seconds: float = 5.0
    bench_cooldown: float = 5.0
    bench_memory_mib: int = 1024
    bench_alpha: float = 0.005

    @property
    def model_key(self) -> tuple:
        """What a change of requires reloading the model (not `threads`: the generating thread
        applies it before each completion)."""
        return (self.model, self.adapter, self.device, self.dtype)


_LIMITS: dict[str, tuple[float | None, float | None]] = {
    "threads": (1, 256), "max_new_tokens": (1, 4096), "context_tokens": (16, 1_000_000), "debounce_ms": (0, 10_000),
    "watts_per_core": (0.001, None), "bench_runs": (1, 1000), "bench_min_seconds": (0, 3600), "bench_cooldown": (0, 3600),
    "bench_memory_mib": (16, 1_000_000), "bench_alpha": (1e-9, 0.999999),
}
_FIELDS = {f.name: f for f in fields(ServerSettings)}


def snake_case(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _coerce(name: str, value: Any) -> Any:
    declared = str(_FIELDS[name].type)
    if value is None or value == "":
        if "None" in declared:
            return None
        raise InputError(f"greencoder setting {name!r} cannot be empty")
    try:
        if declared.startswith("bool"):
            if isinstance(value, bool):
                return value
            raise ValueError
        if declared.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if declared.startswith("float"):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        kind = declared.split(" ")[0]
        raise InputError(f"greencoder setting {name!r} must be {kind}, got {value!r}") from None


def plain(value: Any) -> Any:
    """JSON-like data as dicts and lists: pygls hands untyped LSP values (LSPAny) over as namedtuples."""
    if hasattr(value, "_asdict"):
        return {key: plain(item) for key, item in value._asdict().items()}
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def merge(base: ServerSettings, values: Any) -> ServerSettings:
    """`base` with the recognised keys of `values` applied; unknown keys are ignored (editors send
    their own), bad values raise InputError naming the key."""
    values = plain(values)
    if not values:
        return base
    if not isinstance(values, Mapping):
        raise InputError(f"greencoder settings must be an object, got {type(values).__name__}")
    if isinstance(values.get(SECTION), Mapping):  # {"greencoder": {...}} as some clients nest it
        values = values[SECTION]
    changes: dict[str, Any] = {}
    for key, value in values.items():
        name = snake_case(str(key)).replace(".", "_")
        if name not in _FIELDS:
            continue
        coerced = _coerce(name, value)
        low, high = _LIMITS.get(name, (None, None))
        if coerced is not None and isinstance(coerced, (int, float)) and not isinstance(coerced, bool):
            if (low is not None and coerced < low) or (high is not None and coerced > high):
                raise InputError(f"greencoder setting {name!r} = {value!r} is out of range [{low}, {high}]")
        if name in ("device",) and coerced not in ("auto", "cpu", "cuda") and not str(coerced).startswith("cuda:"):
            raise InputError(f"greencoder setting 'device' must be auto, cpu, cuda or cuda:N, got {value!r}")
        changes[name] = coerced
    return replace(base, **changes)
