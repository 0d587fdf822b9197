"""A loopback in-memory Notion API server.

Fixture ``notion_server``. It implements the endpoints our client uses
(``GET /v1/databases/{id}``, ``GET /v1/data_sources/{id}``, ``POST /v1/pages``,
``PATCH /v1/pages/{id}``, ``GET``/``PATCH /v1/blocks/{id}/children``,
``DELETE /v1/blocks/{id}``) and enforces what real Notion enforces and tests
care about: the bearer token, the ``Notion-Version`` header, at most 100
children per request and at most 2,000 characters per rich text object
(400 ``validation_error`` in Notion's error shape otherwise).

``.pages`` maps page id to ``{"properties", "children", "archived", ...}``;
``.requests`` records every request with a ``time.monotonic()`` timestamp;
``.rate_limit_next(n, retry_after=1)`` answers the next n requests with 429;
``.latency`` delays every answer; ``.archive_page(id)`` simulates a user
deleting the page in Notion.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

NOTION_VERSION = "2025-09-03"
RICH_TEXT_LIMIT = 2000
CHILDREN_LIMIT = 100


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any] | None
    time: float = field(default_factory=time.monotonic)
    status: int = 0


class NotionApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def _error_body(status: int, code: str, message: str) -> dict[str, Any]:
    return {"object": "error", "status": status, "code": code, "message": message}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _rich_text_violations(value: Any, path: str) -> list[str]:
    """Paths of rich text contents above Notion's 2,000 character limit, anywhere in a request body."""
    found: list[str] = []
    if isinstance(value, dict):
        text = value.get("text")
        if value.get("type", "text") == "text" and isinstance(text, dict) and isinstance(text.get("content"), str):
            if len(text["content"]) > RICH_TEXT_LIMIT:
                found.append(f"{path}.text.content.length should be ≤ `2000`, instead was `{len(text['content'])}`.")
        for key, item in value.items():
            found += _rich_text_violations(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _rich_text_violations(item, f"{path}[{index}]")
    return found


class FakeNotion:
    def __init__(self) -> None:
        self.token = "secret_test_token"
        self.database_id = str(uuid.uuid4())
        self.data_source_id = str(uuid.uuid4())
        self.latency = 0.0
        self.pages: dict[str, dict[str, Any]] = {}
        self.blocks: dict[str, dict[str, Any]] = {}
        self.requests: list[RecordedRequest] = []
        self._rate_limited: list[float] = []
        self._lock = threading.RLock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def rate_limit_next(self, n: int, retry_after: float = 1) -> None:
        with self._lock:
            self._rate_limited += [retry_after] * n

    def archive_page(self, page_id: str) -> None:
        with self._lock:
            self.pages[page_id]["archived"] = True
            self.pages[page_id]["in_trash"] = True

    def page_text(self, page_id: str) -> str:
        """The plain text of a page's blocks, one line per block."""
        lines = []
        for block in self.pages[page_id]["children"]:
            rich = block.get(block["type"], {}).get("rich_text", [])
            lines.append("".join(r["text"]["content"] for r in rich))
        return "\n".join(lines)

    def requests_to(self, method: str, path_contains: str = "") -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and path_contains in r.path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- the API -------------------------------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> tuple[int, dict[str, str], dict[str, Any]]:
        try:
            with self._lock:
                if self._rate_limited:
                    delay = self._rate_limited.pop(0)
                    raise NotionApiError(
                        429,
                        "rate_limited",
                        "You have been rate limited. Please try again in a few minutes.",
                        {"Retry-After": f"{delay:g}"},
                    )
                self._check_headers(request)
                return 200, {}, self._route(request)
        except NotionApiError as error:
            return error.status, error.headers, _error_body(error.status, error.code, error.message)

    def _check_headers(self, request: RecordedRequest) -> None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            raise NotionApiError(401, "unauthorized", "API token is invalid.")
        version = request.headers.get("notion-version")
        if not version:
            raise NotionApiError(400, "missing_version", "Notion-Version header failed validation.")
        if version != NOTION_VERSION:
            raise NotionApiError(400, "validation_error", f"This fake only speaks Notion-Version {NOTION_VERSION}.")

    def _route(self, request: RecordedRequest) -> dict[str, Any]:
        parts = request.path.strip("/").split("/")
        if parts[0] != "v1" or len(parts) < 2:
            raise NotionApiError(400, "invalid_request_url", "Invalid request URL.")
        resource, rest = parts[1], parts[2:]
        method = request.method
        if resource == "databases" and method == "GET" and len(rest) == 1:
            return self._get_database(rest[0])
        if resource == "data_sources" and method == "GET" and len(rest) == 1:
            return self._get_data_source(rest[0])
        if resource == "pages" and method == "POST" and not rest:
            return self._create_page(request.body or {})
        if resource == "pages" and method == "PATCH" and len(rest) == 1:
            return self._update_page(rest[0], request.body or {})
        if resource == "blocks" and len(rest) == 2 and rest[1] == "children":
            if method == "GET":
                return self._list_children(rest[0], request.query)
            if method == "PATCH":
                return self._append_children(rest[0], request.body or {})
        if resource == "blocks" and method == "DELETE" and len(rest) == 1:
            return self._delete_block(rest[0])
        raise NotionApiError(400, "invalid_request_url", f"Invalid request URL: {method} {request.path}")

    def _get_database(self, database_id: str) -> dict[str, Any]:
        if database_id != self.database_id:
            raise NotionApiError(404, "object_not_found", f"Could not find database with ID: {database_id}.")
        return {
            "object": "database",
            "id": self.database_id,
            "title": [{"type": "text", "text": {"content": "Reading list"}, "plain_text": "Reading list"}],
            "data_sources": [{"id": self.data_source_id, "name": "Reading list"}],
        }

    def _get_data_source(self, data_source_id: str) -> dict[str, Any]:
        if data_source_id != self.data_source_id:
            raise NotionApiError(404, "object_not_found", f"Could not find data source with ID: {data_source_id}.")
        return {
            "object": "data_source",
            "id": self.data_source_id,
            "parent": {"type": "database_id", "database_id": self.database_id},
            "properties": {},
        }

    def _validate(self, body: dict[str, Any]) -> None:
        children = body.get("children")
        if children is not None and len(children) > CHILDREN_LIMIT:
            raise NotionApiError(
                400,
                "validation_error",
                f"body failed validation: body.children.length should be ≤ `100`, instead was `{len(children)}`.",
            )
        violations = _rich_text_violations(body, "body")
        if violations:
            raise NotionApiError(400, "validation_error", "body failed validation: " + violations[0])

    def _new_blocks(self, parent_id: str, children: list[dict[str, Any]]) -> list[dict[str, Any]]:
        created = []
        for child in children:
            if "type" not in child or child["type"] not in child:
                raise NotionApiError(400, "validation_error", "body failed validation: block type is missing.")
            block = {
                **child,
                "object": "block",
                "id": str(uuid.uuid4()),
                "parent": {"type": "page_id", "page_id": parent_id},
                "archived": False,
                "in_trash": False,
                "has_children": False,
                "created_time": _now(),
            }
            self.blocks[block["id"]] = block
            created.append(block)
        return created

    def _page_object(self, page: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in page.items() if key != "children"}

    def _create_page(self, body: dict[str, Any]) -> dict[str, Any]:
        self._validate(body)
        parent = body.get("parent") or {}
        if parent.get("type") != "data_source_id" or parent.get("data_source_id") != self.data_source_id:
            raise NotionApiError(404, "object_not_found", f"Could not find data source for parent {parent}.")
        if not isinstance(body.get("properties"), dict):
            raise NotionApiError(400, "validation_error", "body failed validation: body.properties should be defined.")
        page_id = str(uuid.uuid4())
        page = {
            "object": "page",
            "id": page_id,
            "created_time": _now(),
            "last_edited_time": _now(),
            "parent": parent,
            "archived": False,
            "in_trash": False,
            "properties": body["properties"],
            "url": f"https://www.notion.so/{page_id.replace('-', '')}",
            "children": [],
        }
        page["children"] = self._new_blocks(page_id, body.get("children") or [])
        self.pages[page_id] = page
        return self._page_object(page)

    def _update_page(self, page_id: str, body: dict[str, Any]) -> dict[str, Any]:
        page = self.pages.get(page_id)
        if page is None:
            raise NotionApiError(404, "object_not_found", f"Could not find page with ID: {page_id}.")
        self._validate(body)
        unarchive = body.get("archived") is False or body.get("in_trash") is False
        if (page["archived"] or page["in_trash"]) and not unarchive:
            raise NotionApiError(
                400,
                "validation_error",
                "Can't edit block that is archived. You must unarchive the block before editing.",
            )
        page["properties"] = {**page["properties"], **(body.get("properties") or {})}
        for flag in ("archived", "in_trash"):
            if flag in body:
                page[flag] = bool(body[flag])
        page["last_edited_time"] = _now()
        return self._page_object(page)

    def _children_of(self, block_id: str) -> list[dict[str, Any]]:
        if block_id in self.pages:
            return self.pages[block_id]["children"]
        raise NotionApiError(404, "object_not_found", f"Could not find block with ID: {block_id}.")

    def _list_children(self, block_id: str, query: dict[str, str]) -> dict[str, Any]:
        children = self._children_of(block_id)
        page_size = min(int(query.get("page_size", 100)), 100)
        start = 0
        if query.get("start_cursor"):
            ids = [b["id"] for b in children]
            if query["start_cursor"] not in ids:
                raise NotionApiError(400, "validation_error", "start_cursor is invalid.")
            start = ids.index(query["start_cursor"])
        window = children[start : start + page_size]
        has_more = start + page_size < len(children)
        return {
            "object": "list",
            "results": window,
            "next_cursor": children[start + page_size]["id"] if has_more else None,
            "has_more": has_more,
            "type": "block",
            "block": {},
        }

    def _append_children(self, block_id: str, body: dict[str, Any]) -> dict[str, Any]:
        children = self._children_of(block_id)
        if not isinstance(body.get("children"), list):
            raise NotionApiError(400, "validation_error", "body failed validation: body.children should be defined.")
        self._validate(body)
        created = self._new_blocks(block_id, body["children"])
        children.extend(created)
        return {"object": "list", "results": created, "next_cursor": None, "has_more": False}

    def _delete_block(self, block_id: str) -> dict[str, Any]:
        block = self.blocks.get(block_id)
        if block is None or block["archived"]:
            raise NotionApiError(404, "object_not_found", f"Could not find block with ID: {block_id}.")
        block["archived"] = block["in_trash"] = True
        parent = self.pages.get(block["parent"]["page_id"])
        if parent is not None:
            parent["children"] = [b for b in parent["children"] if b["id"] != block_id]
        return block

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else Nagle + delayed ACK add ~40 ms to every keep-alive request

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = None
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = RecordedRequest(self.command, url.path, query, headers, body)
                with fake._lock:
                    fake.requests.append(request)
                if fake.latency:
                    time.sleep(fake.latency)
                if body is None and raw:
                    status, extra, payload = 400, {}, _error_body(400, "invalid_json", "Error parsing JSON body.")
                else:
                    status, extra, payload = fake.handle(request)
                request.status = status
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

        return Handler


@pytest.fixture
def notion_server() -> Iterator[FakeNotion]:
    server = FakeNotion()
    yield server
    server.close()
