"""The one statistics function behind health views, metrics, `monitor` and `start_workers --stats`.

``system_stats()`` gathers, in a handful of round trips:

* from Redis (one pipeline plus one for worker hashes): per queue the queued
  count, the oldest queued job's age, running, scheduled and RQ-failed jobs,
  the scheduler lock holder; every registered worker with its heartbeat;
* from PostgreSQL: task counts per status, queue and kind, failures of the last
  hour, the most recent failures, and (for metrics) run and wait time
  histograms of the tasks that finished in a recent window;
* Redis and PostgreSQL reachability and latency, and the CPU, memory and disk
  of the host answering.

Counting 1,000,000 rows by status, queue and kind costs about 250 ms, far over a
scrape's budget, so the counts are split: unfinished tasks (pending, queued,
running: few rows, served by the status index) are counted exactly on every
call; finished tasks come from a grouped query cached in Redis, shared by all
web processes and refreshed in the background once it is older than
``MONITORING_COUNTS_REFRESH_SECONDS``. The age of those counts is reported.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

import psutil
import redis
from django.conf import settings
from django.db import DatabaseError, connection, connections
from django.utils import timezone
from rq.defaults import DEFAULT_WORKER_TTL
from rq.utils import utcparse

from kbmanager.queues import DEFAULT_QUEUE, queue_names
from tasks.models import ACTIVE_STATUSES, TaskStatus

logger = logging.getLogger(__name__)

# An idle RQ worker refreshes its heartbeat every (worker TTL - 15) seconds and
# its key expires worker TTL + 60 seconds after the last one: a heartbeat older
# than that belongs to a worker that died without registering its death.
WORKER_STALE_AFTER_SECONDS = DEFAULT_WORKER_TTL + 60
# Upper bounds (seconds) of the run time and queue wait histograms.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
RECENT_FAILURES_LIMIT = 5
# Give up on Redis quickly: a monitoring call must answer even when Redis hangs.
REDIS_TIMEOUT_SECONDS = 2.0

_redis_clients: dict[str, redis.Redis] = {}
_local_finished_counts: dict[str, Any] = {}


def monitoring_redis() -> redis.Redis:
    """A Redis client for the queues' server with short timeouts, kept per URL so its pool is reused."""
    url = settings.RQ_QUEUES[DEFAULT_QUEUE]["URL"]
    client = _redis_clients.get(url)
    if client is None:
        client = redis.Redis.from_url(
            url, socket_connect_timeout=REDIS_TIMEOUT_SECONDS, socket_timeout=REDIS_TIMEOUT_SECONDS
        )
        _redis_clients[url] = client
    return client


def _short_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


# --- reachability --------------------------------------------------------------


def probe_redis(client: redis.Redis | None = None) -> dict[str, Any]:
    """PING Redis: ``{"up": bool, "latency_ms": float | None, "error": str}``."""
    client = client or monitoring_redis()
    started = time.perf_counter()
    try:
        client.ping()
    except redis.RedisError as exc:
        return {"up": False, "latency_ms": None, "error": _short_error(exc)}
    return {"up": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2), "error": ""}


def probe_postgres() -> dict[str, Any]:
    """``SELECT 1`` on the default database: ``{"up": bool, "latency_ms": float | None, "error": str}``."""
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        # A broken connection must not poison the next request of this process.
        connection.close_if_unusable_or_obsolete()
        return {"up": False, "latency_ms": None, "error": _short_error(exc)}
    return {"up": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2), "error": ""}


# --- Redis: workers, queues, scheduler -------------------------------------------


def _decode(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode(errors="replace") for k, v in raw.items()}


def _pid_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_stats(client: redis.Redis, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every worker registered in Redis, alive or not, judged by its heartbeat.

    ``alive`` is false when the heartbeat is older than a worker ever lets it
    get, or when the worker claims to run on this host under a pid that does
    not exist (killed with SIGKILL: RQ would only notice when its key expires).
    """
    now = now or timezone.now()
    keys = sorted(k.decode() for k in client.smembers("rq:workers"))
    if not keys:
        return []
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hgetall(key)
        hashes = pipe.execute()
    this_host = socket.gethostname()
    workers = []
    for key, raw in zip(keys, hashes, strict=True):
        if not raw:
            continue  # expired between SMEMBERS and HGETALL, or already reaped
        data = _decode(raw)
        if data.get("death"):
            continue
        last_heartbeat = utcparse(data["last_heartbeat"]) if data.get("last_heartbeat") else None
        heartbeat_age = (now - last_heartbeat).total_seconds() if last_heartbeat else None
        pid = int(data["pid"]) if data.get("pid", "").isdigit() else None
        hostname = data.get("hostname") or ""
        alive = heartbeat_age is not None and heartbeat_age <= WORKER_STALE_AFTER_SECONDS
        if alive and pid and hostname == this_host and not _pid_running(pid):
            alive = False
        state = data.get("state", "?")
        workers.append(
            {
                "name": key.removeprefix("rq:worker:"),
                "hostname": hostname,
                "pid": pid,
                "queues": [q for q in data.get("queues", "").split(",") if q],
                "state": state if alive else "stale",
                "alive": alive,
                "current_task": (data.get("current_job") or None) if state == "busy" else None,
                "current_task_kind": None,
                "last_heartbeat": last_heartbeat.isoformat() if last_heartbeat else None,
                "heartbeat_age_seconds": round(heartbeat_age, 1) if heartbeat_age is not None else None,
                "birth": utcparse(data["birth"]).isoformat() if data.get("birth") else None,
                "successful_jobs": int(data.get("successful_job_count") or 0),
                "failed_jobs": int(data.get("failed_job_count") or 0),
                "working_seconds": round(float(data.get("total_working_time") or 0), 3),
            }
        )
    return workers


def redis_queue_stats(client: redis.Redis, names: tuple[str, ...], *, now: datetime | None = None) -> dict[str, Any]:
    """Per queue, straight from RQ's keys: queued, oldest queued age, running, scheduled, failed, scheduler."""
    now = now or timezone.now()
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(f"rq:queue:{name}")
            pipe.lindex(f"rq:queue:{name}", 0)  # RQ pushes on the right and pops on the left
            pipe.zcard(f"rq:wip:{name}")
            pipe.zcard(f"rq:scheduled:{name}")
            pipe.zcard(f"rq:failed:{name}")
            pipe.get(f"rq:scheduler-lock:{name}")
        results = pipe.execute()
    stats: dict[str, Any] = {}
    heads: dict[str, str] = {}
    for i, name in enumerate(names):
        queued, head, running, scheduled, failed, scheduler = results[i * 6 : i * 6 + 6]
        stats[name] = {
            "queued": queued,
            "oldest_queued_age_seconds": None,
            "running": running,
            "scheduled": scheduled,
            "rq_failed": failed,
            "scheduler": scheduler.decode() if scheduler else None,
        }
        if head:
            heads[name] = head.decode()
    if heads:
        with client.pipeline(transaction=False) as pipe:
            for job_id in heads.values():
                pipe.hget(f"rq:job:{job_id}", "enqueued_at")
            enqueued = pipe.execute()
        for (name, _), value in zip(heads.items(), enqueued, strict=True):
            if value:
                age = (now - utcparse(value.decode())).total_seconds()
                stats[name]["oldest_queued_age_seconds"] = round(max(0.0, age), 1)
    return stats


# --- PostgreSQL: task counts, failures, durations --------------------------------


def active_task_counts() -> list[tuple[str, str, str, int]]:
    """Exact (status, queue, kind, count) of unfinished tasks; few rows, read through the status index."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, queue, kind, count(*) FROM tasks_task WHERE status = ANY(%s) GROUP BY 1, 2, 3",
            [[str(s) for s in ACTIVE_STATUSES]],
        )
        return [tuple(row) for row in cursor.fetchall()]


def finished_task_counts_uncached() -> list[tuple[str, str, str, int]]:
    """(status, queue, kind, count) of finished tasks: a full scan, about 250 ms per million rows."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status, queue, kind, count(*) FROM tasks_task WHERE NOT (status = ANY(%s)) GROUP BY 1, 2, 3",
            [[str(s) for s in ACTIVE_STATUSES]],
        )
        return [tuple(row) for row in cursor.fetchall()]


def _finished_counts_key() -> str:
    # Named after the database: two deployments (or a test run) sharing a Redis server never mix counts.
    return f"kbmanager:monitoring:finished-task-counts:{connection.settings_dict['NAME']}"


def _refresh_finished_counts(client: redis.Redis | None) -> dict[str, Any]:
    entry = {"computed_at": time.time(), "rows": finished_task_counts_uncached()}
    if client is not None:
        client.set(_finished_counts_key(), json.dumps(entry), ex=24 * 3600)
    else:
        _local_finished_counts.update(entry)
    return entry


def _refresh_in_background(client: redis.Redis, lock_key: str) -> None:
    def work() -> None:
        try:
            _refresh_finished_counts(client)
        except Exception:
            logger.exception("could not refresh the finished task counts")
        finally:
            client.delete(lock_key)
            connections.close_all()  # this thread's own connection

    threading.Thread(target=work, name="finished-task-counts", daemon=True).start()


def finished_task_counts(client: redis.Redis | None) -> tuple[list[tuple[str, str, str, int]], float]:
    """Finished task counts and their age in seconds, from the shared cache.

    A missing cache is filled synchronously (once, after a deploy or a Redis
    flush). A stale one is served as it is while one process, holding a short
    Redis lock, recomputes it in a background thread. Without Redis a
    per-process copy is used.
    """
    refresh_after = settings.MONITORING_COUNTS_REFRESH_SECONDS
    entry: dict[str, Any] | None = None
    if client is not None:
        key = _finished_counts_key()
        raw = client.get(key)
        entry = json.loads(raw) if raw else None
        if entry is None:
            entry = _refresh_finished_counts(client)
        elif time.time() - entry["computed_at"] > refresh_after and client.set(f"{key}:lock", "1", nx=True, ex=300):
            _refresh_in_background(client, f"{key}:lock")
    else:
        entry = _local_finished_counts
        if not entry or time.time() - entry["computed_at"] > refresh_after:
            entry = _refresh_finished_counts(None)
    rows = [(r[0], r[1], r[2], int(r[3])) for r in entry["rows"]]
    return rows, round(max(0.0, time.time() - entry["computed_at"]), 1)


def failed_last_hour_by_queue() -> dict[str, int]:
    """Tasks that failed for good in the last hour, per queue (a range of the (status, finished_at) index)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT queue, count(*) FROM tasks_task "
            "WHERE status = 'failed' AND finished_at >= now() - interval '1 hour' GROUP BY 1"
        )
        return dict(cursor.fetchall())


def recent_failures(limit: int = RECENT_FAILURES_LIMIT) -> list[dict[str, Any]]:
    """The last ``limit`` tasks that failed for good, newest first, with their error."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, kind, queue, finished_at, attempts, error_message FROM tasks_task "
            "WHERE status = 'failed' AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT %s",
            [limit],
        )
        rows = cursor.fetchall()
    return [
        {
            "id": str(task_id),
            "kind": kind,
            "queue": queue,
            "finished_at": finished_at.isoformat(),
            "attempts": attempts,
            "error": (error or "").splitlines()[0][:300] if error else "",
        }
        for task_id, kind, queue, finished_at, attempts, error in rows
    ]


def task_duration_histograms(window_seconds: int | None = None) -> dict[str, Any]:
    """Run time (per queue and kind) and queue wait time (per queue) of tasks finished in the window.

    PostgreSQL buckets the rows itself (``width_bucket``), so the work is one
    index range scan whatever the throughput of other hosts. Buckets are
    cumulative (Prometheus ``le``) once returned; a value exactly on a bound
    lands in the next bucket, which microsecond timestamps make negligible.
    """
    window = window_seconds or settings.MONITORING_DURATION_WINDOW_SECONDS
    bounds = "{" + ",".join(str(b) for b in DURATION_BUCKETS) + "}"
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT queue, kind,
                   width_bucket(run, %(bounds)s::float8[]), width_bucket(wait, %(bounds)s::float8[]),
                   count(*), sum(run), sum(wait)
            FROM (
                SELECT queue, kind,
                       greatest(0, date_part('epoch', finished_at - started_at)) AS run,
                       greatest(0, date_part('epoch', started_at - enqueued_at)) AS wait
                FROM tasks_task
                WHERE status IN ('completed', 'failed') AND finished_at >= now() - make_interval(secs => %(window)s)
                  AND started_at IS NOT NULL AND enqueued_at IS NOT NULL
            ) AS recent
            GROUP BY 1, 2, 3, 4
            """,
            {"bounds": bounds, "window": window},
        )
        rows = cursor.fetchall()
    run: dict[tuple[str, str], dict[str, Any]] = {}
    wait: dict[str, dict[str, Any]] = {}

    def empty() -> dict[str, Any]:
        return {"buckets": [0] * (len(DURATION_BUCKETS) + 1), "count": 0, "sum": 0.0}

    for queue, kind, run_bucket, wait_bucket, count, run_sum, wait_sum in rows:
        r = run.setdefault((queue, kind), empty())
        w = wait.setdefault(queue, empty())
        r["buckets"][run_bucket] += count
        w["buckets"][wait_bucket] += count
        r["count"] += count
        w["count"] += count
        r["sum"] += run_sum or 0.0
        w["sum"] += wait_sum or 0.0

    def cumulative(h: dict[str, Any]) -> dict[str, Any]:
        # width_bucket index i holds bounds[i-1] <= x < bounds[i]; "le" bucket i is the sum up to i.
        total, le = 0, []
        for bound, n in zip(DURATION_BUCKETS, h["buckets"], strict=False):
            total += n
            le.append([bound, total])
        return {"buckets": le, "count": h["count"], "sum": round(h["sum"], 6)}

    return {
        "window_seconds": window,
        "bounds": list(DURATION_BUCKETS),
        "run_seconds": [{"queue": q, "kind": k, **cumulative(h)} for (q, k), h in sorted(run.items())],
        "queue_wait_seconds": [{"queue": q, **cumulative(h)} for q, h in sorted(wait.items())],
    }


def task_kinds_of(task_ids: list[str]) -> dict[str, str]:
    if not task_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT id::text, kind FROM tasks_task WHERE id = ANY(%s::uuid[])", [task_ids])
        return dict(cursor.fetchall())


# --- host and configuration ------------------------------------------------------

# cpu_percent(interval=None) measures since the previous call; prime it at import
# so the first reading covers the time since the process started.
psutil.cpu_percent(interval=None)


def host_stats() -> dict[str, Any]:
    """CPU, memory and disk of the host running this process."""
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(settings.BASE_DIR))
    load_1m = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "hostname": socket.gethostname(),
        "cpu_count": psutil.cpu_count() or 1,
        "cpu_percent": psutil.cpu_percent(interval=None),
        "load_1m": round(load_1m, 2) if load_1m is not None else None,
        "memory_total_bytes": memory.total,
        "memory_available_bytes": memory.available,
        "memory_percent": memory.percent,
        "disk_total_bytes": disk.total,
        "disk_free_bytes": disk.free,
        "disk_percent": disk.percent,
    }


def integration_stats() -> dict[str, dict[str, str]]:
    """Which optional integrations are configured; unconfigured ones are "off", not errors."""
    if settings.AI_BACKEND == "openai":
        ai = {"state": "on", "detail": f"OpenAI-compatible API at {settings.OPENAI_BASE_URL or 'api.openai.com'}"}
    else:
        ai = {"state": "off", "detail": "local summarizer (no OpenAI key or base URL configured)"}
    if settings.NOTION_ENABLED:
        notion = {"state": "on", "detail": "pages are written to the configured database"}
    else:
        notion = {"state": "off", "detail": "NOTION_TOKEN and NOTION_DATABASE_ID are not both set"}
    return {"ai": ai, "notion": notion}


# --- the one function ----------------------------------------------------------


def system_stats(*, include_durations: bool = False) -> dict[str, Any]:
    """Everything monitoring shows, as JSON-ready data (see the module docstring for the sources).

    A component that cannot be reached is reported (``redis.up`` false, its
    figures ``None``) instead of raising, so a dashboard still shows the rest.
    """
    now = timezone.now()
    names = queue_names()
    client = monitoring_redis()
    redis_probe = probe_redis(client)
    postgres_probe = probe_postgres()

    workers: list[dict[str, Any]] | None = None
    redis_queues: dict[str, Any] = {}
    if redis_probe["up"]:
        try:
            workers = worker_stats(client, now=now)
            redis_queues = redis_queue_stats(client, names, now=now)
        except redis.RedisError as exc:
            redis_probe = {"up": False, "latency_ms": None, "error": _short_error(exc)}
            workers, redis_queues = None, {}

    counts: list[tuple[str, str, str, int]] | None = None
    counts_age: float | None = None
    failed_last_hour: dict[str, int] = {}
    failures: list[dict[str, Any]] | None = None
    durations: dict[str, Any] | None = None
    if postgres_probe["up"]:
        try:
            finished, counts_age = finished_task_counts(client if redis_probe["up"] else None)
            counts = active_task_counts() + finished
            failed_last_hour = failed_last_hour_by_queue()
            failures = recent_failures()
            if include_durations:
                durations = task_duration_histograms()
            if workers:
                kinds = task_kinds_of([w["current_task"] for w in workers if w["current_task"]])
                for worker in workers:
                    worker["current_task_kind"] = kinds.get(worker["current_task"] or "")
        except DatabaseError as exc:
            postgres_probe = {"up": False, "latency_ms": None, "error": _short_error(exc)}
            counts = None

    failed_total: dict[str, int] = {}
    by_status = {str(s): 0 for s in TaskStatus}
    for status, queue, _kind, n in counts or []:
        by_status[status] = by_status.get(status, 0) + n
        if status == TaskStatus.FAILED:
            failed_total[queue] = failed_total.get(queue, 0) + n

    queues: dict[str, dict[str, Any]] = {}
    for name in names:
        rq = redis_queues.get(name, {})
        on_queue = [w for w in workers or [] if name in w["queues"] and w["alive"]]
        busy = sum(1 for w in on_queue if w["state"] == "busy")
        queues[name] = {
            "queued": rq.get("queued"),
            "oldest_queued_age_seconds": rq.get("oldest_queued_age_seconds"),
            "running": rq.get("running"),
            "scheduled": rq.get("scheduled"),
            "failed_last_hour": failed_last_hour.get(name, 0) if counts is not None else None,
            "failed_total": failed_total.get(name, 0) if counts is not None else None,
            "rq_failed": rq.get("rq_failed"),
            "workers": len(on_queue) if workers is not None else None,
            "workers_busy": busy if workers is not None else None,
            "workers_idle": len(on_queue) - busy if workers is not None else None,
            "workers_stale": sum(1 for w in workers or [] if name in w["queues"] and not w["alive"]),
            "scheduler": rq.get("scheduler"),
        }

    return {
        "generated_at": now.astimezone(UTC).isoformat(),
        "host": host_stats(),
        "redis": redis_probe,
        "postgres": postgres_probe,
        "queues": queues,
        "workers": workers,
        "scheduler": {
            "queues_with_scheduler": [n for n in names if queues[n]["scheduler"]],
            "queues_without_scheduler": [n for n in names if not queues[n]["scheduler"]] if redis_probe["up"] else None,
        },
        "tasks": {
            "by_status": by_status if counts is not None else None,
            "counts": [{"status": s, "queue": q, "kind": k, "count": n} for s, q, k, n in sorted(counts or [])]
            if counts is not None
            else None,
            "finished_counts_age_seconds": counts_age,
        },
        "recent_failures": failures,
        "durations": durations,
        "integrations": integration_stats(),
    }
