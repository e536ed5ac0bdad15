"""Measure-energy orchestration: a thread per measurement, its progress, and publishing the result.

`MeasureService` (measure_action) runs the protocol; this service is what the LSP handlers talk
to: it starts the measurement on a thread of its own (never the completion worker), reports
work-done progress the user can cancel (cancellation goes through the server's `Cancellations`),
and publishes the result as an Information diagnostic whose `data` carries the numbers.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING

from lsprotocol import types

from greencoder.core.errors import InputError
from greencoder.core.languages import Language
from greencoder.server.cancellation import CANCELLED
from greencoder.server.documents import document_key
from greencoder.core.source import FunctionSpan
from greencoder.server.measure_action import MeasureService, MeasurementOutcome

if TYPE_CHECKING:
    from greencoder.server.server import GreencoderLanguageServer

logger = logging.getLogger("greencoder.server")


class MeasurementOrchestrator:
    def __init__(self, server: "GreencoderLanguageServer"):
        self.server = server
        self.runner = MeasureService(server.ledger, lambda: server.settings, warn=server.warn)

    async def start(self, uri: str, source: str, language: Language, span: FunctionSpan) -> dict:
        """Start measuring `span` in the background; returns at once with the progress token."""
        if not span.call:
            raise InputError(f"{span.name} has no workload: add a 'greencoder: bench <call>' comment (code action "
                             f"'Add an energy benchmark call for `{span.name}`')")
        server = self.server
        token = str(uuid.uuid4())
        cancel = server.cancellations.begin(("measurement", token))
        loop = server.loop
        try:
            await server.work_done_progress.create_async(token)
            server.work_done_progress.begin(token, types.WorkDoneProgressBegin(
                title=f"Measuring energy of {span.name}", cancellable=True, message=span.call, percentage=0))
        except Exception as exc:  # noqa: BLE001 - a client without progress UI still gets the measurement
            logger.info("no progress for the measurement: %s", exc)

        def progress(stage: str, done: int, total: int) -> None:
            percentage = int(100 * done / total) if total else None
            message = f"{stage} {done}/{total}" if total else stage
            loop.call_soon_threadsafe(self._report, token, message, percentage)

        def work() -> None:
            try:
                outcome = self.runner.run(document_key(uri), source, language, span.name, span.call, progress, cancel)
            finally:
                server.cancellations.end(("measurement", token), cancel)
            loop.call_soon_threadsafe(lambda: loop.create_task(self._finish(token, uri, outcome)))

        threading.Thread(target=work, name=f"greencoder-measure-{span.name}", daemon=True).start()
        return {"started": True, "function": span.name, "call": span.call, "token": token}

    def cancel(self, token: str) -> None:
        self.server.cancellations.cancel(("measurement", token), CANCELLED)

    def _report(self, token: str, message: str, percentage: int | None) -> None:
        if token in self.server.work_done_progress.tokens:
            self.server.work_done_progress.report(token, types.WorkDoneProgressReport(message=message, percentage=percentage))

    async def _finish(self, token: str, uri: str, outcome: MeasurementOutcome) -> None:
        if token in self.server.work_done_progress.tokens:
            self.server.work_done_progress.end(token, types.WorkDoneProgressEnd(message=outcome.summary()))
        if outcome.error and outcome.error != CANCELLED:
            self.server.show(outcome.summary(), types.MessageType.Warning)
        await self.publish(uri)

    def outcome(self, uri: str, function: str) -> MeasurementOutcome | None:
        return self.runner.results.get((document_key(uri), function))

    async def publish(self, uri: str) -> None:
        """The document's measurement diagnostics, on the functions' names where they are now."""
        server = self.server
        found = server.open_document(uri)
        if found is None:
            return
        document, language = found
        spans = {span.name: span for span in await server.functions(document, language)}
        diagnostics = []
        for (key, function), outcome in list(self.runner.results.items()):
            span = spans.get(function)
            if key != document_key(uri) or outcome.error == CANCELLED or span is None:
                continue
            start = types.Position(line=span.name_line, character=span.name_column)
            end = types.Position(line=span.name_line, character=span.name_column + len(span.name))
            diagnostics.append(types.Diagnostic(
                range=types.Range(start=start, end=end), message=outcome.summary(), source="greencoder",
                severity=types.DiagnosticSeverity.Information if not outcome.error else types.DiagnosticSeverity.Warning,
                data=outcome.data()))
        server.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics))
