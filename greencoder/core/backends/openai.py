"""The OpenAI-compatible backend: `/v1/completions` of vLLM, llama.cpp's server, Ollama, TGI or
`transformers serve`, greedy (temperature 0), with the same stop sequences as local generation.

Robust against the network, not against the user's intent:
- connection errors, timeouts, 5xx, 429 and 408 are retried with exponential backoff (a server's
  Retry-After is honoured, capped); when the retries are spent the backend raises `BackendError`
  with one line naming the endpoint and what went wrong;
- at most `concurrency` requests are in flight; results are yielded as they arrive;
- a 4xx answer (other than 408/429) to one prompt is that prompt's error once the endpoint has
  accepted some request, but a `BackendError` while it has accepted none (a wrong model name or an
  unsupported field would otherwise turn every task into an error line);
- the API key comes from the environment variable the user names and is never printed or logged.

Stop sequences are also applied here: servers differ on whether the matched stop string is part
of the returned text (vLLM drops it, `transformers serve` keeps it), and the local runtime stops on
a sequence that begins in the prompt's last characters, so the cut is made the same way for all.

Soft prompts: an endpoint that accepts prompt embeddings (vLLM with `--enable-prompt-embeds`) gets
the soft prompt's virtual tokens followed by the prompt's token embeddings, as one base64-encoded
`torch.save` tensor of shape (tokens, hidden) in `prompt_embeds` (see `embeddings.py`).
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

from greencoder.core.backends.base import ELSEWHERE, BackendError, BackendInfo, PromptOutcome
from greencoder.core.errors import InputError
from greencoder.core.generation import (
    STOP_EOS,
    STOP_MAX_TOKENS,
    STOP_SEQUENCE,
    GenerationOptions,
    GenerationResult,
    cut_at_stop,
)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class EndpointSettings:
    url: str
    api_key_env: str | None = None
    model: str | None = None
    """The model name the endpoint serves (None: the first one its /v1/models lists)."""
    concurrency: int = 4
    request_timeout: float = 600.0
    """Seconds one request may take (connection and whole answer) before it counts as failed."""
    retries: int = 4
    """Further attempts after a failed one (connection error, timeout, 5xx, 429)."""
    backoff_seconds: float = 1.0
    """First wait before a retry; doubled on every further one."""
    prompt_embeds: bool = False
    """The user declares the endpoint accepts `prompt_embeds` (vLLM --enable-prompt-embeds)."""

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise InputError(f"--endpoint {self.url!r}: use an http:// or https:// URL, e.g. http://127.0.0.1:8000/v1")
        if self.concurrency < 1:
            raise InputError(f"--concurrency must be at least 1, got {self.concurrency}")
        if not self.request_timeout > 0:
            raise InputError(f"--request-timeout must be above 0 seconds, got {self.request_timeout}")
        if self.retries < 0:
            raise InputError(f"--retries must be 0 or more, got {self.retries}")

    @property
    def base(self) -> str:
        """The API root: the URL as given, with /v1 added when it is not there."""
        root = self.url.rstrip("/")
        return root if root.endswith("/v1") else root + "/v1"


class RequestRefused(Exception):
    """The endpoint answered a request with a status that retrying will not change."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class EndpointDown(Exception):
    """No usable answer after every retry (connection refused, timeouts, 5xx, 429)."""


def read_api_key(variable: str | None) -> str | None:
    """The key in environment variable `variable` (None when no variable is named)."""
    if not variable:
        return None
    value = os.environ.get(variable, "")
    if not value.strip():
        raise InputError(f"--api-key-env {variable}: that environment variable is not set or is empty")
    return value.strip()


def _error_text(raw: bytes) -> str:
    """The server's one-line reason from an error body ({"error": ...}, {"detail": ...} or text)."""
    text = raw.decode("utf-8", "replace").strip()
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return " ".join(text.split())[:300] or "(no reason given)"
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            value = body.get(key)
            if isinstance(value, dict):
                value = value.get("message", value)
            if value:
                return " ".join(str(value).split())[:300]
    return " ".join(text.split())[:300]


class HttpClient:
    """JSON over HTTP with retries and backoff (urllib: no dependency, one connection per request)."""

    def __init__(self, settings: EndpointSettings, api_key: str | None, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._sleep = sleep
        self.closed = threading.Event()

    def __repr__(self) -> str:  # never the headers: they hold the key
        return f"HttpClient({self.settings.base!r})"

    def request(self, method: str, path: str, body: dict | None = None, retries: int | None = None) -> dict:
        """The decoded JSON answer; RequestRefused for a final 4xx, EndpointDown when retries are spent."""
        url = self.settings.base + path
        data = json.dumps(body).encode() if body is not None else None
        attempts = 1 + (self.settings.retries if retries is None else retries)
        problem = ""
        for attempt in range(attempts):
            if self.closed.is_set():
                raise EndpointDown("stopped")
            wait_seconds = self.settings.backoff_seconds * 2 ** attempt
            try:
                request = urllib.request.Request(url, data=data, method=method, headers=self._headers)
                with urllib.request.urlopen(request, timeout=self.settings.request_timeout) as response:
                    payload = response.read()
                try:
                    answer = json.loads(payload)
                except json.JSONDecodeError:
                    raise RequestRefused(200, f"the answer is not JSON: {payload[:80]!r}") from None
                if not isinstance(answer, dict):
                    raise RequestRefused(200, "the answer is not a JSON object")
                return answer
            except urllib.error.HTTPError as exc:
                reason = _error_text(exc.read() or b"")
                if exc.code not in RETRY_STATUSES:
                    raise RequestRefused(exc.code, reason) from None
                problem = f"HTTP {exc.code}: {reason}"
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                if retry_after and retry_after.strip().isdigit():
                    wait_seconds = max(wait_seconds, float(retry_after))
            except urllib.error.URLError as exc:
                problem = f"cannot connect ({getattr(exc.reason, 'strerror', None) or exc.reason})"
            except (TimeoutError, OSError, HTTPException) as exc:  # timeouts, resets, a server that hung up
                problem = "no answer within the request timeout" if isinstance(exc, TimeoutError) else \
                    f"the connection failed ({type(exc).__name__}: {exc})".replace(": )", ")")
            if attempt + 1 < attempts:
                self._sleep(min(wait_seconds, MAX_BACKOFF_SECONDS))
        raise EndpointDown(f"{problem} (after {attempts} attempt{'s' if attempts > 1 else ''})")


PromptEmbedder = Callable[[str], tuple[Any, int]]
"""prompt text -> (tensor of shape (tokens, hidden) to send, number of virtual tokens in it)."""


class OpenAIBackend:
    """Greedy completions from an OpenAI-compatible endpoint, with the backend interface."""

    def __init__(self, settings: EndpointSettings, adapter: str | None = None, embedder: PromptEmbedder | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        if adapter is not None and embedder is None:
            raise BackendError(refusal(settings, adapter))
        self.settings = settings
        self.adapter = adapter
        self.embedder = embedder
        self.client = HttpClient(settings, read_api_key(settings.api_key_env), sleep)
        self._model: str | None = settings.model
        self.listed: dict = {}
        """The endpoint's /v1/models entry for the model (vLLM says `max_model_len` there)."""
        self._probed = False
        self._accepted = threading.Event()
        self._executor: ThreadPoolExecutor | None = None

    def _down(self, what: str) -> BackendError:
        return BackendError(f"endpoint {self.settings.base} {what}")

    def probe(self) -> str:
        """Check the endpoint answers and learn its model name (once); BackendError otherwise."""
        if self._probed:
            return self._model or ""
        try:
            listed = self.client.request("GET", "/models", retries=min(self.settings.retries, 2))
        except EndpointDown as exc:
            raise self._down(f"is not reachable: {exc}") from None
        except RequestRefused as exc:
            if exc.status in (401, 403):
                raise self._down(f"refused the API key ({exc})" if self.settings.api_key_env else
                                 f"needs an API key ({exc}): pass --api-key-env VAR") from None
            if self._model is None:
                raise self._down(f"does not list its models ({exc}): pass --model NAME") from None
            listed = {}
        entries = [m for m in listed.get("data", []) if isinstance(m, dict) and m.get("id")]
        if self._model is None:
            if not entries:
                raise self._down("lists no model: pass --model NAME")
            self._model = str(entries[0]["id"])
        self.listed = next((m for m in entries if m["id"] == self._model), {})
        self._probed = True
        if self.adapter is not None:
            self._probe_embeddings()
        return self._model

    def _probe_embeddings(self) -> None:
        """One 1-token request with embeddings: an endpoint that rejects the field says so now, before
        any task (one that silently ignores it cannot be told apart; see the README)."""
        try:
            self._complete("x", GenerationOptions(max_new_tokens=1))
        except RequestRefused as exc:
            raise BackendError(f"endpoint {self.settings.base} does not accept prompt embeddings for the soft prompt "
                               f"{self.adapter} ({exc}); start it with prompt embeddings enabled (vLLM: "
                               "--enable-prompt-embeds) or run soft-prompt variants with --backend local") from None
        except EndpointDown as exc:
            raise self._down(f"is not reachable: {exc}") from None

    def describe(self) -> BackendInfo:
        model = self.probe()
        return BackendInfo("openai", model, self.adapter, ELSEWHERE, self.settings.base, None, self.settings.base)

    def _body(self, prompt: str, options: GenerationOptions) -> tuple[dict, int]:
        body: dict[str, Any] = {"model": self._model, "max_tokens": options.max_new_tokens, "temperature": 0}
        stops = [s for s in options.stop_sequences if s]
        if stops:
            body["stop"] = stops
        virtual = 0
        if self.embedder is not None:
            embeds, virtual = self.embedder(prompt)
            body["prompt_embeds"] = encode_embeddings(embeds)
        else:
            body["prompt"] = prompt
        return body, virtual

    def _complete(self, prompt: str, options: GenerationOptions) -> tuple[GenerationResult, dict]:
        wall_start, cpu_start = time.perf_counter(), time.thread_time()
        body, virtual = self._body(prompt, options)
        answer = self.client.request("POST", "/completions", body)
        choices = answer.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise RequestRefused(200, "the answer has no choices")
        choice = choices[0]
        raw = choice.get("text")
        if not isinstance(raw, str):
            raise RequestRefused(200, "the answer's choice has no text")
        stops = tuple(s for s in options.stop_sequences if s)
        reach = max((len(s) for s in stops), default=1) - 1  # how far back into the prompt a stop can begin
        tail = prompt[-reach:] if reach > 0 and self.embedder is None else ""
        text, cut = cut_at_stop(raw, stops, prompt_tail=tail) if stops else (raw, False)
        finish = choice.get("finish_reason")
        usage = answer.get("usage") if isinstance(answer.get("usage"), dict) else {}
        if cut or isinstance(choice.get("stop_reason"), str):
            reason = STOP_SEQUENCE
        elif finish == "length":
            reason = STOP_MAX_TOKENS
        else:
            reason = STOP_EOS
        result = GenerationResult(
            text=text,
            prompt_tokens=max(0, int(usage["prompt_tokens"]) - virtual) if usage.get("prompt_tokens") else 0,
            virtual_tokens=virtual,
            new_tokens=int(usage.get("completion_tokens") or 0),
            wall_seconds=time.perf_counter() - wall_start,
            cpu_seconds=time.thread_time() - cpu_start,
            stop_reason=reason,
        )
        reported = {"model": answer.get("model"), "finish_reason": finish, "usage": usage}
        self._accepted.set()
        return result, reported

    def complete_one(self, prompt: str, options: GenerationOptions) -> PromptOutcome:
        """One prompt, in the calling thread (the language server's path)."""
        self.probe()
        return self._outcome(0, prompt, options)

    def _outcome(self, index: int, prompt: str, options: GenerationOptions) -> PromptOutcome:
        try:
            result, reported = self._complete(prompt, options)
        except RequestRefused as exc:
            if not self._accepted.is_set():
                raise self._down(f"refused the request ({exc})") from None
            return PromptOutcome(index, error=f"the endpoint refused this prompt ({exc})")
        except EndpointDown as exc:
            raise self._down(f"failed: {exc}") from None
        return PromptOutcome(index, result, reported=reported)

    def generate(self, prompts: Sequence[str], options: GenerationOptions) -> Iterator[PromptOutcome]:
        self.probe()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="greencoder-endpoint")
        pending = iter(range(len(prompts)))
        running: set[Future] = set()
        failure: BaseException | None = None

        def submit_next() -> None:
            index = next(pending, None)
            if index is not None:
                running.add(self._executor.submit(self._outcome, index, prompts[index], options))

        for _ in range(self.settings.concurrency):
            submit_next()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                running.discard(future)
                try:
                    outcome = future.result()
                except BackendError as exc:  # finish what is in flight (and yield it), start nothing new
                    failure = failure or exc
                    continue
                yield outcome
                if failure is None:
                    submit_next()
        if failure is not None:
            raise failure

    def close(self) -> None:
        self.client.closed.set()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def encode_embeddings(embeds) -> str:
    """A (tokens, hidden) tensor as vLLM's `prompt_embeds` expects it: torch.save, then base64."""
    import base64
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(embeds.detach().to("cpu").contiguous(), buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def refusal(settings: EndpointSettings, adapter: str) -> str:
    return (f"the soft prompt {adapter} needs an endpoint that accepts prompt embeddings, and {settings.base} was "
            "not declared to (pass --endpoint-prompt-embeds for vLLM started with --enable-prompt-embeds), "
            "or run soft-prompt variants with --backend local")
