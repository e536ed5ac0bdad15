"""`greencoder serve`: the language server editors run.

A thin protocol layer, laid out as pygls' own examples are: `GreencoderLanguageServer` (a pygls
`LanguageServer` subclass) holds the session's state and services, and the handlers below, at module
level, turn LSP params into calls on those services and their results back into LSP types:
- completions and inline completions (`CompletionService`), at most one generation per document;
- the model, loaded in the background with work-done progress (`ModelHost`);
- "Measure energy of `f`" and "Add an energy benchmark call for `f`" code actions, the measurement
  as an Information diagnostic with its numbers in `data` and a hover (`MeasurementOrchestrator`);
- the energy ledger: `greencoder/energyReport`, and the `greencoder/ledger` notification pushed
  whenever it changes, so editors never poll;
- settings from `initializationOptions`, `workspace/configuration` and
  `workspace/didChangeConfiguration`; a bad one is shown with `window/showMessage` and the last good
  settings stay.
Cancellation of every kind goes through `Cancellations`; functions of a document are found off the
event loop, once per version (`SourceAnalysis`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import replace
from typing import Any, Callable

from lsprotocol import types
from pygls.capabilities import get_capability
from pygls.exceptions import JsonRpcInvalidParams, JsonRpcRequestCancelled
from pygls.lsp.server import LanguageServer

from greencoder import __version__
from greencoder.core.backends.base import BackendError
from greencoder.core.completion import MIN_CONTEXT_BUDGET
from greencoder.core.errors import GreencoderError, InputError
from greencoder.core.languages import Language, get_language, language_for_path
from greencoder.server.analysis import SourceAnalysis
from greencoder.server.cancellation import Cancellations
from greencoder.server.completions import CompletionService, CursorRequest, MeterChoice, Suggestion
from greencoder.server.documents import LspWorkspace, document_key
from greencoder.core.source import FunctionSpan
from greencoder.server.ledger import EnergyLedger
from greencoder.server.measuring import MeasurementOrchestrator
from greencoder.server.model_host import LoadEvent, ModelHost, endpoint_loader
from greencoder.server.protocol import GreencoderProtocol
from greencoder.server.settings import SECTION, ServerSettings, check_against_model, merge, plain

ENERGY_REPORT = "greencoder/energyReport"
LEDGER_NOTIFICATION = "greencoder/ledger"
MEASURE_COMMAND = "greencoder.measureEnergy"
ACCEPT_COMMAND = "greencoder.acceptSuggestion"
PARTIAL_ACCEPT = "greencoder/didPartiallyAcceptCompletion"
logger = logging.getLogger("greencoder.server")


class GreencoderLanguageServer(LanguageServer):
    """The session: settings, model, ledger and the services the handlers call."""

    def __init__(self, defaults: ServerSettings, endpoint=None):
        super().__init__("greencoder", __version__, protocol_cls=GreencoderProtocol)
        self.endpoint = endpoint
        """EndpointSettings when completions come from an OpenAI-compatible server (serve --endpoint)."""
        self.settings = defaults
        self.loop: asyncio.AbstractEventLoop | None = None
        self.started_loading = False
        self.cancellations = Cancellations()
        self.ledger = EnergyLedger(listener=self.ledger_changed)
        self.host = ModelHost(self._on_load_event, warn=self.warn,
                              loader=endpoint_loader(endpoint) if endpoint is not None else None)
        self._meter_choice = MeterChoice(defaults.meter, defaults.watts_per_core)
        self.completions = CompletionService(self.host, self.ledger, lambda: self.settings, lambda: self._meter_choice,
                                             self.cancellations)
        self.analysis = SourceAnalysis()
        self.measurements = MeasurementOrchestrator(self)
        self._load_progress: str | None = None
        self._load_progress_ready: asyncio.Future | None = None
        self._ledger_push_pending = False
        self._last_backend_error = ""

    # ------------------------------------------------------------------ messages and threads

    def call_soon(self, function: Callable[[], Any]) -> None:
        """Run `function` on the event loop, from any thread."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(function)
        else:
            function()

    def show(self, message: str, kind: types.MessageType = types.MessageType.Error) -> None:
        """window/showMessage from any thread."""
        self.call_soon(lambda: self.window_show_message(types.ShowMessageParams(type=kind, message=f"greencoder: {message}")))

    def warn(self, message: str) -> None:
        self.show(message, types.MessageType.Warning)

    def capability(self, field: str, default: Any = None) -> Any:
        return get_capability(self.client_capabilities, field, default) if self.client_capabilities else default

    # ------------------------------------------------------------------ ledger

    def ledger_report(self) -> dict:
        return {**self.ledger.report(), "model": self.host.state, "power": self.completions.policy().to_dict()}

    def ledger_changed(self) -> None:
        """Push the ledger to the client, at most once per turn of the event loop (from any thread)."""
        def push() -> None:
            self._ledger_push_pending = False
            self.protocol.notify(LEDGER_NOTIFICATION, self.ledger_report())

        if not self._ledger_push_pending:
            self._ledger_push_pending = True
            self.call_soon(push)

    # ------------------------------------------------------------------ settings and the model

    def apply_settings(self, values: Any) -> None:
        """Merge editor settings; reload the model if model settings changed. Bad values: showMessage."""
        try:
            updated = merge(self.settings, values)
            problem = self.context_problem(updated)
            if problem:
                raise InputError(problem)
        except GreencoderError as exc:
            self.show(f"setting ignored, keeping the previous configuration: {exc}")
            return
        if (updated.meter, updated.watts_per_core) != self._meter_choice.key:
            self._meter_choice = MeterChoice(updated.meter, updated.watts_per_core)
        self.settings = updated
        if self.started_loading:
            self.host.want(updated)

    def context_problem(self, settings: ServerSettings) -> str | None:
        """Why `settings` would leave every completion empty with the loaded model, or None."""
        runtime = self.host.runtime
        if runtime is None or self.host.loaded_settings is None or \
                self.host.loaded_settings.model_key != settings.model_key:
            return None  # checked when that model is ready
        return check_against_model(settings, runtime.context_tokens, runtime.num_virtual_tokens)

    def start_loading(self) -> None:
        self.started_loading = True
        self.host.want(self.settings)

    def _on_load_event(self, event: LoadEvent) -> None:
        logger.info("model %s: %s", event.state, event.message)
        self.call_soon(lambda: self._load_progress_event(event))

    def _load_progress_event(self, event: LoadEvent) -> None:
        """Model loading as one work-done progress from the first attempt to ready/failed."""
        self.ledger_changed()
        if event.state == "loading":
            if self._load_progress is None and self.capability("window.work_done_progress", False):
                token = self._load_progress = str(uuid.uuid4())
                self._load_progress_ready = asyncio.ensure_future(self._begin_load_progress(token, event.message))
            elif self._load_progress is not None:
                token = self._load_progress
                ready = self._load_progress_ready
                asyncio.ensure_future(self._when_ready(ready, lambda: self.work_done_progress.report(
                    token, types.WorkDoneProgressReport(message=event.message))))
            return
        token, self._load_progress = self._load_progress, None
        if token is not None:
            asyncio.ensure_future(self._when_ready(self._load_progress_ready, lambda: self.work_done_progress.end(
                token, types.WorkDoneProgressEnd(message=event.message))))
        if event.state == "failed":
            self._restore_last_good_model(event)
        elif event.state == "ready":
            problem = self.context_problem(self.settings)
            if problem:
                runtime = self.host.runtime
                room = runtime.context_tokens - runtime.num_virtual_tokens - MIN_CONTEXT_BUDGET
                self.settings = replace(self.settings, max_new_tokens=max(1, min(ServerSettings().max_new_tokens, room)))
                self.show(f"{problem}; using {self.settings.max_new_tokens}")

    def _restore_last_good_model(self, event: LoadEvent) -> None:
        """A model that failed to load does not stay in the settings: the loaded one's do."""
        good = self.host.loaded_settings
        if good is not None:
            self.settings = replace(self.settings, model=good.model, adapter=good.adapter, device=good.device,
                                    dtype=good.dtype)
            self.show(f"cannot load the model: {event.message}; still using {good.model or 'the default model'}")
        else:
            self.show(f"cannot load the model: {event.message}")

    async def _begin_load_progress(self, token: str, message: str) -> bool:
        try:
            await self.work_done_progress.create_async(token)
        except Exception as exc:  # noqa: BLE001 - a client that refuses progress still gets completions
            logger.info("work-done progress refused: %s", exc)
            return False
        self.work_done_progress.begin(token, types.WorkDoneProgressBegin(title="greencoder", message=message))
        return True

    @staticmethod
    async def _when_ready(ready: asyncio.Future | None, action: Callable[[], None]) -> None:
        if ready is not None and await ready:
            action()

    # ------------------------------------------------------------------ documents

    def open_document(self, uri: str) -> tuple[Any, Language] | None:
        """(document, language) for a document the client opened (any URI encoding), else None."""
        workspace = self.workspace
        document = workspace.open_document(uri) if isinstance(workspace, LspWorkspace) else None
        if document is None:
            return None
        language = language_of(document)
        return (document, language) if language else None

    async def functions(self, document, language: Language) -> list[FunctionSpan]:
        return await self.analysis.functions(document_key(document.uri), document.version, document.source, language)

    async def function_at(self, uri: str, line: int) -> tuple[Any, Language, FunctionSpan] | None:
        found = self.open_document(uri)
        if found is None:
            return None
        document, language = found
        span = await self.analysis.function_at(document_key(document.uri), document.version, document.source, language,
                                               line)
        return (document, language, span) if span else None

    async def suggestion(self, uri: str, position: types.Position, explicit: bool = True) -> Suggestion | None:
        found = self.open_document(uri)
        if found is None:
            return None
        document, language = found
        request = CursorRequest(document_key(uri), document.source, position.line, position.character,
                                document.position_codec, language, explicit)
        try:
            return await self.completions.suggest(request)
        except BackendError as exc:  # the endpoint is down or refuses us: the user should know, once per reason
            logger.warning("no completion for %s: %s", uri, exc)
            if str(exc) != self._last_backend_error:
                self._last_backend_error = str(exc)
                self.warn(str(exc))
            return None
        except GreencoderError as exc:
            logger.warning("no completion for %s: %s", uri, exc)
            return None

    def documentation(self, code: str) -> types.MarkupContent | str:
        """The suggestion as a code block where the client renders Markdown, else as plain text."""
        formats = self.capability("text_document.completion.completion_item.documentation_format", None) or []
        if types.MarkupKind.Markdown in formats:
            return types.MarkupContent(kind=types.MarkupKind.Markdown, value=f"```\n{code}\n```")
        return code


def language_of(document) -> Language | None:
    for guess in (lambda: get_language(document.language_id or ""), lambda: language_for_path(document.uri)):
        try:
            return guess()
        except InputError:
            continue
    return None


# ---------------------------------------------------------------------- handlers

HANDLERS: list[tuple[str, Any, Callable]] = []


def feature(method: str, options: Any = None):
    """Collect a module-level handler; `build_server` registers it on each server it builds."""
    def collect(handler: Callable) -> Callable:
        HANDLERS.append((method, options, handler))
        return handler
    return collect


@feature(types.INITIALIZE)
def initialize(ls: GreencoderLanguageServer, params: types.InitializeParams) -> None:
    ls.loop = asyncio.get_running_loop()
    current = ls.protocol._workspace  # pygls builds it just before this handler; ours follows LSP's line rules
    ls.protocol._workspace = LspWorkspace(current.root_uri, ls._text_document_sync_kind,
                                          list(current.folders.values()), current.position_encoding)
    ls.apply_settings(params.initialization_options)


@feature(types.INITIALIZED)
async def initialized(ls: GreencoderLanguageServer, params: types.InitializedParams) -> None:
    if ls.started_loading:
        return  # a repeated `initialized` loads nothing again
    from greencoder.core.languages import CPP, JAVA, PYTHON

    ls.analysis.warm_up((PYTHON, CPP, JAVA))
    if ls.capability("workspace.configuration", False):
        try:
            answer = await asyncio.wait_for(ls.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])), timeout=5)
            if answer and answer[0]:
                ls.apply_settings(answer[0])
        except (asyncio.TimeoutError, Exception) as exc:  # noqa: BLE001 - a client's odd answer must not stop us
            logger.warning("workspace/configuration failed: %s", exc)
    ls.start_loading()


@feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
async def did_change_configuration(ls: GreencoderLanguageServer, params: types.DidChangeConfigurationParams) -> None:
    values = params.settings
    if not values and ls.capability("workspace.configuration", False):
        try:
            answer = await asyncio.wait_for(ls.workspace_configuration_async(
                types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])), timeout=5)
            values = answer[0] if answer else None
        except (asyncio.TimeoutError, Exception) as exc:  # noqa: BLE001
            logger.warning("workspace/configuration failed: %s", exc)
            return
    ls.apply_settings(values)


@feature(types.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: GreencoderLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
    """An edit makes answers for the old text stale, and stops the running generation unless it typed
    what that generation is writing (see CompletionService.document_changed). Its timing teaches the debounce."""
    key = document_key(params.text_document.uri)
    ls.completions.rhythm.keystroke(key)
    document = ls.workspace.text_documents.get(key)
    ls.completions.document_changed(key, document.source if document is not None else None)


@feature(types.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: GreencoderLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
    key = document_key(params.text_document.uri)
    ls.cancellations.cancel(("generation", key))
    ls.analysis.forget(key)
    ls.completions.forget(key)


@feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(trigger_characters=[".", "(", ":", "{"]))
async def completion(ls: GreencoderLanguageServer, params: types.CompletionParams) -> types.CompletionList:
    context = params.context
    explicit = context is None or context.trigger_kind == types.CompletionTriggerKind.Invoked
    suggestion = await ls.suggestion(params.text_document.uri, params.position, explicit)
    if suggestion is None:
        return types.CompletionList(is_incomplete=True, items=[])
    label = next((line.strip() for line in suggestion.text.splitlines() if line.strip()), suggestion.text)
    position = params.position
    item = types.CompletionItem(
        label=label[:80],
        kind=types.CompletionItemKind.Snippet,
        detail=suggestion.detail(),
        documentation=ls.documentation(suggestion.text),
        text_edit=types.TextEdit(range=types.Range(start=position, end=position), new_text=suggestion.text),
        filter_text=label[:80],
        data=suggestion.data(),
        command=accept_command(suggestion),
    )
    return types.CompletionList(is_incomplete=True, items=[item])


@feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())
async def inline_completion(ls: GreencoderLanguageServer, params: types.InlineCompletionParams) -> types.InlineCompletionList:
    explicit = params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked
    suggestion = await ls.suggestion(params.text_document.uri, params.position, explicit)
    if suggestion is None:
        return types.InlineCompletionList(items=[])
    position = params.position
    return types.InlineCompletionList(items=[types.InlineCompletionItem(
        insert_text=suggestion.text, range=types.Range(start=position, end=position),
        command=accept_command(suggestion))])


def accept_command(suggestion: Suggestion) -> types.Command | None:
    """Run by the editor when the user accepts the item: [suggestion id, where the item begins in
    the suggestion] (after characters typed along, which are not the suggestion's to count)."""
    if not suggestion.id:
        return None
    return types.Command(title="greencoder: suggestion accepted", command=ACCEPT_COMMAND,
                         arguments=[suggestion.id, suggestion.start])


def _count(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise JsonRpcInvalidParams(f"{ACCEPT_COMMAND}: {what} must be a non-negative integer, got {value!r}")
    return value


def accept_suggestion(ls: GreencoderLanguageServer, *arguments) -> bool:
    """[suggestion id, item start?]: the rest of the suggestion from `item start` was accepted."""
    args = list(arguments)
    if not args or not isinstance(args[0], str):
        raise JsonRpcInvalidParams(f"{ACCEPT_COMMAND} needs [suggestion id, item start?]")
    start = _count(args[1], "item start") if len(args) > 1 else 0
    return ls.ledger.add_accept(args[0], None, start)


@feature(PARTIAL_ACCEPT)
def partially_accepted(ls: GreencoderLanguageServer, params: Any) -> None:
    """`{suggestionId, acceptedLength, itemStart?}`: the user accepted the suggestion up to
    `acceptedLength` characters from its start (a word, a line), from `itemStart` (where the item on
    screen began; 0 when not given), as Copilot's server is told of partial accepts."""
    values = plain(params) if params is not None else {}
    if not isinstance(values, dict):
        return
    suggestion_id, length, start = values.get("suggestionId"), values.get("acceptedLength"), values.get("itemStart", 0)
    numbers = (length, start)
    if isinstance(suggestion_id, str) and all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
        ls.ledger.add_accept(suggestion_id, length, start)


@feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(
    code_action_kinds=[types.CodeActionKind.Empty, types.CodeActionKind.QuickFix]))
async def code_action(ls: GreencoderLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    found = await ls.function_at(params.text_document.uri, params.range.start.line)
    if found is None:
        return []
    document, language, span = found
    if span.call:
        title = f"Measure energy of `{span.name}`"
        return [types.CodeAction(title=title, kind=types.CodeActionKind.Empty, command=types.Command(
            title=title, command=MEASURE_COMMAND, arguments=[params.text_document.uri, span.name]))]
    line, text = await ls.analysis.bench_template(document_key(document.uri), document.version, document.source, language,
                                                  span)
    position = types.Position(line=line, character=0)
    return [types.CodeAction(
        title=f"Add an energy benchmark call for `{span.name}`", kind=types.CodeActionKind.QuickFix,
        edit=types.WorkspaceEdit(changes={params.text_document.uri: [
            types.TextEdit(range=types.Range(start=position, end=position), new_text=text)]}))]


async def measure_energy(ls: GreencoderLanguageServer, *arguments) -> dict:
    """Arguments: [uri, function name] (from the code action) or [uri, {line, character}] (an editor command)."""
    args = list(arguments)
    if not args or not isinstance(args[0], str):
        raise JsonRpcInvalidParams(f"{MEASURE_COMMAND} needs [uri, function name or position]")
    uri, target = args[0], args[1] if len(args) > 1 else None
    found = ls.open_document(uri)
    if found is None:
        raise InputError(f"{uri} is not an open Python, C++ or Java document")
    document, language = found
    key, version, source = document_key(document.uri), document.version, document.source
    if isinstance(target, str):
        span = await ls.analysis.function_named(key, version, source, language, target)
    else:
        line = getattr(target, "line", None)
        if line is None and isinstance(target, dict):
            line = target.get("line")
        if line is not None and (isinstance(line, bool) or not isinstance(line, int) or line < 0):
            raise JsonRpcInvalidParams(f"{MEASURE_COMMAND}: line must be a non-negative integer, got {line!r}")
        span = await ls.analysis.function_at(key, version, source, language, line or 0)
    if span is None:
        raise InputError("no Python, C++ or Java function at the cursor")
    return await ls.measurements.start(uri, document.source, language, span)


@feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
def progress_cancel(ls: GreencoderLanguageServer, params: types.WorkDoneProgressCancelParams) -> None:
    ls.measurements.cancel(str(params.token))


@feature(types.TEXT_DOCUMENT_HOVER)
async def hover(ls: GreencoderLanguageServer, params: types.HoverParams) -> types.Hover | None:
    found = await ls.function_at(params.text_document.uri, params.position.line)
    if found is None:
        return None
    span = found[2]
    outcome = ls.measurements.outcome(params.text_document.uri, span.name)
    character = params.position.character
    on_name = params.position.line == span.name_line and span.name_column <= character <= span.name_column + len(span.name)
    if outcome is None or not on_name:
        return None
    return types.Hover(contents=types.MarkupContent(kind=types.MarkupKind.Markdown, value=outcome.hover()))


@feature(ENERGY_REPORT)
def energy_report(ls: GreencoderLanguageServer, params: Any) -> dict:
    return ls.ledger_report()


class _NoTracebackForCancelledRequests(logging.Filter):
    """pygls logs every error response with its traceback; a superseded or cancelled completion is
    routine (one per keystroke), not an error, so it is not logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], JsonRpcRequestCancelled))


def build_server(defaults: ServerSettings | None = None, endpoint=None) -> GreencoderLanguageServer:
    """A server with every handler of this module registered; with `endpoint` (EndpointSettings) its
    completions come from that OpenAI-compatible server."""
    rpc_logger = logging.getLogger("pygls.protocol.json_rpc")
    if not any(isinstance(f, _NoTracebackForCancelledRequests) for f in rpc_logger.filters):
        rpc_logger.addFilter(_NoTracebackForCancelledRequests())
    server = GreencoderLanguageServer(defaults or ServerSettings(), endpoint)
    for method, options, handler in HANDLERS:
        server.feature(method, options)(handler)
    server.command(MEASURE_COMMAND)(measure_energy)
    server.command(ACCEPT_COMMAND)(accept_suggestion)
    return server
