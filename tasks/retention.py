"""Deleting finished tasks once their retention policy says they are old enough.

``tasks_purge`` never touches pending, queued or running tasks. It deletes in
batches, each batch one short transaction of one raw SQL statement, because
Django's ORM cascade collects every related row in Python first, which is far
too slow for hundreds of thousands of rows. The statement deletes task rows
only: PostgreSQL deletes their events through the foreign key's ON DELETE
CASCADE (migration 0005). No row is locked ahead: a task a worker changes
while a batch runs is re-checked once the worker commits and kept unless it
still qualifies. After each batch commits, whatever RQ still keeps in Redis
for those jobs is deleted in two pipelined round trips.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rq.cron import CronJob
from rq.job import Job

from kbmanager.queues import get_queue, get_redis, job_ids_by_queue
from tasks.models import FINISHED_STATUSES, RetentionPolicy

logger = logging.getLogger(__name__)

# RQ registries a finished job's id may still be listed in.
_REGISTRY_KEYS = ("rq:finished:{}", "rq:failed:{}", "rq:canceled:{}", "rq:wip:{}", "rq:scheduled:{}", "rq:deferred:{}")

ProgressCallback = Callable[[int, int], None]

# Where the walk along finished_at starts.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class PurgeRule:
    """One policy turned into a WHERE clause: a status, the queue it covers, and the cut-off."""

    status: str
    queue: str
    days: int
    cutoff: datetime
    # For a policy covering every queue: the queues that have a policy of their own for this status.
    excluded_queues: tuple[str, ...] = ()

    def where(self, *, finished: bool | None = None) -> tuple[str, dict[str, Any]]:
        """The rule's WHERE clause; ``finished`` picks only rows with (True) or without (False) a finished_at."""
        age = {
            None: "(finished_at < %(cutoff)s OR (finished_at IS NULL AND created_at < %(cutoff)s))",
            True: "finished_at < %(cutoff)s AND finished_at >= %(after)s",
            False: "finished_at IS NULL AND created_at < %(cutoff)s",
        }[finished]
        # The OR keeps the (status, finished_at) index usable; COALESCE(finished_at, created_at) would not be.
        clauses = ["status = %(status)s", age]
        params: dict[str, Any] = {"status": self.status, "cutoff": self.cutoff}
        if self.queue:
            clauses.append("queue = %(queue)s")
            params["queue"] = self.queue
        elif self.excluded_queues:
            clauses.append("NOT (queue = ANY(%(excluded)s))")
            params["excluded"] = list(self.excluded_queues)
        return " AND ".join(clauses), params


@dataclass
class PurgeResult:
    dry_run: bool
    deleted: Counter = field(default_factory=Counter)  # (status, queue) -> tasks (to be) deleted
    batches: int = 0
    redis_keys_deleted: int = 0
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.deleted.values())

    @property
    def rows_per_second(self) -> float:
        return self.total / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        by_status = Counter()
        for (status, _queue), count in self.deleted.items():
            by_status[status] += count
        parts = ", ".join(f"{status} {by_status[status]}" for status in sorted(by_status)) or "nothing"
        verb = "would delete" if self.dry_run else "deleted"
        line = f"{verb} {self.total} finished tasks ({parts})"
        if not self.dry_run:
            line += f" in {self.batches} batches, {self.seconds:.1f} s ({self.rows_per_second:.0f} rows/s)"
        return line


def retention_rules(
    *, now: datetime | None = None, policies: Sequence[RetentionPolicy] | None = None
) -> list[PurgeRule]:
    """The policies as purge rules; a queue-specific policy takes its queue away from its status' general policy."""
    now = now or timezone.now()
    policies = list(RetentionPolicy.objects.all()) if policies is None else list(policies)
    finished = {str(s) for s in FINISHED_STATUSES}
    specific: dict[str, list[str]] = {}
    for policy in policies:
        if policy.queue:
            specific.setdefault(policy.status, []).append(policy.queue)
    rules = []
    for policy in policies:
        if policy.status not in finished:
            continue  # defensive: a policy must never reach active tasks, whatever the table holds
        rules.append(
            PurgeRule(
                status=policy.status,
                queue=policy.queue,
                days=policy.days,
                cutoff=now - timedelta(days=policy.days),
                excluded_queues=() if policy.queue else tuple(sorted(specific.get(policy.status, []))),
            )
        )
    return rules


def tasks_purge_counts(*, rules: Sequence[PurgeRule]) -> Counter:
    """How many tasks each (status, queue) would lose under ``rules``."""
    counts: Counter = Counter()
    with connection.cursor() as cursor:
        for rule in rules:
            where, params = rule.where()
            cursor.execute(f"SELECT status, queue, count(*) FROM tasks_task WHERE {where} GROUP BY 1, 2", params)
            for status, queue, count in cursor.fetchall():
                counts[(status, queue)] += count
    return counts


def _delete_batch(
    rule: PurgeRule, batch_size: int, *, after: datetime | None
) -> tuple[list[tuple[str, str]], datetime | None]:
    """Delete one batch of expired tasks; their events go with them by the foreign key's ON DELETE CASCADE.

    Returns (id, queue) of what was deleted and the latest finished_at seen.
    With ``after`` set the batch walks the (status, finished_at) index from
    there, so later batches do not wade through the dead rows earlier batches
    left behind; ``after=None`` takes the rare tasks without a finished_at.
    """
    where, params = rule.where(finished=after is not None)
    params["limit"] = batch_size
    if after is not None:
        params["after"] = after
    order = "ORDER BY finished_at" if after is not None else ""
    # The batch is picked along the index and deleted by physical row address (a TID scan), which saves a primary
    # key lookup per task. If a worker updates a picked task in between (a retry), PostgreSQL waits for it and then
    # re-checks the rule on the row's new version: a task no longer finished, or no longer old enough, is skipped
    # with its history intact, without locking every row first.
    sql = f"""
        DELETE FROM tasks_task
        WHERE ctid = ANY(ARRAY(SELECT ctid FROM tasks_task WHERE {where} {order} LIMIT %(limit)s)) AND {where}
        RETURNING id::text, queue, finished_at
    """
    with transaction.atomic(), connection.cursor() as cursor:
        # Losing the last batches of a purge in a crash is harmless (the next run deletes them again),
        # so the commit does not wait for its WAL flush.
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    latest = max((row[2] for row in rows if row[2] is not None), default=None)
    return [(row[0], row[1]) for row in rows], latest


def _delete_rq_keys(rows: Sequence[tuple[str, str]]) -> int:
    """Delete the RQ job hashes, results and registry entries left for deleted tasks, in two round trips.

    kbmanager never enqueues with ``depends_on``, so there are no dependents keys to delete. A registry exists
    only while it has members (Redis drops an empty sorted set) and many do not, so the first round trip asks
    which exist and the second removes the ids only from those, instead of sending every id to every registry.
    """
    if not rows:
        return 0
    redis = get_redis()
    keys = [key for job_id, _queue in rows for key in (Job.key_for(job_id), f"rq:results:{job_id}")]
    registries = [
        (template.format(queue), ids) for queue, ids in job_ids_by_queue(rows).items() for template in _REGISTRY_KEYS
    ]
    with redis.pipeline(transaction=False) as pipe:
        for registry, _ids in registries:
            pipe.exists(registry)
        present = pipe.execute()
    with redis.pipeline(transaction=False) as pipe:
        # UNLINK frees memory in the background, so a big batch does not stall Redis.
        for start in range(0, len(keys), 3000):
            pipe.unlink(*keys[start : start + 3000])
        for (registry, job_ids), exists in zip(registries, present, strict=True):
            if exists:
                pipe.zrem(registry, *job_ids)
        replies = pipe.execute()
    return sum(int(reply) for reply in replies[: (len(keys) + 2999) // 3000])


def tasks_purge(
    *,
    dry_run: bool,
    batch_size: int | None = None,
    now: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> PurgeResult:
    """Delete finished tasks older than their retention policy, with their events and RQ keys.

    ``dry_run`` only counts. ``progress(done, total)`` is called after every
    batch. Only completed, failed and cancelled tasks are ever deleted; the
    age is measured from ``finished_at`` (``created_at`` when it is missing).
    """
    batch_size = batch_size or settings.TASK_PURGE_BATCH_SIZE
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    rules = retention_rules(now=now)
    result = PurgeResult(dry_run=dry_run)
    counts = tasks_purge_counts(rules=rules)
    if dry_run:
        result.deleted = counts
        return result
    total = sum(counts.values())
    started = time.monotonic()
    done = 0
    if progress:
        progress(0, total)
    for rule, after in ((rule, start) for rule in rules for start in (_EPOCH, None)):
        while True:
            rows, latest = _delete_batch(rule, batch_size, after=after)
            # A short batch does not mean the end: tasks a worker changed meanwhile were skipped. Only an empty
            # one does, which costs one cheap query per rule.
            if not rows:
                break
            if after is not None and latest is not None:
                after = latest
            result.batches += 1
            for _job_id, queue_name in rows:
                result.deleted[(rule.status, queue_name)] += 1
            try:
                result.redis_keys_deleted += _delete_rq_keys(rows)
            except Exception:  # Redis being down must not undo or stop the database purge
                logger.exception("could not delete RQ keys of %d purged tasks", len(rows))
            done += len(rows)
            if progress:
                progress(done, max(total, done))
    result.seconds = time.monotonic() - started
    return result


# --- running it daily from RQ -----------------------------------------------

# A purge of a large backlog outlasts the default queue's job timeout; an hour is plenty at >= 20,000 rows/s.
PURGE_JOB_TIMEOUT = 3600


def purge_expired_tasks() -> str:
    """The RQ job a daily cron registration runs: purge, and return the one-line summary."""
    summary = tasks_purge(dry_run=False).summary()
    logger.info("retention purge: %s", summary)
    return summary


class JsonCronJob(CronJob):
    """A cron job enqueued with kbmanager's JSON serializer.

    RQ 2.12's ``CronJob.enqueue`` builds a plain ``Queue`` and so pickles the
    job, which kbmanager's workers (JSON only) cannot read.
    """

    def enqueue(self, connection: Any) -> Job:
        if not self.func:
            raise ValueError("cron job has no function to enqueue")
        queue = get_queue(self.queue_name)
        from rq import cron_job_registry
        from rq.defaults import DEFAULT_CRON_JOB_HISTORY_LIMIT, DEFAULT_CRON_JOB_HISTORY_TTL

        with connection.pipeline() as pipeline:
            job = queue.enqueue(self.func, *self.args, **self.kwargs, **self.job_options, pipeline=pipeline)
            pipeline.zadd(self.job_history_key, {job.id: job.enqueued_at.timestamp()})
            pipeline.zremrangebyrank(self.job_history_key, 0, -(DEFAULT_CRON_JOB_HISTORY_LIMIT + 1))
            pipeline.expire(self.job_history_key, DEFAULT_CRON_JOB_HISTORY_TTL)
            cron_job_registry.add(self.name, pipeline, enqueue_timestamp=job.enqueued_at.timestamp())
            pipeline.execute()
        return job


def purge_cron_scheduler(*, cron: str, queue_name: str = "default") -> Any:
    """A django-rq cron scheduler with the daily purge registered as a JSON job (see docs/OPERATIONS.md)."""
    from django_rq.cron import DjangoCronScheduler

    scheduler = DjangoCronScheduler()
    cron_job = scheduler.register(
        purge_expired_tasks, queue_name, cron=cron, job_timeout=PURGE_JOB_TIMEOUT, name="tasks.purge_expired_tasks"
    )
    cron_job.__class__ = JsonCronJob
    return scheduler
