"""Redis restarted (without persistence, so every key is lost) while a worker runs.

The shared Redis on 6379 is never touched: the test starts its own throwaway
``redis-server`` on a free port, points this process's settings and the
worker's environment at it, and kills and restarts it mid-run.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tasks.models import Task, TaskStatus
from tasks.services import TaskSpec, task_create, tasks_create_bulk
from tests.conftest import free_port, wait_for
from tests.reliability.conftest import assert_each_task_completed_once, heartbeat_env, reconcile_until_all_finished

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs the redis-server binary"),
]


class ThrowawayRedis:
    """A redis-server this test owns: no snapshot, no append-only file, so a restart starts empty."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        wait_for(lambda: self._pings(client), timeout=10, interval=0.05, what="redis-server to accept connections")

    @staticmethod
    def _pings(client: redis.Redis) -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def throwaway_redis(tmp_path: Path, settings) -> Iterator[ThrowawayRedis]:
    server = ThrowawayRedis(tmp_path)
    server.start()
    # django_rq builds a connection from RQ_QUEUES on every call, so overriding
    # the settings is enough to point this process at the throwaway server.
    settings.REDIS_URL = server.url
    settings.RQ_QUEUES = {name: {**config, "URL": server.url} for name, config in settings.RQ_QUEUES.items()}
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": server.url}}
    try:
        yield server
    finally:
        server.kill()


def test_workers_reconnect_after_a_redis_restart_and_every_task_completes(
    tmp_path, throwaway_redis, start_worker, settings
):
    settings.RECONCILE_PENDING_AFTER = 1
    settings.TASK_RETRY_DELAYS = [0]
    marker = tmp_path / "runs"
    env = {**heartbeat_env(), "REDIS_URL": throwaway_redis.url}
    slow = [TaskSpec(kind="tests.sleep_reporting_pid", args={"seconds": 1, "marker": str(marker)})] * 5
    quick = [TaskSpec(kind="tests.append_marker", args={"marker": str(marker)})] * 300
    tasks = tasks_create_bulk(specs=slow + quick)
    worker = start_worker("default", env=env)
    wait_for(lambda: Task.objects.filter(status=TaskStatus.COMPLETED).exists(), timeout=60, what="the first task")

    throwaway_redis.kill()
    time.sleep(1)  # the worker meets a dead server for a moment, as in a real restart
    throwaway_redis.start()
    assert Task.objects.exclude(status=TaskStatus.COMPLETED).exists(), "all done before the restart; proves nothing"

    try:
        reconcile_until_all_finished([t.id for t in tasks], timeout=120)
    except BaseException:
        print(worker.output()[-3000:])
        raise

    assert_each_task_completed_once(tasks, marker)
    extra = task_create(kind="tests.append_marker", args={"marker": str(marker)})
    wait_for(lambda: Task.objects.get(id=extra.id).status == TaskStatus.COMPLETED, what="a task after the restart")
    assert worker.alive(), worker.output()[-3000:]
