from __future__ import annotations

import uuid

import pytest

from kbmanager.queues import get_queue
from tasks.models import Task, TaskStatus
from tasks.services import task_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_cancel_of_a_queued_task_returns_it_cancelled_and_removes_its_job(api_client):
    task = task_create(kind="tests.echo")
    assert get_queue("default").count == 1
    response = api_client.post(f"/api/tasks/{task.id}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert response.json()["cancel_requested_by"] == "operator"
    assert get_queue("default").count == 0
    events = list(Task.objects.get(id=task.id).events.values_list("event", "actor"))
    assert ("cancelled", "operator") in events


def test_cancel_of_a_finished_task_is_409_with_a_clear_message(api_client, make_task):
    task = make_task("completed")
    response = api_client.post(f"/api/tasks/{task.id}/cancel/")
    assert response.status_code == 409
    body = response.json()
    assert body["error"] == "conflict"
    assert "already completed" in body["detail"]
    assert Task.objects.get(id=task.id).status == TaskStatus.COMPLETED


def test_cancel_of_an_unknown_task_is_404(api_client):
    assert api_client.post(f"/api/tasks/{uuid.uuid4()}/cancel/").status_code == 404


def test_cancel_with_a_malformed_id_is_400(api_client):
    response = api_client.post("/api/tasks/12345/cancel/")
    assert response.status_code == 400
    assert "id" in response.json()["detail"]


def test_cancel_needs_the_change_permission(viewer_client, make_task):
    task = make_task("queued")
    response = viewer_client.post(f"/api/tasks/{task.id}/cancel/")
    assert response.status_code == 403
    assert "tasks.change_task" in response.json()["detail"]
    assert Task.objects.get(id=task.id).status == TaskStatus.QUEUED
