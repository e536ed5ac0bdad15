"""LSP base-protocol framing (`Content-Length: N` headers, a blank line, N bytes of JSON), parsed
without doing IO, so a hostile or sloppy client can neither kill the server nor make it deaf.

The rules, in the order they apply:
- Header names are case-insensitive, header lines may end in CRLF or a bare LF, headers other than
  Content-Length (Content-Type, anything else) are ignored.
- A message longer than `MAX_MESSAGE_BYTES` (64 MiB) is never buffered: its body is skipped and a
  `FramingError` names the limit.
- Resynchronisation: a header line (`Content-Length: <digits>`, or `Content-Type: <value>`, followed
  by a raw line break) can never occur inside a valid JSON body: JSON strings cannot hold raw line
  breaks, and outside strings such text is not JSON. So wherever one appears where a body was
  expected (a header with no body, a body shorter than its header said, a length that was a lie,
  the skipped body of an oversized message), what came before it is dropped with a `FramingError`
  and a new message starts at that header. A body that never arrives therefore holds up nothing
  but itself: the next message's header ends the wait.
- Bytes that belong to no message (garbage, the tail of a body longer than its header said, a
  malformed header) are skipped up to the next header line, with one `FramingError` per stretch.
A body that is no JSON object and ends in what may be the start of a header line waits for that
line's break before it is judged, so a length a few bytes too long cannot cut the next header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 8 * 1024

# A header line that no valid JSON body can contain (see the module docstring); bounded, so a
# search never runs away on a long line.
_HEADER_LINE = re.compile(
    rb"content-(?:length[ \t]*:[ \t]*\d{1,20}|type[ \t]*:[^\r\n\"]{0,200})[ \t]*\r?\n", re.IGNORECASE)
_LONGEST_HEADER_LINE = 240  # a little more than _HEADER_LINE can match: what to keep between chunks
_HEADER_BLOCK_END = re.compile(rb"\n\r?\n")
_FIELD = re.compile(rb"([A-Za-z0-9!#$%&'*+.^_`|~-]+)[ \t]*:[ \t]*(.*?)[ \t]*")  # an RFC 7230 field


@dataclass(frozen=True)
class Message:
    """A whole message body, as its header declared it (not yet known to be JSON)."""

    body: bytes


@dataclass(frozen=True)
class FramingError:
    """Bytes that were dropped, and why. `fragment`: what was read of a message cut short by the
    next header, if anything (it may still hold a request id worth answering)."""

    reason: str
    fragment: bytes = b""


Event = Message | FramingError


def _size(count: int) -> str:
    return f"{count} bytes" if count < 1024 * 1024 else f"{count} bytes ({count / (1024 * 1024):.0f} MiB)"


class FrameParser:
    """Feed it bytes as they come; it hands back whole messages and framing errors, in order."""

    def __init__(self, max_message: int = MAX_MESSAGE_BYTES, max_header: int = MAX_HEADER_BYTES):
        self.max_message = max_message
        self.max_header = max_header
        self._buffer = bytearray()
        self._state = "header"  # "header", "body" (reading `_length` bytes) or "skip" (`_length` left)
        self._length = 0
        self._scanned = 0  # how far into the buffer a body was already searched for a header
        self._garbage = 0  # bytes skipped so far in the current stretch of garbage

    def feed(self, data: bytes) -> list[Event]:
        self._buffer += data
        events: list[Event] = []
        while self._step(events):
            pass
        return events

    def eof(self) -> list[Event]:
        """The stream ended: name what was left unfinished, if anything."""
        events: list[Event] = []
        self._flush_garbage(events)
        if self._state == "body":
            events.append(FramingError(f"the stream ended {len(self._buffer)} bytes into a message of "
                                       f"{_size(self._length)}", bytes(self._buffer)))
        elif self._buffer.strip():
            events.append(FramingError(f"the stream ended inside a header: {bytes(self._buffer[:60])!r}"))
        self._buffer.clear()
        self._state = "header"
        return events

    # ------------------------------------------------------------------ states

    def _step(self, events: list[Event]) -> bool:
        """Make progress on the buffer; False when more bytes are needed."""
        if self._state == "body":
            return self._read_body(events)
        if self._state == "skip":
            return self._skip_body()
        return self._read_header(events)

    def _next_header_line(self, start: int, end: int | None = None) -> int | None:
        """Where the first header line at or after `start` begins (before `end`, if given)."""
        stop = len(self._buffer) if end is None else min(len(self._buffer), end + _LONGEST_HEADER_LINE)
        if self._buffer.find(b"\n", start, stop) < 0:  # no line break, no header line: the common case
            return None
        match = _HEADER_LINE.search(self._buffer, start, stop)
        if match is None or (end is not None and match.start() >= end):
            return None
        return match.start()

    def _flush_garbage(self, events: list[Event]) -> None:
        if self._garbage:
            events.append(FramingError(f"skipped {self._garbage} bytes that belonged to no message"))
            self._garbage = 0

    def _read_header(self, events: list[Event]) -> bool:
        start = self._next_header_line(0)
        if start is None:
            if len(self._buffer) > _LONGEST_HEADER_LINE:
                self._drop_garbage(len(self._buffer) - _LONGEST_HEADER_LINE)
            return False
        self._drop_garbage(start)
        self._flush_garbage(events)
        end = _HEADER_BLOCK_END.search(self._buffer, 0, self.max_header + 2)
        if end is None:
            if len(self._buffer) <= self.max_header:
                return False
            events.append(FramingError(f"a header longer than {self.max_header} bytes"))
            return self._resync(1)
        length = None
        offset = 0
        for raw in bytes(self._buffer[: end.start()]).split(b"\n"):
            line = raw.rstrip(b"\r")
            field = _FIELD.fullmatch(line)
            if field is None:
                events.append(FramingError(f"a malformed header line: {line[:60]!r}"))
                return self._resync(max(offset, 1))
            if field.group(1).lower() == b"content-length":
                if not field.group(2).isdigit():
                    events.append(FramingError(f"Content-Length {field.group(2)[:30]!r} is not a number"))
                    return self._resync(offset + 1)
                length = int(field.group(2))  # a repeated header: the last one counts
            offset += len(raw) + 1
        del self._buffer[: end.end()]
        if length is None:
            events.append(FramingError("a header without Content-Length"))
            return True
        if length > self.max_message:
            events.append(FramingError(f"a message of {_size(length)} exceeds the limit of "
                                       f"{_size(self.max_message)}; skipped"))
            self._state, self._length = "skip", length
            return True
        self._state, self._length, self._scanned = "body", length, 0
        return True

    def _resync(self, offset: int) -> bool:
        """Drop what was already reported as bad, up to the next header line at or after `offset`."""
        header = self._next_header_line(offset)
        if header is None:
            header = max(offset, len(self._buffer) - _LONGEST_HEADER_LINE)
        del self._buffer[:header]
        return True

    def _drop_garbage(self, count: int) -> None:
        if count <= 0:
            return
        if bytes(self._buffer[:count]).strip():  # blank lines between messages are no error
            self._garbage += count
        del self._buffer[:count]

    def _read_body(self, events: list[Event]) -> bool:
        start = max(0, self._scanned - _LONGEST_HEADER_LINE)
        header = self._next_header_line(start, self._length)
        if header is not None:
            events.append(FramingError(
                f"a message declared {_size(self._length)} but the next header came after {header} bytes; dropped",
                bytes(self._buffer[:header])))
            del self._buffer[:header]
            self._state = "header"
            return True
        if len(self._buffer) < self._length or self._may_end_in_a_header():
            self._scanned = len(self._buffer)
            return False
        events.append(Message(bytes(self._buffer[: self._length])))
        del self._buffer[: self._length]
        self._state = "header"
        return True

    def _may_end_in_a_header(self) -> bool:
        """A whole body that is no JSON object (no `}` at its end) but ends in what may be the first
        bytes of a header line whose line break has not come yet: wait for it before deciding."""
        end = self._length
        tail = bytes(self._buffer[max(0, end - _LONGEST_HEADER_LINE): end])
        tail = tail[tail.rfind(b"}") + 1:]
        return (bool(tail.strip()) and b"c" in tail.lower() and len(self._buffer) < end + _LONGEST_HEADER_LINE
                and b"\n" not in self._buffer[end:])

    def _skip_body(self) -> bool:
        header = self._next_header_line(0, self._length)
        if header is not None:
            del self._buffer[:header]
            self._state = "header"
            return True
        if len(self._buffer) >= self._length:
            del self._buffer[: self._length]
            self._state = "header"
            return True
        drop = len(self._buffer) - _LONGEST_HEADER_LINE
        if drop > 0:
            del self._buffer[:drop]
            self._length -= drop
        return False
