from __future__ import annotations

import os
import signal

import pytest
from django.core.management import call_command
from rq import Worker

from kbmanager.queues import get_redis
from tasks.models import Task, TaskStatus
from tasks.services import task_create
from tests.conftest import pid_alive, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

COUNTS = {"WORKER_COUNT_PARSING": "2", "WORKER_COUNT_AI": "1", "WORKER_COUNT_NOTION": "0", "WORKER_COUNT_DEFAULT": "1"}


def _workers_by_queue() -> dict[str, list[Worker]]:
    found: dict[str, list[Worker]] = {}
    for worker in Worker.all(connection=get_redis()):
        for name in worker.queue_names():
            found.setdefault(name, []).append(worker)
    return found


def _counts() -> dict[str, int]:
    return {queue: len(workers) for queue, workers in _workers_by_queue().items()}


def test_start_workers_starts_the_configured_counts_and_replaces_a_killed_worker(start_process):
    supervisor = start_process("start_workers", env=COUNTS)
    wait_for(lambda: _counts() == {"parsing": 2, "ai": 1, "default": 1}, timeout=60, what="4 workers")

    victim = _workers_by_queue()["parsing"][0]
    os.kill(victim.pid, signal.SIGKILL)
    # The dead worker's registration lingers in Redis until its TTL; look for a new live one.
    wait_for(
        lambda: (
            any(w.name != victim.name for w in _workers_by_queue().get("parsing", []))
            and len([w for w in _workers_by_queue()["parsing"] if w.name != victim.name]) == 2
        ),
        timeout=60,
        what="a replacement parsing worker",
    )
    assert "exited with" in supervisor.output()

    supervisor.signal(signal.SIGTERM)
    supervisor.popen.wait(60)
    assert supervisor.popen.returncode == 0
    live = [w for w in Worker.all(connection=get_redis()) if w.name != victim.name]
    assert live == []


def test_start_workers_runs_one_queue_with_the_given_worker_count(start_process):
    supervisor = start_process("start_workers", "--queue", "parsing", "--workers", "3")
    wait_for(lambda: _counts() == {"parsing": 3}, timeout=60, what="3 parsing workers")
    task = task_create(kind="tests.echo", queue="parsing")
    wait_for(lambda: Task.objects.get(id=task.id).status == TaskStatus.COMPLETED, what="task on parsing")
    supervisor.stop()


def test_sigterm_lets_a_running_job_finish(start_process):
    supervisor = start_process("start_workers", "--queue", "default", "--workers", "1")
    wait_for(lambda: _counts() == {"default": 1}, timeout=60, what="worker")
    task = task_create(kind="tests.sleep_reporting_pid", args={"seconds": 3})
    wait_for(lambda: Task.objects.get(id=task.id).status == TaskStatus.RUNNING, what="task to start")

    supervisor.signal(signal.SIGTERM)
    supervisor.popen.wait(60)

    task.refresh_from_db()
    assert task.status == TaskStatus.COMPLETED


def test_job_still_running_after_the_grace_period_is_requeued_not_lost(start_process):
    supervisor = start_process(
        "start_workers", "--queue", "default", "--workers", "1", env={"WORKER_SHUTDOWN_TIMEOUT": "1"}
    )
    wait_for(lambda: _counts() == {"default": 1}, timeout=60, what="worker")
    task = task_create(kind="tests.sleep_reporting_pid", args={"seconds": 60})
    wait_for(lambda: Task.objects.get(id=task.id).status == TaskStatus.RUNNING, what="task to start")

    supervisor.signal(signal.SIGTERM)
    supervisor.popen.wait(60)

    task.refresh_from_db()
    assert task.status == TaskStatus.QUEUED
    assert task.events.filter(event="requeued", actor="supervisor").exists()
    assert get_redis().lpos("rq:queue:default", str(task.id)) is not None


def test_start_workers_stats_prints_every_queue(capsys):
    task_create(kind="tests.echo", queue="ai")
    call_command("start_workers", "--stats")
    out = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}
    assert set(lines) >= {"parsing", "ai", "notion", "default"}
    assert lines["ai"][3] == "1"  # one queued job


def test_workers_stop_when_the_supervisor_is_killed(start_process):
    supervisor = start_process("start_workers", "--queue", "default", "--workers", "2")
    wait_for(lambda: _counts() == {"default": 2}, timeout=60, what="2 workers")
    pids = [w.pid for w in _workers_by_queue()["default"]]

    os.kill(supervisor.pid, signal.SIGKILL)

    wait_for(lambda: not any(pid_alive(pid) for pid in pids), timeout=30, what="orphaned workers to stop")
