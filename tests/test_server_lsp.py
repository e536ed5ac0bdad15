"""`greencoder serve` end to end over stdio, driven by pytest-lsp's client."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest
import pytest_asyncio
from lsprotocol import types
from pytest_lsp import ClientServerConfig

from greencoder.server.settings import plain  # pygls hands custom results back as namedtuples

PYTHON_SOURCE = "import math\n\n\ndef is_prime(n):\n    \n"
URI = "file:///tmp/greencoder-test/primes.py"


def capabilities() -> types.ClientCapabilities:
    return types.ClientCapabilities(
        window=types.WindowClientCapabilities(work_done_progress=True),
        workspace=types.WorkspaceClientCapabilities(configuration=True, did_change_configuration=types.DidChangeConfigurationClientCapabilities()),
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities(),
            completion=types.CompletionClientCapabilities()),
    )


async def start(model_dir, options: dict | None = None):
    config = ClientServerConfig(
        server_command=[sys.executable, "-m", "greencoder", "serve", "--model", str(model_dir), "--device", "cpu",
                        "--debounce-ms", "0", "--max-new-tokens", "16"],
        server_env={**os.environ, "GREENCODER_THREADS": "1"},
    )
    client = await config.start()
    client.set_configuration({"greencoder": {}})
    result = await client.initialize_session(types.InitializeParams(capabilities=capabilities(), initialization_options=options))
    return client, result


async def report(client) -> dict:
    return plain(await client.protocol.send_request_async("greencoder/energyReport", None))


async def wait_ready(client, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = await report(client)
        if state["model"] in ("ready", "failed"):
            return state
        await asyncio.sleep(0.1)
    raise AssertionError("the model never finished loading")


def open_document(client, uri: str = URI, text: str = PYTHON_SOURCE, language: str = "python") -> None:
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        text_document=types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)))


def inline_params(line: int = 4, character: int = 4, uri: str = URI) -> types.InlineCompletionParams:
    return types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=line, character=character),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked))


@pytest_asyncio.fixture
async def client(tiny_model_dir):
    client, _ = await start(tiny_model_dir)
    await wait_ready(client)
    open_document(client)
    yield client
    await client.shutdown_session()


@pytest.mark.asyncio
async def test_capabilities_and_model_loading_progress(tiny_model_dir):
    client, result = await start(tiny_model_dir)
    try:
        capabilities = result.capabilities
        assert capabilities.inline_completion_provider is not None
        assert capabilities.completion_provider is not None
        state = await wait_ready(client)
        assert state["model"] == "ready"
        await asyncio.sleep(0.2)
        kinds = [[type(v).__name__ for v in values] for values in client.progress_reports.values()]
        assert ["WorkDoneProgressBegin", "WorkDoneProgressEnd"] in kinds
    finally:
        await client.shutdown_session()


@pytest.mark.asyncio
async def test_completion_and_inline_completion_report_their_cost(client):
    inline = await client.text_document_inline_completion_async(inline_params())
    assert len(inline.items) == 1 and inline.items[0].insert_text.strip()
    assert inline.items[0].range.start == types.Position(line=4, character=4)
    completion = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI), position=types.Position(line=4, character=4)))
    item = completion.items[0]
    assert 1 <= item.data["tokens"] <= 16 and item.data["energyKind"] == "estimated" and item.data["joules"] > 0
    assert "estimated, from CPU time" in item.detail
    ledger = await report(client)
    assert ledger["completions"] == 2 and ledger["completionJoules"]["estimated"] > 0


@pytest.mark.asyncio
async def test_cancel_request_stops_the_generation(client):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"greencoder": {"maxNewTokens": 2000}}))
    await asyncio.sleep(0.2)
    future = client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params())
    request_id = next(key for key, value in client.protocol._request_futures.items() if value is future)
    await asyncio.sleep(1.0)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=request_id))
    with pytest.raises(Exception):
        await asyncio.wait_for(asyncio.wrap_future(future), timeout=30)
    deadline = time.monotonic() + 10
    while (ledger := await report(client))["cancelled"] < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert ledger["cancelled"] == 1
    assert ledger["completionTokens"] < 1000  # stopped long before 2000 tokens


@pytest.mark.asyncio
async def test_a_newer_request_supersedes_the_running_one(client):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"greencoder": {"maxNewTokens": 2000}}))
    await asyncio.sleep(0.2)
    first = asyncio.ensure_future(client.text_document_inline_completion_async(inline_params()))
    await asyncio.sleep(1.0)
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"greencoder": {"maxNewTokens": 8}}))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    second = await client.text_document_inline_completion_async(inline_params())
    assert time.monotonic() - started < 20
    assert len((await first).items) == 0  # superseded: nothing to show
    assert len(second.items) == 1
    ledger = await report(client)
    assert ledger["cancelled"] == 1 and ledger["completionTokens"] < 1000


@pytest.mark.asyncio
async def test_bad_setting_is_shown_and_the_last_good_one_stays(client):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"greencoder": {"maxNewTokens": 3}}))
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"greencoder": {"maxNewTokens": "lots"}}))
    await asyncio.sleep(0.3)
    assert any("maxNewTokens" in m.message or "max_new_tokens" in m.message for m in client.messages)
    completion = await client.text_document_completion_async(types.CompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI), position=types.Position(line=4, character=4)))
    assert completion.items and completion.items[0].data["tokens"] <= 3


@pytest.mark.asyncio
async def test_bad_adapter_is_reported_and_the_server_keeps_serving(tiny_model_dir, tmp_path):
    broken = tmp_path / "adapter"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{not json")
    client, _ = await start(tiny_model_dir, {"adapter": str(broken)})
    try:
        state = await wait_ready(client)
        assert state["model"] == "failed"
        await asyncio.sleep(0.2)
        assert any("corrupt adapter" in m.message for m in client.messages)
        open_document(client)
        assert len((await client.text_document_inline_completion_async(inline_params())).items) == 0
        client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"greencoder": {"adapter": None}}))
        assert (await wait_ready(client))["model"] in ("ready", "failed")
        deadline = time.monotonic() + 60
        while (await report(client))["model"] != "ready" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert len((await client.text_document_inline_completion_async(inline_params())).items) == 1
    finally:
        await client.shutdown_session()


@pytest.mark.asyncio
async def test_unknown_documents_bursts_and_big_files_get_answers(client):
    unknown = await client.text_document_inline_completion_async(inline_params(uri="file:///nowhere.py"))
    assert len(unknown.items) == 0
    big = "x = 1\n" * 1_700_000  # about 10 MB
    open_document(client, "file:///tmp/greencoder-test/big.py", big)
    result = await client.text_document_inline_completion_async(inline_params(line=1_700_000, character=0, uri="file:///tmp/greencoder-test/big.py"))
    assert len(result.items) <= 1
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"greencoder": {"maxNewTokens": 400}}))
    running = asyncio.ensure_future(client.text_document_inline_completion_async(inline_params()))
    await asyncio.sleep(0.3)
    client.text_document_did_change(types.DidChangeTextDocumentParams(  # an edit while the model generates
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=0, character=0), end=types.Position(line=0, character=0)),
            text="import os\n")]))
    after_edit = await client.text_document_inline_completion_async(inline_params(line=5))
    assert len((await running).items) == 0 and len(after_edit.items) <= 1
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(settings={"greencoder": {"maxNewTokens": 16}}))
    burst = [client.text_document_inline_completion_async(inline_params(line=5)) for _ in range(100)]
    answers = await asyncio.wait_for(asyncio.gather(*burst, return_exceptions=True), timeout=120)
    assert len(answers) == 100 and all(not isinstance(a, BaseException) for a in answers)
    assert sum(len(a.items) for a in answers) >= 1  # the last one is not superseded
    assert (await report(client))["model"] == "ready"
