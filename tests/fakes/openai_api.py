"""A loopback HTTP server speaking the OpenAI Chat Completions wire format.

Fixture ``openai_server``. It answers ``POST /v1/chat/completions`` from the
request itself, so tests need no canned replies:

* ``mode = "schema"``: like OpenAI. A json_schema request gets JSON whose
  category is the first enum value found in the prompt's text (else
  "Uncategorized") and whose tags are words of the article.
* ``mode = "no_schema"``: like vLLM/llama.cpp builds without structured output.
  A json_schema request is refused with 400; other requests get the JSON
  wrapped in a ```json fence. The category is the first of ``.categories``
  found in the text (there is no enum to read).

``.requests`` records every request (path, headers, body, time).
``.rate_limit_next(n, retry_after=1)`` answers the next n calls with 429;
``.fail_next(n, status=500)`` with a server error; ``.reply_content`` forces the
message content; ``.latency`` delays every answer.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

_WORD_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{4,}")
_STOP = {"about", "there", "their", "which", "these", "those", "would", "could", "should", "article", "title"}


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    time: float = field(default_factory=time.monotonic)

    @property
    def response_format_type(self) -> str | None:
        fmt = self.body.get("response_format")
        return fmt.get("type") if isinstance(fmt, dict) else None

    @property
    def user_content(self) -> str:
        return "\n".join(m.get("content", "") for m in self.body.get("messages", []) if m.get("role") == "user")

    @property
    def system_content(self) -> str:
        return "\n".join(m.get("content", "") for m in self.body.get("messages", []) if m.get("role") == "system")


class FakeOpenAI:
    def __init__(self) -> None:
        self.mode = "schema"
        self.latency = 0.0
        self.categories: list[str] = []
        self.reply_content: str | None = None
        self.requests: list[RecordedRequest] = []
        self._rate_limited: list[tuple[float | None, float | None]] = []
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def rate_limit_next(self, n: int, retry_after: float | None = 1, retry_after_ms: float | None = None) -> None:
        """The next ``n`` calls get 429 with ``Retry-After`` (and/or ``retry-after-ms``) headers."""
        with self._lock:
            self._rate_limited += [(retry_after, retry_after_ms)] * n

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._failures += [status] * n

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- answers -----------------------------------------------------------------------------------------------

    def _answer(self, request: RecordedRequest) -> tuple[int, dict[str, str], dict[str, Any]]:
        with self._lock:
            rate_limit = self._rate_limited.pop(0) if self._rate_limited else None
            failure = self._failures.pop(0) if self._failures and rate_limit is None else None
        if rate_limit is not None:
            seconds, millis = rate_limit
            headers = {}
            if seconds is not None:
                headers["Retry-After"] = f"{seconds:g}"
            if millis is not None:
                headers["retry-after-ms"] = f"{millis:g}"
            return 429, headers, _error("Rate limit reached for requests", "requests", "rate_limit_exceeded")
        if failure is not None:
            return failure, {}, _error("The server had an error while processing your request.", "server_error")
        if request.path != "/v1/chat/completions":
            return 404, {}, _error(f"Unknown path {request.path}", "invalid_request_error")
        fmt = request.response_format_type
        if self.mode == "no_schema" and fmt == "json_schema":
            return (
                400,
                {},
                _error(
                    "response_format type 'json_schema' is not supported by this server",
                    "invalid_request_error",
                    param="response_format",
                ),
            )
        if self.reply_content is not None:
            content = self.reply_content
        else:
            data = self._analysis(request)
            content = json.dumps(data)
            if self.mode == "no_schema":
                content = f"Here is the analysis:\n```json\n{json.dumps(data, indent=2)}\n```"
        return 200, {}, _completion(request.body.get("model", "fake-model"), content)

    def _analysis(self, request: RecordedRequest) -> dict[str, Any]:
        text = request.user_content
        article = text.split("Article:", 1)[-1]
        candidates = self.categories
        fmt = request.body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            schema = fmt["json_schema"]["schema"]
            candidates = schema["properties"]["category"]["enum"]
        category = next(
            (c for c in candidates if c != "Uncategorized" and re.search(re.escape(c), article, re.IGNORECASE)),
            "Uncategorized",
        )
        tags: list[str] = []
        for word in _WORD_RE.findall(article):
            word = word.lower()
            if word not in _STOP and word not in tags:
                tags.append(word)
            if len(tags) == 4:
                break
        first_sentence = re.split(r"(?<=[.!?])\s", article.strip(), maxsplit=1)[0]
        return {"summary": first_sentence[:800] or "Empty.", "category": category, "tags": tags, "language": "en"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else Nagle + delayed ACK add ~40 ms to every keep-alive request

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except json.JSONDecodeError:
                    body = {"_raw": raw.decode(errors="replace")}
                request = RecordedRequest("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with fake._lock:
                    fake.requests.append(request)
                if fake.latency:
                    time.sleep(fake.latency)
                status, headers, payload = fake._answer(request)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test); nothing to answer

        return Handler


def _error(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _completion(model: str, content: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake{int(time.time() * 1000)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    }


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    yield server
    server.close()
