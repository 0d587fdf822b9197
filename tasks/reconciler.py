"""Repairs the difference between PostgreSQL (the truth) and Redis (the transport).

A pass looks for four kinds of trouble and fixes each through the services,
writing a TaskEvent with the reason:

- ``pending`` tasks older than RECONCILE_PENDING_AFTER: the process that created
  them died between commit and enqueue. They are enqueued.
- ``queued`` tasks whose job is gone from Redis (a flush, a restart without
  persistence, an eviction) or already ended there, and queued retries whose
  time has passed but which sit in no queue or schedule. They are pushed again.
- ``running`` tasks whose worker is gone (no worker key, or no heartbeat for
  three heartbeat intervals) or no longer runs them. The attempt counts as
  failed, and the task is retried or failed like any other failure.

Every change is a compare-and-set, so passes on several hosts at once cannot
corrupt a task; a short Redis lock also keeps them from doing the same work twice.
A job pushed twice is harmless: the runner's claim lets only one run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rq import Worker
from rq.serializers import JSONSerializer

from kbmanager.queues import get_queue, get_redis
from tasks.models import Task, TaskStatus
from tasks.services import task_handle_lost_attempt, tasks_enqueue_pending, tasks_repush_queued

logger = logging.getLogger(__name__)

LOCK_KEY = "kbmanager:reconciler:lock"
BATCH_SIZE = 1000
# RQ job states in which the job will still run (or is running) without help.
_LIVE_JOB_STATES = {b"queued", b"started", b"scheduled", b"deferred"}


@dataclass
class ReconcileReport:
    enqueued_pending: int = 0
    repushed_queued: int = 0
    lost_running: int = 0
    skipped_locked: bool = False
    details: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.enqueued_pending + self.repushed_queued + self.lost_running

    def summary(self) -> str:
        if self.skipped_locked:
            return "another reconciler pass is running; skipped"
        return (
            f"enqueued {self.enqueued_pending} pending, re-pushed {self.repushed_queued} queued without a job, "
            f"recovered {self.lost_running} running on a lost worker"
        )


def reconcile(*, actor: str = "reconciler", use_lock: bool = True) -> ReconcileReport:
    """Run one reconciler pass and report what it repaired."""
    report = ReconcileReport()
    redis = get_redis()
    lock = redis.lock(LOCK_KEY, timeout=300, blocking=False) if use_lock else None
    if lock is not None and not lock.acquire(blocking=False):
        report.skipped_locked = True
        return report
    try:
        _enqueue_stale_pending(report, actor)
        _repush_queued_without_job(report, actor)
        _recover_lost_running(report, actor)
    finally:
        if lock is not None:
            try:
                lock.release()
            except Exception:  # the lock expired during a very long pass
                logger.warning("reconciler lock expired before the pass ended")
    return report


def _enqueue_stale_pending(report: ReconcileReport, actor: str) -> None:
    cutoff = timezone.now() - timedelta(seconds=settings.RECONCILE_PENDING_AFTER)
    while True:
        ids = list(
            Task.objects.filter(status=TaskStatus.PENDING, created_at__lt=cutoff).values_list("id", flat=True)[
                :BATCH_SIZE
            ]
        )
        if not ids:
            return
        report.enqueued_pending += tasks_enqueue_pending(
            task_ids=ids, actor=actor, reason="the enqueue after commit never happened"
        )
        if len(ids) < BATCH_SIZE:
            return


def _repush_queued_without_job(report: ReconcileReport, actor: str) -> None:
    now = timezone.now()
    # Give a fresh enqueue time to reach Redis, and a due retry time for the scheduler to act.
    cutoff = now - timedelta(seconds=settings.RECONCILE_PENDING_AFTER)
    redis = get_redis()
    # A worker moves a job to its queue's intermediate list when it takes it, and
    # out again when it starts it; one that dies in between strands the job there
    # (still "queued" in its hash) until RQ's maintenance, many minutes later.
    intermediate_keys = {name: get_queue(name).intermediate_queue_key for name in settings.QUEUE_NAMES}
    with redis.pipeline(transaction=False) as pipe:
        for key in intermediate_keys.values():
            pipe.lrange(key, 0, -1)
        taken = {
            name: {job_id.decode() for job_id in members}
            for name, members in zip(intermediate_keys, pipe.execute(), strict=True)
        }
    last_id = None
    while True:
        qs = Task.objects.filter(status=TaskStatus.QUEUED, enqueued_at__lt=cutoff).order_by("id")
        if last_id is not None:
            qs = qs.filter(id__gt=last_id)
        rows = list(qs.values_list("id", "queue", "next_retry_at")[:BATCH_SIZE])
        if not rows:
            return
        last_id = rows[-1][0]
        with redis.pipeline(transaction=False) as pipe:
            for task_id, queue_name, _ in rows:
                pipe.hmget(f"rq:job:{task_id}", "status", "worker_name")
                pipe.zscore(get_queue(queue_name).scheduled_job_registry.key, str(task_id))
            answers = pipe.execute()
        lost: list[tuple] = []
        workers: dict[str, Worker | None] = {}
        stranded: list[tuple[str, str]] = []
        for index, (task_id, queue_name, _retry_at) in enumerate(rows):
            (status, job_worker), scheduled_at = answers[2 * index], answers[2 * index + 1]
            if status not in _LIVE_JOB_STATES:
                lost.append((task_id, f"its job was missing from Redis (state {_state(status)})"))
            elif status == b"queued" and str(task_id) in taken.get(queue_name, ()):
                # Pushing it again may race a live worker that is just starting it;
                # the runner's claim lets only one of the two run.
                lost.append((task_id, "its job was taken off the queue by a worker that never started it"))
                stranded.append((intermediate_keys[queue_name], str(task_id)))
            elif status == b"scheduled" and scheduled_at is None:
                lost.append((task_id, "its retry was due but the job was in no schedule"))
            elif status == b"started":
                # A worker took the job but the task was never claimed: the worker
                # died between dequeue and claim. RQ's own registry cleanup would
                # notice only many minutes later, so judge the worker here.
                name = job_worker.decode() if job_worker else ""
                reason = _worker_trouble(redis, workers, name, str(task_id), now)
                if reason:
                    lost.append((task_id, f"its job was taken by a worker that {reason}"))
        if stranded:
            with redis.pipeline(transaction=False) as pipe:
                for key, job_id in stranded:
                    pipe.lrem(key, 0, job_id)
                pipe.execute()
        if lost:
            report.repushed_queued += tasks_repush_queued(task_ids=[t for t, _ in lost], reason=lost[0][1], actor=actor)
            report.details += [f"{t}: {why}" for t, why in lost[:20]]
        if len(rows) < BATCH_SIZE:
            return


def _state(status: bytes | None) -> str:
    return status.decode() if status else "gone"


def _worker_trouble(redis, workers: dict[str, Worker | None], name: str, task_id: str, now) -> str | None:  # noqa: ANN001
    """Why worker ``name`` is not running ``task_id`` (gone, silent, busy elsewhere), or None if it is."""
    if name not in workers:
        workers[name] = (
            Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=redis, serializer=JSONSerializer)
            if name
            else None
        )
    worker = workers[name]
    if worker is None:
        return "is gone"
    dead_after = timedelta(seconds=3 * settings.WORKER_HEARTBEAT_INTERVAL)
    if worker.last_heartbeat and now - worker.last_heartbeat > dead_after:
        return f"sent no heartbeat since {worker.last_heartbeat:%Y-%m-%d %H:%M:%S}"
    if worker.get_current_job_id() != task_id:
        return "is not running the task any more"
    return None


def _recover_lost_running(report: ReconcileReport, actor: str) -> None:
    redis = get_redis()
    now = timezone.now()
    grace = timedelta(seconds=settings.RECONCILE_PENDING_AFTER)
    rows = list(
        Task.objects.filter(status=TaskStatus.RUNNING, started_at__lt=now - grace).values_list(
            "id", "worker_name", "attempts"
        )[: BATCH_SIZE * 10]
    )
    if not rows:
        return
    workers: dict[str, Worker | None] = {}
    for task_id, worker_name, _attempts in rows:
        trouble = _worker_trouble(redis, workers, worker_name, str(task_id), now)
        if trouble is None:
            continue
        reason = f"worker {worker_name or '(unknown)'} {trouble}"
        outcome = task_handle_lost_attempt(
            task_id=str(task_id), worker_name=worker_name, message=f"{reason} (found by the reconciler)", actor=actor
        )
        if outcome.retry_in is not None or outcome.failed:
            report.lost_running += 1
            report.details.append(f"{task_id}: {reason}")
