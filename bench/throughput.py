"""Tracked tasks versus bare RQ jobs: create, enqueue, run and complete N no-op jobs.

Both runs use the same worker class and worker count, started as real
`manage.py rqworker --burst` processes, in the same invocation. Prints the
rate of each, their ratio (target >= 0.8), and the bulk create+enqueue rate
(target >= 5,000 tasks/s).

    python bench/throughput.py [--tasks 10000] [--workers 2] [--worker-class tasks.worker.TaskWorker]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, bench_env, drop_database, manage, recreate_database, setup_django  # noqa: E402

DATABASE = "kb_bench_throughput"
REDIS_DB = 7


def run_burst_workers(env: dict[str, str], count: int, worker_class: str) -> float:
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "rqworker", "default", "--burst", "--worker-class", worker_class],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    for proc in procs:
        proc.wait()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="tasks.worker.TaskWorker")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    options = parser.parse_args()

    # The bare job's module is imported by the worker parent too, as our handlers are.
    env = bench_env(DATABASE, REDIS_DB, TASK_HANDLER_MODULES="bench.noop_job")
    recreate_database(DATABASE)
    manage(env, "migrate", "-v0")
    setup_django(env)

    from django.conf import settings
    from rq import Queue
    from rq.serializers import JSONSerializer

    from kbmanager.queues import get_redis
    from tasks.models import Task, TaskStatus
    from tasks.services import TaskSpec, tasks_create_bulk

    redis = get_redis()
    redis.flushdb()
    n = options.tasks

    # 1. Bulk create + enqueue of tracked tasks.
    started = time.perf_counter()
    tasks_create_bulk(specs=[TaskSpec(kind="tasks.noop") for _ in range(n)])
    bulk_seconds = time.perf_counter() - started
    assert Task.objects.filter(status=TaskStatus.QUEUED).count() == n

    # 2. Run them.
    tracked_seconds = run_burst_workers(env, options.workers, options.worker_class)
    completed = Task.objects.filter(status=TaskStatus.COMPLETED).count()

    # 3. Bare RQ baseline: same function-call shape, no PostgreSQL.
    redis.flushdb()
    queue = Queue("default", connection=redis, serializer=JSONSerializer)
    jobs = [
        Queue.prepare_data("bench.noop_job.noop", timeout=settings.QUEUE_TIMEOUTS["default"], result_ttl=300)
        for _ in range(n)
    ]
    with redis.pipeline() as pipe:
        queue.enqueue_many(jobs, pipeline=pipe)
        pipe.execute()
    bare_seconds = run_burst_workers(env, options.workers, options.worker_class)
    bare_left = queue.count

    tracked_rate = completed / tracked_seconds
    bare_rate = (n - bare_left) / bare_seconds
    print(f"tasks: {n}, workers: {options.workers} x {options.worker_class}")
    print(f"bulk create+enqueue: {n / bulk_seconds:,.0f} tasks/s ({bulk_seconds:.2f} s)  [target >= 5,000]")
    print(f"tracked tasks:       {tracked_rate:,.0f} tasks/s ({completed} completed in {tracked_seconds:.1f} s)")
    print(f"bare RQ jobs:        {bare_rate:,.0f} jobs/s ({n - bare_left} done in {bare_seconds:.1f} s)")
    print(f"ratio tracked/bare:  {tracked_rate / bare_rate:.2f}  [target >= 0.8]")

    redis.flushdb()
    from django.db import connections

    connections.close_all()
    if not options.keep:
        drop_database(DATABASE)


if __name__ == "__main__":
    main()
