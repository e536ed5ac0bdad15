"""The JSON-RPC/LSP rules pygls leaves loose, enforced in one place: the server's `protocol_cls`.

What `GreencoderProtocol` adds to pygls' `LanguageServerProtocol`:
- every request gets an answer: one whose params cannot be read gets -32602 naming the field, a
  message that is not JSON -32700 (id null), one without `"jsonrpc": "2.0"` -32600;
- the lifecycle: requests before `initialize` get -32002 (notifications then are dropped, except
  `exit`), a second `initialize` and requests after `shutdown` get -32600, and `exit` ends the
  transport with status 0 after `shutdown`, else 1 (pygls swallows the status);
- strict params: an integer given as `1.5`, `"3"` or `true`, a string given as a number, a boolean
  given as a string, are invalid params rather than silently coerced (cattrs' default);
- error responses carry one line and no traceback: a handler's `InputError` becomes -32602 with its
  message, another `GreencoderError` -32603 with its message, anything else -32603 naming the
  exception (the traceback goes to the log at debug level only);
- cancellation: `$/cancelRequest` cancels the handler's task, and the request is answered -32800; a
  handler that learns it was superseded raises `pygls.exceptions.JsonRpcRequestCancelled` (or
  `asyncio.CancelledError`) for the same answer. A cancel for a request already answered is normal
  and logged at debug level, not as a warning per cancel.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import cattrs
from cattrs.v import format_exception
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcParseError,
    JsonRpcRequestCancelled,
    JsonRpcServerNotInitialized,
)
from pygls.protocol import LanguageServerProtocol, lsp_method
from pygls.protocol.json_rpc import (
    JsonRPCNotification,
    JsonRPCRequestMessage,
    JsonRPCResponseMessage,
)

from greencoder.core.errors import GreencoderError, InputError

logger = logging.getLogger("greencoder.server.protocol")

QUIET_CODES = {JsonRpcRequestCancelled.CODE, -32801}  # cancelled, content modified: routine, not errors


def _strict(kind: type, accepts: tuple[type, ...], name: str) -> Callable[[Any, type], Any]:
    def structure(value: Any, _: type) -> Any:
        if isinstance(value, accepts) and not (kind is not bool and isinstance(value, bool)):
            return kind(value) if kind is float else value
        raise TypeError(f"expected {name}, got {json.dumps(value)[:40]}")
    return structure


def make_strict(converter: cattrs.Converter) -> cattrs.Converter:
    """Structure JSON scalars as they are: no `int(1.5)`, `int("3")`, `str(5)` or `bool("false")`."""
    converter.register_structure_hook(int, _strict(int, (int,), "an integer"))
    converter.register_structure_hook(float, _strict(float, (int, float), "a number"))
    converter.register_structure_hook(str, _strict(str, (str,), "a string"))
    converter.register_structure_hook(bool, _strict(bool, (bool,), "a boolean"))
    return converter


def one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip()) or "error"


def _describe(error: Exception) -> str:
    """cattrs' errors as one line naming the fields: 'expected an integer, got 1.5 @ $.position.line'."""
    if isinstance(error, (cattrs.ClassValidationError, cattrs.IterableValidationError)):
        def describe(exc: BaseException, kind: Any) -> str:  # our strict hooks' messages say it best
            return str(exc) if str(exc).startswith("expected ") else format_exception(exc, kind)
        return "; ".join(cattrs.transform_error(error, path="$", format_exception=describe))
    return one_line(str(error)) or type(error).__name__


class GreencoderProtocol(LanguageServerProtocol):
    """pygls' protocol with the rules above; pass it as `LanguageServer(..., protocol_cls=...)`."""

    def __init__(self, server, converter: cattrs.Converter):
        self.exit_code: int | None = None
        self._initialize_received = False
        self._shutdown_received = False
        self._exit_listeners: list[Callable[[int], None]] = []
        super().__init__(server, make_strict(converter))  # after: pygls reads every attribute here

    # ------------------------------------------------------------------ receiving

    def on_exit(self, listener: Callable[[int], None]) -> None:
        """Call `listener(status)` when the client sends `exit` (the transport stops there)."""
        self._exit_listeners.append(listener)

    def receive(self, body: bytes) -> None:
        """Handle one message body as the transport framed it; every request gets an answer."""
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:
            logger.warning("a message that is not JSON: %s", one_line(str(exc)))
            self.send_error(None, JsonRpcParseError(f"Parse error: {one_line(str(exc))}"))
            return
        if not isinstance(data, dict):
            logger.warning("a message that is not a JSON object")
            self.send_error(None, JsonRpcInvalidRequest("Invalid request: a message must be a JSON object "
                                                        "(LSP has no batches)"))
            return
        msg_id = data.get("id")
        method = data.get("method")
        request = "method" in data and "id" in data
        response = "id" in data and "method" not in data
        problem = None
        if request and (not isinstance(msg_id, (int, str)) or isinstance(msg_id, bool)):
            problem, msg_id = f"id must be an integer or a string, got {json.dumps(msg_id)[:40]}", None
        elif data.get("jsonrpc") != self.VERSION:
            problem = '"jsonrpc" must be "2.0"'
        elif "method" in data and not isinstance(method, str):
            problem = '"method" must be a string'
        if problem is not None:
            logger.warning("invalid message: %s", problem)
            self._refuse(request, response, msg_id, JsonRpcInvalidRequest(f"Invalid request: {problem}"))
            return
        try:
            message = self.structure_message(data)
        except JsonRpcException as error:
            logger.warning("%s: %s", method or f"the answer to {msg_id}", error.message)
            self._refuse(request, response, msg_id, error)
            return
        try:
            self.handle_message(message)
        except Exception as exc:  # noqa: BLE001 - one bad message must never end the server
            self._refuse(request, False, msg_id, self._error_for(exc, msg_id))

    def _refuse(self, request: bool, response: bool, msg_id, error: JsonRpcException) -> None:
        """Answer a request with `error`; fail our own request that a bad response answered (so
        nothing awaits it forever); drop a notification."""
        if request:
            self.send_error(msg_id, error)
        elif response and (future := self._request_futures.pop(msg_id, None)) is not None:
            self._result_types.pop(msg_id, None)
            future.set_exception(error)

    def structure_message(self, data: dict[str, Any]):
        """pygls' structuring, minus the tracebacks: a field that cannot be read is named in one line."""
        if "jsonrpc" not in data:
            return data
        try:
            if "id" in data and "error" in data:
                return self._converter.structure(data, types.ResponseErrorMessage)
            if "id" in data and "method" in data:
                kind = self.get_message_type(data["method"]) or JsonRPCRequestMessage
            elif "id" in data:
                kind = self._result_types.pop(data["id"], None) or JsonRPCResponseMessage
            else:
                kind = self.get_message_type(data.get("method", "")) or JsonRPCNotification
            return self._converter.structure(data, kind)
        except (cattrs.BaseValidationError, TypeError, ValueError, KeyError) as exc:
            raise JsonRpcInvalidParams(f"Invalid params: {_describe(exc)}") from exc

    def handle_message(self, message) -> None:
        """The lifecycle rules, then pygls' dispatch."""
        method = getattr(message, "method", None)
        request = method is not None and hasattr(message, "id")
        if method == types.EXIT:
            super().handle_message(message)
            return
        if method is None:  # a response to one of our requests
            super().handle_message(message)
            return
        problem = None
        if not self._initialize_received and method != types.INITIALIZE:
            problem = JsonRpcServerNotInitialized(f"Server not initialized: {method} before initialize")
        elif method == types.INITIALIZE and self._initialize_received and request:
            problem = JsonRpcInvalidRequest("Invalid request: initialize was already received")
        elif self._shutdown_received:
            problem = JsonRpcInvalidRequest(f"Invalid request: {method} after shutdown")
        if problem is not None:
            if request:
                self.send_error(message.id, problem)
            else:
                logger.debug("dropped notification: %s", problem.message)
            return
        if request and method == types.INITIALIZE:
            self._initialize_received = True
        if request and method == types.SHUTDOWN:
            self._shutdown_received = True
        super().handle_message(message)

    # ------------------------------------------------------------------ answering

    def send_error(self, msg_id, error: JsonRpcException) -> None:
        """An error response; id null where the request's id could not be read (JSON-RPC 2.0)."""
        if msg_id is None:  # lsprotocol leaves a None id out, JSON-RPC wants `"id": null`
            self._send_data({"jsonrpc": self.VERSION, "id": None,
                             "error": {"code": error.code, "message": one_line(error.message)}})
        else:
            self._send_response(msg_id, error=error.to_response_error())

    def _send_response(self, msg_id, result=None, error: types.ResponseError | None = None) -> None:
        if error is not None:  # one line, and no traceback (pygls puts one in `data`)
            data = None if isinstance(error.data, dict) and "traceback" in error.data else error.data
            error = types.ResponseError(code=error.code, message=one_line(error.message), data=data)
        super()._send_response(msg_id, result, error)

    def _send_handler_result(self, future: Future, *, msg_id) -> None:
        self._request_futures.pop(msg_id, None)
        if future.cancelled():
            error: JsonRpcException = JsonRpcRequestCancelled(f"Request {msg_id} was cancelled")
        elif (exc := future.exception()) is None:
            self._send_response(msg_id, result=future.result())
            return
        else:
            error = self._error_for(exc, msg_id)
        self._send_response(msg_id, error=error.to_response_error())

    @staticmethod
    def _error_for(exc: BaseException, msg_id) -> JsonRpcException:
        if isinstance(exc, JsonRpcException):
            log = logger.debug if exc.code in QUIET_CODES else logger.info
            log("request %s: %s", msg_id, exc.message)
            return exc
        if isinstance(exc, InputError):
            logger.info("request %s: %s", msg_id, exc)
            return JsonRpcInvalidParams(one_line(str(exc)))
        if isinstance(exc, GreencoderError):
            logger.warning("request %s: %s", msg_id, exc)
            return JsonRpcInternalError(one_line(str(exc)))
        logger.error("request %s failed: %s: %s", msg_id, type(exc).__name__, one_line(str(exc)))
        logger.debug("request %s failed", msg_id, exc_info=exc)
        return JsonRpcInternalError(f"Internal error: {type(exc).__name__}: {one_line(str(exc))}")

    def _handle_cancel_notification(self, msg_id) -> None:
        """Cancel the request's task; it is answered -32800. A late cancel is routine (debug log)."""
        future = self._request_futures.pop(msg_id, None)
        if future is None:
            logger.debug("cancel for request %s, already answered", msg_id)
        elif not future.cancel():
            logger.debug("request %s could not be cancelled (running in a thread)", msg_id)

    # ------------------------------------------------------------------ lifecycle

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args):
        """Exit status 0 after `shutdown`, 1 without; the transport stops and returns it."""
        if (user_handler := self.fm.features.get(types.EXIT)) is not None:
            yield user_handler, args, None
        self.exit_code = 0 if self._shutdown_received else 1
        self.stop(self.exit_code)

    def stop(self, status: int) -> None:
        """End the transport with `status` (after `exit`, or when the client's end is gone)."""
        for listener in self._exit_listeners:
            listener(status)

    @property
    def shutdown_received(self) -> bool:
        return self._shutdown_received
