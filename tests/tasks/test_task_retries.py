from __future__ import annotations

import pytest

from tasks.models import Task, TaskStatus
from tasks.services import task_create
from tests.conftest import run_burst_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_failing_task_retries_with_the_configured_delays_and_ends_failed(start_worker):
    task = task_create(kind="tests.always_fail", max_retries=2)
    worker = start_worker("default", env={"TASK_RETRY_DELAYS": "1,2"})

    wait_for(lambda: Task.objects.get(id=task.id).status == TaskStatus.FAILED, timeout=40, what="task to fail")
    worker.stop()
    task.refresh_from_db()
    assert task.attempts == 3
    assert task.error_message == "ValueError: boom on attempt 3"
    assert "Traceback" in task.traceback and "boom on attempt 3" in task.traceback
    events = list(task.events.all())
    assert [(e.event, e.attempt) for e in events] == [
        ("enqueued", 0),
        ("started", 1),
        ("retry_scheduled", 1),
        ("started", 2),
        ("retry_scheduled", 2),
        ("started", 3),
        ("failed", 3),
    ]
    assert all(e.traceback for e in events if e.event in ("retry_scheduled", "failed"))
    # Each retry waited at least its configured delay (a lower bound, not a timing measurement).
    first_retry, second_start = events[2], events[3]
    second_retry, third_start = events[4], events[5]
    assert (second_start.created_at - first_retry.created_at).total_seconds() >= 1
    assert (third_start.created_at - second_retry.created_at).total_seconds() >= 2


def test_task_that_fails_then_succeeds_completes_on_a_later_attempt(settings):
    settings.TASK_RETRY_DELAYS = [0]
    task = task_create(kind="tests.fail_until", args={"succeed_on": 3}, max_retries=3)
    run_burst_worker("default")
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED
    assert task.result == {"succeeded_on": 3}
    assert task.attempts == 3
    assert task.events.filter(event="retry_scheduled").count() == 2


def test_permanent_error_fails_at_once_without_retries():
    task = task_create(kind="tests.permanent_fail", max_retries=3)
    run_burst_worker("default")
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED
    assert task.attempts == 1
    assert task.error_message == "unsupported input, retrying will not help"


def test_unknown_kind_in_the_database_fails_with_a_clear_message():
    task = task_create(kind="tests.echo")
    Task.objects.filter(id=task.id).update(kind="tests.renamed_away")
    run_burst_worker("default")
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED
    assert "no task handler is registered for kind 'tests.renamed_away'" in task.error_message


def test_task_over_its_queue_timeout_fails_with_the_timeout_message(start_worker, settings):
    # The timeout travels with the job, set from the queue's timeout when it is enqueued.
    settings.QUEUE_TIMEOUTS = {**settings.QUEUE_TIMEOUTS, "default": 1}
    task = task_create(kind="tests.sleep_reporting_pid", args={"seconds": 20}, max_retries=0)
    worker = start_worker("default")
    wait_for(lambda: Task.objects.get(id=task.id).status == TaskStatus.FAILED, timeout=30, what="timeout")
    task.refresh_from_db()
    assert task.error_message == "timed out after 1 s"
    assert worker.alive()
