"""Shared plumbing for the benchmarks: a throwaway database and Redis DB, and process helpers."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_SERVER = os.environ.get("BENCH_PG_SERVER", "postgres://postgres@127.0.0.1:5432")


def bench_env(database: str, redis_db: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "kbmanager.settings",
            "DATABASE_URL": f"{PG_SERVER}/{database}",
            "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
            "SECRET_KEY": env.get("SECRET_KEY", "bench-secret"),
            "DEBUG": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def recreate_database(database: str) -> None:
    """Drop and create ``database`` on the local server, then migrate it."""
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')


def database_exists(database: str) -> bool:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone() is not None


def drop_database(database: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def manage(env: dict[str, str], *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True, **kwargs)


def setup_django(env: dict[str, str]) -> None:
    """Configure Django in this process with the benchmark's environment."""
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile (``fraction`` 0.95 for p95) of ``samples``."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def median_p95(samples: list[float]) -> tuple[float, float]:
    return statistics.median(samples), percentile(samples, 0.95)


def sample_ms(func: Callable[[], object], runs: int) -> list[float]:
    """Milliseconds of ``runs`` calls of ``func``, after one untimed warm-up call (imports, connections, caches)."""
    func()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        samples.append((time.perf_counter() - started) * 1000)
    return samples
