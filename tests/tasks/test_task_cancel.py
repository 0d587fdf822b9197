from __future__ import annotations

import pytest

from kbmanager.queues import get_queue, get_redis
from tasks.exceptions import TaskStateError
from tasks.models import Task, TaskStatus
from tasks.services import task_cancel, task_create
from tests.conftest import pid_alive, run_burst_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_cancel_of_queued_task_removes_its_job_from_the_queue():
    task = task_create(kind="tests.echo")
    queue = get_queue("default")
    assert queue.count == 1

    cancelled = task_cancel(task_id=task.id, actor="alice")

    assert cancelled.status == TaskStatus.CANCELLED
    assert cancelled.cancel_requested_by == "alice"
    assert cancelled.cancel_requested_at is not None
    assert queue.count == 0
    assert not get_redis().exists(f"rq:job:{task.id}")
    assert [e.event for e in cancelled.events.all()] == ["enqueued", "cancel_requested", "cancelled"]
    assert cancelled.events.get(event="cancelled").actor == "alice"


def test_cancelled_task_is_skipped_even_if_its_job_is_still_queued(tmp_path):
    marker = tmp_path / "ran"
    task = task_create(kind="tests.append_marker", args={"marker": str(marker)})
    Task.objects.filter(id=task.id).update(status=TaskStatus.CANCELLED)
    run_burst_worker("default")
    assert not marker.exists()
    assert Task.objects.get(id=task.id).status == TaskStatus.CANCELLED


def test_cancel_of_running_task_stops_the_work_horse(start_worker, tmp_path):
    marker = tmp_path / "finished"
    task = task_create(kind="tests.sleep_reporting_pid", args={"seconds": 30, "marker": str(marker)})
    worker = start_worker("default")
    message = wait_for(
        lambda: (
            Task.objects.filter(id=task.id, status=TaskStatus.RUNNING, progress_message__startswith="pid ")
            .values_list("progress_message", flat=True)
            .first()
        ),
        what="task to run",
    )
    horse_pid = int(message.split()[1])
    assert pid_alive(horse_pid)

    cancelled = task_cancel(task_id=task.id, actor="bob")

    assert cancelled.status == TaskStatus.CANCELLED
    wait_for(lambda: not pid_alive(horse_pid), timeout=15, what="work-horse to be stopped")
    assert not marker.exists()
    assert worker.alive()
    # The worker goes on with the next task.
    follow_up = task_create(kind="tests.echo")
    wait_for(lambda: Task.objects.get(id=follow_up.id).status == TaskStatus.COMPLETED, what="next task")
    assert Task.objects.get(id=task.id).status == TaskStatus.CANCELLED


def test_cancel_of_finished_task_is_refused_with_a_clear_error():
    task = task_create(kind="tests.echo")
    run_burst_worker("default")
    with pytest.raises(TaskStateError, match="already completed"):
        task_cancel(task_id=task.id)
    assert Task.objects.get(id=task.id).status == TaskStatus.COMPLETED
