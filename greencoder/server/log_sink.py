"""Logging that can never block the server, even when nobody reads its stderr.

An editor may start the server with stderr on a pipe it never reads. Once the pipe's buffer
(64 KiB on Linux) is full, every write to stderr blocks, and a log call on the event loop or in a
worker would freeze the whole server. Log lines therefore go into a bounded buffer that one daemon
thread writes out; when the buffer is full, new lines are dropped and counted, and the count is
written as soon as stderr takes text again.
"""

from __future__ import annotations

import collections
import io
import logging
import os
import sys
import threading

BUFFER_BYTES = 1024 * 1024


class DroppingStream(io.TextIOBase):
    """A text stream whose `write` never blocks: text goes to file descriptor `fd` from a daemon
    thread, and what does not fit in `limit` bytes of backlog is dropped and counted.

    The thread writes to the descriptor itself, not through `sys.stderr`: a daemon thread blocked
    inside a buffered stream holds its lock, and Python aborts at exit when it cannot flush it."""

    def __init__(self, fd: int, limit: int = BUFFER_BYTES):
        super().__init__()
        self.fd = fd
        self.limit = limit
        self.dropped = 0  # writes lost because the target did not keep up
        self._pending: collections.deque[str] = collections.deque()
        self._pending_bytes = 0
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._drain, name="greencoder-stderr", daemon=True)
        self._thread.start()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._ready:
            if self._pending_bytes + len(text) > self.limit:
                self.dropped += 1
            else:
                self._pending.append(text)
                self._pending_bytes += len(text)
                self._ready.notify()
        return len(text)

    def flush(self) -> None:
        """Nothing to do here: flushing is the drain thread's job (and could block)."""

    def isatty(self) -> bool:
        return False

    def _drain(self) -> None:
        reported = 0
        while True:
            with self._ready:
                while not self._pending:
                    self._ready.wait()
                text = "".join(self._pending)
                self._pending.clear()
                self._pending_bytes = 0
                dropped = self.dropped
            if dropped > reported:
                text += f"greencoder: {dropped - reported} log writes dropped: stderr was not being read\n"
                reported = dropped
            data = text.encode("utf-8", "backslashreplace")
            try:
                while data:
                    data = data[os.write(self.fd, data):]
            except OSError:  # stderr closed: nothing left to tell
                return


_installed: DroppingStream | None = None


def install_dropping_stderr() -> DroppingStream:
    """Point every logging handler that writes to stderr, and `sys.stdout` (a stray `print` must not
    reach the protocol stream either), at one `DroppingStream` over stderr. Idempotent."""
    global _installed
    if _installed is None:
        _installed = DroppingStream(sys.__stderr__.fileno())
    originals = {id(sys.stderr), id(sys.__stderr__)}
    loggers = [logging.getLogger()] + [item for item in logging.Logger.manager.loggerDict.values()
                                      if isinstance(item, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in originals:
                handler.setStream(_installed)
    logging.captureWarnings(True)
    sys.stdout = _installed
    return _installed
