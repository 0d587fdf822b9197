from __future__ import annotations

import json
import zlib

import pytest
from django.db import transaction

from kbmanager.queues import get_queue
from tasks.models import Task, TaskStatus
from tasks.services import TaskSpec, task_create, tasks_create_bulk
from tests.conftest import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_task_runs_to_completed_with_its_result():
    task = task_create(kind="tests.echo", args={"x": 1})
    assert Task.objects.get(id=task.id).status == TaskStatus.QUEUED
    run_burst_worker("default")
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert task.result == {"args": {"x": 1}, "attempt": 1}
    assert task.attempts == 1
    assert task.started_at and task.finished_at and task.enqueued_at
    assert task.worker_name
    assert [e.event for e in task.events.all()] == ["enqueued", "started", "completed"]


def test_job_in_redis_carries_only_the_task_id_as_json():
    task = task_create(kind="tests.echo", args={"secret": "not in redis"})
    raw = zlib.decompress(get_queue("default").connection.hget(f"rq:job:{task.id}", "data"))
    assert b"not in redis" not in raw
    assert str(task.id).encode() in raw
    assert json.loads(raw)[2] == [str(task.id)]  # JSON (function, instance, args, kwargs), not a pickle


def test_tasks_created_in_a_rolled_back_transaction_are_never_enqueued():
    with pytest.raises(RuntimeError), transaction.atomic():
        task_create(kind="tests.echo")
        tasks_create_bulk(specs=[TaskSpec(kind="tests.echo") for _ in range(5)])
        raise RuntimeError("roll back")
    assert Task.objects.count() == 0
    assert get_queue("default").count == 0


def test_tasks_inside_a_transaction_are_enqueued_only_after_commit():
    with transaction.atomic():
        tasks = tasks_create_bulk(specs=[TaskSpec(kind="tests.echo", args={"i": i}) for i in range(20)])
        assert get_queue("default").count == 0
        assert all(t.status == TaskStatus.PENDING for t in tasks)
    assert get_queue("default").count == 20
    assert Task.objects.filter(status=TaskStatus.QUEUED).count() == 20


def test_bulk_create_enqueues_every_task_on_its_queue():
    tasks_create_bulk(
        specs=[TaskSpec(kind="tests.echo", queue="parsing") for _ in range(3)]
        + [TaskSpec(kind="tests.echo", queue="ai") for _ in range(2)]
    )
    assert get_queue("parsing").count == 3
    assert get_queue("ai").count == 2
    run_burst_worker("parsing", "ai")
    assert Task.objects.filter(status=TaskStatus.COMPLETED).count() == 5
