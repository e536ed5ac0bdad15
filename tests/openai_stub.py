"""A scriptable OpenAI-compatible HTTP stub on loopback, for protocol-level behaviour (retries,
backoff, timeouts, refusals, concurrency, what is sent). End-to-end tests use a real server
(`transformers serve`, tests/test_backends_endpoint.py)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Reply = tuple[int, dict, dict]  # status, JSON body, extra headers
Script = Callable[[dict, int], "Reply | None"]
"""(request body, request number) -> reply; None: hold the request until the stub stops (a hang)."""


def completion(text: str, finish: str = "stop", prompt_tokens: int = 5, completion_tokens: int = 3, **choice) -> Reply:
    return 200, {"id": "x", "object": "text_completion", "model": "stub-model",
                 "choices": [{"index": 0, "text": text, "finish_reason": finish, **choice}],
                 "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                           "total_tokens": prompt_tokens + completion_tokens}}, {}


class Stub:
    def __init__(self, script: Script, models: tuple[str, ...] = ("stub-model",)):
        self.script = script
        self.models = models
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.release = threading.Event()
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict, headers: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                stub.headers.append(dict(self.headers))
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in stub.models]}, {})
                else:
                    self._send(404, {"error": "no such route"}, {})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with stub._lock:
                    stub.requests.append(body)
                    stub.headers.append(dict(self.headers))
                    number = len(stub.requests)
                    stub.in_flight += 1
                    stub.max_in_flight = max(stub.max_in_flight, stub.in_flight)
                try:
                    reply = stub.script(body, number)
                    if reply is None:
                        stub.release.wait()
                        return
                    self._send(*reply)
                finally:
                    with stub._lock:
                        stub.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> Stub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
