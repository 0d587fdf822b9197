"""What a worker executes for every job: ``run_task(task_id)``.

The RQ job carries nothing but the task id. The runner claims the task in
PostgreSQL, runs the handler registered for its kind, and records the outcome.
Failures are recorded here, not by RQ: the runner hands RQ a ``Retry`` with the
delay PostgreSQL decided on, or raises ``TaskFailed`` once retries are spent.
"""

from __future__ import annotations

import json
import logging
import traceback
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from rq import get_current_job
from rq.job import Retry
from rq.timeouts import JobTimeoutException

from tasks import services
from tasks.exceptions import PermanentTaskError, RetryAfter, TaskFailed
from tasks.registry import UnknownTaskKind, get_kind

logger = logging.getLogger(__name__)

_PROJECT_PREFIX = f"{settings.BASE_DIR}/"

# RQ counts retries of a job over its whole life, but PostgreSQL decides when a
# task is out of retries, so RQ's own limit is set out of reach.
_RQ_RETRY_CEILING = 1_000_000


@dataclass
class TaskContext:
    """Handed to every handler: who it is, and a way to report progress."""

    task_id: str
    attempt: int
    link_id: int | None
    worker_name: str

    def progress(self, percent: int, message: str = "") -> bool:
        """Record progress (0-100); returns False if the task is no longer running."""
        return services.task_report_progress(task_id=self.task_id, percent=percent, message=message)


def _format_traceback() -> str:
    # Paths relative to the project read the same on every host and say less about it.
    return traceback.format_exc().replace(_PROJECT_PREFIX, "")


def run_task(task_id: str) -> Any:
    job = get_current_job()
    worker_name = (job.worker_name or "") if job is not None else ""
    claimed = services.task_claim(task_id=task_id, worker_name=worker_name)
    if claimed is None:
        logger.info("task %s is not queued any more (cancelled, finished or deleted); skipping", task_id)
        return None

    ctx = TaskContext(task_id=task_id, attempt=claimed.attempt, link_id=claimed.link_id, worker_name=worker_name)
    permanent = False
    retry_after = None
    try:
        handler = get_kind(claimed.kind).handler
        result = handler(ctx, **claimed.args)
        json.dumps(result)  # a result PostgreSQL cannot store is the handler's failure
    except JobTimeoutException:
        timeout = job.timeout if job is not None else None
        message = f"timed out after {timeout} s"
        tb = _format_traceback()
    except RetryAfter as exc:
        message, tb, retry_after = f"{exc}", _format_traceback(), exc.seconds
    except (PermanentTaskError, UnknownTaskKind) as exc:
        message, tb, permanent = f"{exc}", _format_traceback(), True
    except Exception as exc:
        message, tb = f"{type(exc).__name__}: {exc}", _format_traceback()
    else:
        services.task_complete(task_id=task_id, attempt=claimed.attempt, result=result)
        return None

    outcome = services.task_fail_attempt(
        task_id=task_id,
        attempt=claimed.attempt,
        message=message,
        traceback=tb,
        permanent=permanent,
        retry_after=retry_after,
    )
    if outcome.retry_in is not None:
        # RQ stores schedule times in whole seconds (truncated), so a job can
        # be released up to a second early; one extra second keeps the
        # configured delay a lower bound.
        interval = outcome.retry_in + 1 if outcome.retry_in else 0
        return Retry(max=_RQ_RETRY_CEILING, interval=interval)
    if outcome.failed:
        raise TaskFailed(message)
    return None
