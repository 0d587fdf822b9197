"""The offline demo: a small bundled sample site, its categories, and a loopback server for it.

``site/`` holds a handful of original articles (each names its intended
category in ``<meta property="article:section">``) and an index page;
``categories.json`` holds categories whose keywords match them, so the local
AI backend files every article where a reader would.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DEMO_DIR = Path(__file__).resolve().parent
SITE_DIR = DEMO_DIR / "site"
CATEGORIES_FILE = DEMO_DIR / "categories.json"

_SECTION_RE = re.compile(r'<meta\s+property="article:section"\s+content="([^"]+)"')


@dataclass(frozen=True)
class DemoArticle:
    path: str  # URL path on the demo server, e.g. "/cooking/crisp-roast-potatoes.html"
    category: str  # the category the article was written for


def demo_categories() -> list[dict[str, Any]]:
    """The demo categories: name, description and keywords."""
    return json.loads(CATEGORIES_FILE.read_text(encoding="utf-8"))


def demo_articles() -> list[DemoArticle]:
    """Every article of the sample site, in a stable order (the index page itself is not one)."""
    articles = []
    for file in sorted(SITE_DIR.glob("*/*.html")):
        match = _SECTION_RE.search(file.read_text(encoding="utf-8"))
        articles.append(
            DemoArticle(path="/" + file.relative_to(SITE_DIR).as_posix(), category=match.group(1) if match else "")
        )
    return articles


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        # The demo prints the pipeline's progress; a line per fetch would drown it.
        pass


class DemoSiteServer:
    """The sample site served over HTTP on ``host:port`` by a threaded server in a daemon thread."""

    def __init__(self, *, port: int, host: str = "127.0.0.1") -> None:
        handler = partial(_QuietHandler, directory=str(SITE_DIR))
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, path: str = "/") -> str:
        return f"http://{self.netloc}{path}"

    def start(self) -> DemoSiteServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
