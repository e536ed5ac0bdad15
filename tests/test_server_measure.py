"""The Measure-energy code action over LSP: action -> sandboxed measurement -> progress -> diagnostic and hover."""

from __future__ import annotations

import asyncio
import time

import pytest
import pytest_asyncio
from lsprotocol import types

from test_server_lsp import open_document, report, start, wait_ready

URI = "file:///tmp/greencoder-test/measured.py"
SOURCE = '''# greencoder: bench total(20000)
def total(n):
    return sum(range(n))


def untested(x):
    return x + 1
'''
FAST = {"benchRuns": 8, "benchMinSeconds": 0.05, "benchCooldown": 0, "meter": "estimate"}


@pytest_asyncio.fixture
async def client(tiny_model_dir):
    client, _ = await start(tiny_model_dir, FAST)
    await wait_ready(client)
    open_document(client, URI, SOURCE)
    yield client
    await client.shutdown_session()


async def actions_at(client, line: int) -> list[types.CodeAction]:
    """The code actions at `line`. The test client's converter reads a CodeAction that carries a
    command as a bare Command (its `command` field the text of the dict); read it back."""
    import ast

    answer = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=URI),
        range=types.Range(start=types.Position(line=line, character=4), end=types.Position(line=line, character=4)),
        context=types.CodeActionContext(diagnostics=[])))
    actions = []
    for item in answer or []:
        if isinstance(item, types.Command) and item.command.startswith("{"):
            inner = ast.literal_eval(item.command)
            item = types.CodeAction(title=item.title, command=types.Command(**inner))
        actions.append(item)
    return actions


async def measured_diagnostic(client, timeout: float = 120) -> types.Diagnostic:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        diagnostics = client.diagnostics.get(URI) or []
        if diagnostics:
            return diagnostics[0]
        await asyncio.sleep(0.1)
    raise AssertionError("no diagnostic arrived")


async def measure(client, action) -> types.Diagnostic:
    client.diagnostics.pop(URI, None)
    started = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=action.command.command, arguments=action.command.arguments))
    assert started["started"]
    return await measured_diagnostic(client)


@pytest.mark.asyncio
async def test_measure_energy_action_gives_a_diagnostic_hover_and_progress(client):
    actions = await actions_at(client, 2)
    assert [a.title for a in actions] == ["Measure energy of `total`"]
    diagnostic = await measure(client, actions[0])
    assert diagnostic.severity == types.DiagnosticSeverity.Information and diagnostic.source == "greencoder"
    assert diagnostic.range.start == types.Position(line=1, character=4)
    assert "per call" in diagnostic.message and "ESTIMATED from CPU time" in diagnostic.message
    reports = [values for values in client.progress_reports.values()
               if values and getattr(values[0], "title", "") == "Measuring energy of total"]
    assert reports and reports[0][0].cancellable and type(reports[0][-1]).__name__ == "WorkDoneProgressEnd"
    assert any(type(v).__name__ == "WorkDoneProgressReport" for v in reports[0])
    hover = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=URI), position=types.Position(line=1, character=6)))
    assert "energy per call" in hover.contents.value and "estimated from CPU time" in hover.contents.value
    ledger = await report(client)
    assert ledger["measurements"] == 1 and ledger["measuredJoules"]["estimated"] > 0


@pytest.mark.asyncio
async def test_measuring_after_an_edit_compares_with_the_previous_result(client):
    action = (await actions_at(client, 2))[0]
    await measure(client, action)
    slower = SOURCE.replace("return sum(range(n))", "return sum(sum(range(40)) for _ in range(n))")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=slower)]))
    diagnostic = await measure(client, action)
    assert "vs previous: energy +" in diagnostic.message and "significant" in diagnostic.message


@pytest.mark.asyncio
async def test_function_without_workload_gets_a_template_action(client):
    actions = await actions_at(client, 6)
    assert [a.title for a in actions] == ["Add an energy benchmark call for `untested`"]
    edit = actions[0].edit.changes[URI][0]
    assert edit.new_text == "# greencoder: bench untested()\n" and edit.range.start.line == 5
    assert await actions_at(client, 3) == []


@pytest.mark.asyncio
async def test_a_failing_workload_is_reported_not_crashing(client):
    broken = SOURCE.replace("total(20000)", "total(undefined_name)")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=broken)]))
    diagnostic = await measure(client, (await actions_at(client, 2))[0])
    assert diagnostic.severity == types.DiagnosticSeverity.Warning and "failed" in diagnostic.message
    assert (await report(client))["model"] == "ready"


CPP = ("#include <vector>\n// greencoder: bench sum_to(20000)\nlong sum_to(int n) {\n    long total = 0;\n"
       "    for (int i = 0; i < n; i++) { total += i; }\n    return total;\n}\n")
JAVA = ("public class Sums {\n    // greencoder: bench Sums.sumTo(20000)\n    static long sumTo(int n) {\n"
        "        long total = 0;\n        for (int i = 0; i < n; i++) { total += i; }\n        return total;\n    }\n}\n")


@pytest.mark.asyncio
@pytest.mark.parametrize("language, source, uri, name", [
    ("cpp", CPP, "file:///tmp/greencoder-test/sums.cpp", "sum_to"),
    ("java", JAVA, "file:///tmp/greencoder-test/Sums.java", "sumTo"),
])
async def test_cpp_and_java_functions_are_measured_too(client, language, source, uri, name):
    open_document(client, uri, source, language)
    started = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="greencoder.measureEnergy", arguments=[uri, {"line": 3, "character": 8}]))
    assert started["function"] == name
    deadline = time.monotonic() + 120
    while not client.diagnostics.get(uri) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    diagnostic = client.diagnostics[uri][0]
    assert diagnostic.severity == types.DiagnosticSeverity.Information and "per call" in diagnostic.message


@pytest.mark.asyncio
async def test_cancelling_the_progress_stops_the_measurement_and_completions_never_wait(client):
    client.workspace_did_change_configuration(types.DidChangeConfigurationParams(
        settings={"greencoder": {"benchRuns": 10, "benchMinSeconds": 2, "benchCooldown": 1}}))
    await asyncio.sleep(0.2)
    started = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="greencoder.measureEnergy", arguments=[URI, "total"]))
    await asyncio.sleep(1.0)
    began = time.monotonic()  # completions are served while the measurement runs
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=SOURCE + "\n\ndef more(n):\n    \n")]))
    inline = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI), position=types.Position(line=10, character=4),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    assert time.monotonic() - began < 10 and len(inline.items) <= 1
    client.protocol.notify(types.WINDOW_WORK_DONE_PROGRESS_CANCEL, types.WorkDoneProgressCancelParams(token=started["token"]))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        values = client.progress_reports.get(started["token"], [])
        if values and type(values[-1]).__name__ == "WorkDoneProgressEnd":
            break
        await asyncio.sleep(0.1)
    assert type(client.progress_reports[started["token"]][-1]).__name__ == "WorkDoneProgressEnd"
    assert time.monotonic() - began < 25  # far less than 10 runs of >= 2 s with cooldowns
    assert (await report(client))["measurements"] == 0
    assert not client.diagnostics.get(URI)
