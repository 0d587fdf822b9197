"""The forking worker's parent claims tasks and records results; its horses run only the handlers."""

from __future__ import annotations

import pytest
from django.db import connection

from kbmanager.queues import get_queue, get_redis
from tasks.models import Task, TaskStatus
from tasks.services import TaskSpec, task_create, tasks_create_bulk
from tasks.worker import TaskWorker
from tests.conftest import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_horse_of_a_handler_without_queries_opens_no_database_connection():
    tasks = tasks_create_bulk(specs=[TaskSpec(kind="tests.database_use") for _ in range(3)])
    run_burst_worker("default")
    for task in tasks:
        task.refresh_from_db()
        assert task.status == TaskStatus.COMPLETED
        assert task.result["connected_before"] is False  # the parent's connection was not handed down
        assert [e.event for e in task.events.all()] == ["enqueued", "started", "completed"]
        assert task.events.get(event="completed").worker_name == task.worker_name != ""


def test_horses_that_query_use_their_own_connection_and_leave_the_parents_intact():
    parent_backend = _backend_pid()
    tasks = tasks_create_bulk(specs=[TaskSpec(kind="tests.database_use", args={"query": True}) for _ in range(4)])
    run_burst_worker("default")
    backends = set()
    for task in tasks:
        task.refresh_from_db()
        assert task.status == TaskStatus.COMPLETED, task.error_message
        backends.add(task.result["backend_pid"])
    assert parent_backend not in backends
    assert _backend_pid() == parent_backend  # the worker (this process) kept its session through every fork


def test_result_too_big_to_hand_over_is_recorded_by_the_horse_itself():
    task = task_create(kind="tests.database_use", args={"result_bytes": 2 * 1024 * 1024})
    run_burst_worker("default")
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert len(task.result["padding"]) == 2 * 1024 * 1024
    assert [e.event for e in task.events.all()] == ["enqueued", "started", "completed"]


def test_task_cancelled_while_its_job_waits_is_skipped_without_running():
    task = task_create(kind="tests.database_use")
    Task.objects.filter(id=task.id).update(status=TaskStatus.CANCELLED)  # as if cancelled by a racing request
    run_burst_worker("default")
    task.refresh_from_db()
    assert task.status == TaskStatus.CANCELLED
    assert task.result is None and task.attempts == 0
    assert [e.event for e in task.events.all()] == ["enqueued"]


def test_worker_made_before_another_in_the_same_process_still_hands_over_its_claims():
    first = TaskWorker([get_queue("default")], connection=get_redis())
    TaskWorker([get_queue("default")], connection=get_redis())
    task = task_create(kind="tests.database_use")
    first.work(burst=True, logging_level="WARNING")
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert task.result["connected_before"] is False
    assert task.worker_name == first.name


def test_result_postgresql_cannot_store_fails_the_task_with_a_clear_message():
    task = task_create(kind="tests.unstorable_result", max_retries=0)
    stored = task_create(kind="tests.unstorable_result", args={"value": "a literal \\u0000 is fine"})
    run_burst_worker("default")
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED
    assert "PostgreSQL refuses the NUL character" in task.error_message
    assert "_result_json" in task.traceback
    stored.refresh_from_db()
    assert stored.status == TaskStatus.COMPLETED
    assert stored.result == {"text": "a literal \\u0000 is fine"}
