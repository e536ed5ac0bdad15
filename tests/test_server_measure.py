"""The Measure-energy code action over LSP: action -> sandboxed measurement -> progress -> diagnostic and hover."""

from __future__ import annotations

import pytest
import pytest_asyncio
from lsprotocol import types

from lsp_support import configure, open_document, report, start, until, until_ledger, wait_ready

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


async def measured_diagnostic(client, uri: str = URI, timeout: float = 120) -> types.Diagnostic:
    diagnostics = await until(client, types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS, lambda: client.diagnostics.get(uri), timeout)
    return diagnostics[0]


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
    data = diagnostic.data
    assert (data["kind"], data["function"], data["call"], data["status"]) == ("greencoder.measurement", "total", "total(20000)", "ok")
    assert data["energyKind"] == "estimated" and data["meter"] == "estimate" and data["comparison"] is None
    assert data["energy"]["mean"] > 0 and data["time"]["mean"] > 0 and data["runs"] + data["removed"] == 8
    assert data["repeats"] >= 1
    reports = [values for values in client.progress_reports.values()
               if values and getattr(values[0], "title", "") == "Measuring energy of total"]
    assert reports and reports[0][0].cancellable and type(reports[0][-1]).__name__ == "WorkDoneProgressEnd"
    assert any(type(v).__name__ == "WorkDoneProgressReport" for v in reports[0])
    hover = await client.text_document_hover_async(types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=URI), position=types.Position(line=1, character=6)))
    assert "energy per call" in hover.contents.value and "estimated from CPU time" in hover.contents.value
    ledger = await until_ledger(client, lambda ledger: ledger["measurements"] == 1)
    assert ledger["measuredJoules"]["estimated"] > 0 and ledger["lastMeasurement"] == data


@pytest.mark.asyncio
async def test_measuring_after_an_edit_compares_with_the_previous_result(client):
    action = (await actions_at(client, 2))[0]
    await measure(client, action)
    slower = SOURCE.replace("return sum(range(n))", "return sum(sum(range(40)) for _ in range(n))")
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=slower)]))
    diagnostic = await measure(client, action)
    comparison = diagnostic.data["comparison"]
    assert comparison["error"] is None and comparison["alpha"] == 0.005
    assert comparison["energyChangePct"] > 0 and comparison["pValue"] < 0.005 and comparison["significant"] is True
    assert "vs previous: energy +" in diagnostic.message and ", significant at" in diagnostic.message


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
    assert diagnostic.data["status"] == "failed" and "undefined_name" in diagnostic.data["error"]
    assert diagnostic.data["energy"] is None
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
@pytest.mark.slow  # the default suite keeps to its 12-minute budget; CI runs it after
async def test_cpp_and_java_functions_are_measured_too(client, language, source, uri, name):
    open_document(client, uri, source, language)
    started = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="greencoder.measureEnergy", arguments=[uri, {"line": 3, "character": 8}]))
    assert started["function"] == name
    diagnostic = await measured_diagnostic(client, uri)
    assert diagnostic.severity == types.DiagnosticSeverity.Information and "per call" in diagnostic.message
    assert diagnostic.data["function"] == name and diagnostic.data["energy"]["mean"] > 0


@pytest.mark.asyncio
async def test_cancelling_the_progress_stops_the_measurement_and_completions_never_wait(client):
    configure(client, benchRuns=10, benchMinSeconds=2, benchCooldown=1)
    started = await client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="greencoder.measureEnergy", arguments=[URI, "total"]))
    token = started["token"]
    # Completions are served while the measurement runs (its first progress report has come).
    await until(client, "$/progress", lambda: len(client.progress_reports.get(token, [])) >= 2)
    client.text_document_did_change(types.DidChangeTextDocumentParams(
        text_document=types.VersionedTextDocumentIdentifier(uri=URI, version=2),
        content_changes=[types.TextDocumentContentChangeWholeDocument(text=SOURCE + "\n\ndef more(n):\n    \n")]))
    inline = await client.text_document_inline_completion_async(types.InlineCompletionParams(
        text_document=types.TextDocumentIdentifier(uri=URI), position=types.Position(line=10, character=4),
        context=types.InlineCompletionContext(trigger_kind=types.InlineCompletionTriggerKind.Invoked)))
    assert len(inline.items) == 1
    assert type(client.progress_reports[token][-1]).__name__ != "WorkDoneProgressEnd"  # still measuring meanwhile
    client.protocol.notify(types.WINDOW_WORK_DONE_PROGRESS_CANCEL, types.WorkDoneProgressCancelParams(token=token))
    await until(client, "$/progress", lambda: type(client.progress_reports[token][-1]).__name__ == "WorkDoneProgressEnd", 60)
    ledger = await report(client)
    assert ledger["measurements"] == 0 and ledger["completions"] == 1
    assert not client.diagnostics.get(URI)
