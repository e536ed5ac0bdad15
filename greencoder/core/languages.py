"""The programming languages greencoder generates and runs, and what differs between them.

One `Language` record per language keeps the per-language facts (names editors use, comment
syntax, stop sequences) in one place, so the prompt format, post-processing, the executor and the
server agree on them.
"""

from __future__ import annotations

from dataclasses import dataclass

from greencoder.core.errors import InputError


@dataclass(frozen=True)
class Language:
    """Facts about one target language."""

    name: str
    """Canonical short name used in data files and CLI options: python, cpp, java."""
    display_name: str
    extensions: tuple[str, ...]
    lsp_ids: tuple[str, ...]
    """LSP `languageId` values editors send for this language."""
    line_comment: str
    braces: bool
    """True where blocks are delimited by { } (C++, Java); False for indentation (Python)."""
    stop_sequences: tuple[str, ...]
    """Text that only appears once the target function is finished (tests, a main, a closing fence).

    Helper functions are *not* stop sequences: the target may call them. Post-processing decides
    what to keep; these only spare tokens (and energy) that could never be kept."""


PYTHON = Language(
    name="python",
    display_name="Python",
    extensions=(".py",),
    lsp_ids=("python",),
    line_comment="#",
    braces=False,
    stop_sequences=("\nif __name__", "\nprint(", "\nassert ", "\n```", "\n# Test", "\n# Example"),
)

CPP = Language(
    name="cpp",
    display_name="C++",
    extensions=(".cpp", ".cc", ".cxx", ".hpp", ".hh", ".h"),
    lsp_ids=("cpp", "c++", "c"),
    line_comment="//",
    braces=True,
    stop_sequences=("\nint main", "\n```", "\n// Test", "\n// Example"),
)

JAVA = Language(
    name="java",
    display_name="Java",
    extensions=(".java",),
    lsp_ids=("java",),
    line_comment="//",
    braces=True,
    stop_sequences=("\npublic class Main", "\nclass Main", "\n```", "\n// Test"),
)

LANGUAGES: tuple[Language, ...] = (PYTHON, CPP, JAVA)

_ALIASES = {"py": "python", "python3": "python", "c++": "cpp", "cxx": "cpp", "cc": "cpp"}


def get_language(name: str) -> Language:
    """Look a language up by canonical name, alias, or LSP languageId (case-insensitive)."""
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    for language in LANGUAGES:
        if key == language.name or key in language.lsp_ids:
            return language
    known = ", ".join(language.name for language in LANGUAGES)
    raise InputError(f"unknown language {name!r}: greencoder supports {known}")


def language_for_path(path: str) -> Language:
    """Infer the language from a file name's extension."""
    lowered = path.lower()
    for language in LANGUAGES:
        if lowered.endswith(language.extensions):
            return language
    raise InputError(f"cannot tell the language of {path!r} from its extension; pass --language")
