"""A real HTTP server on loopback that plays "the web" for fetch and pipeline tests.

Usage::

    def test_something(web_server):
        web_server.add("/article", "<html>...</html>")
        web_server.redirect("/old", "/article")
        page = fetch_url(web_server.url("/old"), allowed_hosts=[web_server.host])
        assert web_server.requests[0][1] == "/old"

Routes not registered answer 404. Besides fixed bodies the server can stream an
endless body (``add_endless``) and drip a body slowly (``add_slow``) for size and
timeout tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ingestion.lib.scoring import corpus_available, load_corpus_html, load_ground_truth


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str | None = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    # Streaming behaviour: None sends ``body`` at once; otherwise ``body`` is sent
    # ``repeat`` times (0 = until the client hangs up), ``interval`` seconds apart.
    repeat: int | None = None
    interval: float = 0.0
    content_length: bool = True


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - keep the test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - the http.server naming convention
        self._serve()

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(send_body=False)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._serve()

    def _serve(self, *, send_body: bool = True) -> None:
        fake = self.server.fake
        fake.requests.append((self.command, self.path, {k: v for k, v in self.headers.items()}))
        route = fake.routes.get(self.path) or fake.routes.get(self.path.split("?", 1)[0])
        if route is None:
            route = Route(body=b"<html><body>not found</body></html>", status=404)
        if route.delay and fake.stopping.wait(route.delay):
            return
        try:
            self.send_response(route.status)
            if route.content_type is not None:
                self.send_header("Content-Type", route.content_type)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.repeat is None and route.content_length:
                self.send_header("Content-Length", str(len(route.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if not send_body:
                return
            if route.repeat is None:
                self.wfile.write(route.body)
                return
            sent = 0
            while route.repeat == 0 or sent < route.repeat:
                self.wfile.write(route.body)
                self.wfile.flush()
                sent += 1
                if route.interval and fake.stopping.wait(route.interval):
                    return
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass  # the client gave up, which is what size and timeout tests expect
        finally:
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Slow and endless handlers must not hold up the end of a test.
    block_on_close = False
    fake: FakeWeb


class FakeWeb:
    """Routes and recorded requests of one loopback HTTP server."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self.port: int = self._server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}{path}"

    def add(
        self,
        path: str,
        body: bytes | str = b"",
        status: int = 200,
        content_type: str | None = "text/html; charset=utf-8",
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> str:
        """Serve ``body`` at ``path`` (``delay`` seconds before the headers). Returns the URL."""
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.routes[path] = Route(
            body=data, status=status, content_type=content_type, headers=headers or {}, delay=delay
        )
        return self.url(path)

    def redirect(self, path: str, location: str, status: int = 302) -> str:
        """Answer ``path`` with a redirect to ``location`` (absolute or relative). Returns the URL."""
        self.routes[path] = Route(status=status, content_type=None, headers={"Location": location})
        return self.url(path)

    def add_endless(
        self, path: str, chunk: bytes = b"<p>" + b"x" * 65536 + b"</p>", content_type: str = "text/html"
    ) -> str:
        """A body that never ends (no Content-Length): the client must stop reading by itself."""
        self.routes[path] = Route(body=chunk, content_type=content_type, repeat=0)
        return self.url(path)

    def add_slow(
        self,
        path: str,
        chunk: bytes = b"<p>drip</p>",
        interval: float = 0.2,
        repeat: int = 0,
        content_type: str = "text/html",
    ) -> str:
        """A body dripped ``chunk`` by ``chunk`` every ``interval`` seconds (``repeat=0``: forever)."""
        self.routes[path] = Route(body=chunk, content_type=content_type, repeat=repeat, interval=interval)
        return self.url(path)

    def add_corpus_page(self, path: str, page_id: str) -> dict[str, str]:
        """Serve a saved corpus page at ``path``; returns its ground truth (``articleBody``, ``url``)."""
        if not corpus_available():
            pytest.skip("extraction corpus not found (set KB_CORPUS_DIR or put it at ../shared/corpus)")
        self.add(path, load_corpus_html(page_id))
        return load_ground_truth()[page_id]

    def paths_requested(self) -> list[str]:
        return [path for _method, path, _headers in self.requests]

    def close(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def web_server() -> Iterator[FakeWeb]:
    """A fresh loopback web server for one test."""
    server = FakeWeb()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def web_server_factory() -> Iterator[Callable[[], FakeWeb]]:
    """Start extra loopback web servers (e.g. a second host for redirect tests)."""
    servers: list[FakeWeb] = []

    def start() -> FakeWeb:
        server = FakeWeb()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
