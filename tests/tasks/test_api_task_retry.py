from __future__ import annotations

import pytest

from kbmanager.queues import get_queue
from tasks.models import Task, TaskStatus
from tasks.services import task_create
from tests.conftest import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_retry_of_a_failed_task_is_202_and_the_next_attempt_runs(api_client):
    task = task_create(kind="tests.fail_until", args={"succeed_on": 2}, max_retries=0)
    run_burst_worker("default")
    assert Task.objects.get(id=task.id).status == TaskStatus.FAILED
    response = api_client.post(f"/api/tasks/{task.id}/retry/")
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert get_queue("default").count == 1
    run_burst_worker("default")
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert task.result == {"succeeded_on": 2}
    assert task.events.filter(event="requeued", actor="operator").exists()


@pytest.mark.parametrize("status", ["queued", "running", "completed", "pending"])
def test_retry_is_409_unless_the_task_failed_or_was_cancelled(api_client, make_task, status):
    task = make_task(status)
    response = api_client.post(f"/api/tasks/{task.id}/retry/")
    assert response.status_code == 409
    assert "only failed or cancelled" in response.json()["detail"]
    assert Task.objects.get(id=task.id).status == status


def test_retry_of_a_cancelled_task_queues_it_again(api_client, make_task):
    task = make_task("cancelled")
    assert api_client.post(f"/api/tasks/{task.id}/retry/").status_code == 202
    assert Task.objects.get(id=task.id).status == TaskStatus.QUEUED
