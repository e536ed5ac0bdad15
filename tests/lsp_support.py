"""Driving `greencoder serve` over stdio with pytest-lsp's client, waiting on what the server sends.

Nothing here sleeps to synchronise: every wait is on a notification (`greencoder/ledger`,
`$/progress`, `window/showMessage`, `textDocument/publishDiagnostics`) followed by a check of the
client's recorded state, with a deadline only as a safety net.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from typing import Any, Callable

from lsprotocol import types
from pytest_lsp import ClientServerConfig

from greencoder.server.settings import plain  # pygls hands custom results back as namedtuples

PYTHON_SOURCE = "import math\n\n\ndef is_prime(n):\n    \n"
URI = "file:///tmp/greencoder-test/primes.py"
LEDGER = "greencoder/ledger"


def capabilities() -> types.ClientCapabilities:
    return types.ClientCapabilities(
        window=types.WindowClientCapabilities(work_done_progress=True),
        workspace=types.WorkspaceClientCapabilities(
            configuration=True, did_change_configuration=types.DidChangeConfigurationClientCapabilities()),
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities(),
            completion=types.CompletionClientCapabilities()),
    )


def server_command(model_dir, *extra: str) -> list[str]:
    return [sys.executable, "-m", "greencoder", "serve", "--model", str(model_dir), "--device", "cpu",
            "--debounce-ms", "0", "--max-new-tokens", "16", *extra]


async def start(model_dir, options: dict | None = None, extra: tuple[str, ...] = (), initialize: bool = True):
    config = ClientServerConfig(server_command=server_command(model_dir, *extra),
                                server_env={**os.environ, "GREENCODER_THREADS": "1"})
    client = await config.start()
    client.ledger = None

    @client.feature(LEDGER)
    def _record_ledger(params: Any) -> None:
        client.ledger = plain(params)

    client.set_configuration({"greencoder": {}})
    result = None
    if initialize:
        result = await client.initialize_session(types.InitializeParams(capabilities=capabilities(),
                                                                        initialization_options=options))
    return client, result


async def until(client, method: str, condition: Callable[[], Any], timeout: float = 120) -> Any:
    """Wait for notifications of `method` until `condition()` is true; returns its value."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting on {method}")
        try:
            await asyncio.wait_for(client.protocol.wait_for_notification_async(method), remaining)
        except asyncio.TimeoutError:
            pass
    return value


async def until_ledger(client, condition: Callable[[dict], Any], timeout: float = 120) -> dict:
    return await until(client, LEDGER, lambda: client.ledger is not None and condition(client.ledger) and client.ledger,
                       timeout)


async def wait_ready(client, timeout: float = 120) -> dict:
    return await until_ledger(client, lambda ledger: ledger["model"] in ("ready", "failed"), timeout)


async def report(client) -> dict:
    return plain(await client.protocol.send_request_async("greencoder/energyReport", None))


async def message_containing(client, text: str, timeout: float = 60) -> str:
    return await until(client, "window/showMessage",
                       lambda: next((m.message for m in client.messages if text in m.message), None), timeout)


def open_document(client, uri: str = URI, text: str = PYTHON_SOURCE, language: str = "python", version: int = 1) -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))


def inline_params(line: int = 4, character: int = 4, uri: str = URI) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked))


def completion_params(line: int = 4, character: int = 4, uri: str = URI) -> types.CompletionParams:
    return types.CompletionParams(text_document=types.TextDocumentIdentifier(uri=uri),
                                  position=types.Position(line=line, character=character))


def configure(client, **settings: Any) -> None:
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"greencoder": settings}))


def insert(client, uri: str, version: int, line: int, character: int, text: str) -> None:
    position = types.Position(line=line, character=character)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
        content_changes=[types.TextDocumentContentChangePartial(range=types.Range(start=position, end=position), text=text)]))
