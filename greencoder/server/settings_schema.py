"""The editors' copies of the server's settings, generated from `greencoder.server.settings.SCHEMA`.

    python -m greencoder.server.settings_schema --write   # regenerate the files below
    python -m greencoder.server.settings_schema           # check: exit 1 naming the stale files

Three files list the server's settings: VS Code's `package.json` (the `greencoder.*` settings users
see, with type, default, range or choices and description), the extension's list of keys it
forwards to the server (`src/serverSettings.ts`), and the Neovim plugin's known keys
(`lua/greencoder/settings.lua`). Only the server's settings in package.json are generated; the
extension's own settings there (server command, Python path, ...) keep their place and text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from greencoder.server.settings import SCHEMA, SECTION, SettingInfo

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_JSON = Path("editors/vscode/package.json")
TYPESCRIPT = Path("editors/vscode/src/serverSettings.ts")
LUA = Path("editors/neovim/lua/greencoder/settings.lua")
COMMAND = "python -m greencoder.server.settings_schema --write"
_HEADER = f"Generated from greencoder/server/settings.py by `{COMMAND}`: do not edit."
_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _json_number(value: Any) -> Any:
    """5.0 as 5, as a person writes it in package.json."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def vscode_property(info: SettingInfo) -> dict[str, Any]:
    """The `greencoder.<name>` entry of package.json's configuration properties."""
    spec = info.spec
    kind = _JSON_TYPES[info.kind]
    prop: dict[str, Any] = {}
    if info.optional and info.kind is str:  # VS Code edits strings best; "" means the server's default
        prop["type"], prop["default"] = kind, "" if info.default is None else info.default
    else:
        prop["type"] = [kind, "null"] if info.optional else kind
        prop["default"] = _json_number(info.default)
    if spec.pattern:
        prop["pattern"] = f"^({spec.pattern})$"
        prop["patternErrorMessage"] = spec.pattern_hint
    if spec.choices:
        prop["enum"] = list(spec.choices)
    bounds = ("exclusiveMinimum", "exclusiveMaximum") if spec.exclusive else ("minimum", "maximum")
    for key, value in zip(bounds, (spec.low, spec.high), strict=True):
        if value is not None:
            prop[key] = _json_number(value)
    prop["markdownDescription"] = spec.description + (" Changing it reloads the model." if spec.reloads_model else "")
    return prop


def vscode_properties(current: dict[str, Any]) -> dict[str, Any]:
    """`current` (package.json's properties) with the server's settings replaced by the schema's, in
    the schema's order, where the first of them was; the extension's own settings stay as they are."""
    generated = {f"{SECTION}.{info.editor_name}": vscode_property(info) for info in SCHEMA}
    result: dict[str, Any] = {}
    for key, value in current.items():
        if key in generated:
            result.update(generated)  # a no-op after the first server setting
        else:
            result[key] = value
    result.update(generated)  # when package.json had none of them yet
    return result


def package_json_text(current_text: str) -> str:
    """package.json with its server settings regenerated, formatted as npm writes it."""
    package = json.loads(current_text)
    configuration = package.setdefault("contributes", {}).setdefault("configuration", {"title": SECTION})
    configuration["properties"] = vscode_properties(configuration.get("properties", {}))
    return json.dumps(package, indent=2, ensure_ascii=False) + "\n"


def typescript_text() -> str:
    keys = "".join(f'  "{info.editor_name}",\n' for info in SCHEMA)
    return (f"// {_HEADER}\n\n"
            f"/** The server's settings, by their VS Code name (camelCase, under `{SECTION}.`). */\n"
            f"export const SERVER_SETTING_KEYS = [\n{keys}] as const;\n")


def lua_text() -> str:
    keys = "".join(f"  '{info.editor_name}',\n" for info in SCHEMA)
    return (f"-- {_HEADER}\n"
            "-- Every setting `greencoder serve` reads, by its camelCase name (the server takes snake_case too).\n"
            f"return {{\n{keys}}}\n")


def generated(root: Path = ROOT) -> dict[Path, str]:
    """Each generated file (relative to `root`) with the text it should have."""
    return {
        PACKAGE_JSON: package_json_text((root / PACKAGE_JSON).read_text(encoding="utf-8")),
        TYPESCRIPT: typescript_text(),
        LUA: lua_text(),
    }


def stale(root: Path = ROOT) -> list[Path]:
    """The generated files whose text on disk differs from the schema's."""
    def text(path: Path) -> str | None:
        return path.read_text(encoding="utf-8") if path.is_file() else None
    return [path for path, wanted in generated(root).items() if text(root / path) != wanted]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--write"]):
        print(f"usage: {COMMAND.removesuffix(' --write')} [--write]", file=sys.stderr)
        return 2
    if args == ["--write"]:
        for path, text in generated(ROOT).items():
            (ROOT / path).write_text(text, encoding="utf-8")
            print(f"wrote {path}")
        return 0
    outdated = stale(ROOT)
    for path in outdated:
        print(f"{path} differs from greencoder/server/settings.py; run `{COMMAND}`", file=sys.stderr)
    return 1 if outdated else 0


if __name__ == "__main__":
    sys.exit(main())
