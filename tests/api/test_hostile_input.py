"""Hostile and broken input: each gets a clear 4xx, or a task that fails with a clear message while the worker lives."""

from __future__ import annotations

import functools
import json
import zlib
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ingestion.models import Link
from ingestion.services import links_submit
from tasks.models import FINISHED_STATUSES, Task, TaskStatus
from tests.conftest import wait_for

LINK_PERMS = ("view_link", "add_link", "change_link")


@pytest.fixture
def client(db: Any) -> APIClient:
    user = User.objects.create_user(username="hostile", password="pw")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="ingestion", codename__in=LINK_PERMS))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return api


def _post_raw(client: APIClient, path: str, body: bytes, content_type: str = "application/json") -> Any:
    return client.generic("POST", path, body, content_type=content_type)


# --- bodies -------------------------------------------------------------------------


def test_body_over_the_upload_limit_is_refused_with_413(client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    body = json.dumps({"urls": ["https://example.com/" + "a" * 1000] * 100}).encode()
    assert len(body) > settings.DATA_UPLOAD_MAX_MEMORY_SIZE

    response = _post_raw(client, "/api/links/", body)

    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"
    assert Link.objects.count() == 0


def test_json_nested_ten_thousand_levels_deep_is_a_400_not_a_recursion_error(client):
    body = ("[" * 10_000 + "]" * 10_000).encode()
    response = _post_raw(client, "/api/links/", body)
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"
    assert "nested" in response.json()["detail"]


def test_body_that_is_not_utf8_is_a_400(client):
    response = _post_raw(client, "/api/links/", b'{"urls": ["https://example.com/\xff\xfe"]}')
    assert response.status_code == 400
    assert response.json()["error"] == "parse_error"


def test_ten_thousand_link_ids_are_refused_naming_the_cap(client, settings):
    response = client.post("/api/parsing/sync", {"link_ids": list(range(1, 10_001))}, format="json")
    assert response.status_code == 400
    message = response.json()["detail"]["link_ids"][0]
    assert f"at most {settings.LINKS_SUBMIT_MAX} link ids" in message and "10000" in message


# --- URLs -----------------------------------------------------------------------------


def test_url_of_100_kb_is_invalid_with_a_reason(client):
    url = "https://example.com/" + "a" * 100_000
    response = client.post("/api/links/", {"urls": [url], "process": False}, format="json")
    assert response.status_code == 201
    [result] = response.json()["results"]
    assert result["status"] == "invalid" and result["reason"]
    assert Link.objects.count() == 0


@pytest.mark.parametrize(
    "url",
    ["javascript:alert(document.cookie)", "JavaScript:alert(1)", "file:///etc/passwd", "file://localhost/etc/shadow"],
)
def test_javascript_and_file_urls_are_invalid(client, url):
    response = client.post("/api/links/", {"urls": [url], "process": False}, format="json")
    assert response.status_code == 201
    [result] = response.json()["results"]
    assert result["status"] == "invalid" and result["reason"]
    assert Link.objects.count() == 0


# --- pages the parse task fetches -------------------------------------------------------


@functools.cache
def _gzip_bomb(gigabytes: int = 2) -> bytes:
    """About 2 MB of gzip that inflates to ``gigabytes`` GiB of zeros."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"\0" * (1024 * 1024)
    parts = [packer.compress(b"<html><body><p>")]
    parts += [packer.compress(zeros) for _ in range(gigabytes * 1024)]
    parts.append(packer.flush())
    return b"".join(parts)


def _deep_html(levels: int = 100_000) -> str:
    return "<html><body>" + "<div>" * levels + "deep text" + "</div>" * levels + "</body></html>"


def _huge_text_node(size: int = 4_900_000) -> str:
    return "<html><head><title>One node</title></head><body><p>" + ("word " * (size // 5)) + "</p></body></html>"


def _binary_junk(size: int = 200_000) -> bytes:
    # Deterministic pseudo-random bytes, with NULs and invalid UTF-8, served as text/html.
    state, out = 12345, bytearray()
    while len(out) < size:
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        out += state.to_bytes(4, "little")
    return bytes(out)


@pytest.mark.django_db(transaction=True)
def test_gzip_bomb_and_pathological_pages_end_their_parse_tasks_and_the_worker_lives(web_server, start_worker):
    bomb = _gzip_bomb()
    assert len(bomb) < 5 * 1024 * 1024  # small on the wire, gigabytes inflated
    web_server.add("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    web_server.add("/deep", _deep_html())
    web_server.add("/huge-node", _huge_text_node())
    web_server.add("/junk", _binary_junk())
    web_server.add("/junk-utf8", b"\xff\xfe\x00<html>\x00\xc3(" * 5000, content_type="text/html; charset=utf-8")
    paths = ["/bomb", "/deep", "/huge-node", "/junk", "/junk-utf8"]
    results = links_submit(urls=[web_server.url(p) for p in paths])
    task_ids = {path: result["task_id"] for path, result in zip(paths, results, strict=True)}
    worker = start_worker("parsing", env={"FETCH_ALLOWED_HOSTS": web_server.host, "TASK_RETRY_DELAYS": "0"})

    def all_ended() -> bool:
        return not Task.objects.filter(id__in=task_ids.values()).exclude(status__in=FINISHED_STATUSES).exists()

    wait_for(all_ended, timeout=180, interval=0.5, what="the parse tasks of the hostile pages")
    tasks = {path: Task.objects.get(id=task_id) for path, task_id in task_ids.items()}

    bomb_task = tasks["/bomb"]
    assert bomb_task.status == TaskStatus.FAILED
    assert "decompressed response body exceeds" in bomb_task.error_message
    assert bomb_task.attempts == 1  # permanent: retrying cannot help
    for path, task in tasks.items():
        # Completed, or failed with a message a person can act on, never a dead work-horse.
        assert task.status in (TaskStatus.COMPLETED, TaskStatus.FAILED), (path, task.status)
        if task.status == TaskStatus.FAILED:
            assert task.error_message and "terminated unexpectedly" not in task.error_message, (
                path,
                task.error_message,
            )
        print(f"{path}: {task.status} {task.error_message[:120]!r}")
    assert worker.alive()
    # And it still does ordinary work afterwards.
    web_server.add("/fine", "<html><head><title>Fine</title></head><body><article><p>" + "Plain text. " * 50)
    [fine] = links_submit(urls=[web_server.url("/fine")])
    wait_for(lambda: Task.objects.get(id=fine["task_id"]).status in FINISHED_STATUSES, timeout=60, what="a normal page")
    assert worker.alive()
