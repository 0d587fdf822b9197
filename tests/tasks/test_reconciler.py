from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from kbmanager.queues import get_queue, get_redis
from tasks.models import Task, TaskStatus
from tasks.reconciler import LOCK_KEY, reconcile
from tasks.services import TaskSpec, task_create, tasks_create_bulk
from tests.conftest import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def test_pending_task_whose_enqueue_never_happened_is_enqueued():
    # As if the process died between commit and enqueue.
    task = Task.objects.create(kind="tests.echo", queue="default", created_at=timezone.now() - timedelta(minutes=1))
    fresh = Task.objects.create(kind="tests.echo", queue="default")

    report = reconcile()

    assert report.enqueued_pending == 1
    task.refresh_from_db()
    assert task.status == TaskStatus.QUEUED
    event = task.events.get(event="enqueued")
    assert event.actor == "reconciler" and "never happened" in event.message
    assert Task.objects.get(id=fresh.id).status == TaskStatus.PENDING  # too young to judge
    run_burst_worker("default")
    assert Task.objects.get(id=task.id).status == TaskStatus.COMPLETED


def test_flushed_redis_loses_no_queued_task(tmp_path, settings, start_process):
    settings.RECONCILE_PENDING_AFTER = 1
    marker = tmp_path / "runs"
    tasks = tasks_create_bulk(specs=[TaskSpec(kind="tests.append_marker", args={"marker": str(marker)})] * 1000)
    Task.objects.update(enqueued_at=timezone.now() - timedelta(seconds=5))
    get_redis().flushdb()
    assert get_queue("default").count == 0

    report = reconcile()

    assert report.repushed_queued == 1000
    assert get_queue("default").count == 1000
    worker = start_process("rqworker", "default", "--burst")
    worker.popen.wait(300)
    assert Task.objects.filter(status=TaskStatus.COMPLETED).count() == len(tasks)
    runs = marker.read_text().splitlines()
    assert len(runs) == 1000 and len(set(runs)) == 1000  # each task's handler ran exactly once


def test_queued_task_with_its_job_in_redis_is_left_alone(settings):
    settings.RECONCILE_PENDING_AFTER = 1
    task = task_create(kind="tests.echo")
    Task.objects.filter(id=task.id).update(enqueued_at=timezone.now() - timedelta(seconds=5))
    assert reconcile().total == 0
    assert get_queue("default").count == 1


def test_running_task_of_a_vanished_worker_is_retried(settings):
    settings.RECONCILE_PENDING_AFTER = 1
    settings.TASK_RETRY_DELAYS = [0]
    task = task_create(kind="tests.echo", max_retries=2)
    get_redis().flushdb()
    Task.objects.filter(id=task.id).update(
        status=TaskStatus.RUNNING,
        attempts=1,
        worker_name="host.default.0.gone",
        started_at=timezone.now() - timedelta(seconds=30),
    )

    report = reconcile()

    assert report.lost_running == 1
    task.refresh_from_db()
    assert task.status == TaskStatus.QUEUED
    event = task.events.get(event="retry_scheduled")
    assert "worker host.default.0.gone is gone" in event.message and event.actor == "reconciler"
    run_burst_worker("default")
    task.refresh_from_db()
    assert (task.status, task.attempts) == (TaskStatus.COMPLETED, 2)


def test_running_task_of_a_vanished_worker_fails_when_out_of_retries(settings):
    settings.RECONCILE_PENDING_AFTER = 1
    task = task_create(kind="tests.echo", max_retries=0)
    Task.objects.filter(id=task.id).update(
        status=TaskStatus.RUNNING, attempts=1, worker_name="gone", started_at=timezone.now() - timedelta(seconds=30)
    )
    reconcile()
    task.refresh_from_db()
    assert task.status == TaskStatus.FAILED
    assert "worker gone is gone" in task.error_message


def test_a_second_pass_while_one_runs_is_skipped():
    lock = get_redis().lock(LOCK_KEY, timeout=30)
    assert lock.acquire(blocking=False)
    try:
        assert reconcile().skipped_locked
    finally:
        lock.release()


def test_reconcile_tasks_command_prints_a_summary(capsys):
    Task.objects.create(kind="tests.echo", queue="default", created_at=timezone.now() - timedelta(minutes=1))
    call_command("reconcile_tasks")
    assert "enqueued 1 pending" in capsys.readouterr().out


def test_job_stranded_by_a_worker_that_died_right_after_taking_it_is_pushed_again(settings, tmp_path):
    settings.RECONCILE_PENDING_AFTER = 1
    marker = tmp_path / "runs"
    task = task_create(kind="tests.append_marker", args={"marker": str(marker)})
    queue = get_queue("default")
    # What a worker's dequeue does, before it dies without starting the job.
    get_redis().lmove(queue.key, queue.intermediate_queue_key)
    Task.objects.filter(id=task.id).update(enqueued_at=timezone.now() - timedelta(seconds=5))
    assert queue.count == 0

    report = reconcile()

    assert report.repushed_queued == 1
    assert "never started it" in task.events.get(event="requeued").message
    assert get_redis().llen(queue.intermediate_queue_key) == 0
    run_burst_worker("default")
    assert Task.objects.get(id=task.id).status == TaskStatus.COMPLETED
    assert len(marker.read_text().splitlines()) == 1
