"""Moving framed messages between the client and `GreencoderProtocol`, over stdio or TCP.

pygls' own loops (`pygls.io_.run_async`) read a header line with an exact, case-sensitive CRLF
pattern, then `read(length)` whatever the length says: a huge length dies in MemoryError, a wrong
one swallows every later message, and `exit`'s status is lost. Here bytes go through
`framing.FrameParser` (limits and resynchronisation are explained there), each whole body goes to
`protocol.receive`, and the serve functions return the exit status for the CLI to exit with.

Neither direction can wedge the event loop: stdin is read by a daemon thread (which also lets the
process exit while a client keeps stdin open), stdout is written by another (so a client that
floods requests without reading answers cannot deadlock the two of us), and logging goes through
`log_sink` (a client that never reads stderr cannot block a log call).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import BinaryIO

from pygls.exceptions import JsonRpcInvalidRequest

from greencoder.server.framing import FrameParser, FramingError, Message
from greencoder.server.log_sink import install_dropping_stderr
from greencoder.server.protocol import GreencoderProtocol

logger = logging.getLogger("greencoder.server.transport")

CHUNK = 64 * 1024
FLUSH_SECONDS = 5.0  # how long `exit` waits for the client to take the last answers


class ThreadWriter:
    """pygls' writer interface over a binary stream, written by a daemon thread (writes never block)."""

    def __init__(self, stream: BinaryIO, on_broken: Callable[[], None]):
        self._stream = stream
        self._on_broken = on_broken
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._drain, name="greencoder-stdout", daemon=True)
        self._thread.start()

    def write(self, data: bytes) -> None:
        self._queue.put(data)

    def close(self) -> None:
        self._queue.put(None)

    def wait_closed(self, timeout: float = FLUSH_SECONDS) -> None:
        self.close()
        self._thread.join(timeout)

    def _drain(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                view = memoryview(data)
                while view:  # a raw stream may take part of it
                    view = view[self._stream.write(view) or 0:]
                self._stream.flush()
            except (OSError, ValueError) as exc:
                logger.error("the client's end of the connection is gone (%s)", exc)
                self._on_broken()
                return


class LoopWriter:
    """pygls' writer interface over an asyncio StreamWriter, safe to call from worker threads
    (pygls answers `@thread` handlers from the worker that ran them)."""

    def __init__(self, writer: asyncio.StreamWriter, loop: asyncio.AbstractEventLoop):
        self._writer = writer
        self._loop = loop

    def write(self, data: bytes) -> None:
        if self._writer.is_closing():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._writer.write(data)
        else:
            self._loop.call_soon_threadsafe(self.write, data)

    def close(self) -> None:
        self._writer.close()


async def pump(read: Callable[[], Awaitable[bytes]], protocol: GreencoderProtocol) -> int:
    """Feed what `read` returns (b"" at the end) through the framer into `protocol` until the
    client sends `exit` or the stream ends; the exit status (0 after `shutdown`, else 1)."""
    loop = asyncio.get_running_loop()
    exited = loop.create_future()
    protocol.on_exit(lambda status: exited.done() or exited.set_result(status))
    parser = FrameParser()
    while not exited.done():
        reading = asyncio.ensure_future(read())
        await asyncio.wait({reading, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not reading.done():
            reading.cancel()
            break
        chunk = reading.result()
        events = parser.feed(chunk) if chunk else parser.eof()
        for event in events:  # all of a chunk without yielding: a cancel right behind its request finds it unstarted
            if exited.done():
                break
            if isinstance(event, Message):
                protocol.receive(event.body)
            else:
                report_framing_error(protocol, event)
        if not chunk:
            logger.info("the client closed the connection")
            break
    if exited.done():
        for _ in range(3):  # answers already decided (a cancelled task's -32800 takes two turns) go out first
            await asyncio.sleep(0)
        return exited.result()
    return 0 if protocol.shutdown_received else 1


def report_framing_error(protocol: GreencoderProtocol, error: FramingError) -> None:
    """Log it; answer it (id null, or the id of a request cut short if it can still be read)."""
    logger.warning("framing: %s", error.reason)
    msg_id = None
    if error.fragment:
        try:
            data = json.loads(error.fragment)
            if isinstance(data, dict) and "method" in data and isinstance(data.get("id"), (int, str)):
                msg_id = data["id"]
        except ValueError:
            pass
    protocol.send_error(msg_id, JsonRpcInvalidRequest(f"Invalid request: {error.reason}"))


def _stdin_reader(stdin: BinaryIO, loop: asyncio.AbstractEventLoop) -> Callable[[], Awaitable[bytes]]:
    """Chunks of stdin, read by a daemon thread a few chunks ahead (so reading applies back-pressure)."""
    chunks: asyncio.Queue[bytes] = asyncio.Queue(maxsize=4)
    fileno = stdin.fileno()

    def read_all() -> None:
        while True:
            try:
                chunk = os.read(fileno, CHUNK)
            except OSError as exc:
                logger.error("cannot read stdin: %s", exc)
                chunk = b""
            try:
                asyncio.run_coroutine_threadsafe(chunks.put(chunk), loop).result()
            except RuntimeError:  # the loop is gone: the server is exiting
                return
            if not chunk:
                return

    threading.Thread(target=read_all, name="greencoder-stdin", daemon=True).start()
    return chunks.get


def serve_stdio(server, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> int:
    """Serve `server` (a pygls LanguageServer with a GreencoderProtocol) on stdin/stdout until
    `exit` or end of input; the exit status.

    With the process's own stdio, file descriptor 1 is kept for the protocol alone: the protocol
    gets a duplicate of it (unbuffered: a daemon thread blocked in a buffered stream holds its lock,
    and Python aborts at exit when it cannot flush it) and fd 1 is pointed at stderr, so nothing
    else (a library's print, a C extension's output) can ever interleave with messages."""
    protocol: GreencoderProtocol = server.protocol
    install_dropping_stderr()
    if stdout is None:
        stdout = os.fdopen(os.dup(sys.__stdout__.fileno()), "wb", buffering=0)
        os.dup2(sys.__stderr__.fileno(), sys.__stdout__.fileno())
    stdin = stdin or sys.stdin.buffer
    server._stop_event = threading.Event()

    async def main() -> int:
        loop = asyncio.get_running_loop()
        writer = ThreadWriter(stdout, on_broken=lambda: loop.call_soon_threadsafe(protocol.stop, 1))
        protocol.set_writer(writer)
        try:
            return await pump(_stdin_reader(stdin, loop), protocol)
        finally:
            await loop.run_in_executor(None, writer.wait_closed)

    return _run(server, main)


def serve_tcp(server, host: str, port: int) -> int:
    """Serve one client connecting to HOST:PORT (later connections are refused while it lasts);
    the exit status once it sends `exit` or disconnects."""
    protocol: GreencoderProtocol = server.protocol
    install_dropping_stderr()
    server._stop_event = threading.Event()

    async def main() -> int:
        loop = asyncio.get_running_loop()
        status: asyncio.Future[int] = loop.create_future()

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if status.done() or getattr(connection, "taken", False):
                logger.warning("refused a second client on %s:%s", host, port)
                writer.close()
                return
            connection.taken = True
            logger.info("client connected from %s", writer.get_extra_info("peername"))
            protocol.set_writer(LoopWriter(writer, loop))
            try:
                code = await pump(lambda: reader.read(CHUNK), protocol)
            except ConnectionError as exc:
                logger.error("the client's connection broke: %s", exc)
                code = 1
            try:
                await writer.drain()
                writer.close()
                await asyncio.wait_for(writer.wait_closed(), FLUSH_SECONDS)
            except (ConnectionError, asyncio.TimeoutError):
                pass
            if not status.done():
                status.set_result(code)

        listener = await asyncio.start_server(connection, host, port)
        logger.info("listening on %s", ", ".join(str(sock.getsockname()) for sock in listener.sockets))
        try:
            return await status
        finally:
            listener.close()

    return _run(server, main)


def _run(server, main) -> int:
    """Run `main()` to its exit status; Ctrl-C is 130; the server shuts down either way."""
    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 130
    finally:
        server.shutdown()
