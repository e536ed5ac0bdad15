"""A real OpenAI-compatible server for tests: `transformers serve` on a free loopback port, pinned
to a local model folder, started as a child process and ready when /health and /v1/models answer;
and a loopback proxy in front of it that can die after N completions (a dead endpoint mid-run)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

READY_SECONDS = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def transformers_serve(model_dir: Path, log_path: Path):
    """Yield the base URL (http://127.0.0.1:PORT/v1) of `transformers serve MODEL_DIR` on CPU, one thread."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_VERBOSITY": "error"}
    command = [sys.executable, "-m", "transformers.cli.transformers", "serve", str(model_dir), "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu", "--log-level", "error"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_SECONDS
        while not (_answers(base + "/health") and _answers(base + "/v1/models")):
            try:  # the poll's pause is a wait on the child, so a server that dies is seen at once
                process.wait(timeout=0.2)
                raise RuntimeError(f"transformers serve exited ({process.returncode}): {log_path.read_text()[-2000:]}")
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"transformers serve not ready in {READY_SECONDS} s: {log_path.read_text()[-2000:]}")
        yield base + "/v1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class DyingProxy:
    """Forwards to `upstream`; after `completions` answered completions it stops listening (clients then
    get connection refused: the endpoint is dead). A new proxy may later take the same port."""

    def __init__(self, upstream: str, port: int, completions: int | None = None):
        self.upstream = upstream.rstrip("/").removesuffix("/v1")
        self.limit = completions
        self.answered = 0
        self.dead = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self, method: str) -> None:
                completion = method == "POST" and self.path.endswith("/completions")
                if completion and proxy.limit is not None and proxy.answered >= proxy.limit:
                    self.close_connection = True  # dying: hang up without an answer
                    return
                data = self.rfile.read(int(self.headers.get("Content-Length", 0))) if method == "POST" else None
                request = urllib.request.Request(proxy.upstream + self.path, data=data, method=method,
                                                 headers={"Content-Type": "application/json"})
                try:
                    with urllib.request.urlopen(request, timeout=300) as response:
                        status, payload = response.status, response.read()
                except urllib.error.HTTPError as exc:
                    status, payload = exc.code, exc.read()
                if completion:
                    proxy.answered += 1
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                if completion and proxy.limit is not None and proxy.answered >= proxy.limit:
                    threading.Thread(target=proxy.stop, daemon=True).start()

            def do_GET(self):
                self._forward("GET")

            def do_POST(self):
                self._forward("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if not self.dead.is_set():
            self.server.shutdown()
            self.server.server_close()
            self.dead.set()


def post_json(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read())
