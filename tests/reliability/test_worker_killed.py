"""A worker killed with SIGKILL in the middle of a job: its work-horse alone, or the worker and its horse."""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import pytest
from django.utils import timezone

from kbmanager.queues import get_queue, get_redis
from tasks.models import Task, TaskStatus
from tasks.reconciler import reconcile
from tasks.services import task_create
from tests.conftest import run_burst_worker, wait_for
from tests.reliability.conftest import assert_each_task_completed_once, heartbeat_env, read_runs

pytestmark = pytest.mark.django_db(transaction=True)


def _horse_pid(task: Task) -> int:
    """The work-horse's pid, which ``tests.sleep_reporting_pid`` reports as its progress message."""

    def reported() -> str:
        row = Task.objects.get(id=task.id)
        return row.status == TaskStatus.RUNNING and row.progress_message.startswith("pid ") and row.progress_message

    return int(str(wait_for(reported, timeout=30, interval=0.05, what="the horse to report its pid")).split()[1])


def test_killed_work_horse_counts_as_a_lost_attempt_and_the_task_is_retried_to_completion(tmp_path, start_worker):
    marker = tmp_path / "runs"
    task = task_create(kind="tests.sleep_reporting_pid", args={"seconds": 2, "marker": str(marker)}, max_retries=2)
    worker = start_worker("default", env=heartbeat_env())

    os.kill(_horse_pid(task), signal.SIGKILL)

    wait_for(lambda: Task.objects.get(id=task.id).status == TaskStatus.COMPLETED, timeout=60, what="the retry")
    task.refresh_from_db()
    assert task.attempts == 2
    lost = task.events.get(event="retry_scheduled", attempt=1)
    assert "terminated unexpectedly" in lost.message and "signal 9" in lost.message
    assert read_runs(marker) == [(str(task.id), 2)]  # the killed attempt never reached its end
    assert_each_task_completed_once([task], marker)
    assert worker.alive()


def test_killed_worker_and_horse_are_recovered_by_the_reconciler_once_the_heartbeat_is_silent(
    tmp_path, start_worker, settings
):
    settings.RECONCILE_PENDING_AFTER = 1
    settings.WORKER_HEARTBEAT_INTERVAL = 1
    settings.TASK_RETRY_DELAYS = [0]
    marker = tmp_path / "runs"
    task = task_create(kind="tests.sleep_reporting_pid", args={"seconds": 2, "marker": str(marker)}, max_retries=2)
    first = start_worker("default", env=heartbeat_env(), name="reliability-doomed")

    horse = _horse_pid(task)
    os.killpg(os.getpgid(horse), signal.SIGKILL)  # the horse runs in its own process group
    os.kill(first.pid, signal.SIGKILL)
    first.popen.wait(10)

    # Nothing reports the death: only the silent heartbeat tells the reconciler.
    wait_for(lambda: reconcile().lost_running == 1, timeout=30, interval=0.5, what="the reconciler to see the loss")
    task.refresh_from_db()
    assert task.status == TaskStatus.QUEUED
    event = task.events.get(event="retry_scheduled", attempt=1)
    assert "reliability-doomed" in event.message and event.actor == "reconciler"

    second = start_worker("default", env=heartbeat_env())
    wait_for(lambda: Task.objects.get(id=task.id).status == TaskStatus.COMPLETED, timeout=60, what="the new worker")
    assert read_runs(marker) == [(str(task.id), 2)]
    assert_each_task_completed_once([task], marker)
    assert second.alive()


def test_job_taken_by_a_worker_that_died_before_claiming_its_task_is_pushed_again(settings, tmp_path):
    # The worker dequeued the job (RQ marked it started, naming the worker) and was
    # killed before the horse claimed the task, which therefore is still queued.
    settings.RECONCILE_PENDING_AFTER = 1
    marker = tmp_path / "runs"
    task = task_create(kind="tests.append_marker", args={"marker": str(marker)})
    redis = get_redis()
    get_queue("default").remove(str(task.id))
    redis.hset(f"rq:job:{task.id}", mapping={"status": "started", "worker_name": "reliability-killed-at-dequeue"})
    Task.objects.filter(id=task.id).update(enqueued_at=timezone.now() - timedelta(seconds=5))

    report = reconcile()

    assert report.repushed_queued == 1
    event = Task.objects.get(id=task.id).events.get(event="requeued")
    assert "taken by a worker that is gone" in event.message
    run_burst_worker("default")
    assert_each_task_completed_once([task], marker)
