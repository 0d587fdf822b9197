"""Helpers shared by the fault tests: counting handler runs and waiting for every task to end.

Handlers used here (``tests.append_marker``, ``tests.sleep_reporting_pid``) append
``"<task_id> <attempt>"`` to a marker file when they run to completion, so a test
can prove that no task's handler completed twice for one attempt and that the
attempt that completed the task ran exactly once.
"""

from __future__ import annotations

import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
import requests

from tasks.models import FINISHED_STATUSES, Task, TaskStatus
from tasks.reconciler import reconcile
from tests.conftest import ManagedProcess, free_port, process_env, wait_for


def read_runs(marker: Path) -> list[tuple[str, int]]:
    """The (task id, attempt) pairs whose handler ran to the end, in order."""
    if not marker.exists():
        return []
    runs = []
    for line in marker.read_text().splitlines():
        task_id, attempt = line.split()
        runs.append((task_id, int(attempt)))
    return runs


def assert_each_task_completed_once(tasks: Iterable[Task], marker: Path) -> None:
    """Every task completed, and its handler completed exactly once for the attempt that counted.

    A handler may also have completed during an attempt that was later lost (its
    result could not be recorded), but never twice for the same attempt.
    """
    ids = {str(task.id) for task in tasks}
    rows = dict(Task.objects.filter(id__in=ids).values_list("id", "status"))
    not_completed = {str(k): v for k, v in rows.items() if v != TaskStatus.COMPLETED}
    assert len(rows) == len(ids), "tasks were lost from PostgreSQL"
    assert not not_completed, f"{len(not_completed)} tasks did not complete: {list(not_completed.items())[:5]}"
    runs = [run for run in read_runs(marker) if run[0] in ids]
    duplicated = [run for run, count in Counter(runs).items() if count > 1]
    assert not duplicated, f"handlers completed twice for one attempt: {duplicated[:5]}"
    attempts = dict(Task.objects.filter(id__in=ids).values_list("id", "attempts"))
    final_runs = Counter(task_id for task_id, attempt in runs if attempts[uuid.UUID(task_id)] == attempt)
    missing = [task_id for task_id in ids if final_runs[task_id] != 1]
    assert not missing, f"{len(missing)} tasks completed without their handler's final run: {missing[:5]}"


def reconcile_until_all_finished(task_ids: Iterable[object], *, timeout: float = 120.0) -> None:
    """Run reconciler passes (as the supervisor would, just more often) until every task has ended."""
    ids = [str(task_id) for task_id in task_ids]

    def all_finished() -> bool:
        reconcile()
        return not Task.objects.filter(id__in=ids).exclude(status__in=FINISHED_STATUSES).exists()

    try:
        wait_for(all_finished, timeout=timeout, interval=0.5, what=f"{len(ids)} tasks to end (with reconciler passes)")
    except BaseException:
        left = Task.objects.filter(id__in=ids).exclude(status__in=FINISHED_STATUSES)
        counts = Counter(left.values_list("status", flat=True))
        sample = list(left.values("id", "status", "attempts", "worker_name", "enqueued_at", "next_retry_at")[:3])
        print(f"unfinished tasks by status: {dict(counts)}; for example {sample}")
        raise


def heartbeat_env(seconds: int = 1) -> dict[str, str]:
    """Worker environment with a short heartbeat, so the reconciler can judge it dead quickly."""
    return {"WORKER_HEARTBEAT_INTERVAL": str(seconds), "TASK_RETRY_DELAYS": "0"}


@pytest.fixture
def start_gunicorn(tmp_path: Path) -> Iterator[Callable[..., tuple[ManagedProcess, str]]]:
    """Run the web process as the docs run it (``gunicorn kbmanager.wsgi``) against the test database and Redis."""
    started: list[ManagedProcess] = []

    def start(*, workers: int = 2, threads: int = 4, env: dict[str, str] | None = None) -> tuple[ManagedProcess, str]:
        port = free_port()
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        args = [gunicorn, "kbmanager.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]
        args += ["--threads", str(threads), "--log-level", "warning"]
        proc = ManagedProcess(args, process_env(**(env or {})), tmp_path / f"gunicorn-{len(started)}.log")
        started.append(proc)
        base_url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                return requests.get(f"{base_url}/api/monitoring/health", timeout=10).status_code < 500
            except requests.RequestException:
                return False

        wait_for(answers, timeout=60, interval=0.2, what="gunicorn to answer")
        return proc, base_url

    yield start
    for proc in started:
        proc.stop()
