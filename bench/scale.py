"""Admin, API and purge at scale: 1,000,000 tasks, 100,000 of them failed.

Creates its own database (dropped at the end unless --keep), seeds it in SQL
with generate_series, then times ~20 requests each of the admin changelist
(default and status=failed), the admin detail page and GET /api/tasks/?status=failed
through Django's test client in-process, and finally purge throughput on
500,000 expired tasks. Prints a table; targets: < 200 ms median per page,
>= 20,000 purged rows/s.

    .venv/bin/python bench/scale.py [--tasks 1000000] [--only pages|purge] [--keep]

PostgreSQL: the local server (``BENCH_PG_SERVER`` to change it); Redis: database 11.

``--only purge`` skips the page timings (the seeding still runs: the purge needs the whole table).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    bench_env,
    drop_database,
    median_p95,
    recreate_database,
    sample_ms,
    setup_django,
)

REDIS_DB = 11


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1_000_000)
    parser.add_argument("--failed", type=int, default=100_000)
    parser.add_argument("--expired", type=int, default=500_000, help="completed tasks old enough to purge")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--database", default="kb_bench_scale")
    parser.add_argument("--only", choices=["pages", "purge"], help="time only the pages or only the purge")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()

    env = bench_env(args.database, REDIS_DB, API_THROTTLE_RATE="", ALLOWED_HOSTS="testserver,localhost")
    recreate_database(args.database)
    try:
        setup_django(env)
        try:
            run(args)
        finally:
            from django.db import connections

            connections.close_all()
    finally:
        # Whatever failed above, the database goes (FORCE ends any connection still open to it).
        if not args.keep:
            drop_database(args.database)


def seed(args: argparse.Namespace) -> None:
    from django.db import connection

    failed, expired = args.failed, args.expired
    started = time.monotonic()
    from ingestion.models import Link

    # Links through the ORM (their columns belong to the ingestion app); 20,000 is quick enough.
    urls = (f"https://site{i % 500}.example.com/post/{i}" for i in range(1, 20_001))
    Link.objects.bulk_create((Link(url=u, normalized_url=u, domain=u.split("/")[2]) for u in urls), batch_size=10000)
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM ingestion_link")
        first_link = cursor.fetchone()[0]
        # Task i: the first `failed` are failed, the next `expired` completed long ago, the rest completed recently
        # or still queued/running. created_at spreads over 60 days, newest for the highest i.
        cursor.execute(
            """
            INSERT INTO tasks_task (id, kind, queue, status, args, result, error_message, traceback, attempts,
                max_retries, retry_base, progress, progress_message, link_id, worker_name, created_at,
                enqueued_at, started_at, finished_at, next_retry_at, cancel_requested_by)
            SELECT md5(i::text)::uuid,
                (ARRAY['ingestion.parse_link','ingestion.summarize','ingestion.sync_notion','tasks.noop'])[1 + i %% 4],
                (ARRAY['parsing','ai','notion','default'])[1 + i %% 4],
                CASE WHEN i <= %(failed)s THEN 'failed'
                     WHEN i <= %(failed)s + %(expired)s THEN 'completed'
                     WHEN i %% 50 = 0 THEN 'queued'
                     WHEN i %% 97 = 0 THEN 'running'
                     ELSE 'completed' END,
                jsonb_build_object('link_id', 1 + i %% 20000), NULL,
                CASE WHEN i <= %(failed)s THEN 'FetchError: HTTP ' || (400 + i %% 100) || ' from site'
                    || (i %% 500) || '.example.com' ELSE '' END,
                CASE WHEN i <= %(failed)s THEN 'Traceback (most recent call last): ...' ELSE '' END,
                1, 3, 0, 100, '', %(first_link)s + i %% 20000, 'bench-worker',
                created, created, created + interval '1 second', created + interval '3 seconds', NULL, ''
            FROM (
                SELECT i, CASE WHEN i <= %(failed)s + %(expired)s
                               THEN now() - interval '60 days' + i * interval '1 second'
                               ELSE now() - (%(total)s - i) * interval '1 second' END AS created
                FROM generate_series(1, %(total)s) AS i
            ) AS s
            """,
            {"failed": failed, "expired": expired, "total": args.tasks, "first_link": first_link},
        )
        # Three events per task for the failed ones and the expired ones (what purge must delete), one otherwise.
        cursor.execute(
            """
            INSERT INTO tasks_taskevent (task_id, event, created_at, attempt, worker_name, actor, message, traceback)
            SELECT t.id, e.event, t.created_at + e.offs, e.attempt, '', '', '', ''
            FROM tasks_task t
            CROSS JOIN (VALUES ('enqueued', interval '0', 0), ('started', interval '1 second', 1),
                               ('completed', interval '3 seconds', 1)) AS e(event, offs, attempt)
            WHERE t.status IN ('failed', 'completed')
            """
        )
        cursor.execute("VACUUM ANALYZE tasks_task")
        cursor.execute("VACUUM ANALYZE tasks_taskevent")
        cursor.execute("SELECT count(*) FROM tasks_taskevent")
        events = cursor.fetchone()[0]
    print(
        f"seeded {args.tasks:,} tasks ({failed:,} failed) and {events:,} events in {time.monotonic() - started:.0f} s"
    )


def run(args: argparse.Namespace) -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from tasks.models import RetentionPolicy, Task

    call_command("migrate", verbosity=0)
    seed(args)
    user = User.objects.create_superuser("bench", "bench@example.com", "pw")
    token = Token.objects.create(user=user).key
    admin = Client()
    admin.force_login(user)
    api = Client(HTTP_AUTHORIZATION=f"Token {token}")
    failed_task = Task.objects.filter(status="failed").only("id").first()
    rows = []

    def page(client: Client, url: str):
        def get() -> None:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code, response.content[:300])

        return get

    pages = [
        ("admin changelist (default)", admin, "/admin/tasks/task/"),
        ("admin changelist status=failed", admin, "/admin/tasks/task/?status__exact=failed"),
        ("admin changelist queue=ai", admin, "/admin/tasks/task/?queue=ai"),
        ("admin search error text", admin, "/admin/tasks/task/?q=HTTP+404"),
        ("admin search task id", admin, f"/admin/tasks/task/?q={failed_task.id}"),
        ("admin detail page", admin, f"/admin/tasks/task/{failed_task.id}/change/"),
        ("GET /api/tasks/?status=failed", api, "/api/tasks/?status=failed"),
        ("GET /api/tasks/", api, "/api/tasks/"),
    ]

    for label, client, url in pages if args.only != "purge" else []:
        median, p95 = median_p95(sample_ms(page(client, url), args.requests))
        rows.append((label, f"{median:.1f} ms", f"{p95:.1f} ms", "ok" if median < 200 else "SLOW"))

    if args.only == "pages":
        print_table(rows)
        return
    # Purge: only the expired completed tasks are old enough (the failed ones are kept 1000 days here).
    RetentionPolicy.objects.update_or_create(status="failed", queue="", defaults={"days": 1000})
    RetentionPolicy.objects.update_or_create(status="completed", queue="", defaults={"days": 7})
    from tasks.retention import tasks_purge

    expected = tasks_purge(dry_run=True).total
    result = tasks_purge(dry_run=False, now=timezone.now())
    rows.append(
        (
            f"purge_tasks ({result.total:,} of {expected:,} expired)",
            f"{result.rows_per_second:,.0f} rows/s",
            f"{result.seconds:.1f} s",
            "ok" if result.rows_per_second >= 20000 else "SLOW",
        )
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tasks_task WHERE status IN ('queued', 'running')")
        active = cursor.fetchone()[0]

    print_table(rows)
    print(f"\nactive tasks left untouched by the purge: {active:,}")


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    width = max(len(r[0]) for r in rows)
    print(f"\n{'measure':<{width}}  {'median':>16}  {'p95 / total':>12}  target")
    for label, median, p95, verdict in rows:
        print(f"{label:<{width}}  {median:>16}  {p95:>12}  {verdict}")


if __name__ == "__main__":
    main()
