"""A job over its timeout, and a job that exhausts the memory it was limited to."""

from __future__ import annotations

import pytest

from tasks.models import Task, TaskStatus
from tasks.services import task_create
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _ended(task: Task) -> bool:
    return Task.objects.get(id=task.id).status in (TaskStatus.COMPLETED, TaskStatus.FAILED)


def test_job_over_its_timeout_fails_with_the_timeout_and_the_worker_runs_the_next_task(
    tmp_path, start_worker, settings
):
    # The timeout travels with the job: it is taken from QUEUE_TIMEOUTS when the job is pushed.
    settings.QUEUE_TIMEOUTS = {**settings.QUEUE_TIMEOUTS, "default": 1}
    slow = task_create(kind="tests.sleep_reporting_pid", args={"seconds": 30}, max_retries=0)
    settings.QUEUE_TIMEOUTS = {**settings.QUEUE_TIMEOUTS, "default": 30}
    marker = tmp_path / "runs"
    after = task_create(kind="tests.append_marker", args={"marker": str(marker)})
    worker = start_worker("default")

    wait_for(lambda: _ended(slow) and _ended(after), timeout=60, what="both tasks")
    slow.refresh_from_db()
    assert slow.status == TaskStatus.FAILED
    assert slow.error_message == "timed out after 1 s"
    assert Task.objects.get(id=after.id).status == TaskStatus.COMPLETED
    assert worker.alive()


def test_job_that_exhausts_its_memory_limit_fails_with_memory_error_and_the_worker_lives_on(tmp_path, start_worker):
    hog = task_create(kind="tests.exhaust_memory", args={"headroom_mb": 64, "allocate_mb": 4096}, max_retries=0)
    marker = tmp_path / "runs"
    after = task_create(kind="tests.append_marker", args={"marker": str(marker)})
    worker = start_worker("default")

    wait_for(lambda: _ended(hog) and _ended(after), timeout=60, what="both tasks")
    hog.refresh_from_db()
    assert hog.status == TaskStatus.FAILED
    assert hog.error_message.startswith("MemoryError")
    assert "bytearray(allocate_mb" in hog.traceback  # the failing line, for whoever reads the task
    assert Task.objects.get(id=after.id).status == TaskStatus.COMPLETED
    assert worker.alive()
