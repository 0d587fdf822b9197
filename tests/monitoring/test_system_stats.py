from __future__ import annotations

import os
import signal
from datetime import timedelta

import pytest
from django.utils import timezone
from model_bakery import baker

from monitoring.stats import monitoring_redis, system_stats, task_duration_histograms, worker_stats
from tasks.models import Task, TaskStatus
from tasks.services import task_create
from tests.conftest import run_burst_worker, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_killed_without_registering_its_death_is_reported_stale(start_worker):
    proc = start_worker("default")
    wait_for(lambda: any(w["pid"] == proc.pid for w in worker_stats(monitoring_redis())), what="the worker")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.popen.wait(10)

    stats = system_stats()
    (entry,) = [w for w in stats["workers"] if w["pid"] == proc.pid]
    assert entry["alive"] is False
    assert entry["state"] == "stale"
    assert stats["queues"]["default"]["workers"] == 0
    assert stats["queues"]["default"]["workers_stale"] == 1


def test_finished_counts_are_served_from_the_shared_cache_and_refreshed_when_stale(settings):
    task_create(kind="tests.echo")
    run_burst_worker("default")
    assert system_stats()["tasks"]["by_status"]["completed"] == 1

    task_create(kind="tests.echo")
    run_burst_worker("default")
    stats = system_stats()
    assert stats["tasks"]["by_status"]["completed"] == 1  # still the cached figure
    assert stats["tasks"]["by_status"]["queued"] == 0  # unfinished tasks are always exact

    settings.MONITORING_COUNTS_REFRESH_SECONDS = 1
    wait_for(lambda: system_stats()["tasks"]["by_status"]["completed"] == 2, what="the background refresh")


def test_unfinished_tasks_are_counted_exactly_on_every_call():
    system_stats()  # fill the cache
    task_create(kind="tests.echo", queue="ai")
    counts = system_stats()["tasks"]["counts"]
    assert {"status": "queued", "queue": "ai", "kind": "tests.echo", "count": 1} in counts


def test_duration_histograms_bucket_run_and_wait_times_of_recently_finished_tasks():
    now = timezone.now()

    def finished(run: float, wait: float, *, ago: timedelta = timedelta(seconds=5), status=TaskStatus.COMPLETED):  # noqa: ANN202
        end = now - ago
        start = end - timedelta(seconds=run)
        baker.make(
            Task,
            kind="tests.echo",
            queue="default",
            status=status,
            enqueued_at=start - timedelta(seconds=wait),
            started_at=start,
            finished_at=end,
        )

    finished(0.3, 0.02)
    finished(4.0, 0.7)
    finished(45.0, 3.0, status=TaskStatus.FAILED)
    finished(1.0, 1.0, ago=timedelta(hours=2))  # outside the window
    finished(1.0, 1.0, status=TaskStatus.CANCELLED)  # not a run that finished

    h = task_duration_histograms(window_seconds=600)
    (run,) = h["run_seconds"]
    le = dict(run["buckets"])
    assert (run["queue"], run["kind"], run["count"]) == ("default", "tests.echo", 3)
    assert (le[0.25], le[0.5], le[5.0], le[30.0], le[60.0]) == (0, 1, 2, 2, 3)
    assert run["sum"] == pytest.approx(49.3, abs=0.01)
    (wait,) = h["queue_wait_seconds"]
    wait_le = dict(wait["buckets"])
    assert (wait_le[0.05], wait_le[1.0], wait_le[2.5], wait_le[5.0]) == (1, 2, 2, 3)
