"""The RQ worker classes kbmanager runs.

``TaskWorker`` forks a work-horse per job, as RQ's default worker does. That
costs a few milliseconds per job but buys what this system promises operators:
a job can be stopped (cancel of a running task kills its horse), a hard timeout
can always be enforced, and memory a handler leaks dies with its horse. The
parent imports Django, the database driver and every handler module before it
forks, so a horse starts with nothing left to import. The parent also claims
each task and records its result on the one PostgreSQL connection it keeps
(see ``tasks.runner.AttemptHandoff``), so a horse whose handler needs no
database never opens a connection of its own.

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
import traceback
from typing import Any

import redis.exceptions
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, connections
from rq import SimpleWorker, Worker
from rq.serializers import JSONSerializer

from tasks import runner, services
from tasks.registry import run_worker_warm_ups

logger = logging.getLogger(__name__)

# How often the parent tries to record a result while PostgreSQL is unreachable,
# and the pause before each try; after that the reconciler runs the task again.
_RECORD_RESULT_PAUSES = (0, 0.5, 1, 2, 4, 8)

# Connections a horse inherited from its parent. They are kept referenced and
# never closed: closing one would end the parent's session on the server.
_INHERITED_CONNECTIONS: list[Any] = []


def _detach_inherited_connections() -> None:
    """In a fresh horse: forget the parent's connections, so the horse opens its own if it needs one."""
    for wrapper in connections.all(initialized_only=True):
        if wrapper.connection is not None:
            _INHERITED_CONNECTIONS.append(wrapper.connection)
            wrapper.connection = None


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
        self._handoff = runner.AttemptHandoff()
        self._prepared_connection: Any = None
        # Everything loaded so far lives as long as the worker: keep the garbage
        # collector from touching it in every horse, which would copy its pages.
        gc.collect()
        gc.freeze()

    def execute_job(self, job, queue) -> None:  # noqa: ANN001 - RQ's signature
        armed = self._claim_for_horse(job)
        try:
            self._execute_job(job, queue)
        except BaseException:
            # A shutdown (or a fault) interrupted us: keep a result the horse
            # handed over, but leave an unfinished attempt to the supervisor's
            # requeue and the reconciler, which know why the worker stopped.
            if armed:
                self._settle_attempt(job, count_lost=False)
            raise
        if armed:
            self._settle_attempt(job)

    def _claim_for_horse(self, job) -> bool:  # noqa: ANN001
        """Claim the job's task here in the parent and arm the handoff; False if the horse must claim itself."""
        if job.func_name != services.RUNNER or len(job.args) != 1:
            return False
        task_id = str(job.args[0])
        for attempt in range(2):
            try:
                self._prepare_connection()
                claimed = services.task_claim(task_id=task_id, worker_name=self.name)
                break
            except DatabaseError:
                # A connection the server dropped (restart, terminated backend)
                # only shows when used: reconnect once, else let the horse try.
                with contextlib.suppress(Exception):
                    connection.close()
                if attempt:
                    logger.warning("could not claim task %s here; its work-horse will", task_id, exc_info=True)
                    return False
            except Exception:
                logger.exception("could not claim task %s here; its work-horse will", task_id)
                return False
        # The runner looks the handoff up by module: this worker's, even if the
        # process made other workers before (tests do).
        runner.install_handoff(self._handoff)
        self._handoff.arm(task_id, claimed)
        return True

    def _prepare_connection(self) -> None:
        """Set up each new PostgreSQL session of this worker process once.

        Unless TASK_WORKER_SYNCHRONOUS_COMMIT is on, the claims and results this
        process records do not wait for their commit to reach the disk, which
        cost more than the rest of a short job. If the server crashes, the last
        fraction of a second of them can be lost; such a task is run again
        (the reconciler finds it queued without a job, or running nowhere), so
        nothing is lost but the work. Tasks are still created with a durable
        commit, and handlers' own queries (on the horse's connection) too.
        """
        if connection.connection is not None and connection.connection is self._prepared_connection:
            return
        connection.ensure_connection()
        if not settings.TASK_WORKER_SYNCHRONOUS_COMMIT:
            with connection.cursor() as cursor:
                cursor.execute("SET synchronous_commit TO off")
        self._prepared_connection = connection.connection

    def _settle_attempt(self, job, *, count_lost: bool = True) -> None:  # noqa: ANN001
        """After the horse: record the result it handed over, or count the attempt as lost if it left none."""
        task_id, claimed = self._handoff.task_id, self._handoff.claimed
        if task_id is None:
            return  # settled already (in handle_job_failure)
        self._handoff.disarm()
        if claimed is None:
            return  # the task was not queued any more; the horse only skipped it
        state, result_json = self._handoff.outcome()
        if state == runner.AttemptHandoff.RESULT:
            self._record_result(task_id, claimed.attempt, result_json)
            # The horse left this to us, so the reconciler never sees the
            # task running on a worker that says it is idle.
            with contextlib.suppress(redis.exceptions.RedisError):
                self.set_current_job_id(None)
        elif state == runner.AttemptHandoff.EMPTY and count_lost:
            self._record_lost_attempt(job, "work-horse ended without reporting an outcome")

    def _record_result(self, task_id: str, attempt: int, result_json: str) -> None:
        for pause in _RECORD_RESULT_PAUSES:
            if pause:
                time.sleep(pause)
            try:
                services.task_complete(task_id=task_id, attempt=attempt, result_json=result_json)
                return
            except (OperationalError, InterfaceError):
                with contextlib.suppress(Exception):
                    connection.close()
                logger.warning("could not record the result of task %s; retrying", task_id, exc_info=True)
            except Exception as exc:
                # The server refused the result itself: retrying would not help.
                logger.exception("could not record the result of task %s", task_id)
                with contextlib.suppress(Exception):
                    services.task_fail_attempt(
                        task_id=task_id,
                        attempt=attempt,
                        message=f"the task's result could not be stored: {exc}",
                        traceback=traceback.format_exc(),
                        permanent=True,
                    )
                return
        logger.error("gave up recording the result of task %s; the reconciler will run it again", task_id)

    def _record_lost_attempt(self, job, message: str) -> None:  # noqa: ANN001
        try:
            services.task_handle_lost_attempt(task_id=job.id, worker_name=self.name, message=message)
        except Exception:
            logger.exception("could not record the lost attempt of task %s; the reconciler will", job.id)
            with contextlib.suppress(Exception):
                connection.close()

    def set_current_job_id(self, job_id: str | None = None, pipeline: Any = None) -> None:
        if job_id is None and self.is_horse and getattr(self, "_handoff", None) and self._handoff.holds_result():
            return  # the parent clears it once PostgreSQL has the result
        super().set_current_job_id(job_id, pipeline=pipeline)

    def _execute_job(self, job, queue) -> None:  # noqa: ANN001
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
        _detach_inherited_connections()
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
        # In the parent this means the horse died before it exited normally:
        # killed, out of memory, or past its hard timeout. It may still have
        # handed over its result (then that counts); otherwise count the attempt.
        if self._handoff.task_id == job.id and self._handoff.outcome()[0] != runner.AttemptHandoff.EMPTY:
            self._settle_attempt(job)
            return
        self._handoff.disarm()
        timeout = job.timeout or 0
        elapsed = (job.ended_at - job.started_at).total_seconds() if job.ended_at and job.started_at else 0
        if timeout and elapsed >= timeout:
            message = f"timed out after {timeout} s"
        else:
            message = (exc_string or "work-horse terminated unexpectedly").strip()
        self._record_lost_attempt(job, message)


class SimpleTaskWorker(SimpleWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **_force_json(kwargs))
        run_worker_warm_ups()
