from __future__ import annotations

import uuid

import pytest

from tasks.models import TaskEvent

pytestmark = pytest.mark.django_db


def test_detail_shows_the_task_with_its_events_in_order(api_client, make_task):
    task = make_task("failed", args={"url": "https://example.com"}, traceback="Traceback ...", events=True)
    TaskEvent.objects.create(task=task, event="started", attempt=1, worker_name="w1")
    TaskEvent.objects.create(task=task, event="failed", attempt=1, message="ValueError: boom")
    response = api_client.get(f"/api/tasks/{task.id}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(task.id)
    assert body["args"] == {"url": "https://example.com"}
    assert body["error_message"] == "ValueError: boom"
    assert body["traceback"] == "Traceback ..."
    assert [event["event"] for event in body["events"]] == ["enqueued", "started", "failed"]
    assert body["events"][1]["worker_name"] == "w1"


def test_unknown_task_is_404_json(api_client):
    response = api_client.get(f"/api/tasks/{uuid.uuid4()}/")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


def test_malformed_task_id_is_400_naming_the_id(api_client):
    response = api_client.get("/api/tasks/not-a-uuid/")
    assert response.status_code == 400
    assert "id" in response.json()["detail"]
