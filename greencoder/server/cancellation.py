"""Every cancellable piece of server work, in one place.

Three things stop work: a newer completion request for the same document ("superseded"), an edit
of that document, `$/cancelRequest` ("cancelled"), and the user cancelling a measurement's
progress. Each job registers a `CancelToken` under a key; the token is a `threading.Event` (so the
runtime can stop generating within a token, and the measurement between runs) that also says why.
A completion request and its generation hold separate tokens: a newer request that types along a
running generation supersedes the older request, not the generation (see `in_flight`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable

SUPERSEDED = "superseded"
EDITED = "document changed"
CANCELLED = "cancelled"


class CancelToken(threading.Event):
    """An event that remembers the first reason it was set for, and tells whoever asked to know
    (a request waiting on a generation it shares with a newer request wakes at once)."""

    def __init__(self) -> None:
        super().__init__()
        self.reason: str | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._callbacks_lock = threading.Lock()

    def cancel(self, reason: str = CANCELLED) -> None:
        if self.reason is None:
            self.reason = reason
        self.set()
        with self._callbacks_lock:
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def when_cancelled(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the cancelling thread) once the token is cancelled; at once if it is."""
        with self._callbacks_lock:
            if not self.is_set():
                self._callbacks.append(callback)
                return
        callback()


class Cancellations:
    """Running jobs by key: ("request", document) for the newest completion request, ("generation",
    document) for its model work, or ("measurement", progress token)."""

    def __init__(self) -> None:
        self._tokens: dict[Hashable, CancelToken] = {}
        self._lock = threading.Lock()

    def begin(self, key: Hashable, supersede: bool = True) -> CancelToken:
        """A token for a new job under `key`; the job already running there is superseded."""
        token = CancelToken()
        with self._lock:
            previous = self._tokens.get(key)
            self._tokens[key] = token
        if previous is not None and supersede:
            previous.cancel(SUPERSEDED)
        return token

    def cancel(self, key: Hashable, reason: str = CANCELLED) -> bool:
        """Stop the job under `key`, if any; True when there was one."""
        with self._lock:
            token = self._tokens.pop(key, None)
        if token is None:
            return False
        token.cancel(reason)
        return True

    def end(self, key: Hashable, token: CancelToken) -> None:
        """The job holding `token` finished: forget it (unless a newer job took the key)."""
        with self._lock:
            if self._tokens.get(key) is token:
                del self._tokens[key]

    def running(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._tokens


def raise_if_cancelled(token: CancelToken) -> None:
    """Answer the request with RequestCancelled (-32800), saying why, once its token is set."""
    if token.is_set():
        from pygls.exceptions import JsonRpcRequestCancelled

        raise JsonRpcRequestCancelled(f"request {token.reason or CANCELLED}")
