"""The suggestions shown per document, so typing along one costs no generation.

When the user types characters that match the start of the suggestion on screen (or accepts part
of it: a word, a line), the rest of that suggestion is still the model's answer for the new cursor:
greedy decoding from the longer prefix would continue the same way. The server answers with the
rest at once, without debounce or generation. Anything else (a character that differs, an edit
elsewhere in the document) forgets the suggestion.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass

MAX_DOCUMENTS = 64


@dataclass(frozen=True)
class Shown:
    id: str
    document: str
    """The document's text when the suggestion was made."""
    anchor: int
    """The cursor's offset then: the suggestion is inserted there."""
    text: str
    multiline: bool


class SuggestionMemory:
    def __init__(self) -> None:
        self._shown: OrderedDict[str, Shown] = OrderedDict()

    def remember(self, key: str, document: str, anchor: int, text: str, multiline: bool) -> Shown:
        shown = Shown(uuid.uuid4().hex[:12], document, anchor, text, multiline)
        self._shown[key] = shown
        self._shown.move_to_end(key)
        while len(self._shown) > MAX_DOCUMENTS:
            self._shown.popitem(last=False)
        return shown

    def forget(self, key: str) -> None:
        self._shown.pop(key, None)

    def continuation(self, key: str, document: str, offset: int) -> tuple[Shown, str] | None:
        """(suggestion, rest) when `document` is the suggestion's document with a start of the
        suggestion typed at its anchor and the cursor right after it; else None."""
        shown = self._shown.get(key)
        if shown is None or offset < shown.anchor:
            return None
        typed_length = offset - shown.anchor
        typed = document[shown.anchor:offset]
        if typed_length >= len(shown.text) or not shown.text.startswith(typed):
            return None
        if len(document) != len(shown.document) + typed_length:
            return None
        if document[:shown.anchor] != shown.document[:shown.anchor] or document[offset:] != shown.document[shown.anchor:]:
            return None
        rest = shown.text[typed_length:]
        return (shown, rest) if rest.strip() else None
