"""Every change to a task's state, and every enqueue, goes through here.

State changes are compare-and-set updates that write a ``TaskEvent`` in the
same statement, so a worker, an admin click, the API and the reconciler can race
without corrupting a task: whoever loses the race changes nothing. Jobs are
pushed to Redis only after the creating transaction commits; a push that fails
leaves the task in PostgreSQL for the reconciler to enqueue again.
"""

from __future__ import annotations

import json
import logging
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rq.command import send_stop_job_command
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.serializers import JSONSerializer

from kbmanager.queues import get_queue, get_redis, job_ids_by_queue, queue_timeout
from tasks.exceptions import TaskConflict, TaskNotFound, TaskStateError
from tasks.models import (
    ACTIVE_STATUSES,
    RETRYABLE_STATUSES,
    Task,
    TaskEvent,
    TaskEventType,
    TaskStatus,
    default_max_retries,
)
from tasks.registry import get_kind

logger = logging.getLogger(__name__)

RUNNER = "tasks.runner.run_task"

_EVENT_INSERT = """
    INSERT INTO tasks_taskevent (task_id, event, created_at, attempt, worker_name, actor, message, traceback)
"""


@dataclass(frozen=True)
class TaskSpec:
    """What to run: a registered kind, its JSON arguments and an optional link."""

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    link_id: int | None = None
    queue: str | None = None
    max_retries: int | None = None


@dataclass(frozen=True)
class ClaimedTask:
    id: uuid.UUID
    kind: str
    args: dict[str, Any]
    attempt: int
    queue: str
    link_id: int | None


@dataclass(frozen=True)
class AttemptOutcome:
    """What happened to a failed attempt: retried after ``retry_in`` seconds, failed, or neither (lost race)."""

    retry_in: int | None = None
    failed: bool = False


# --- creating and enqueueing -------------------------------------------------


@dataclass(frozen=True)
class _NewTaskRow:
    id: uuid.UUID
    kind: str
    queue: str
    args: dict[str, Any]
    args_json: str
    max_retries: int
    link_id: int | None


def _validate_specs(specs: Sequence[TaskSpec]) -> list[_NewTaskRow]:
    """Check every spec before anything is written: a registered kind, a configured queue, JSON arguments."""
    default_retries = default_max_retries()
    rows = []
    for spec in specs:
        queue = spec.queue or get_kind(spec.kind).queue
        if queue not in settings.QUEUE_NAMES:
            raise ValueError(f"unknown queue {queue!r}")
        rows.append(
            _NewTaskRow(
                id=uuid.uuid4(),
                kind=spec.kind,
                queue=queue,
                args=spec.args,
                args_json=json.dumps(spec.args),  # fails here, in the caller, on arguments that are not JSON
                max_retries=default_retries if spec.max_retries is None else spec.max_retries,
                link_id=spec.link_id,
            )
        )
    return rows


def _task_instances(rows: Sequence[_NewTaskRow], created_at: Any) -> list[Task]:
    """Model instances of rows just inserted.

    Built from field values in column order, as Django builds query results:
    ``Task(**kwargs)`` resolves every default again for each instance and took a
    fifth of a 10,000-task bulk create.
    """
    names = [field.attname for field in Task._meta.concrete_fields]
    template = Task(status=TaskStatus.PENDING, created_at=created_at)
    base = [getattr(template, name) for name in names]
    position = {name: index for index, name in enumerate(names)}
    varying = [position[name] for name in ("id", "kind", "queue", "args", "max_retries", "link_id")]
    instances = []
    for row in rows:
        values = base.copy()
        own = (row.id, row.kind, row.queue, row.args, row.max_retries, row.link_id)
        for index, value in zip(varying, own, strict=True):
            values[index] = value
        instances.append(Task.from_db("default", names, values))
    return instances


def task_create(
    *,
    kind: str,
    args: dict[str, Any] | None = None,
    link_id: int | None = None,
    queue: str | None = None,
    max_retries: int | None = None,
    actor: str = "",
) -> Task:
    """Create a task and enqueue it once the surrounding transaction commits."""
    return tasks_create_bulk(
        specs=[TaskSpec(kind=kind, args=args or {}, link_id=link_id, queue=queue, max_retries=max_retries)],
        actor=actor,
    )[0]


def tasks_create_bulk(*, specs: Sequence[TaskSpec], actor: str = "") -> list[Task]:
    """Insert many tasks in one statement and enqueue them in one Redis round trip after commit."""
    rows = _validate_specs(specs)
    if not rows:
        return []
    now = timezone.now()
    with transaction.atomic():
        # One INSERT ... SELECT FROM unnest() per 10,000 rows: several times
        # faster than bulk_create's VALUES list for wide rows.
        for start in range(0, len(rows), 10_000):
            chunk = rows[start : start + 10_000]
            with connection.cursor() as cursor:
                cursor.execute(
                    """
                    INSERT INTO tasks_task (id, kind, queue, status, args, error_message, traceback, attempts,
                        max_retries, retry_base, progress, progress_message, link_id, worker_name, created_at,
                        cancel_requested_by)
                    SELECT u.id, u.kind, u.queue, 'pending', u.args::jsonb, '', '', 0, u.max_retries, 0, 0, '',
                        u.link_id, '', %(now)s, ''
                    FROM unnest(%(ids)s::uuid[], %(kinds)s::text[], %(queues)s::text[], %(args)s::text[],
                                %(retries)s::int[], %(links)s::bigint[])
                        AS u(id, kind, queue, args, max_retries, link_id)
                    """,
                    {
                        "now": now,
                        "ids": [row.id for row in chunk],
                        "kinds": [row.kind for row in chunk],
                        "queues": [row.queue for row in chunk],
                        "args": [row.args_json for row in chunk],
                        "retries": [row.max_retries for row in chunk],
                        "links": [row.link_id for row in chunk],
                    },
                )
        ids = [row.id for row in rows]
        transaction.on_commit(lambda: tasks_enqueue_pending(task_ids=ids, actor=actor), robust=True)
    return _task_instances(rows, now)


def tasks_enqueue_pending(*, task_ids: Iterable[uuid.UUID], actor: str = "", reason: str = "") -> int:
    """Move pending tasks to queued (with an event each) and push their jobs to Redis.

    The row is marked queued before the push, so a task can never be running in
    a worker while PostgreSQL still says pending. If the push fails the task is
    queued without a job, which the reconciler repairs.
    """
    rows = _move_tasks(
        task_ids=task_ids,
        from_status=TaskStatus.PENDING,
        assignments="status = 'queued', enqueued_at = %(now)s",
        event=TaskEventType.ENQUEUED,
        actor=actor,
        reason=reason,
    )
    # Tasks enqueued for the first time have never had a job, so nothing to clear in RQ's registries.
    _push_fresh_jobs(rows)
    return len(rows)


# The job hashes of many fresh tasks differ only in their id and call data. RQ
# builds and sends each field of each hash in Python, which made the push the
# slowest part of a bulk create; this script writes the same hashes (a template
# made by RQ itself, see _fresh_job_template) and pushes all ids at once.
_PUSH_FRESH_JOBS_LUA = """
local nfields = tonumber(ARGV[1])
local fields = {}
for i = 1, 2 * nfields do
    fields[i] = ARGV[1 + i]
end
local ids = {}
for k = 2, #KEYS do
    local id = ARGV[2 * nfields + 2 * k - 2]
    redis.call('HSET', KEYS[k], 'description', id, 'data', ARGV[2 * nfields + 2 * k - 1], unpack(fields))
    ids[#ids + 1] = id
end
redis.call('RPUSH', KEYS[1], unpack(ids))
return #ids
"""
# Jobs per script call: bounded by Lua's stack for unpack(), and short enough
# that Redis is never busy for more than a few milliseconds.
_PUSH_FRESH_CHUNK = 1_000
_TEMPLATE_JOB_ID = "00000000-0000-0000-0000-000000000000"


def _fresh_job_template(queue_name: str) -> tuple[list[Any], bytes]:
    """The fields RQ writes for a freshly enqueued task job (without id-bearing ones), and its uncompressed data."""
    queue = get_queue(queue_name)
    job = _create_job(queue, _TEMPLATE_JOB_ID)
    queue._prepare_for_queue(job)  # what Queue.enqueue_job sets: origin, enqueued_at, status
    fields = job.to_dict()
    for per_job in ("description", "data"):
        fields.pop(per_job)
    for name, value in fields.items():
        if _TEMPLATE_JOB_ID in str(value):
            raise RuntimeError(f"RQ job field {name!r} carries the job id; the bulk push cannot template it")
    flat: list[Any] = []
    for name, value in fields.items():
        flat += [name, value]
    return flat, job.data


def _push_fresh_jobs(entries: Sequence[tuple[uuid.UUID | str, str]]) -> None:
    """Create and queue the RQ jobs of tasks that never had one, in one round trip."""
    if not entries:
        return
    redis = get_redis()
    script = redis.register_script(_PUSH_FRESH_JOBS_LUA)
    by_queue = job_ids_by_queue(entries)
    with redis.pipeline(transaction=False) as pipe:
        for queue_name, job_ids in by_queue.items():
            fields, data = _fresh_job_template(queue_name)
            template_id = _TEMPLATE_JOB_ID.encode()
            queue_key = get_queue(queue_name).key
            for start in range(0, len(job_ids), _PUSH_FRESH_CHUNK):
                chunk = job_ids[start : start + _PUSH_FRESH_CHUNK]
                args: list[Any] = [len(fields) // 2, *fields]
                for job_id in chunk:
                    args += [job_id, zlib.compress(data.replace(template_id, job_id.encode()))]
                script(keys=[queue_key, *(Job.key_for(job_id) for job_id in chunk)], args=args, client=pipe)
        pipe.execute()


def _create_job(queue: Any, job_id: str) -> Job:
    return queue.create_job(
        RUNNER,
        args=(job_id,),
        job_id=job_id,
        timeout=queue_timeout(queue.name),
        result_ttl=settings.RQ_RESULT_TTL,
        failure_ttl=settings.RQ_FAILURE_TTL,
        description=job_id,
    )


def _move_tasks(
    *,
    task_ids: Iterable[uuid.UUID | str],
    from_status: str,
    assignments: str,
    event: str,
    actor: str,
    reason: str,
    event_worker: bool = False,
) -> list[tuple[uuid.UUID, str]]:
    """Compare-and-set many tasks still in ``from_status``, writing one event each; returns their (id, queue).

    ``assignments`` is the SQL SET list (it may use ``%(now)s``); ``event_worker``
    records the task's last worker on the event.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH t AS (
                UPDATE tasks_task SET {assignments}
                WHERE id = ANY(%(ids)s::uuid[]) AND status = %(from_status)s
                RETURNING id, queue, attempts, worker_name
            ), e AS (
                {_EVENT_INSERT}
                SELECT id, %(event)s, %(now)s, attempts, CASE WHEN %(event_worker)s THEN worker_name ELSE '' END,
                       %(actor)s, %(reason)s, '' FROM t
            )
            SELECT id, queue FROM t
            """,
            {
                "now": timezone.now(),
                "ids": [str(task_id) for task_id in task_ids],
                "from_status": str(from_status),
                "event": str(event),
                "event_worker": event_worker,
                "actor": actor,
                "reason": reason,
            },
        )
        return cursor.fetchall()


def _push_jobs(entries: Sequence[tuple[uuid.UUID | str, str]], *, delay_seconds: float = 0) -> None:
    """Create (or overwrite) the RQ job of each task and queue or schedule it, in one pipeline."""
    if not entries:
        return
    redis = get_redis()
    by_queue = job_ids_by_queue(entries)
    with redis.pipeline(transaction=False) as pipe:
        for queue_name, job_ids in by_queue.items():
            queue = get_queue(queue_name)
            for job_id in job_ids:
                job = _create_job(queue, job_id)
                # A job requeued after a failure may still sit in the failed registry.
                pipe.zrem(queue.failed_job_registry.key, job_id)
                if delay_seconds > 0:
                    # +1 s: RQ truncates schedule times to whole seconds (see the runner).
                    release_at = timezone.now() + timedelta(seconds=delay_seconds + 1)
                    queue.schedule_job(job, release_at, pipeline=pipe)
                else:
                    queue._enqueue_job(job, pipeline=pipe)
        pipe.execute()


def _push_jobs_on_commit(entries: Sequence[tuple[uuid.UUID | str, str]], *, delay_seconds: float = 0) -> None:
    def push() -> None:
        _push_jobs(entries, delay_seconds=delay_seconds)

    transaction.on_commit(push, robust=True)


# --- the worker side ---------------------------------------------------------


def task_claim(*, task_id: str, worker_name: str) -> ClaimedTask | None:
    """queued -> running for the worker about to run it; None if it was cancelled, finished or deleted."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH t AS (
                UPDATE tasks_task
                SET status = 'running', started_at = %(now)s, attempts = attempts + 1, worker_name = %(worker)s,
                    progress = 0, progress_message = '', next_retry_at = NULL, finished_at = NULL
                WHERE id = %(id)s AND status = 'queued'
                RETURNING id, kind, args, attempts, queue, link_id
            ), e AS (
                {_EVENT_INSERT}
                SELECT id, 'started', %(now)s, attempts, %(worker)s, '', '', '' FROM t
            )
            SELECT id, kind, args, attempts, queue, link_id FROM t
            """,
            {"now": now, "id": task_id, "worker": worker_name},
        )
        row = cursor.fetchone()
    if row is None:
        return None
    # Django registers a text loader for jsonb, so raw queries see JSON as a string.
    args = json.loads(row[2]) if isinstance(row[2], str) else row[2]
    return ClaimedTask(id=row[0], kind=row[1], args=args or {}, attempt=row[3], queue=row[4], link_id=row[5])


def task_complete(*, task_id: str, attempt: int, result_json: str) -> bool:
    """running -> completed for this attempt with its JSON result; False if the task was cancelled or taken over."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH t AS (
                UPDATE tasks_task
                SET status = 'completed', result = %(result)s::jsonb, finished_at = %(now)s, progress = 100,
                    error_message = '', traceback = ''
                WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s
                RETURNING id, attempts, worker_name
            ), e AS (
                {_EVENT_INSERT}
                SELECT id, 'completed', %(now)s, attempts, worker_name, '', '', '' FROM t
            )
            SELECT count(*) FROM t
            """,
            {"now": now, "id": task_id, "attempt": attempt, "result": result_json},
        )
        return cursor.fetchone()[0] == 1


def retry_delay_for(attempt_number: int) -> int:
    """Delay before automatic retry number ``attempt_number`` (1-based), from TASK_RETRY_DELAYS."""
    delays = settings.TASK_RETRY_DELAYS or [0]
    return delays[min(attempt_number - 1, len(delays) - 1)]


def task_fail_attempt(
    *,
    task_id: str,
    attempt: int | None,
    message: str,
    traceback: str = "",
    permanent: bool = False,
    retry_after: float | None = None,
    worker_name: str | None = None,
    actor: str = "",
) -> AttemptOutcome:
    """Record a failed attempt of a running task: schedule its retry, or fail it for good.

    ``attempt`` (or ``worker_name``) pins the attempt that failed, so a late
    report about an attempt that was already handled changes nothing.
    """
    task = Task.objects.filter(id=task_id).only("status", "attempts", "retry_base", "max_retries").first()
    if task is None or task.status != TaskStatus.RUNNING:
        return AttemptOutcome()
    if attempt is not None and task.attempts != attempt:
        return AttemptOutcome()
    retries_used = task.attempts - task.retry_base - 1
    now = timezone.now()
    params = {
        "now": now,
        "id": task_id,
        "attempt": task.attempts,
        "message": message[:10000],
        "traceback": traceback,
        "actor": actor,
        "worker": worker_name,
    }
    worker_clause = "AND worker_name = %(worker)s" if worker_name is not None else ""
    if not permanent and retries_used < task.max_retries:
        delay = retry_after if retry_after is not None else retry_delay_for(retries_used + 1)
        delay = int(round(delay + 0.499)) if delay else 0
        params["retry_at"] = now + timedelta(seconds=delay)
        params["event_message"] = f"{message[:10000]}\nretry {retries_used + 1} of {task.max_retries} in {delay} s"
        sql = f"""
            WITH t AS (
                UPDATE tasks_task
                SET status = 'queued', next_retry_at = %(retry_at)s, enqueued_at = %(retry_at)s,
                    error_message = %(message)s, traceback = %(traceback)s
                WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s {worker_clause}
                RETURNING id, attempts, worker_name
            ), e AS (
                {_EVENT_INSERT}
                SELECT id, 'retry_scheduled', %(now)s, attempts, worker_name, %(actor)s,
                       %(event_message)s, %(traceback)s FROM t
            )
            SELECT count(*) FROM t
        """
        outcome = AttemptOutcome(retry_in=delay)
    else:
        sql = f"""
            WITH t AS (
                UPDATE tasks_task
                SET status = 'failed', finished_at = %(now)s, error_message = %(message)s, traceback = %(traceback)s,
                    next_retry_at = NULL
                WHERE id = %(id)s AND status = 'running' AND attempts = %(attempt)s {worker_clause}
                RETURNING id, attempts, worker_name
            ), e AS (
                {_EVENT_INSERT}
                SELECT id, 'failed', %(now)s, attempts, worker_name, %(actor)s, %(message)s, %(traceback)s FROM t
            )
            SELECT count(*) FROM t
        """
        outcome = AttemptOutcome(failed=True)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.fetchone()[0] != 1:
            return AttemptOutcome()
    return outcome


def task_handle_lost_attempt(*, task_id: str, worker_name: str, message: str, actor: str = "") -> AttemptOutcome:
    """A work-horse died without reporting (killed, out of memory, hard timeout): count the attempt.

    Unlike a failure reported by the runner, nobody will hand the job back to
    RQ, so a retry is pushed here.
    """
    task = Task.objects.filter(id=task_id).only("queue").first()
    if task is None:
        return AttemptOutcome()
    outcome = task_fail_attempt(task_id=task_id, attempt=None, message=message, worker_name=worker_name, actor=actor)
    if outcome.retry_in is not None:
        _push_jobs([(task_id, task.queue)], delay_seconds=outcome.retry_in)
    return outcome


def task_report_progress(*, task_id: str | uuid.UUID, percent: int, message: str = "") -> bool:
    """Store progress of a running task; False when the task is no longer running."""
    percent = max(0, min(100, int(percent)))
    return bool(
        Task.objects.filter(id=task_id, status=TaskStatus.RUNNING).update(
            progress=percent, progress_message=message[:255]
        )
    )


# --- operator actions --------------------------------------------------------


def _get_task(task_id: uuid.UUID | str) -> Task:
    try:
        return Task.objects.get(id=task_id)
    except (Task.DoesNotExist, ValueError, TypeError):
        raise TaskNotFound(f"task {task_id} does not exist") from None


def task_cancel(*, task_id: uuid.UUID | str, actor: str = "") -> Task:
    """Cancel a task that has not finished.

    A pending or queued task is removed from its queue; a running task's
    work-horse is stopped. Either way the task ends ``cancelled`` at once: a
    worker that finishes the job anyway loses the compare-and-set and records
    nothing. A finished task raises ``TaskStateError``.
    """
    for _ in range(5):
        task = _get_task(task_id)
        if task.status not in ACTIVE_STATUSES:
            raise TaskStateError(f"task {task.id} is already {task.status}; only unfinished tasks can be cancelled")
        now = timezone.now()
        with transaction.atomic():
            updated = Task.objects.filter(id=task.id, status=task.status, attempts=task.attempts).update(
                status=TaskStatus.CANCELLED,
                finished_at=now,
                next_retry_at=None,
                cancel_requested_at=now,
                cancel_requested_by=actor[:150],
            )
            if not updated:
                continue
            TaskEvent.objects.bulk_create(
                [
                    TaskEvent(
                        task_id=task.id,
                        event=TaskEventType.CANCEL_REQUESTED,
                        created_at=now,
                        attempt=task.attempts,
                        worker_name=task.worker_name,
                        actor=actor,
                        message=f"cancel requested while {task.status}",
                    ),
                    TaskEvent(
                        task_id=task.id,
                        event=TaskEventType.CANCELLED,
                        created_at=now,
                        attempt=task.attempts,
                        worker_name=task.worker_name,
                        actor=actor,
                    ),
                ]
            )
            withdraw = partial(_withdraw_job, str(task.id), task.queue, stop=task.status == TaskStatus.RUNNING)
            transaction.on_commit(withdraw, robust=True)
        task.refresh_from_db()
        return task
    raise TaskConflict(f"task {task_id} kept changing; try again")


def _withdraw_job(job_id: str, queue_name: str, *, stop: bool) -> None:
    """Take a cancelled task's job out of Redis, stopping its work-horse if it runs."""
    redis = get_redis()
    if stop:
        try:
            send_stop_job_command(redis, job_id, serializer=JSONSerializer)
            return
        except (InvalidJobOperation, NoSuchJobError):
            pass  # Not executing any more: fall through and delete what is left.
    try:
        job = Job.fetch(job_id, connection=redis, serializer=JSONSerializer)
    except NoSuchJobError:
        return
    job.delete(remove_from_queue=True)


def task_retry(*, task_id: uuid.UUID | str, actor: str = "") -> Task:
    """Queue a failed or cancelled task again, with a fresh retry budget; its history is kept."""
    task = _get_task(task_id)
    if task.status not in RETRYABLE_STATUSES:
        raise TaskStateError(f"task {task.id} is {task.status}; only failed or cancelled tasks can be retried")
    now = timezone.now()
    with transaction.atomic():
        updated = Task.objects.filter(id=task.id, status=task.status, attempts=task.attempts).update(
            status=TaskStatus.QUEUED,
            retry_base=task.attempts,
            enqueued_at=now,
            finished_at=None,
            next_retry_at=None,
            result=None,
            error_message="",
            traceback="",
            progress=0,
            progress_message="",
            cancel_requested_at=None,
            cancel_requested_by="",
        )
        if not updated:
            raise TaskConflict(f"task {task.id} changed while it was being retried; try again")
        TaskEvent.objects.create(
            task_id=task.id,
            event=TaskEventType.REQUEUED,
            created_at=now,
            attempt=task.attempts,
            actor=actor,
            message=f"retried from {task.status}",
        )
        _push_jobs_on_commit([(task.id, task.queue)])
    task.refresh_from_db()
    return task


def tasks_requeue_running(*, task_ids: Iterable[uuid.UUID | str], reason: str, actor: str = "") -> int:
    """Put running tasks whose worker is gone back in their queue without counting a failure.

    Used when the supervisor had to kill workers at shutdown: the job did not
    fail, it was interrupted, so it keeps its retry budget.
    """
    with transaction.atomic():
        rows = _move_tasks(
            task_ids=task_ids,
            from_status=TaskStatus.RUNNING,
            assignments="status = 'queued', enqueued_at = %(now)s, retry_base = retry_base + 1, "
            "progress = 0, progress_message = ''",
            event=TaskEventType.REQUEUED,
            actor=actor,
            reason=reason,
            event_worker=True,
        )
        _push_jobs_on_commit(rows)
    return len(rows)


# --- bulk operator actions ---------------------------------------------------


@dataclass(frozen=True)
class BulkActionResult:
    """What a bulk cancel or retry did: tasks it could touch, tasks it changed, and whether it stopped early."""

    action: str
    matched: int
    acted: int
    skipped: int
    limit: int
    truncated: bool


BULK_ACTIONS = ("cancel", "retry")


def tasks_bulk_action(
    *,
    action: str,
    queryset: Any,
    actor: str = "",
    dry_run: bool = False,
    limit: int | None = None,
    batch_size: int = 500,
) -> BulkActionResult:
    """Cancel or retry every task in ``queryset`` that the action applies to, at most ``limit`` per call.

    Each task goes through ``task_cancel`` / ``task_retry``, so the bulk path
    records the same events and wins or loses the same compare-and-set races
    as a single click; a task that changed meanwhile is counted as skipped.
    Ids are read in batches (newest first), so a huge filter never loads
    every row at once; the limit keeps one request from running for minutes.
    """
    from django.db.models import Q

    if action not in BULK_ACTIONS:
        raise ValueError(f"unknown bulk action {action!r}; expected one of {', '.join(BULK_ACTIONS)}")
    limit = settings.TASK_BULK_ACTION_LIMIT if limit is None else limit
    eligible = RETRYABLE_STATUSES if action == "retry" else ACTIVE_STATUSES
    targets = queryset.filter(status__in=list(eligible))
    matched = targets.order_by().count()
    if dry_run:
        return BulkActionResult(action, matched, 0, 0, limit, truncated=matched > limit)
    service = task_retry if action == "retry" else task_cancel
    acted = skipped = 0
    last: tuple[Any, Any] | None = None
    while acted + skipped < min(matched, limit):
        page = targets.order_by("-created_at", "-id")
        if last is not None:
            # Keyset paging: acted-on tasks may leave the filter, so offsets would skip rows.
            page = page.filter(Q(created_at__lt=last[0]) | Q(created_at=last[0], id__lt=last[1]))
        rows = list(page.values_list("id", "created_at")[: min(batch_size, limit - acted - skipped)])
        if not rows:
            break
        for task_id, created_at in rows:
            try:
                service(task_id=task_id, actor=actor)
                acted += 1
            except (TaskStateError, TaskConflict, TaskNotFound):
                skipped += 1
            last = (created_at, task_id)
    return BulkActionResult(action, matched, acted, skipped, limit, truncated=matched > limit)


def tasks_repush_queued(*, task_ids: Iterable[uuid.UUID | str], reason: str, actor: str = "") -> int:
    """Push the jobs of queued tasks again (their job was lost from Redis); each gets a ``requeued`` event."""
    with transaction.atomic():
        rows = _move_tasks(
            task_ids=task_ids,
            from_status=TaskStatus.QUEUED,
            assignments="enqueued_at = %(now)s, next_retry_at = NULL",
            event=TaskEventType.REQUEUED,
            actor=actor,
            reason=reason,
        )
        _push_jobs_on_commit(rows)
    return len(rows)
