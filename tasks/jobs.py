"""Built-in task kinds used by operators and the self-check."""

from __future__ import annotations

import time
from typing import Any

from tasks.registry import task_handler


@task_handler("tasks.noop", queue="default")
def noop(ctx: Any, **args: Any) -> dict[str, Any]:
    """Does nothing; the benchmark and the self-check's canary use it."""
    return {"ok": True}


@task_handler("tasks.sleep", queue="default")
def sleep(ctx: Any, *, seconds: float = 1.0, **args: Any) -> dict[str, Any]:
    """Sleeps, reporting progress each second; useful to try cancel and timeouts."""
    seconds = float(seconds)
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(1.0, remaining))
        done = 1 - max(0.0, deadline - time.monotonic()) / seconds if seconds else 1
        ctx.progress(int(done * 100), f"slept {seconds - max(0.0, remaining - 1):.0f} of {seconds:.0f} s")
    return {"slept": seconds}
