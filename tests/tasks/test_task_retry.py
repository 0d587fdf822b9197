from __future__ import annotations

import pytest

from kbmanager.queues import get_queue
from tasks.exceptions import TaskStateError
from tasks.models import TaskStatus
from tasks.services import task_cancel, task_create, task_retry
from tests.conftest import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_retry_reruns_a_failed_task_and_keeps_its_history():
    task = task_create(kind="tests.fail_until", args={"succeed_on": 2}, max_retries=0)
    run_burst_worker("default")
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED

    retried = task_retry(task_id=task.id, actor="carol")
    assert retried.status == TaskStatus.QUEUED
    assert retried.error_message == ""
    run_burst_worker("default")

    retried.refresh_from_db()
    assert retried.status == TaskStatus.COMPLETED
    assert retried.result == {"succeeded_on": 2}
    assert [(e.event, e.attempt) for e in retried.events.all()] == [
        ("enqueued", 0),
        ("started", 1),
        ("failed", 1),
        ("requeued", 1),
        ("started", 2),
        ("completed", 2),
    ]
    assert retried.events.get(event="requeued").actor == "carol"


def test_retry_gives_a_failed_task_a_fresh_retry_budget(settings):
    settings.TASK_RETRY_DELAYS = [0]
    task = task_create(kind="tests.always_fail", max_retries=1)
    run_burst_worker("default")
    task.refresh_from_db()
    assert (task.status, task.attempts) == (TaskStatus.FAILED, 2)

    task_retry(task_id=task.id)
    run_burst_worker("default")
    task.refresh_from_db()
    assert (task.status, task.attempts) == (TaskStatus.FAILED, 4)


def test_retry_reruns_a_cancelled_task():
    task = task_create(kind="tests.echo")
    task_cancel(task_id=task.id)
    task_retry(task_id=task.id)
    assert get_queue("default").count == 1
    run_burst_worker("default")
    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED


def test_retry_of_a_queued_or_completed_task_is_refused():
    task = task_create(kind="tests.echo")
    with pytest.raises(TaskStateError, match="only failed or cancelled"):
        task_retry(task_id=task.id)
    run_burst_worker("default")
    with pytest.raises(TaskStateError, match="is completed"):
        task_retry(task_id=task.id)
