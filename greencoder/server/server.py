"""`greencoder serve`: the language server editors run (pygls 2, features by decorator).

A thin protocol layer: each handler turns LSP params into a call on the completion service, the
model host or the ledger, and their results back into LSP types. What the server offers:
- `textDocument/completion` and `textDocument/inlineCompletion` (registered with
  `InlineCompletionOptions()`, without which pygls leaves `inlineCompletionProvider` unset);
- `greencoder/energyReport`: the session's energy ledger;
- settings from `initializationOptions`, `workspace/configuration` and
  `workspace/didChangeConfiguration`; a bad setting is shown with `window/showMessage` and the last
  good settings stay;
- the model loads after `initialized` in the background, with work-done progress; requests that
  come before it is ready get an empty answer at once;
- code actions on a Python, C++ or Java function: "Measure energy of `f`" (command
  `greencoder.measureEnergy`, run in the background with cancellable progress; the result becomes an
  Information diagnostic on the function's name and its hover), or "Add an energy benchmark call
  for `f`" when the function has no workload yet.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid

from lsprotocol import types

from greencoder import __version__
from greencoder.core.errors import GreencoderError, InputError
from greencoder.core.languages import Language, get_language, language_for_path
from greencoder.server.completions import CompletionService, Suggestion
from greencoder.server.functions import FunctionSpan, bench_template, function_at
from greencoder.server.measure_action import MeasureService, MeasurementOutcome
from greencoder.server.ledger import EnergyLedger
from greencoder.server.model_host import LoadEvent, ModelHost
from greencoder.server.protocol import GreencoderProtocol
from greencoder.server.settings import SECTION, ServerSettings, merge

ENERGY_REPORT = "greencoder/energyReport"
MEASURE_COMMAND = "greencoder.measureEnergy"
logger = logging.getLogger("greencoder.server")


class GreencoderServer:
    """State shared by the handlers: settings, model, ledger, completions."""

    def __init__(self, defaults: ServerSettings):
        from pygls.lsp.server import LanguageServer

        self.lsp = LanguageServer("greencoder", __version__, protocol_cls=GreencoderProtocol)
        self.settings = defaults
        self.ledger = EnergyLedger()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.host = ModelHost(self._on_load_event, warn=lambda message: self.show(message, types.MessageType.Warning))
        self.completions = CompletionService(self.host, self.ledger, lambda: self.settings, self.meter)
        self._meter = None
        self._meter_key = None
        self.measurements = MeasureService(self.ledger, lambda: self.settings,
                                           warn=lambda message: self.show(message, types.MessageType.Warning))
        self.measure_cancels: dict[str, threading.Event] = {}
        self._progress_token: str | None = None
        self._progress_task: asyncio.Future | None = None
        register(self)

    # ------------------------------------------------------------------ helpers

    def meter(self):
        """The energy meter for completions (selected once per meter setting; GPU work counts)."""
        from greencoder.core.meters import select_meter

        key = (self.settings.meter, self.settings.watts_per_core)
        if self._meter is None or key != self._meter_key:
            self._meter = select_meter(self.settings.meter, watts_per_core=self.settings.watts_per_core,
                                       gpu_workload=True).meter
            self._meter_key = key
        return self._meter

    def show(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        """window/showMessage from any thread."""
        def send() -> None:
            self.lsp.window_show_message(types.ShowMessageParams(type=kind, message=f"greencoder: {message}"))
        self._call_soon(send)

    def _call_soon(self, function) -> None:
        if self.loop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(function)
        else:
            function()

    def apply_settings(self, values) -> None:
        """Merge editor settings; reload the model if model settings changed. Bad values: showMessage."""
        try:
            updated = merge(self.settings, values)
            if updated.meter != self.settings.meter or updated.watts_per_core != self.settings.watts_per_core:
                from greencoder.core.meters import select_meter

                select_meter(updated.meter, watts_per_core=updated.watts_per_core, gpu_workload=True)
        except GreencoderError as exc:
            self.show(f"setting ignored, keeping the previous configuration: {exc}")
            return
        self.settings = updated
        if self.host.state != "idle" and self.host.needs_load(updated):
            self.start_loading()

    def start_loading(self) -> None:
        self.host.load(self.settings)

    def _on_load_event(self, event: LoadEvent) -> None:
        logger.info("model %s: %s", event.state, event.message)
        self._call_soon(lambda: self._progress(event))

    def _progress(self, event: LoadEvent) -> None:
        """Model loading as work-done progress (begin on loading, end on ready/failed)."""
        if event.state == "loading":
            supported = bool(self.lsp.client_capabilities and self.lsp.client_capabilities.window
                             and self.lsp.client_capabilities.window.work_done_progress)
            if supported:
                token = self._progress_token = str(uuid.uuid4())
                self._progress_task = asyncio.ensure_future(self._begin_progress(token, event.message))
            return
        token, self._progress_token = self._progress_token, None
        if token is not None:
            asyncio.ensure_future(self._end_progress(token, event.message))
        if event.state == "failed":
            self.show(f"cannot load the model: {event.message}")

    async def _begin_progress(self, token: str, message: str) -> bool:
        try:
            await self.lsp.work_done_progress.create_async(token)
        except Exception as exc:  # noqa: BLE001 - a client that refuses progress still gets completions
            logger.info("work-done progress refused: %s", exc)
            return False
        self.lsp.work_done_progress.begin(token, types.WorkDoneProgressBegin(title="greencoder", message=message))
        return True

    async def _end_progress(self, token: str, message: str) -> None:
        if await self._progress_task:
            self.lsp.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))

    def documentation(self, code: str) -> types.MarkupContent | str:
        """The suggestion as a code block where the client renders Markdown, else as plain text."""
        capabilities = self.lsp.client_capabilities
        completion = capabilities.text_document.completion if capabilities and capabilities.text_document else None
        item = completion.completion_item if completion else None
        if item and item.documentation_format and types.MarkupKind.Markdown in item.documentation_format:
            return types.MarkupContent(kind=types.MarkupKind.Markdown, value=f"```\n{code}\n```")
        return code

    def document(self, uri: str):
        """The open document, or None for one the client never opened."""
        return self.lsp.workspace.text_documents.get(uri)

    @staticmethod
    def language_of(document) -> Language | None:
        for guess in (lambda: get_language(document.language_id or ""), lambda: language_for_path(document.uri)):
            try:
                return guess()
            except InputError:
                continue
        return None

    async def suggestion(self, uri: str, position: types.Position) -> tuple[Suggestion | None, types.Position]:
        document = self.document(uri)
        if document is None:
            return None, position
        language = self.language_of(document)
        if language is None:
            return None, position
        text = document.source
        offset = min(document.offset_at_position(position), len(text))
        try:
            return await self.completions.suggest(uri, text, offset, language), position
        except GreencoderError as exc:
            logger.warning("no completion for %s: %s", uri, exc)
            return None, position


    # ------------------------------------------------------------------ measuring

    def function_of(self, uri: str, line: int | None = None, name: str | None = None) -> tuple | None:
        """(document, language, span) for the function at `line` or called `name`, if any."""
        document = self.document(uri)
        language = self.language_of(document) if document else None
        if language is None:
            return None
        source = document.source
        if name is not None:
            from greencoder.server.functions import braced_functions, python_functions

            spans = python_functions(source) if language.name == "python" else braced_functions(source, language)
            span = next((s for s in spans if s.name == name), None)
        else:
            span = function_at(source, language, line or 0)
        return (document, language, span) if span else None

    async def start_measurement(self, uri: str, line: int | None, name: str | None) -> dict:
        found = self.function_of(uri, line, name)
        if found is None:
            raise InputError("no Python, C++ or Java function at the cursor")
        document, language, span = found
        if not span.call:
            raise InputError(f"{span.name} has no workload: add a 'greencoder: bench <call>' comment (code action "
                             f"'Add an energy benchmark call for `{span.name}`')")
        token = str(uuid.uuid4())
        cancelled = threading.Event()
        self.measure_cancels[token] = cancelled
        source = document.source
        loop = self.loop

        async def begin() -> None:
            try:
                await self.lsp.work_done_progress.create_async(token)
                self.lsp.work_done_progress.begin(token, types.WorkDoneProgressBegin(
                    title=f"Measuring energy of {span.name}", cancellable=True, message=span.call, percentage=0))
            except Exception as exc:  # noqa: BLE001 - no progress UI: still measure
                logger.info("no progress for the measurement: %s", exc)

        def progress(stage: str, done: int, total: int) -> None:
            percentage = int(100 * done / total) if total else None
            message = f"{stage} {done}/{total}" if total else stage
            loop.call_soon_threadsafe(lambda: self._report_progress(token, message, percentage))

        def work() -> None:
            outcome = self.measurements.run(uri, source, language, span.name, span.call, progress, cancelled)
            loop.call_soon_threadsafe(lambda: self._finish_measurement(token, uri, span, outcome))

        await begin()
        threading.Thread(target=work, name=f"greencoder-measure-{span.name}", daemon=True).start()
        return {"started": True, "function": span.name, "call": span.call, "token": token}

    def _report_progress(self, token: str, message: str, percentage: int | None) -> None:
        if token in self.lsp.work_done_progress.tokens:
            self.lsp.work_done_progress.report(token, types.WorkDoneProgressReport(message=message, percentage=percentage))

    def _finish_measurement(self, token: str, uri: str, span: FunctionSpan, outcome: MeasurementOutcome) -> None:
        self.measure_cancels.pop(token, None)
        if token in self.lsp.work_done_progress.tokens:
            self.lsp.work_done_progress.end(token, types.WorkDoneProgressEnd(message=outcome.summary()))
        if outcome.error and outcome.error != "cancelled":
            self.show(outcome.summary(), types.MessageType.Warning)
        self.publish_measurements(uri)

    def publish_measurements(self, uri: str) -> None:
        diagnostics = []
        document = self.document(uri)
        for (result_uri, function), outcome in self.measurements.results.items():
            if result_uri != uri or outcome.error == "cancelled":
                continue
            found = self.function_of(uri, name=function) if document else None
            if found is None:
                continue
            span = found[2]
            start = types.Position(line=span.name_line, character=span.name_column)
            end = types.Position(line=span.name_line, character=span.name_column + len(span.name))
            diagnostics.append(types.Diagnostic(
                range=types.Range(start=start, end=end), message=outcome.summary(), source="greencoder",
                severity=types.DiagnosticSeverity.Information if not outcome.error else types.DiagnosticSeverity.Warning))
        self.lsp.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics))


def register(server: GreencoderServer) -> None:
    """Attach the LSP handlers to `server.lsp` (pygls: features by decorator)."""
    lsp = server.lsp

    @lsp.feature(types.INITIALIZE)
    def initialize(params: types.InitializeParams) -> None:
        server.loop = asyncio.get_running_loop()
        server.apply_settings(params.initialization_options)

    @lsp.feature(types.INITIALIZED)
    async def initialized(params: types.InitializedParams) -> None:
        capabilities = lsp.client_capabilities
        if capabilities and capabilities.workspace and capabilities.workspace.configuration:
            try:
                answer = await asyncio.wait_for(lsp.workspace_configuration_async(
                    types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])), timeout=5)
                if answer and answer[0]:
                    server.apply_settings(answer[0])
            except (asyncio.TimeoutError, Exception) as exc:  # noqa: BLE001 - a client's odd answer must not stop us
                logger.warning("workspace/configuration failed: %s", exc)
        server.start_loading()

    @lsp.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(params: types.DidChangeConfigurationParams) -> None:
        values = params.settings
        if not values:
            capabilities = lsp.client_capabilities
            if capabilities and capabilities.workspace and capabilities.workspace.configuration:
                answer = await lsp.workspace_configuration_async(
                    types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)]))
                values = answer[0] if answer else None
        server.apply_settings(values)

    @lsp.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        server.completions.cancel(params.text_document.uri)

    @lsp.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", ":", "{"]))
    async def completion(params: types.CompletionParams) -> types.CompletionList:
        suggestion, position = await server.suggestion(params.text_document.uri, params.position)
        if suggestion is None:
            return types.CompletionList(is_incomplete=True, items=[])
        label = next((line.strip() for line in suggestion.text.splitlines() if line.strip()), suggestion.text)
        item = types.CompletionItem(
            label=label[:80],
            kind=types.CompletionItemKind.Snippet,
            detail=suggestion.detail(),
            documentation=server.documentation(suggestion.text),
            text_edit=types.TextEdit(range=types.Range(start=position, end=position), new_text=suggestion.text),
            filter_text=label[:80],
            data=suggestion.data(),
        )
        return types.CompletionList(is_incomplete=True, items=[item])

    @lsp.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
    async def inline_completion(params: types.InlineCompletionParams) -> types.InlineCompletionList:
        suggestion, position = await server.suggestion(params.text_document.uri, params.position)
        if suggestion is None:
            return types.InlineCompletionList(items=[])
        return types.InlineCompletionList(items=[types.InlineCompletionItem(
            insert_text=suggestion.text, range=types.Range(start=position, end=position))])

    @lsp.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
        code_action_kinds=[types.CodeActionKind.Empty, types.CodeActionKind.QuickFix]))
    def code_action(params: types.CodeActionParams) -> list[types.CodeAction]:
        found = server.function_of(params.text_document.uri, params.range.start.line)
        if found is None:
            return []
        document, language, span = found
        if span.call:
            title = f"Measure energy of `{span.name}`"
            return [types.CodeAction(title=title, kind=types.CodeActionKind.Empty, command=types.Command(
                title=title, command=MEASURE_COMMAND, arguments=[params.text_document.uri, span.name]))]
        line, text = bench_template(span, document.source, language)
        position = types.Position(line=line, character=0)
        return [types.CodeAction(
            title=f"Add an energy benchmark call for `{span.name}`", kind=types.CodeActionKind.QuickFix,
            edit=types.WorkspaceEdit(changes={params.text_document.uri: [
                types.TextEdit(range=types.Range(start=position, end=position), new_text=text)]}))]

    @lsp.command(MEASURE_COMMAND)
    async def measure_energy(*arguments) -> dict:
        """Arguments: [uri, function name] (from the code action) or [uri, {line, character}] (an editor command)."""
        args = list(arguments)
        if not args or not isinstance(args[0], str):
            raise InputError(f"{MEASURE_COMMAND} needs [uri, function name or position]")
        uri, target = args[0], args[1] if len(args) > 1 else None
        if isinstance(target, str):
            return await server.start_measurement(uri, None, target)
        line = getattr(target, "line", None)
        if line is None and isinstance(target, dict):
            line = target.get("line")
        return await server.start_measurement(uri, int(line or 0), None)

    @lsp.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def progress_cancel(params: types.WorkDoneProgressCancelParams) -> None:
        event = server.measure_cancels.get(str(params.token))
        if event is not None:
            event.set()

    @lsp.feature(types.TEXT_DOCUMENT_HOVER)
    def hover(params: types.HoverParams) -> types.Hover | None:
        found = server.function_of(params.text_document.uri, params.position.line)
        if found is None:
            return None
        span = found[2]
        outcome = server.measurements.results.get((params.text_document.uri, span.name))
        on_name = params.position.line == span.name_line and span.name_column <= params.position.character <= span.name_column + len(span.name)
        if outcome is None or not on_name:
            return None
        return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=outcome.hover()))

    @lsp.feature(ENERGY_REPORT)
    def energy_report(params) -> dict:
        return {**server.ledger.report(), "model": server.host.state}


def build_server(defaults: ServerSettings | None = None) -> GreencoderServer:
    return GreencoderServer(defaults or ServerSettings())
