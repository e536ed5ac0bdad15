"""`greencoder serve` end to end over stdio, driven by pytest-lsp's client (see lsp_support)."""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
from lsprotocol import types
from pygls.exceptions import JsonRpcRequestCancelled

from lsp_support import (
    PYTHON_SOURCE, URI, completion_params, configure, inline_params, insert, message_containing, open_document,
    report, start, until, until_ledger, wait_ready,
)


@pytest_asyncio.fixture
async def client(tiny_model_dir):
    client, _ = await start(tiny_model_dir)
    await wait_ready(client)
    open_document(client)
    yield client
    await client.shutdown_session()


def load_progress(client) -> list[list[str]]:
    """Kinds of the model-loading progress reports, per token."""
    return [[type(v).__name__ for v in values] for values in client.progress_reports.values()
            if values and getattr(values[0], "title", "") == "greencoder"]


@pytest.mark.slow  # repeated_initialized below pins the same progress; the default suite keeps to 12 minutes
@pytest.mark.asyncio
async def test_capabilities_and_model_loading_progress(tiny_model_dir):
    client, result = await start(tiny_model_dir)
    try:
        assert result.capabilities.inline_completion_provider is not None
        assert result.capabilities.completion_provider is not None
        assert (await wait_ready(client))["model"] == "ready"
        kinds = await until(client, "$/progress", lambda: [k for k in load_progress(client) if k[-1] == "WorkDoneProgressEnd"])
        assert kinds == [["WorkDoneProgressBegin", "WorkDoneProgressEnd"]]
    finally:
        await client.shutdown_session()


@pytest.mark.asyncio
async def test_completion_and_inline_completion_report_their_cost_and_push_the_ledger(client):
    completion = await client.text_document_completion_async(completion_params())
    item = completion.items[0]
    assert 1 <= item.data["tokens"] <= 16 and item.data["energyKind"] == "estimated" and item.data["joules"] > 0
    assert item.data["cpuSeconds"] > 0
    assert "estimated, from CPU time" in item.detail
    inline = await client.text_document_inline_completion_async(inline_params())
    assert len(inline.items) == 1 and inline.items[0].insert_text == item.text_edit.new_text
    assert inline.items[0].range.start == types.Position(line=4, character=4)
    # The same cursor again: the suggestion on screen is the answer, no second generation.
    pushed = await until_ledger(client, lambda ledger: ledger["typedAhead"] == 1)
    assert pushed["completions"] == 1 and pushed["suggestionsShown"] == 1
    assert pushed["completionJoules"]["estimated"] > 0
    assert pushed == {**await report(client), "model": "ready"}


@pytest.mark.asyncio
async def test_cancel_request_answers_request_cancelled_and_stops_the_model(client):
    configure(client, maxNewTokens=2000)
    future = client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params())
    request_id = next(key for key, value in client.protocol._request_futures.items() if value is future)
    client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id=request_id))
    with pytest.raises(JsonRpcRequestCancelled):
        await asyncio.wait_for(asyncio.wrap_future(future), timeout=60)
    await finished_generations_stay_short(client)


async def finished_generations_stay_short(client, line: int = 5) -> dict:
    """Ask once more (a new context, few tokens): generations run one at a time, so once this one is
    charged, a cancelled one has been charged before it. Had the cancelled request kept the model
    going, it would have charged up to 2000 tokens; cancelled before it began, it charged nothing."""
    configure(client, maxNewTokens=4)
    insert(client, URI, 50, 0, 0, "\n")
    after = await client.text_document_inline_completion_async(inline_params(line=line))
    assert len(after.items) == 1
    ledger = await until_ledger(client, lambda ledger: ledger["completions"] - ledger["cancelled"] == 1)
    assert ledger["cancelled"] <= 1 and ledger["completionTokens"] < 1000
    return ledger


@pytest.mark.asyncio
async def test_a_newer_request_supersedes_the_running_one_with_request_cancelled(client):
    configure(client, maxNewTokens=2000)
    first = asyncio.wrap_future(client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params()))
    configure(client, maxNewTokens=8)
    second = await client.text_document_inline_completion_async(inline_params())
    with pytest.raises(JsonRpcRequestCancelled, match="superseded"):
        await first
    assert len(second.items) == 1
    ledger = await until_ledger(client, lambda ledger: ledger["completions"] - ledger["cancelled"] == 1)
    assert ledger["cancelled"] <= 1 and ledger["completionTokens"] < 1000


@pytest.mark.asyncio
async def test_an_edit_cancels_the_running_generation_of_that_document(client):
    configure(client, maxNewTokens=2000)
    running = asyncio.wrap_future(client.protocol.send_request(types.TEXT_DOCUMENT_INLINE_COMPLETION, inline_params()))
    insert(client, URI, 2, 0, 0, "import os\n")
    with pytest.raises(JsonRpcRequestCancelled, match="document changed"):
        await asyncio.wait_for(running, timeout=60)
    await finished_generations_stay_short(client, line=6)


@pytest.mark.asyncio
async def test_bad_setting_is_shown_and_the_last_good_one_stays(client):
    configure(client, maxNewTokens=3)
    configure(client, maxNewTokens="lots")
    assert "maxNewTokens" in await message_containing(client, "setting ignored")
    completion = await client.text_document_completion_async(completion_params())
    assert completion.items and completion.items[0].data["tokens"] <= 3


@pytest.mark.asyncio
async def test_max_new_tokens_beyond_the_models_context_is_refused_naming_the_limit(client):
    configure(client, maxNewTokens=4)
    configure(client, maxNewTokens=4000)  # the tiny model's context is smaller
    message = await message_containing(client, "exceeds the model's context")
    assert "'maxNewTokens' = 4000" in message and "use at most" in message
    completion = await client.text_document_completion_async(completion_params())
    assert completion.items and completion.items[0].data["tokens"] <= 4


@pytest.mark.asyncio
@pytest.mark.slow  # a long duplicate of default coverage: the default suite keeps its 12 minutes
async def test_bad_adapter_is_reported_and_the_server_keeps_serving(tiny_model_dir, tmp_path):
    broken = tmp_path / "adapter"
    broken.mkdir()
    (broken / "adapter_config.json").write_text("{not json")
    client, _ = await start(tiny_model_dir, {"adapter": str(broken)})
    try:
        assert (await wait_ready(client))["model"] == "failed"
        await message_containing(client, "corrupt adapter")
        open_document(client)
        assert len((await client.text_document_inline_completion_async(inline_params())).items) == 0
        configure(client, adapter=None)
        await until_ledger(client, lambda ledger: ledger["model"] == "ready")
        assert len((await client.text_document_inline_completion_async(inline_params())).items) == 1
    finally:
        await client.shutdown_session()


@pytest.mark.asyncio
async def test_a_model_that_cannot_load_does_not_stick_in_the_settings(client, tmp_path):
    configure(client, model=str(tmp_path / "no-such-model"))
    assert "still using" in await message_containing(client, "cannot load the model")
    configure(client, maxNewTokens=4)  # had the bad model stuck, this would try to load it again
    completion = await client.text_document_completion_async(completion_params())
    assert completion.items and completion.items[0].data["tokens"] <= 4
    assert sum("cannot load the model" in m.message for m in client.messages) == 1
    assert (await report(client))["model"] == "ready"


@pytest.mark.asyncio
@pytest.mark.slow  # a long duplicate of default coverage: the default suite keeps its 12 minutes
async def test_repeated_initialized_loads_the_model_once(tiny_model_dir):
    client, _ = await start(tiny_model_dir)
    try:
        for _ in range(7):
            client.protocol.notify(types.INITIALIZED, types.InitializedParams())
        await wait_ready(client)
        kinds = await until(client, "$/progress", lambda: [k for k in load_progress(client) if k[-1] == "WorkDoneProgressEnd"])
        open_document(client)
        assert len((await client.text_document_inline_completion_async(inline_params())).items) == 1
        assert load_progress(client) == kinds == [["WorkDoneProgressBegin", "WorkDoneProgressEnd"]]
    finally:
        await client.shutdown_session()


@pytest.mark.asyncio
@pytest.mark.slow  # a long duplicate of default coverage: the default suite keeps its 12 minutes
async def test_the_threads_setting_holds_in_the_generating_thread(tiny_model_dir):
    client, _ = await start(tiny_model_dir, extra=("--threads", "2"))
    try:
        await wait_ready(client)
        open_document(client)
        first = await client.text_document_completion_async(completion_params())
        assert first.items[0].data["threads"] == 2
        configure(client, threads=1)
        insert(client, URI, 2, 0, 0, "\n")  # a new context, so a new generation
        second = await client.text_document_completion_async(completion_params(line=5))
        assert second.items[0].data["threads"] == 1
        assert sum(k == ["WorkDoneProgressBegin", "WorkDoneProgressEnd"] for k in load_progress(client)) == 1  # no reload
    finally:
        await client.shutdown_session()


PERCENT_URIS = [
    "file:///c%3A/Users/dev/primes.py",  # VS Code on Windows
    # the default suite keeps to its 12-minute budget; CI runs these after it
    pytest.param("file:///tmp/greencoder-test/my%20code/primes.py", marks=pytest.mark.slow),
    pytest.param("file:///tmp/greencoder-test/J%C3%A9r%C3%B4me/primes.py", marks=pytest.mark.slow),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("uri", PERCENT_URIS)
async def test_percent_encoded_uris_get_completions_and_code_actions(client, uri):
    source = PYTHON_SOURCE + "\n\ndef square(x):\n    return x * x\n"
    open_document(client, uri, source)
    inline = await client.text_document_inline_completion_async(inline_params(uri=uri))
    assert len(inline.items) == 1
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=types.Position(line=8, character=4), end=types.Position(line=8, character=4)),
        context=types.CodeActionContext(diagnostics=[])))
    assert [a.title for a in actions] == ["Add an energy benchmark call for `square`"]
    assert list(actions[0].edit.changes) == [uri]  # answered under the URI the client used


@pytest.mark.asyncio
async def test_form_feeds_do_not_shift_lines_or_corrupt_incremental_edits(client):
    uri = "file:///tmp/greencoder-test/paged.py"
    source = "def first():\n    return 1\n\x0c\ndef second(x):\n    return x\n"
    open_document(client, uri, source)
    # LSP line 3 is `def second(x):` (a form feed is not a line break); rename it to `third`.
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
        content_changes=[types.TextDocumentContentChangePartial(
            range=types.Range(start=types.Position(line=3, character=4), end=types.Position(line=3, character=10)),
            text="third")]))
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=types.Range(start=types.Position(line=4, character=4), end=types.Position(line=4, character=4)),
        context=types.CodeActionContext(diagnostics=[])))
    assert [a.title for a in actions] == ["Add an energy benchmark call for `third`"]
    assert actions[0].edit.changes[uri][0].range.start.line == 3


@pytest.mark.asyncio
async def test_unknown_documents_bursts_and_big_files_get_answers(client):
    unknown = await client.text_document_inline_completion_async(inline_params(uri="file:///nowhere.py"))
    assert len(unknown.items) == 0
    big_uri = "file:///tmp/greencoder-test/big.py"
    open_document(client, big_uri, "x = 1\n" * 1_700_000)  # about 10 MB
    result = await client.text_document_inline_completion_async(inline_params(line=1_700_000, character=0, uri=big_uri))
    assert len(result.items) == 1 and result.items[0].range.start.line == 1_700_000
    burst = [client.text_document_inline_completion_async(inline_params()) for _ in range(100)]
    answers = await asyncio.wait_for(asyncio.gather(*burst, return_exceptions=True), timeout=120)
    cancelled = [a for a in answers if isinstance(a, JsonRpcRequestCancelled)]
    served = [a for a in answers if not isinstance(a, BaseException)]
    assert len(cancelled) + len(served) == 100  # every request answered, none with another error
    assert len(served) >= 1 and len(served[-1].items) == 1  # the last one is not superseded
    assert (await report(client))["model"] == "ready"


@pytest.mark.asyncio
async def test_accepting_a_suggestion_is_counted_in_the_ledger(client):
    inline = await client.text_document_inline_completion_async(inline_params())
    item = inline.items[0]
    assert item.command.command == "greencoder.acceptSuggestion" and item.command.arguments[1] == 0
    suggestion_id = item.command.arguments[0]
    ledger = await until_ledger(client, lambda ledger: ledger["suggestionsShown"] == 1)
    assert ledger["charactersAccepted"] == 0 and ledger["power"]["inForce"] == "full"
    client.protocol.notify("greencoder/didPartiallyAcceptCompletion", {"suggestionId": suggestion_id, "acceptedLength": 1})
    partial = await until_ledger(client, lambda ledger: ledger["charactersAccepted"] == 1)
    assert partial["suggestionsAccepted"] == 1
    assert await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=item.command.command, arguments=item.command.arguments))
    whole = await until_ledger(client, lambda ledger: ledger["charactersAccepted"] == len(item.insert_text))
    assert whole["suggestionsAccepted"] == 1
    assert whole["joulesPerAcceptedCharacter"]["estimated"] == pytest.approx(
        whole["completionJoules"]["estimated"] / len(item.insert_text), rel=1e-3)
