"""The RQ worker classes kbmanager runs.

``TaskWorker`` forks a work-horse per job, as RQ's default worker does. That
costs a few milliseconds per job but buys what this system promises operators:
a job can be stopped (cancel of a running task kills its horse), a hard timeout
can always be enforced, and memory a handler leaks dies with its horse. The
parent imports Django, the database driver and every handler module before it
forks, so a horse starts with nothing left to import.

``SimpleTaskWorker`` runs jobs in the worker process itself: several times
faster per job for tiny jobs, but a running job cannot be stopped and a crash
takes the worker down. Select it with ``TASK_WORKER_CLASS`` only for queues of
short, trusted jobs.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import time
from typing import Any

import redis.exceptions
from django.conf import settings
from django.db import connections
from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer

from tasks.registry import run_worker_warm_ups

logger = logging.getLogger(__name__)


def _force_json(kwargs: dict[str, Any]) -> dict[str, Any]:
    # `manage.py rqworker` passes RQ's pickle serializer explicitly; our jobs
    # are JSON, so the worker class insists on it whatever it is given.
    kwargs["serializer"] = JSONSerializer
    return kwargs


class TaskWorker(Worker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("job_monitoring_interval", settings.WORKER_HEARTBEAT_INTERVAL)
        super().__init__(*args, **_force_json(kwargs))
        run_worker_warm_ups()
        # Warm-ups may have queried the database; the horse must open its own connection.
        connections.close_all()
        # Everything loaded so far lives as long as the worker: keep the garbage
        # collector from touching it in every horse, which would copy its pages.
        gc.collect()
        gc.freeze()

    def fork_work_horse(self, job, queue) -> None:  # noqa: ANN001 - RQ's signature
        # A connection must never be shared by parent and horse: close ours
        # (if the parent opened one) so the horse opens its own.
        connections.close_all()
        super().fork_work_horse(job, queue)

    def execute_job(self, job, queue) -> None:  # noqa: ANN001
        try:
            super().execute_job(job, queue)
        except redis.exceptions.ConnectionError as exc:
            # RQ retries Redis errors only while dequeuing; one met while it
            # watches a horse (a Redis restart mid-job) would end the worker.
            # The task's outcome lives in PostgreSQL and the reconciler repairs
            # whatever Redis lost, so wait for the horse and for Redis instead.
            logger.warning("lost Redis while running job %s (%s); waiting for the horse and for Redis", job.id, exc)
            self._reap_horse()
            self._wait_for_redis()

    def _reap_horse(self) -> None:
        if self._horse_pid:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._horse_pid, 0)  # the horse enforces its own job timeout
            self._horse_pid = 0

    def _wait_for_redis(self) -> None:
        delay = 1.0
        while True:
            try:
                self.connection.ping()
                break
            except redis.exceptions.ConnectionError:
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        # A restarted Redis without persistence has forgotten this worker;
        # register it again so monitoring and the reconciler see it alive.
        if not self.connection.hexists(self.key, "birth"):
            self.connection.delete(self.key)
            self.register_birth()

    def main_work_horse(self, job, queue) -> None:  # noqa: ANN001
        try:
            super().main_work_horse(job, queue)
        finally:
            connections.close_all()

    def perform_job(self, job, queue) -> bool:  # noqa: ANN001
        try:
            return super().perform_job(job, queue)
        finally:
            # The horse exits with os._exit(); close politely so PostgreSQL
            # does not log an unexpected EOF for every job.
            connections.close_all()

    def handle_job_failure(self, job, queue, started_job_registry=None, exc_string: str = "") -> None:  # noqa: ANN001
        super().handle_job_failure(job, queue, started_job_registry=started_job_registry, exc_string=exc_string)
        if self.is_horse:
            return  # The runner already recorded this failure in PostgreSQL.
        # In the parent this means the horse died without reporting: killed,
        # out of memory, or past its hard timeout. Count the attempt.
        from tasks.services import task_handle_lost_attempt

        timeout = job.timeout or 0
        elapsed = (job.ended_at - job.started_at).total_seconds() if job.ended_at and job.started_at else 0
        if timeout and elapsed >= timeout:
            message = f"timed out after {timeout} s"
        else:
            message = (exc_string or "work-horse terminated unexpectedly").strip()
        try:
            task_handle_lost_attempt(task_id=job.id, worker_name=self.name, message=message)
        except Exception:
            logger.exception("could not record the lost attempt of task %s; the reconciler will", job.id)
        finally:
            connections.close_all()


class SimpleTaskWorker(SimpleWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_force_json(kwargs))
        run_worker_warm_ups()
