"""`greencoder serve` at the wire: nothing but protocol on stdout, bad messages answered, TCP, configuration pull."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from lsprotocol import types

from lsp_support import URI, open_document, start, wait_ready


def frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def parse_frames(data: bytes) -> list[dict]:
    """Every byte of `data` must belong to a Content-Length framed JSON message."""
    messages = []
    while data:
        header, separator, rest = data.partition(b"\r\n\r\n")
        assert separator, f"stray bytes on stdout: {data[:200]!r}"
        lengths = [int(line.split(b":")[1]) for line in header.split(b"\r\n") if line.lower().startswith(b"content-length")]
        assert lengths, f"stray bytes on stdout: {header[:200]!r}"
        messages.append(json.loads(rest[: lengths[0]]))
        data = rest[lengths[0]:]
    return messages


def server_command(model_dir, *extra: str) -> list[str]:
    return [sys.executable, "-m", "greencoder", "serve", "--model", str(model_dir), "--device", "cpu", *extra]


INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"processId": None, "rootUri": None, "capabilities": {}}}


def test_stdout_carries_only_protocol_and_bad_requests_get_errors(tiny_model_dir):
    messages = [
        INITIALIZE,
        {"jsonrpc": "2.0", "method": "initialized", "params": {}},
        {"jsonrpc": "2.0", "id": 2, "method": "textDocument/completion", "params": {"textDocument": 5}},
        {"jsonrpc": "2.0", "id": 3, "method": "greencoder/energyReport", "params": None},
        {"jsonrpc": "2.0", "id": 4, "method": "no/such/method", "params": {}},
        {"jsonrpc": "2.0", "id": 5, "method": "shutdown", "params": None},
        {"jsonrpc": "2.0", "method": "exit", "params": None},
    ]
    env = {**os.environ, "GREENCODER_THREADS": "1"}
    result = subprocess.run(server_command(tiny_model_dir), check=False, input=b"".join(frame(m) for m in messages),
                            capture_output=True, env=env, timeout=120)
    replies = {m["id"]: m for m in parse_frames(result.stdout) if "id" in m and "method" not in m}
    assert replies[1]["result"]["capabilities"]["inlineCompletionProvider"] is not None
    assert "error" in replies[2]
    assert replies[3]["result"]["completions"] == 0
    assert replies[4]["error"]["code"] == -32601
    assert replies[5]["result"] is None


def test_tcp_transport(tiny_model_dir):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "GREENCODER_THREADS": "1"}
    process = subprocess.Popen(server_command(tiny_model_dir, "--tcp", f"127.0.0.1:{port}"), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "the TCP server never listened"
                time.sleep(0.1)
        with connection:
            connection.sendall(frame(INITIALIZE))
            data = b""
            while b"capabilities" not in data or len(parse_frames_partial(data)) == 0:
                chunk = connection.recv(65536)
                assert chunk, "connection closed"
                data += chunk
        reply = parse_frames_partial(data)[0]
        assert reply["id"] == 1 and "completionProvider" in reply["result"]["capabilities"]
    finally:
        process.kill()
        process.wait(timeout=10)


def parse_frames_partial(data: bytes) -> list[dict]:
    """The first complete message in `data`, if it has arrived whole."""
    header, separator, rest = data.partition(b"\r\n\r\n")
    if not separator:
        return []
    length = next(int(line.split(b":")[1]) for line in header.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return [json.loads(rest[:length])] if len(rest) >= length else []


@pytest.mark.slow  # the default suite keeps to its 12-minute budget; CI runs it after
@pytest.mark.asyncio
async def test_settings_pulled_with_workspace_configuration(tiny_model_dir):
    client, _ = await start(tiny_model_dir)
    try:
        client.set_configuration({"greencoder": {"maxNewTokens": 3}})
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings=None))
        await wait_ready(client)
        open_document(client)
        await asyncio.sleep(0.3)
        completion = await client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(uri=URI), position=types.Position(line=4, character=4)))
        assert completion.items and completion.items[0].data["tokens"] <= 3
    finally:
        await client.shutdown_session()


# ---------------------------------------------------------------------------- hostile clients (issue 12, defect 7)

SHUTDOWN = {"jsonrpc": "2.0", "id": "bye", "method": "shutdown", "params": None}
EXIT = {"jsonrpc": "2.0", "method": "exit", "params": None}


def request(msg_id, method: str = "greencoder/energyReport", params=None) -> dict:
    return {"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params}


def converse(model_dir, data: bytes, *extra: str) -> tuple[int, dict, list[dict]]:
    """Send `data` to a fresh server; (exit status, replies by id, id-less replies). A server that
    hangs fails the test at the timeout instead of hanging it."""
    env = {**os.environ, "GREENCODER_THREADS": "1"}
    result = subprocess.run(server_command(model_dir, *extra), check=False, input=data, capture_output=True, env=env, timeout=120)
    messages = parse_frames(result.stdout)
    replies = {m["id"]: m for m in messages if "method" not in m and m.get("id") is not None}
    anonymous = [m for m in messages if "method" not in m and m.get("id") is None]
    return result.returncode, replies, anonymous


def error_code(reply: dict) -> int | None:
    return reply.get("error", {}).get("code")


def test_huge_content_length_is_refused_with_the_limit_named_and_the_server_keeps_serving(tiny_model_dir):
    data = b"Content-Length: 99999999999999\r\n\r\n" + frame(INITIALIZE) + frame(request(2)) + frame(SHUTDOWN) + frame(EXIT)
    status, replies, anonymous = converse(tiny_model_dir, data)
    assert "capabilities" in replies[1]["result"]
    assert replies[2]["result"]["completions"] == 0
    assert any(error_code(m) == -32600 and "64 MiB" in m["error"]["message"] for m in anonymous), anonymous
    assert status == 0


def test_a_header_without_body_or_a_4gb_length_does_not_leave_the_server_deaf(tiny_model_dir):
    data = (b"Content-Length: 4000000000\r\n\r\n" + frame(INITIALIZE)
            + b"Content-Length: 300\r\n\r\n" + frame(request(2))
            + b"Content-Length: 5000\r\n\r\n" + frame(SHUTDOWN) + frame(EXIT))
    status, replies, _ = converse(tiny_model_dir, data)
    assert "capabilities" in replies[1]["result"]
    assert replies[2]["result"]["completions"] == 0
    assert replies["bye"]["result"] is None and status == 0


def test_sloppy_framing_loses_no_later_message(tiny_model_dir):
    def body(msg_id) -> bytes:
        return json.dumps(request(msg_id)).encode()

    init = json.dumps(INITIALIZE).encode()
    data = (f"content-length: {len(init)}\r\n\r\n".encode() + init                        # lowercase header
            + f"Content-Length: {len(body(2))}\n\n".encode() + body(2)                    # LF-only line ends
            + f"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: {len(body(3))}\r\n\r\n".encode() + body(3)
            + f"Content-Length: {len(body(4)) + 40}\r\n\r\n".encode() + body(4)           # says more than it sends
            + frame(request(5))
            + f"Content-Length: {len(body(6)) - 10}\r\n\r\n".encode() + body(6)           # says less than it sends
            + frame(request(7)) + frame(SHUTDOWN) + frame(EXIT))
    status, replies, anonymous = converse(tiny_model_dir, data)
    assert "capabilities" in replies[1]["result"]
    for msg_id in (2, 3, 5, 7):
        assert replies[msg_id]["result"]["completions"] == 0, msg_id
    assert error_code(replies[4]) == -32600 and "next header" in replies[4]["error"]["message"]
    assert 6 not in replies and any(error_code(m) == -32700 for m in anonymous)  # cut short: not JSON
    assert status == 0


def test_a_client_that_never_reads_stderr_cannot_hang_the_server(tiny_model_dir):
    """--debug logs every message; 1500 answers log far more than a pipe holds (64 KiB)."""
    import threading

    data = frame(INITIALIZE) + b"".join(frame(request(n)) for n in range(2, 1502)) + frame(SHUTDOWN) + frame(EXIT)
    env = {**os.environ, "GREENCODER_THREADS": "1"}
    process = subprocess.Popen(server_command(tiny_model_dir, "--debug"), env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output: list[bytes] = []

    def feed() -> None:
        try:
            process.stdin.write(data)
            process.stdin.close()
        except BrokenPipeError:
            pass

    reader = threading.Thread(target=lambda: output.append(process.stdout.read()), daemon=True)
    writer = threading.Thread(target=feed, daemon=True)
    reader.start()
    writer.start()
    try:
        reader.join(timeout=120)
        assert not reader.is_alive(), "the server hung (stderr full?)"
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait(timeout=10)
        process.stderr.close()
    replies = {m["id"]: m for m in parse_frames(output[0]) if "method" not in m}
    assert all(replies[n]["result"]["completions"] == 0 for n in range(2, 1502))


def take_frame(data: bytes) -> tuple[dict, bytes] | None:
    """The first whole message in `data` and what follows it, or None until it has arrived."""
    header, separator, rest = data.partition(b"\r\n\r\n")
    if not separator:
        return None
    length = next(int(line.split(b":")[1]) for line in header.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return (json.loads(rest[:length]), rest[length:]) if len(rest) >= length else None


class Wire:
    """A raw client in step with the server: send frames, wait for the reply to an id."""

    def __init__(self, model_dir, *extra: str):
        import queue
        import threading

        env = {**os.environ, "GREENCODER_THREADS": "1"}
        self.process = subprocess.Popen(server_command(model_dir, *extra), env=env, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.replies: dict = {}
        self._arrived: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        data = b""
        while chunk := self.process.stdout.read1(65536):
            data += chunk
            while (split := take_frame(data)) is not None:
                message, data = split
                self._arrived.put(message)

    def send(self, *messages: dict) -> None:
        self.process.stdin.write(b"".join(frame(m) for m in messages))
        self.process.stdin.flush()

    def reply(self, msg_id) -> dict:
        while msg_id not in self.replies:
            message = self._arrived.get(timeout=60)
            if "method" not in message:
                self.replies[message.get("id")] = message
        return self.replies[msg_id]

    def exit_status(self) -> int:
        self.process.stdin.close()
        try:
            return self.process.wait(timeout=60)
        finally:
            self.process.kill()


def test_lifecycle_and_envelope_errors(tiny_model_dir):
    wire = Wire(tiny_model_dir)
    wire.send(
        request("early"),                                                            # before initialize
        {"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {
            "uri": URI, "languageId": "python", "version": 1, "text": "def f():\n    pass\n"}}},  # dropped
        INITIALIZE,
        {"id": 3, "method": "greencoder/energyReport", "params": None},              # no "jsonrpc"
        {"jsonrpc": "1.0", "id": 4, "method": "greencoder/energyReport"},             # wrong version
        request(5, "no/such/method", {}),
        request(6, "initialize", INITIALIZE["params"]),                              # a second initialize
        request(7, "workspace/executeCommand", {"command": "greencoder.measureEnergy", "arguments": [5]}),
        request(8, "textDocument/hover", {"textDocument": {"uri": URI}, "position": {"line": 0, "character": 5}}),
    )
    assert error_code(wire.reply("early")) == -32002 and "capabilities" in wire.reply(1)["result"]
    assert error_code(wire.reply(3)) == -32600 and error_code(wire.reply(4)) == -32600
    assert error_code(wire.reply(5)) == -32601
    assert error_code(wire.reply(6)) == -32600
    assert error_code(wire.reply(7)) == -32602 and "greencoder.measureEnergy" in wire.reply(7)["error"]["message"]
    assert wire.reply(8)["result"] is None  # the didOpen before initialize was dropped: no such document
    wire.send(SHUTDOWN)
    assert wire.reply("bye")["result"] is None
    wire.send(request(9), EXIT)                                                     # after shutdown
    assert error_code(wire.reply(9)) == -32600
    assert wire.exit_status() == 0
    for reply in wire.replies.values():
        if "error" in reply:
            assert "\n" not in reply["error"]["message"] and "Traceback" not in json.dumps(reply)
            assert "traceback" not in json.dumps(reply["error"].get("data"))


@pytest.mark.slow  # a long duplicate of default coverage: the default suite keeps its 12 minutes
def test_exit_without_shutdown_exits_with_status_1(tiny_model_dir):
    status, replies, _ = converse(tiny_model_dir, frame(INITIALIZE) + frame(EXIT))
    assert "capabilities" in replies[1]["result"] and status == 1


def test_cancelled_request_gets_request_cancelled(tiny_model_dir):
    completion = {"textDocument": {"uri": URI}, "position": {"line": 0, "character": 0}}
    data = b"".join(frame(m) for m in [
        INITIALIZE, request(2, "textDocument/completion", completion),
        {"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 2}}, SHUTDOWN, EXIT])
    status, replies, _ = converse(tiny_model_dir, data)
    assert error_code(replies[2]) == -32800 and status == 0


# ---------------------------------------------------------------------------- strict params (defect 8)

def test_positions_that_are_not_integers_are_invalid_params(tiny_model_dir):
    def hover(msg_id, position: dict) -> dict:
        return request(msg_id, "textDocument/hover", {"textDocument": {"uri": URI}, "position": position})

    data = b"".join(frame(m) for m in [
        INITIALIZE, hover(2, {"line": 1.5, "character": 0}), hover(3, {"line": 0, "character": "3"}),
        hover(4, {"line": True, "character": 0}), hover(5, {"line": 1, "character": 3}), SHUTDOWN, EXIT])
    _, replies, _ = converse(tiny_model_dir, data)
    for msg_id, field in ((2, "line"), (3, "character"), (4, "line")):
        error = replies[msg_id]["error"]
        assert error["code"] == -32602 and f"position.{field}" in error["message"] and "integer" in error["message"]
    # A well-typed position is accepted (answered, or cancelled by the shutdown right behind it).
    assert replies[5].get("result") is None and error_code(replies[5]) in (None, -32800)


# ---------------------------------------------------------------------------- the pieces, in process (no model)

def test_framing_rules():
    from greencoder.server.framing import FrameParser, FramingError, Message

    first, second = json.dumps(request(1)).encode(), json.dumps(request(2, "x", {"text": "Content-Length: 5\r\n\r\n"})).encode()
    streams = {
        "lowercase, LF-only, Content-Type": b"content-length: %d\n\n%s" % (len(first), first)
        + b"Content-Type: a/b\r\nContent-Length: %d\r\n\r\n%s" % (len(second), second),
        "too long": b"Content-Length: %d\r\n\r\n%s" % (len(first) + 9, first) + frame(json.loads(second)),
        "oversized": b"Content-Length: 99999999999999\r\n\r\n" + first + frame(json.loads(second)),
        "garbage": b"hello\r\n" + frame(json.loads(second)),
    }
    for name, data in streams.items():
        for size in (len(data), 1):  # all at once, and byte by byte
            parser = FrameParser(max_message=1000)
            events = [event for start in range(0, len(data), size) for event in parser.feed(data[start:start + size])]
            events += parser.eof()
            bodies = [event.body for event in events if isinstance(event, Message)]
            assert bodies[-1] == second, name  # escaped CRLFs inside a string are no header
            if name == "lowercase, LF-only, Content-Type":
                assert bodies == [first, second] and len(events) == 2
            else:
                assert any(isinstance(event, FramingError) for event in events), name
    oversized = FrameParser(max_message=1000).feed(b"Content-Length: 5000\r\n\r\n")
    assert "exceeds the limit of 1000 bytes" in oversized[0].reason


def test_a_superseded_request_is_answered_request_cancelled():
    """The API for the completion service: raise JsonRpcRequestCancelled (or asyncio.CancelledError)."""
    from pygls.exceptions import JsonRpcRequestCancelled
    from pygls.lsp.server import LanguageServer

    from greencoder.server.protocol import GreencoderProtocol
    from greencoder.server.transport import pump

    server = LanguageServer("test", "0", protocol_cls=GreencoderProtocol)

    @server.feature("test/superseded")
    async def superseded(params) -> None:
        raise JsonRpcRequestCancelled("superseded by a newer request")

    @server.feature("test/cancelled")
    async def cancelled(params) -> None:
        raise asyncio.CancelledError

    written: list[bytes] = []
    server.protocol.set_writer(type("Sink", (), {"write": lambda self, data: written.append(data), "close": lambda self: None})())
    chunks = [frame(INITIALIZE) + frame(request(2, "test/superseded")) + frame(request(3, "test/cancelled")), b""]

    async def read() -> bytes:
        await asyncio.sleep(0)  # as a real read would: let the handlers run
        return chunks.pop(0)

    assert asyncio.run(pump(read, server.protocol)) == 1  # end of input without shutdown
    replies = {m["id"]: m for m in parse_frames(b"".join(written))}
    assert replies[2]["error"] == {"code": -32800, "message": "superseded by a newer request"}
    assert replies[3]["error"]["code"] == -32800


def test_logging_never_blocks_on_a_stderr_nobody_reads():
    from greencoder.server.log_sink import DroppingStream

    read_end, write_end = os.pipe()
    try:
        stream = DroppingStream(write_end, limit=100_000)
        for _ in range(5000):  # 500 KB: far more than the pipe (64 KiB) and the backlog hold
            stream.write("x" * 99 + "\n")
        assert stream.dropped > 0
    finally:
        os.close(read_end)
