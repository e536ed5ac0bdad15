"""A generation still running, which a newer request may adopt instead of starting another.

A typist who keeps typing while the model works often types what the model is writing. Cancelling
then would throw away the work and start again from a longer prefix that the greedy model continues
the same way; instead the generation keeps running while the characters typed at its anchor match
the start of what it has produced so far (checked on each keystroke), and the newer request is
answered from it, less the typed characters, when it finishes. The first
character that differs stops it, as any edit stopped generations before.

`InFlight` holds what is needed to decide that: the document and cursor it was asked for, the text
produced so far (written by the generating thread from the runtime's `on_ids`), what has been typed
along since (written by the event loop), how many requests wait on it, and the token that stops the
model. Who waits, supersedes and settles is `completions.CompletionService`'s business.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from greencoder.server.cancellation import EDITED, CancelToken

INCOMPLETE_CHARACTER = "\ufffd"
"""What a token that ends inside a multi-byte character decodes to until its next token comes."""


@dataclass(eq=False)
class InFlight:
    key: str
    document: str
    """The document's text when the generation was asked for."""
    anchor: int
    """The cursor's offset then: where the suggestion is inserted."""
    plan: Any
    """What else shaped the generation (settings in force, single line): a request with another plan
    cannot adopt it."""
    token: CancelToken
    """Stops the model (set: stopped, or finished and no longer wanted)."""
    tokenizer: Any
    future: asyncio.Future | None = None
    produced: str = ""
    """The generated text so far, before the completion's clean-up (which only ever cuts its end)."""
    typed: str = ""
    """Characters typed at the anchor since the request, all of them matching `produced` so far."""
    waiters: int = 0
    """Requests awaiting the generation now (the original and any adopter)."""
    settled: bool = False
    shown: Any = None
    """The remembered suggestion (`suggestions.Shown`) once settled with one."""

    @property
    def running(self) -> bool:
        return self.future is not None and not self.future.done()

    def typed_at(self, document: str, offset: int | None = None) -> str | None:
        """The characters typed at the anchor when `document` is this generation's document with
        them inserted there (and, given an `offset`, the cursor right after them); else None."""
        extra = len(document) - len(self.document)
        if extra < 0 or (offset is not None and offset != self.anchor + extra):
            return None
        if not document.startswith(self.document[:self.anchor]) or not document.endswith(self.document[self.anchor:]):
            return None
        return document[self.anchor:self.anchor + extra]

    def matches(self, typed: str) -> bool:
        """Whether `typed` is the start of the text produced so far. Characters the model has not
        written yet do not count as matching: a generation still reading its prompt when a key
        comes (or writing nothing visible) is stopped as before."""
        return self.produced.startswith(typed)

    def observe(self, ids: tuple[int, ...]) -> None:
        """The runtime's `on_ids`, on the generating thread: keep the text current (and stop the
        model should it ever write something other than what was typed)."""
        self.produced = self.tokenizer.decode(list(ids), skip_special_tokens=True).rstrip(INCOMPLETE_CHARACTER)
        typed = self.typed
        if typed and not (self.produced.startswith(typed) or typed.startswith(self.produced)):
            self.token.cancel(EDITED)
