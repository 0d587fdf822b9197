"""Redis flushed (FLUSHDB) with 1,000 tasks queued while a real worker is taking them."""

from __future__ import annotations

import pytest

from kbmanager.queues import get_redis
from tasks.models import Task, TaskStatus
from tasks.services import TaskSpec, task_create, tasks_create_bulk
from tests.conftest import wait_for
from tests.reliability.conftest import assert_each_task_completed_once, heartbeat_env, reconcile_until_all_finished

pytestmark = pytest.mark.django_db(transaction=True)


def test_flush_under_a_running_worker_then_reconcile_completes_every_task_once(tmp_path, start_worker, settings):
    settings.RECONCILE_PENDING_AFTER = 1
    settings.TASK_RETRY_DELAYS = [0]
    marker = tmp_path / "runs"
    tasks = tasks_create_bulk(specs=[TaskSpec(kind="tests.append_marker", args={"marker": str(marker)})] * 1000)
    worker = start_worker("default", env=heartbeat_env())
    wait_for(
        lambda: Task.objects.filter(status=TaskStatus.COMPLETED).count() >= 20, timeout=60, what="the worker to start"
    )

    get_redis().flushdb()  # every queued job, the worker's registration and its registries are gone
    left_behind = Task.objects.exclude(status=TaskStatus.COMPLETED).count()
    assert left_behind > 0, "the worker finished everything before the flush; the test proves nothing"

    reconcile_until_all_finished([t.id for t in tasks], timeout=180)

    assert_each_task_completed_once(tasks, marker)
    assert Task.objects.filter(events__event="requeued", events__actor="reconciler").distinct().count() > 0
    # The worker carried on after the flush: it still takes new work.
    extra = task_create(kind="tests.append_marker", args={"marker": str(marker)})
    wait_for(lambda: Task.objects.get(id=extra.id).status == TaskStatus.COMPLETED, what="a task after the flush")
    assert worker.alive()
