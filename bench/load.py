"""Bounded load test of the web process, run the way the docs run it in production.

Starts ``gunicorn kbmanager.wsgi -w 2 --threads 4`` on a free loopback port
against a throwaway database (``kb_bench_load``: created, migrated, dropped at
the end) and Redis DB 8 (flushed at start and end), creates a token user, then
runs N client threads for a fixed time. Each client loops: submit a few unique
URLs (``POST /api/links/``, which creates a parse task per new link), list tasks
(``GET /api/tasks/``) and read one of its links (``GET /api/links/{id}/``). No
workers run, so the tasks stay queued: the point is the web path. The API
throttle is switched off, since the clients all use one token.

Prints requests/s, p50/p99 latency per endpoint and overall, and the error
count; then checks that every link and task the 201 answers reported is in
PostgreSQL. Loopback only; stops by itself.

    .venv/bin/python bench/load.py [--clients 16] [--seconds 20] [--urls-per-request 5]
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    bench_env,
    drop_database,
    manage,
    percentile,
    recreate_database,
    setup_django,
)

DB_NAME = "kb_bench_load"
REDIS_DB = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--urls-per-request", type=int, default=5)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    options = parser.parse_args()

    env = bench_env(DB_NAME, REDIS_DB, API_THROTTLE_RATE="", ALLOWED_HOSTS="127.0.0.1,localhost")
    print(f"creating and migrating {DB_NAME} ...", flush=True)
    recreate_database(DB_NAME)
    manage(env, "migrate", "--no-input", "-v0")
    setup_django(env)

    import requests
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token

    from ingestion.models import Link
    from kbmanager.queues import get_redis
    from tasks.models import Task

    get_redis().flushdb()
    user = User.objects.create_user(username="load", password="load")
    user.user_permissions.add(*Permission.objects.filter(codename__in=["add_link", "view_link", "view_task"]))
    token = Token.objects.create(user=user).key

    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    web = subprocess.Popen(
        [
            gunicorn,
            "kbmanager.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(options.web_workers),
            "--threads",
            str(options.threads),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    latencies: dict[str, list[float]] = defaultdict(list)
    statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    errors: list[str] = []
    created_links: list[int] = []
    created_tasks: list[str] = []
    lock = threading.Lock()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{base_url}/api/monitoring/health", timeout=5).status_code < 500:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("gunicorn did not answer within 60 s")
            time.sleep(0.2)

        stop_at = time.monotonic() + options.seconds

        def client(number: int) -> None:
            session = requests.Session()
            session.headers["Authorization"] = f"Token {token}"
            rng = random.Random(number)
            mine: list[int] = []
            sequence = 0

            def call(name: str, method: str, url: str, **kwargs: object) -> requests.Response | None:
                started = time.perf_counter()
                try:
                    response = session.request(method, url, timeout=30, **kwargs)
                except requests.RequestException as exc:
                    with lock:
                        errors.append(f"{name}: {type(exc).__name__}: {exc}")
                    return None
                elapsed = time.perf_counter() - started
                with lock:
                    latencies[name].append(elapsed)
                    statuses[name][response.status_code] += 1
                    if response.status_code >= 400:
                        errors.append(f"{name}: HTTP {response.status_code}: {response.text[:200]}")
                return response

            while time.monotonic() < stop_at:
                urls = [
                    f"https://load.example.com/c{number}/{sequence + i}?q={rng.random()}"
                    for i in range(options.urls_per_request)
                ]
                sequence += options.urls_per_request
                response = call("POST /api/links/", "POST", f"{base_url}/api/links/", json={"urls": urls})
                if response is not None and response.status_code == 201:
                    results = response.json()["results"]
                    with lock:
                        created_links.extend(r["id"] for r in results if r["status"] == "created")
                        created_tasks.extend(r["task_id"] for r in results if r.get("task_id"))
                    mine.extend(r["id"] for r in results if r["status"] == "created")
                call("GET /api/tasks/", "GET", f"{base_url}/api/tasks/", params={"status": "queued"})
                if mine:
                    call("GET /api/links/{id}/", "GET", f"{base_url}/api/links/{rng.choice(mine)}/")

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(options.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started

        every = sorted(x for samples in latencies.values() for x in samples)
        print(
            f"\n{options.clients} clients for {wall:.1f} s against gunicorn -w {options.web_workers} "
            f"--threads {options.threads} (loopback, {os.cpu_count()} CPUs)"
        )
        print(f"{'endpoint':<22} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  statuses")
        for name, samples in sorted(latencies.items()):
            ordered = sorted(samples)
            print(
                f"{name:<22} {len(ordered):>8} {len(ordered) / wall:>8.1f} {statistics.median(ordered) * 1000:>8.1f} "
                f"{percentile(ordered, 0.99) * 1000:>8.1f}  {dict(statuses[name])}"
            )
        if every:
            print(
                f"{'all':<22} {len(every):>8} {len(every) / wall:>8.1f} {statistics.median(every) * 1000:>8.1f} "
                f"{percentile(every, 0.99) * 1000:>8.1f}"
            )
        print(f"errors: {len(errors)}")
        for line in errors[:10]:
            print(f"  {line}")

        # Everything a 201 answer reported must be in PostgreSQL.
        links_in_db = Link.objects.filter(id__in=created_links).count()
        tasks_in_db = Task.objects.filter(id__in=created_tasks).count()
        print(
            f"links accepted: {len(created_links)}, in PostgreSQL: {links_in_db} (table total {Link.objects.count()})"
        )
        print(
            f"tasks reported: {len(created_tasks)}, in PostgreSQL: {tasks_in_db} (table total {Task.objects.count()})"
        )
        ok = links_in_db == len(created_links) == Link.objects.count() and tasks_in_db == len(created_tasks)
        print("consistency: OK" if ok else "consistency: MISMATCH")
        return 0 if ok and not errors else 1
    finally:
        web.terminate()
        try:
            web.wait(15)
        except subprocess.TimeoutExpired:
            web.kill()
        from django.db import connections

        connections.close_all()
        get_redis().flushdb()
        drop_database(DB_NAME)


if __name__ == "__main__":
    raise SystemExit(main())
