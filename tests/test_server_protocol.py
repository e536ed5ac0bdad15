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

from lsp_support import URI, inline_params, open_document, report, start, wait_ready


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
    result = subprocess.run(server_command(tiny_model_dir), input=b"".join(frame(m) for m in messages),
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
