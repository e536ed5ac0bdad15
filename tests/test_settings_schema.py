"""The editors' setting lists are generated from the server's one schema, and agree with it.

package.json's `greencoder.*` server settings, the VS Code extension's forwarded keys and the
Neovim plugin's known keys must equal what `python -m greencoder.server.settings_schema --write`
writes; and what VS Code's JSON Schema lets a user enter is exactly what the server accepts.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest

from greencoder.core.errors import InputError
from greencoder.server import settings_schema
from greencoder.server.settings import SCHEMA, SECTION, ServerSettings, merge
from greencoder.server.settings_schema import (
    COMMAND,
    LUA,
    PACKAGE_JSON,
    TYPESCRIPT,
    generated,
    stale,
    vscode_properties,
)

ROOT = Path(__file__).resolve().parent.parent
PROPERTIES = json.loads((ROOT / PACKAGE_JSON).read_text(encoding="utf-8"))["contributes"]["configuration"]["properties"]


@pytest.mark.parametrize("path", [PACKAGE_JSON, TYPESCRIPT, LUA], ids=str)
def test_generated_file_matches_the_schema(path):
    wanted = generated(ROOT)[path]
    assert (ROOT / path).read_text(encoding="utf-8") == wanted, f"{path} is out of date: run `{COMMAND}`"


def test_check_names_each_stale_file_and_the_command(tmp_path, monkeypatch, capsys):
    for path in (PACKAGE_JSON, TYPESCRIPT, LUA):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    monkeypatch.setattr(settings_schema, "ROOT", tmp_path)
    assert settings_schema.main([]) == 0
    lua = tmp_path / LUA
    lua.write_text(lua.read_text(encoding="utf-8").replace("'benchAlpha',\n", ""), encoding="utf-8")
    (tmp_path / TYPESCRIPT).unlink()
    assert stale(tmp_path) == [TYPESCRIPT, LUA]
    assert settings_schema.main([]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{path} differs from greencoder/server/settings.py; run `{COMMAND}`" for path in (TYPESCRIPT, LUA)]
    assert settings_schema.main(["--write"]) == 0 and stale(tmp_path) == []


def test_extension_settings_keep_their_place_and_text():
    own = {"type": "string", "default": "", "description": "the extension's own"}
    current = {"greencoder.first": own, "greencoder.model": {"type": "string"}, "greencoder.last": own}
    result = vscode_properties(current)
    names = [f"{SECTION}.{info.editor_name}" for info in SCHEMA]
    assert list(result) == ["greencoder.first", *names, "greencoder.last"]
    assert result["greencoder.first"] is own and result["greencoder.last"] is own
    assert list(vscode_properties({"greencoder.only": own})) == ["greencoder.only", *names]


def test_every_other_greencoder_setting_is_read_by_the_extension():
    """A package.json setting that is not the server's must be the extension's own, or it is a
    server setting the schema dropped or renamed and nobody reads."""
    sources = "".join(path.read_text(encoding="utf-8") for path in (ROOT / "editors/vscode/src").rglob("*.ts"))
    server = {f"{SECTION}.{info.editor_name}" for info in SCHEMA}
    unread = [key for key in PROPERTIES if key not in server
              and f'"{key.removeprefix(SECTION + ".")}"' not in sources]
    assert unread == []


def test_vscode_defaults_are_the_servers_defaults():
    defaults = {info.editor_name: PROPERTIES[f"{SECTION}.{info.editor_name}"]["default"] for info in SCHEMA}
    assert merge(ServerSettings(), defaults) == ServerSettings()


def _samples(info) -> list:
    spec = info.spec
    values: list = [None, True, False, "", "x", "3", 0, 1, 1.5, -1, 3.0, [], {}]
    values += list(spec.choices) + [choice.upper() for choice in spec.choices]
    for bound in (spec.low, spec.high):
        if bound is not None:
            values += [bound, bound - 1, bound + 1, bound - 0.5, bound + 0.5, float(bound)]
    if spec.pattern:
        values += ["auto", "cpu", "cuda", "cuda:0", "cuda:10", "mps", "cuda:", "gpu", "cpu ", "CUDA"]
    return values


@pytest.mark.parametrize("info", SCHEMA, ids=lambda info: info.editor_name)
def test_what_vscode_accepts_is_what_the_server_accepts(info):
    """VS Code validates settings against package.json's JSON Schema; the server checks them with
    cattrs. For every sample value both must say yes or both no (VS Code sends null for an unset
    string setting, which its schema types as a string: the one value only the server takes)."""
    prop = PROPERTIES[f"{SECTION}.{info.editor_name}"]
    disagreements = []
    for value in _samples(info):
        if value is None and info.optional and info.kind is str:
            continue
        vscode = jsonschema.Draft7Validator(prop).is_valid(value)
        try:
            merge(ServerSettings(), {info.editor_name: value})
            server = True
        except InputError as exc:
            assert re.fullmatch(rf"greencoder setting '{info.editor_name}' must be .+, got .+", str(exc)), exc
            server = False
        if vscode != server:
            disagreements.append(f"{value!r}: VS Code {'accepts' if vscode else 'rejects'}, server {'accepts' if server else 'rejects'}")
    assert disagreements == []


def test_neovim_and_vscode_lists_name_every_server_setting_in_order():
    names = [info.editor_name for info in SCHEMA]
    typescript = (ROOT / TYPESCRIPT).read_text(encoding="utf-8")
    lua = (ROOT / LUA).read_text(encoding="utf-8")
    assert re.findall(r'^  "(\w+)",$', typescript, re.MULTILINE) == names
    assert re.findall(r"^  '(\w+)',$", lua, re.MULTILINE) == names
    init = (ROOT / "editors/neovim/lua/greencoder/init.lua").read_text(encoding="utf-8")
    assert "local SETTINGS = require('greencoder.settings')" in init
    assert 'from "./serverSettings"' in (ROOT / "editors/vscode/src/settings.ts").read_text(encoding="utf-8")
