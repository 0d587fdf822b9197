"""Error answers schemathesis does not provoke (an odd ``Accept``, a wrong ``Content-Type``, a body over the
limit) are the statuses the schema declares, and bad query parameters are a 4xx naming the parameter."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

STAGES = ["/api/parsing/sync", "/api/ai/process", "/api/notion/sync"]
JSON_BODY_PATHS = ["/api/links/", *STAGES]


@pytest.fixture
def api(db: Any) -> APIClient:
    """A superuser's token for the ingestion API, and its staff session for the protected monitoring views."""
    user = User.objects.create_superuser(username="errors", password="pw", email="e@example.com")
    client = APIClient()
    client.force_login(user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def declared(api: APIClient) -> Any:
    schema = api.get("/api/schema/?format=json").json()

    def statuses(method: str, path: str) -> set[int]:
        return {int(code) for code in schema["paths"][path][method]["responses"]}

    return statuses


MONITORING_PATHS = [f"/api/monitoring/{name}" for name in ("health", "health/detailed", "metrics", "workers", "queues")]


@pytest.mark.parametrize(
    ("path", "template"),
    [("/api/links/", "/api/links/"), ("/api/links/1/", "/api/links/{link_id}/")]
    + [(path, path) for path in MONITORING_PATHS],
)
def test_an_accept_header_nothing_renders_is_a_declared_406(api, declared, path, template):
    response = api.get(path, HTTP_ACCEPT="application/xml")
    assert response.status_code == 406
    assert response.json()["error"] == "not_acceptable"
    assert 406 in declared("get", template)


@pytest.mark.parametrize("path", [*JSON_BODY_PATHS, "/api/links/import"])
def test_a_body_in_a_media_type_no_parser_reads_is_a_declared_415(api, declared, path):
    response = api.generic("POST", path, b"https://example.com/", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert {406, 415} <= declared("post", path)


@pytest.mark.parametrize("path", JSON_BODY_PATHS)
def test_a_body_over_the_upload_limit_is_a_declared_413(api, declared, settings, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = json.dumps({"urls": ["https://example.com/" + "a" * 2000], "link_ids": [1]}).encode()
    response = api.generic("POST", path, body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"] == "request_too_large"
    assert 413 in declared("post", path)


def test_an_import_form_field_over_the_upload_limit_is_a_declared_413(api, declared, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    response = api.post("/api/links/import", {"dry_run": "true" + " " * 2000}, format="multipart")
    assert response.status_code == 413
    assert 413 in declared("post", "/api/links/import")


def test_a_bad_links_cursor_is_a_400_naming_the_cursor_not_a_404(api, declared):
    response = api.get("/api/links/?cursor=not-a-cursor")
    assert response.status_code == 400
    assert response.json()["detail"] == {"cursor": ["invalid cursor"]}
    assert 404 not in declared("get", "/api/links/")


def test_an_unknown_metrics_format_is_a_406_naming_the_formats_on_offer_not_a_404(api, declared):
    response = api.get("/api/monitoring/metrics?format=xml")
    assert response.status_code == 406
    assert response.json() == {
        "error": "not_acceptable",
        "detail": "unknown format 'xml'; this endpoint offers: json, txt",
    }
    assert 404 not in declared("get", "/api/monitoring/metrics")


def test_the_formats_the_metrics_schema_offers_still_answer(api):
    assert api.get("/api/monitoring/metrics?format=txt").status_code == 200
    assert api.get("/api/monitoring/metrics?format=json").status_code == 200


TASK_ID = "00000000-0000-0000-0000-000000000001"


@pytest.mark.parametrize(
    ("path", "template"),
    [("/api/tasks/", "/api/tasks/"), (f"/api/tasks/{TASK_ID}/", "/api/tasks/{task_id}/")],
)
def test_task_endpoints_answer_an_accept_header_nothing_renders_with_a_declared_406(api, declared, path, template):
    response = api.get(path, HTTP_ACCEPT="application/xml")
    assert response.status_code == 406
    assert 406 in declared("get", template)


def test_a_task_bulk_body_in_a_media_type_no_parser_reads_is_a_declared_415(api, declared):
    response = api.generic("POST", "/api/tasks/bulk/", b"action=cancel", content_type="text/plain")
    assert response.status_code == 415
    assert 415 in declared("post", "/api/tasks/bulk/")


def test_an_unknown_format_is_a_406_on_every_endpoint(api):
    response = api.get("/api/tasks/?format=xml")
    assert response.status_code == 406
    assert response.json()["error"] == "not_acceptable"


@pytest.mark.parametrize("path", ["/api/links/not-a-number/", "/api/no-such-endpoint/"])
def test_an_api_url_no_route_matches_is_a_json_404(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"error": "not_found", "detail": f"no API endpoint at {path}"}


def test_a_page_url_no_route_matches_is_still_an_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
