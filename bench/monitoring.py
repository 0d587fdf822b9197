"""Benchmark of the monitoring read paths against 1,000,000 tasks.

Creates its own database (``kb_bench_monitoring``), migrates it, seeds tasks
with one ``generate_series`` statement, then prints the median (and max) of
``--runs`` calls of: the Prometheus scrape, the detailed health view and
``manage.py monitor --once``. The database is dropped at the end unless
``--keep`` is given (``--reuse`` skips seeding when it already exists).

    .venv/bin/python bench/monitoring.py [--rows 1000000] [--runs 20] [--keep] [--reuse]

Redis: database 10 of the local server; the script only reads queues and
writes the monitoring cache key, it never flushes anything.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    bench_env,
    database_exists,
    drop_database,
    recreate_database,
    sample_ms,
    setup_django,
)

DB_NAME = "kb_bench_monitoring"
REDIS_DB = 10

SEED_SQL = """
INSERT INTO tasks_task (
    id, kind, queue, status, args, result, error_message, traceback, attempts, max_retries, retry_base,
    progress, progress_message, link_id, worker_name, created_at, enqueued_at, started_at, finished_at,
    next_retry_at, cancel_requested_at, cancel_requested_by
)
SELECT
    gen_random_uuid(), k.kind, k.queue, s.status, '{}'::jsonb, NULL,
    CASE WHEN s.status = 'failed' THEN 'RuntimeError: upstream answered 502' ELSE '' END, '',
    1, 3, 0, CASE WHEN s.status IN ('completed', 'failed') THEN 100 ELSE 0 END, '', NULL, 'bench-worker',
    t.created, t.created, t.created + interval '200 milliseconds' * (g %% 7),
    CASE WHEN s.status IN ('completed', 'failed', 'cancelled')
         THEN t.created + interval '200 milliseconds' * (g %% 7) + interval '50 milliseconds' * (g %% 97) END,
    NULL, NULL, ''
FROM generate_series(1, %(rows)s) AS g
CROSS JOIN LATERAL (
    -- The newest 20,000 tasks finished in the last ten minutes (about 33 a second, for the
    -- histograms); the rest spread over about a month.
    SELECT CASE WHEN g <= 20000 THEN now() - interval '30 milliseconds' * g
                ELSE now() - interval '10 minutes' - interval '2500 milliseconds' * (g - 20000) END AS created
) AS t
CROSS JOIN LATERAL (
    SELECT (ARRAY['ingestion.parse_link', 'ingestion.ai_process', 'ingestion.notion_sync', 'tasks.noop'])[g %% 4 + 1]
               AS kind,
           (ARRAY['parsing', 'ai', 'notion', 'default'])[g %% 4 + 1] AS queue
) AS k
CROSS JOIN LATERAL (
    SELECT CASE WHEN g <= 200 THEN 'queued'
                WHEN g <= 210 THEN 'running'
                WHEN g <= 215 THEN 'pending'
                WHEN g %% 100 < 4 THEN 'failed'
                WHEN g %% 100 = 4 THEN 'cancelled'
                ELSE 'completed' END AS status
) AS s
"""


def seed(rows: int) -> None:
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(SEED_SQL, {"rows": rows})
        cursor.execute("VACUUM ANALYZE tasks_task")
    print(f"seeded {rows:,} tasks in {time.perf_counter() - started:.1f} s")


def measure(label: str, func: Callable[[], object], runs: int) -> float:
    times = sample_ms(func, runs)
    median = statistics.median(times)
    print(f"{label:<34} median {median:7.1f} ms   min {min(times):7.1f} ms   max {max(times):7.1f} ms   ({runs} runs)")
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--reuse", action="store_true", help="Reuse an existing bench database without seeding.")
    args = parser.parse_args()

    needs_seed = not (args.reuse and database_exists(DB_NAME))
    if needs_seed:
        recreate_database(DB_NAME)
    setup_django(bench_env(DB_NAME, REDIS_DB, ALLOWED_HOSTS="testserver,localhost"))
    try:
        if needs_seed:
            seed(args.rows)
        return run(args.runs)
    finally:
        if not args.keep:
            from django.db import connections

            connections.close_all()
            drop_database(DB_NAME)
            print(f"dropped {DB_NAME}")


def run(runs: int) -> int:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from monitoring import stats

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tasks_task")
        total = cursor.fetchone()[0]
    print(f"tasks in the database: {total:,}")

    # The uncached figures, to show why the finished counts are cached.
    measure("finished counts, uncached query", stats.finished_task_counts_uncached, max(3, runs // 4))
    measure("active counts (exact, each scrape)", stats.active_task_counts, runs)
    measure("duration histograms (10 min)", stats.task_duration_histograms, runs)
    measure("system_stats()", stats.system_stats, runs)

    user_model = get_user_model()
    staff, _ = user_model.objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    client = Client()
    client.force_login(staff)

    def scrape() -> None:
        response = client.get("/api/monitoring/metrics")
        assert response.status_code == 200, response.status_code

    def detailed() -> None:
        response = client.get("/api/monitoring/health/detailed")
        assert response.status_code in (200, 503), response.status_code

    def monitor_once() -> None:
        call_command("monitor", "--once", stdout=io.StringIO())

    results = {
        "metrics scrape": measure("GET /api/monitoring/metrics", scrape, runs),
        "detailed health": measure("GET /api/monitoring/health/detailed", detailed, runs),
        "monitor --once": measure("manage.py monitor --once", monitor_once, runs),
    }
    slow = [name for name, ms in results.items() if ms >= 100]
    print("target < 100 ms each:", "met" if not slow else f"missed by {', '.join(slow)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
