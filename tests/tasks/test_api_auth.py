from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def test_unauthenticated_calls_get_401_json_with_a_token_challenge(anon_client, make_task):
    task = make_task()
    for method, url in [
        ("get", "/api/tasks/"),
        ("get", f"/api/tasks/{task.id}/"),
        ("post", f"/api/tasks/{task.id}/cancel/"),
        ("post", f"/api/tasks/{task.id}/retry/"),
        ("post", "/api/tasks/bulk/"),
    ]:
        response = getattr(anon_client, method)(url)
        assert response.status_code == 401, url
        assert response.json()["error"] == "not_authenticated"
        assert response["WWW-Authenticate"] == "Token"


def test_a_wrong_token_is_401(anon_client):
    anon_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    assert anon_client.get("/api/tasks/").status_code == 401


def test_users_without_permissions_get_403_json(no_perm_client):
    response = no_perm_client.get("/api/tasks/")
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"
    assert "tasks.view_task" in response.json()["detail"]


def test_token_made_by_drf_create_token_authenticates(operator, anon_client, capsys):
    call_command("drf_create_token", "operator")
    key = capsys.readouterr().out.split()[2]
    anon_client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert anon_client.get("/api/tasks/").status_code == 200


def test_the_admin_session_authenticates_the_api(staff_client):
    assert staff_client.get("/api/tasks/").status_code == 200


def test_an_enabled_throttle_answers_429_json(api_client, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"user": "3/min"}}
    cache.clear()
    statuses = [api_client.get("/api/tasks/").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = api_client.get("/api/tasks/")
    assert response.json()["error"] == "throttled"
    assert int(response["Retry-After"]) > 0


def test_schema_documents_every_task_endpoint(staff_client):
    schema = staff_client.get("/api/schema/?format=json").json()
    for path in [
        "/api/tasks/",
        "/api/tasks/{task_id}/",
        "/api/tasks/{task_id}/cancel/",
        "/api/tasks/{task_id}/retry/",
        "/api/tasks/bulk/",
    ]:
        assert path in schema["paths"], path
    assert "409" in schema["paths"]["/api/tasks/{task_id}/cancel/"]["post"]["responses"]
