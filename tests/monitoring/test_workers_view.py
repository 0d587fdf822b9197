from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tasks.models import Task, TaskStatus
from tasks.services import task_create
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

WORKERS = "/api/monitoring/workers"


def test_workers_need_authentication():
    assert APIClient().get(WORKERS).status_code == 401


def test_workers_need_the_view_task_permission(plain_client):
    assert plain_client.get(WORKERS).status_code == 403


def test_workers_list_a_live_worker_with_its_current_task_and_counts(viewer_client, live_worker):
    worker = live_worker("default")
    task_create(kind="tests.echo")
    wait_for(lambda: Task.objects.filter(status=TaskStatus.COMPLETED).exists(), what="the echo task")
    sleeper = task_create(kind="tests.sleep_reporting_pid", args={"seconds": 3})
    wait_for(lambda: Task.objects.get(id=sleeper.id).status == TaskStatus.RUNNING, what="the sleeper to start")

    def busy_entry() -> dict | None:
        entries = viewer_client.get(WORKERS).json()["workers"]
        mine = [w for w in entries if w["name"] == worker["name"]]
        return mine[0] if mine and mine[0]["state"] == "busy" else None

    entry = wait_for(busy_entry, what="the worker to report busy")
    assert entry["pid"] == worker["pid"]
    assert entry["queues"] == ["default"]
    assert entry["alive"] is True
    assert entry["current_task"] == str(sleeper.id)
    assert entry["current_task_kind"] == "tests.sleep_reporting_pid"
    assert entry["successful_jobs"] == 1
    assert entry["failed_jobs"] == 0
    assert entry["last_heartbeat"] and entry["hostname"]


def test_workers_report_redis_down_with_an_empty_list(viewer_client, redis_down):
    response = viewer_client.get(WORKERS)
    assert response.status_code == 200
    assert response.json() == {"redis_up": False, "workers": []}
