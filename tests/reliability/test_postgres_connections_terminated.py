"""PostgreSQL connections terminated (pg_terminate_backend) again and again while a worker runs a stream of tasks."""

from __future__ import annotations

import time

import pytest
from django.db import connection

from tasks.models import FINISHED_STATUSES, Task, TaskStatus
from tasks.reconciler import reconcile
from tasks.services import TaskSpec, task_create, tasks_create_bulk
from tests.conftest import wait_for
from tests.reliability.conftest import assert_each_task_completed_once, heartbeat_env, reconcile_until_all_finished

pytestmark = pytest.mark.django_db(transaction=True)


def _terminate_other_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def test_tasks_complete_and_the_worker_survives_terminated_connections(tmp_path, start_worker, settings):
    settings.RECONCILE_PENDING_AFTER = 1
    settings.TASK_RETRY_DELAYS = [0]
    marker = tmp_path / "runs"
    # Each task opens a connection for its claim, its progress report and its result,
    # so terminations land in every phase of a job.
    specs = [TaskSpec(kind="tests.sleep_reporting_pid", args={"seconds": 0.05, "marker": str(marker)}, max_retries=20)]
    tasks = tasks_create_bulk(specs=specs * 120)
    ids = [t.id for t in tasks]
    worker = start_worker("default", env=heartbeat_env())
    wait_for(lambda: Task.objects.filter(status=TaskStatus.COMPLETED).exists(), timeout=60, what="the first task")

    terminated = 0
    deadline = time.monotonic() + 90
    while Task.objects.filter(id__in=ids).exclude(status__in=FINISHED_STATUSES).exists():
        assert time.monotonic() < deadline, "tasks did not finish while connections were being terminated"
        terminated += _terminate_other_connections()
        reconcile()  # as the supervisor does periodically
        time.sleep(0.3)
    reconcile_until_all_finished(ids)

    assert terminated > 0
    assert_each_task_completed_once(tasks, marker)
    hit = Task.objects.filter(id__in=ids, attempts__gt=1).count()
    print(f"{terminated} connections terminated; {hit} tasks needed more than one attempt")
    assert not Task.objects.filter(status=TaskStatus.RUNNING).exists()
    extra = task_create(kind="tests.append_marker", args={"marker": str(marker)})
    wait_for(lambda: Task.objects.get(id=extra.id).status == TaskStatus.COMPLETED, what="a task afterwards")
    assert worker.alive(), worker.output()[-3000:]
