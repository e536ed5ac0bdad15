"""The server's settings, defined once: defaults from the command line, overridden by the editor.

Each field of `ServerSettings` carries its whole schema (type, default, range or choices, a one-line
description, whether a change reloads the model); the editors' lists (VS Code's `package.json`
contributions, the extension's list of forwarded keys, the Neovim plugin's known keys) are generated
from it by `python -m greencoder.server.settings_schema --write`, and a test fails when they differ.

Editors send settings in `initializationOptions`, in `workspace/configuration` answers (section
"greencoder") and in `workspace/didChangeConfiguration`. Keys may be camelCase (VS Code) or
snake_case (Lua tables). Values are structured with cattrs under strict hooks (an integer setting
takes no `1.5`, `"3"` or `true`); a bad value is rejected with a one-line message naming the key as
the editor spelled it, and the last good settings stay in force, so a typo in an editor's settings
never stops completions.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import cattrs
from cattrs.errors import ClassValidationError
from cattrs.gen import make_dict_structure_fn, override

from greencoder.core.completion import MIN_CONTEXT_BUDGET
from greencoder.core.errors import InputError
from greencoder.core.meters.selection import PREFERENCES as METER_PREFERENCES

SECTION = "greencoder"
_SPEC = "greencoder.setting"


@dataclass(frozen=True)
class Spec:
    """What a value must be beyond its type, and what editors show about it."""

    description: str
    low: float | None = None
    high: float | None = None
    exclusive: bool = False
    """The bounds themselves are out of range: low < value < high."""
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    """A regular expression the whole string must match, for strings with structure (device)."""
    pattern_hint: str = ""
    """The pattern in words, for messages and editors."""
    reloads_model: bool = False


def setting(default: Any, description: str, **spec: Any) -> Any:
    """A `ServerSettings` field with its schema."""
    return field(default=default, metadata={_SPEC: Spec(description, **spec)})


@dataclass(frozen=True)
class ServerSettings:
    model: str | None = setting(
        None, "Hugging Face model id or local folder of the completion model. Empty: the server's default "
        "(or its `--model`).", reloads_model=True)
    adapter: str | None = setting(
        None, "Efficiency soft prompt: a prompt-tuning (PEFT) adapter folder or id, or a `greencoder tune` "
        "run folder. Empty: none.", reloads_model=True)
    device: str = setting(
        "auto", "Where the model runs: `auto`, `cpu`, `cuda`, `cuda:N` or `mps` (Apple GPUs).",
        pattern=r"auto|cpu|mps|cuda(:[0-9]+)?", pattern_hint="auto, cpu, cuda, cuda:N or mps", reloads_model=True)
    dtype: str = setting(
        "auto", "Weights' precision (`auto`: bfloat16 on a GPU, float32 on a CPU).",
        choices=("auto", "float32", "bfloat16", "float16"), reloads_model=True)
    threads: int | None = setting(
        None, "CPU threads for the model (null: the server's choice); applied from the next completion on.",
        low=1, high=256)
    max_new_tokens: int = setting(128, "Most tokens one suggestion may generate.", low=1, high=4096)
    context_tokens: int = setting(
        1024, "Tokens of the file around the cursor given to the model.", low=16, high=1_000_000)
    debounce_ms: int | None = setting(
        None, "Wait this long after the last keystroke before generating (a newer request cancels an older "
        "one). Null: adapt to your typing (a little longer than your usual gap between keys).",
        low=0, high=10_000)
    on_battery: str = setting(
        "reduce", "On battery power: `keep` generating as usual, `reduce` (wait longer, one line, at most 32 "
        "tokens) or `explicit` (only completions you ask for).", choices=("keep", "reduce", "explicit"))
    instruction: bool = setting(
        False, "Put the energy-efficiency instruction as a comment before the editor context.")
    fim: bool = setting(
        True, "Use fill-in-the-middle (the code after the cursor too) when the model supports it.")
    meter: str = setting(
        "auto", "Energy meter for completion costs and measurements (estimate: CPU time × watts per core).",
        choices=METER_PREFERENCES)
    watts_per_core: float | None = setting(
        None, "Power per busy core for the estimate, in watts (null: GREENCODER_WATTS_PER_CORE, else 12 W).",
        low=0, exclusive=True)
    bench_runs: int = setting(10, "Measured runs per \"Measure energy\".", low=1, high=1000)
    bench_min_seconds: float = setting(
        5.0, "Each run repeats the benchmark call for at least this many seconds.", low=0, high=3600)
    bench_cooldown: float = setting(5.0, "Seconds of idle before each run.", low=0, high=3600)
    bench_memory_mib: int = setting(
        1024, "Memory limit of the measured program, in MiB.", low=16, high=1_000_000)
    bench_alpha: float = setting(
        0.005, "Significance level when a measurement is compared with the previous one (Mann-Whitney U).",
        low=0, high=1, exclusive=True)

    @property
    def model_key(self) -> tuple:
        """The values a change of which requires reloading the model (not `threads`: the generating
        thread applies it before each completion)."""
        return tuple(getattr(self, info.name) for info in SCHEMA if info.spec.reloads_model)


@dataclass(frozen=True)
class SettingInfo:
    """One server setting as the schema describes it."""

    name: str
    """Python name (snake_case), as in ServerSettings and Lua tables."""
    editor_name: str
    """camelCase, as in VS Code (`greencoder.<editor_name>`) and the README."""
    kind: type
    """int, float, bool or str."""
    optional: bool
    """None (or "" for a string) means "the server's default"."""
    default: Any
    spec: Spec

    def expected(self) -> str:
        """What a good value is, in words: "an integer in [1, 4096]"."""
        spec = self.spec
        if self.kind is bool:
            text = "true or false"
        elif spec.choices:
            text = "one of " + ", ".join(spec.choices)
        elif spec.pattern:
            text = spec.pattern_hint
        elif self.kind is str:
            text = "a string"
        else:
            text = ("an integer" if self.kind is int else "a number") + _range_text(spec)
        return text + (" or null" if self.optional else "")

    def accepts(self, value: Any) -> bool:
        """Whether an already well-typed value is within range, among the choices, matching the pattern."""
        spec = self.spec
        if spec.choices and value not in spec.choices:
            return False
        if spec.pattern and not re.fullmatch(spec.pattern, value):
            return False
        below = spec.low is not None and (value <= spec.low if spec.exclusive else value < spec.low)
        above = spec.high is not None and (value >= spec.high if spec.exclusive else value > spec.high)
        return not (below or above)


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def snake_case(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _range_text(spec: Spec) -> str:
    low, high = spec.low, spec.high
    if low is not None and high is not None:
        brackets = "()" if spec.exclusive else "[]"
        return f" in {brackets[0]}{_number(low)}, {_number(high)}{brackets[1]}"
    if low is not None:
        return f" above {_number(low)}" if spec.exclusive else f" of at least {_number(low)}"
    if high is not None:
        return f" below {_number(high)}" if spec.exclusive else f" of at most {_number(high)}"
    return ""


def _schema() -> tuple[SettingInfo, ...]:
    hints = typing.get_type_hints(ServerSettings)
    infos = []
    for item in fields(ServerSettings):
        declared = hints[item.name]
        arguments = typing.get_args(declared) if isinstance(declared, types.UnionType) else ()
        kinds = [argument for argument in arguments if argument is not type(None)]
        kind = kinds[0] if kinds else declared
        if kind not in (int, float, bool, str) or len(kinds) > 1:
            raise TypeError(f"ServerSettings.{item.name}: settings are int, float, bool or str (optional), not {declared}")
        infos.append(SettingInfo(item.name, camel_case(item.name), kind, type(None) in arguments, item.default,
                                 item.metadata[_SPEC]))
    return tuple(infos)


SCHEMA: tuple[SettingInfo, ...] = _schema()
BY_NAME: dict[str, SettingInfo] = {info.name: info for info in SCHEMA}


# --- Structuring editor values (cattrs) ------------------------------------------------------------

class _BadValue(ValueError):
    """A value that does not fit its setting; merge() words it with the key as the editor sent it."""

    def __init__(self, info: SettingInfo, value: Any):
        super().__init__(info.name)
        self.info = info
        self.value = value


def _strict_int(value: Any, _type: Any) -> int:
    """JSON Schema's integer: 3 or 3.0, not 1.5, "3" or true."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not an integer: {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"not an integer: {value!r}")
    return int(value)


def _strict_float(value: Any, _type: Any) -> float:
    """Any finite JSON number (integers included), not "5" or true."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"not a number: {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return float(value)


def _strict_bool(value: Any, _type: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"not a boolean: {value!r}")
    return value


def _strict_str(value: Any, _type: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"not a string: {value!r}")
    return value


def _field_hook(converter: cattrs.Converter, info: SettingInfo):
    """Structure one setting: its type strictly, then its range, choices or pattern."""
    def structure(value: Any, _type: Any) -> Any:
        if info.optional and (value is None or (value == "" and info.kind is str)):
            return None  # null, or VS Code's empty string, means "the server's default"
        try:
            result = converter.structure(value, info.kind)
        except (TypeError, ValueError):
            raise _BadValue(info, value) from None
        if not info.accepts(result):
            raise _BadValue(info, value)
        return result
    return structure


def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    for kind, hook in ((int, _strict_int), (float, _strict_float), (bool, _strict_bool), (str, _strict_str)):
        converter.register_structure_hook(kind, hook)
    overrides = {info.name: override(struct_hook=_field_hook(converter, info)) for info in SCHEMA}
    converter.register_structure_hook(ServerSettings, make_dict_structure_fn(ServerSettings, converter, **overrides))
    return converter


_CONVERTER = _converter()


def _shown(value: Any) -> str:
    """A value as the editor wrote it: JSON's true/false/null, strings quoted."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value)


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
    their own), and the first bad value raises InputError naming its key as the editor sent it."""
    values = plain(values)
    if not values:
        return base
    if not isinstance(values, Mapping):
        raise InputError(f"greencoder settings must be an object, got {type(values).__name__}")
    if isinstance(values.get(SECTION), Mapping):  # {"greencoder": {...}} as some clients nest it
        values = values[SECTION]
    given: dict[str, Any] = {}
    sent_as: dict[str, str] = {}
    for key, value in values.items():
        name = snake_case(str(key)).replace(".", "_")
        if name in BY_NAME:
            given[name], sent_as[name] = value, str(key)
    if not given:
        return base
    try:
        structured = _CONVERTER.structure(given, ServerSettings)
    except ClassValidationError as errors:
        bad = next(error for error in errors.exceptions if isinstance(error, _BadValue))
        raise InputError(f"greencoder setting {sent_as[bad.info.name]!r} must be {bad.info.expected()}, "
                         f"got {_shown(bad.value)}") from None
    return replace(base, **{name: getattr(structured, name) for name in given})


# --- Settings against the loaded model --------------------------------------------------------------

def check_against_model(settings: ServerSettings, context_limit: int, num_virtual_tokens: int = 0) -> str | None:
    """Why no completion can work with `settings` on a model of `context_limit` tokens (of which the
    soft prompt takes `num_virtual_tokens`), or None when they fit. A completion reserves room for
    max_new_tokens and the soft prompt and needs at least MIN_CONTEXT_BUDGET tokens of editor code
    (greencoder.core.completion.complete_at), so what is left is the most maxNewTokens can be."""
    room = context_limit - num_virtual_tokens - MIN_CONTEXT_BUDGET
    if settings.max_new_tokens <= room:
        return None
    head = f"greencoder setting {BY_NAME['max_new_tokens'].editor_name!r} = {settings.max_new_tokens}"
    if settings.max_new_tokens > context_limit:
        problem = f"{head} exceeds the model's context of {context_limit} tokens"
    else:
        soft_prompt = f"{num_virtual_tokens} soft-prompt tokens and " if num_virtual_tokens else ""
        problem = (f"{head} leaves no room for code in the model's context of {context_limit} tokens "
                   f"({soft_prompt}at least {MIN_CONTEXT_BUDGET} tokens of code need a place)")
    return f"{problem}: use at most {room}" if room >= 1 else problem
