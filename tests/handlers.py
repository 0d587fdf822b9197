"""Task kinds used only by the tests (loaded through TASK_HANDLER_MODULES)."""

from __future__ import annotations

import os
import time
from typing import Any

from tasks.exceptions import PermanentTaskError
from tasks.registry import task_handler


@task_handler("tests.echo", queue="default")
def echo(ctx: Any, **args: Any) -> dict[str, Any]:
    return {"args": args, "attempt": ctx.attempt}


@task_handler("tests.always_fail", queue="default")
def always_fail(ctx: Any, **args: Any) -> None:
    raise ValueError(f"boom on attempt {ctx.attempt}")


@task_handler("tests.fail_until", queue="default")
def fail_until(ctx: Any, *, succeed_on: int, **args: Any) -> dict[str, Any]:
    if ctx.attempt < succeed_on:
        raise RuntimeError(f"not yet (attempt {ctx.attempt})")
    return {"succeeded_on": ctx.attempt}


@task_handler("tests.permanent_fail", queue="default")
def permanent_fail(ctx: Any, **args: Any) -> None:
    raise PermanentTaskError("unsupported input, retrying will not help")


@task_handler("tests.sleep_reporting_pid", queue="default")
def sleep_reporting_pid(ctx: Any, *, seconds: float, marker: str | None = None, **args: Any) -> dict[str, Any]:
    """Reports its process id as progress, sleeps, then (if it got that far) writes the marker file."""
    ctx.progress(1, f"pid {os.getpid()}")
    time.sleep(seconds)
    if marker:
        with open(marker, "a") as fh:
            fh.write(f"{ctx.task_id} {ctx.attempt}\n")
    return {"slept": seconds}


@task_handler("tests.append_marker", queue="default")
def append_marker(ctx: Any, *, marker: str, **args: Any) -> dict[str, Any]:
    with open(marker, "a") as fh:
        fh.write(f"{ctx.task_id} {ctx.attempt}\n")
    return {"ok": True}


@task_handler("tests.exhaust_memory", queue="default")
def exhaust_memory(ctx: Any, *, headroom_mb: int = 64, allocate_mb: int = 4096, **args: Any) -> dict[str, Any]:
    """Limits its own address space (only this work-horse's) to what it uses plus ``headroom_mb``, then allocates."""
    import resource

    with open("/proc/self/statm") as fh:
        used = int(fh.read().split()[0]) * resource.getpagesize()
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (used + headroom_mb * 1024 * 1024, hard))
    hog = bytearray(allocate_mb * 1024 * 1024)
    return {"allocated": len(hog)}


@task_handler("tests.database_use", queue="default")
def database_use(ctx: Any, *, query: bool = False, result_bytes: int = 0, **args: Any) -> dict[str, Any]:
    """Says whether this process had a database connection before the handler ran; may query, may return a lot."""
    from django.db import connection

    connected_before = connection.connection is not None
    backend_pid = None
    if query:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend_pid = cursor.fetchone()[0]
    return {"connected_before": connected_before, "backend_pid": backend_pid, "padding": "x" * result_bytes}


@task_handler("tests.unstorable_result", queue="default")
def unstorable_result(ctx: Any, *, value: str = "a\x00b", **args: Any) -> dict[str, Any]:
    """Returns text PostgreSQL cannot store in JSON (a NUL character)."""
    return {"text": value}
