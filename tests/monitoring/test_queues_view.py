from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tasks.services import TaskSpec, task_create, tasks_create_bulk
from tests.conftest import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)

QUEUES = "/api/monitoring/queues"


def test_queues_need_authentication():
    assert APIClient().get(QUEUES).status_code == 401


def test_queues_need_the_view_task_permission(plain_client):
    assert plain_client.get(QUEUES).status_code == 403


def test_queues_show_depth_oldest_age_failures_and_no_worker(viewer_client):
    task_create(kind="tests.always_fail", max_retries=0)
    run_burst_worker("default")
    tasks_create_bulk(specs=[TaskSpec(kind="tests.echo", queue="parsing") for _ in range(4)])

    response = viewer_client.get(QUEUES)
    assert response.status_code == 200
    queues = {q["name"]: q for q in response.json()["queues"]}
    assert list(queues) == ["parsing", "ai", "notion", "default"]
    assert queues["parsing"]["queued"] == 4
    assert queues["parsing"]["oldest_queued_age_seconds"] is not None
    assert queues["parsing"]["workers"] == 0
    assert queues["ai"]["queued"] == 0
    assert queues["ai"]["oldest_queued_age_seconds"] is None
    assert queues["default"]["failed_last_hour"] == 1
    assert queues["default"]["failed_total"] == 1
    assert queues["default"]["rq_failed"] == 1


def test_queues_report_redis_down_as_unknown_figures(viewer_client, redis_down):
    body = viewer_client.get(QUEUES).json()
    assert body["redis_up"] is False
    assert all(q["queued"] is None and q["workers"] is None for q in body["queues"])
