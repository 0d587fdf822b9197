from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from kbmanager.queues import get_queue, get_redis
from tasks.models import RetentionPolicy, Task, TaskEvent
from tasks.retention import tasks_purge
from tasks.services import task_create
from tests.conftest import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def _ids(*tasks):
    return {t.id for t in tasks}


def test_purge_deletes_finished_tasks_older_than_their_policy_with_their_events(policies, make_task):
    old_completed = make_task("completed", age_days=8, events=True)
    old_cancelled = make_task("cancelled", age_days=8, events=True)
    recent_failed = make_task("failed", age_days=8, events=True)
    old_failed = make_task("failed", age_days=31, events=True)
    recent_completed = make_task("completed", age_days=6, events=True)
    result = tasks_purge(dry_run=False)
    assert result.total == 3
    assert set(Task.objects.values_list("id", flat=True)) == _ids(recent_failed, recent_completed)
    assert not TaskEvent.objects.filter(task_id__in=_ids(old_completed, old_cancelled, old_failed)).exists()
    assert TaskEvent.objects.count() == 2


def test_deleting_a_task_row_in_sql_deletes_its_events(make_task):
    # The purge deletes task rows only and relies on the foreign key's ON DELETE CASCADE for their events.
    gone = make_task("completed", age_days=8, events=True)
    kept = make_task("completed", age_days=8, events=True)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tasks_task WHERE id = %s", [gone.id])
    assert not TaskEvent.objects.filter(task_id=gone.id).exists()
    assert TaskEvent.objects.filter(task_id=kept.id).count() == 1


def _purge_in_own_connection():
    try:
        return tasks_purge(dry_run=False)
    finally:
        connections.close_all()


def _wait_for_a_lock_wait(seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the purge never waited for the row the worker holds")


def test_a_task_retried_while_its_batch_is_deleted_survives_with_its_history(policies, make_task):
    retried = make_task("failed", age_days=31, events=True)
    expired = make_task("failed", age_days=31, events=True)
    worker = connections.create_connection("default")
    try:
        worker.set_autocommit(False)
        with worker.cursor() as cursor:
            cursor.execute("UPDATE tasks_task SET status = 'queued', finished_at = NULL WHERE id = %s", [retried.id])
        with ThreadPoolExecutor(max_workers=1) as pool:
            purge = pool.submit(_purge_in_own_connection)
            _wait_for_a_lock_wait()
            worker.commit()
            result = purge.result(timeout=30)
    finally:
        worker.close()
    assert result.total == 1
    assert set(Task.objects.values_list("id", flat=True)) == _ids(retried)
    assert TaskEvent.objects.filter(task_id=retried.id).count() == 1
    assert not TaskEvent.objects.filter(task_id=expired.id).exists()


def test_active_tasks_survive_however_old_they_are(policies, make_task):
    active = [make_task(status, age_days=400) for status in ("pending", "queued", "running")]
    RetentionPolicy.objects.update(days=1)
    assert tasks_purge(dry_run=False).total == 0
    assert set(Task.objects.values_list("id", flat=True)) == _ids(*active)


def test_age_counts_from_finished_at_and_falls_back_to_created_at(policies, make_task):
    from django.utils import timezone

    finished_recently = make_task("completed", age_days=100, finished_at=timezone.now())
    never_finished = make_task("completed", age_days=10, finished_at=None)
    tasks_purge(dry_run=False)
    assert set(Task.objects.values_list("id", flat=True)) == _ids(finished_recently)
    assert not Task.objects.filter(id=never_finished.id).exists()


def test_a_queue_policy_overrides_the_general_one_for_its_queue(policies, make_task):
    RetentionPolicy.objects.create(status="completed", queue="ai", days=60)
    kept_ai = make_task("completed", queue="ai", age_days=20)
    gone_ai = make_task("completed", queue="ai", age_days=61)
    gone_parsing = make_task("completed", queue="parsing", age_days=20)
    result = tasks_purge(dry_run=False)
    assert set(Task.objects.values_list("id", flat=True)) == _ids(kept_ai)
    assert result.deleted == {("completed", "ai"): 1, ("completed", "parsing"): 1}
    assert not Task.objects.filter(id__in=_ids(gone_ai, gone_parsing)).exists()


def test_dry_run_counts_per_status_and_queue_and_deletes_nothing(policies, make_task):
    make_task("completed", queue="parsing", age_days=8)
    make_task("completed", queue="parsing", age_days=9)
    make_task("failed", queue="ai", age_days=40)
    result = tasks_purge(dry_run=True)
    assert result.deleted == {("completed", "parsing"): 2, ("failed", "ai"): 1}
    assert Task.objects.count() == 3
    assert result.summary() == "would delete 3 finished tasks (completed 2, failed 1)"


def test_purge_works_in_batches_and_reports_progress(policies, make_task):
    for _ in range(7):
        make_task("completed", age_days=8, events=True)
    calls = []
    result = tasks_purge(dry_run=False, batch_size=3, progress=lambda done, total: calls.append((done, total)))
    assert result.total == 7
    assert result.batches == 3
    assert calls == [(0, 7), (3, 7), (6, 7), (7, 7)]
    assert Task.objects.count() == 0


def test_purge_deletes_the_rq_job_keys_left_for_purged_tasks(policies, settings):
    settings.RQ_RESULT_TTL = 3600  # keep the finished job around so there is something to clean up
    task = task_create(kind="tests.always_fail", max_retries=0)
    run_burst_worker("default")
    redis = get_redis()
    assert redis.exists(f"rq:job:{task.id}")
    assert get_queue("default").failed_job_registry.count == 1
    Task.objects.filter(id=task.id).update(finished_at=task.created_at.replace(year=2000))
    result = tasks_purge(dry_run=False)
    assert result.total == 1
    assert not redis.exists(f"rq:job:{task.id}")
    assert not redis.exists(f"rq:results:{task.id}")
    assert get_queue("default").failed_job_registry.count == 0


def test_recent_task_keeps_its_rq_job(policies, settings):
    task = task_create(kind="tests.always_fail", max_retries=0)
    run_burst_worker("default")
    tasks_purge(dry_run=False)
    assert Task.objects.filter(id=task.id).exists()
    assert get_redis().exists(f"rq:job:{task.id}")
