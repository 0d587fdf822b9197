"""What a worker executes for every job: ``run_task(task_id)``.

The RQ job carries nothing but the task id. The runner claims the task in
PostgreSQL, runs the handler registered for its kind, and records the outcome.
Failures are recorded here, not by RQ: the runner hands RQ a ``Retry`` with the
delay PostgreSQL decided on, or raises ``TaskFailed`` once retries are spent.

Under the forking ``TaskWorker`` the claim and the recording of a result move
to the worker's parent process, through an ``AttemptHandoff``: the parent keeps
one PostgreSQL connection for its whole life, while a work-horse would have to
open a new one for every job, and a new connection (a new server backend that
still has to load its catalog caches, in a child whose every write copies a
page) costs ten times the two statements it runs. The horse then only runs the
handler and writes the result into memory it shares with the parent. Failures
stay in the horse: they are rare, and their retry must be handed to RQ there.
"""

from __future__ import annotations

import json
import logging
import mmap
import re
import struct
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


class AttemptHandoff:
    """Memory shared by a forking worker and its work-horses, through which they split one attempt.

    The parent claims the task and ``arm``s the handoff before it forks; the horse
    finds the claim here instead of claiming again, and on success writes the
    JSON result back with ``report_result``. The parent then records the result
    on its own connection. Anything else the horse recorded itself, which it says
    with ``report_settled``. A horse that dies without a word leaves the state
    empty, and the parent counts the attempt as lost.
    """

    EMPTY, RESULT, SETTLED = 0, 1, 2
    _HEADER = struct.Struct("<BI")  # state, length of the JSON result that follows

    def __init__(self, size: int = 1 << 20) -> None:
        # An anonymous mapping is shared with every child forked after it was made.
        self._memory = mmap.mmap(-1, size)
        self.task_id: str | None = None
        self.claimed: services.ClaimedTask | None = None

    def arm(self, task_id: str, claimed: services.ClaimedTask | None) -> None:
        """Parent, before the fork: ``claimed`` is None when the task was not queued any more."""
        self.task_id, self.claimed = task_id, claimed
        self._HEADER.pack_into(self._memory, 0, self.EMPTY, 0)

    def disarm(self) -> None:
        self.task_id = self.claimed = None

    def report_result(self, result_json: str) -> bool:
        """Horse: hand the result to the parent; False when it does not fit (the horse records it itself)."""
        data = result_json.encode()
        if len(data) > len(self._memory) - self._HEADER.size:
            return False
        self._memory[self._HEADER.size : self._HEADER.size + len(data)] = data
        self._HEADER.pack_into(self._memory, 0, self.RESULT, len(data))
        return True

    def report_settled(self) -> None:
        """Horse: the outcome is in PostgreSQL already; the parent has nothing to record."""
        self._HEADER.pack_into(self._memory, 0, self.SETTLED, 0)

    def outcome(self) -> tuple[int, str]:
        """Parent, after the horse exited: the state and, for RESULT, the JSON result."""
        state, length = self._HEADER.unpack_from(self._memory, 0)
        if state != self.RESULT:
            return state, ""
        return state, self._memory[self._HEADER.size : self._HEADER.size + length].decode()

    def holds_result(self) -> bool:
        return self._HEADER.unpack_from(self._memory, 0)[0] == self.RESULT


# Set by a forking TaskWorker in its parent process; None in any other process.
_handoff: AttemptHandoff | None = None


def install_handoff(handoff: AttemptHandoff | None) -> None:
    global _handoff
    _handoff = handoff


def current_handoff(task_id: str) -> AttemptHandoff | None:
    """The handoff armed for ``task_id`` in this work-horse, if its parent claimed the task."""
    if _handoff is not None and _handoff.task_id == task_id:
        return _handoff
    return None


# A NUL character in JSON: \u0000 after an odd number of backslashes in a row
# (after an even number the last backslash is itself escaped: the text "\u0000").
_JSON_NUL_RE = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")


def _result_json(result: Any) -> str:
    """The result as JSON PostgreSQL accepts; a result it cannot store is the handler's failure, raised here."""
    try:
        text = json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the task's result cannot be stored as JSON: {exc}") from exc
    if _JSON_NUL_RE.search(text):
        raise ValueError("the task's result cannot be stored as JSON: PostgreSQL refuses the NUL character (\\u0000)")
    return text


def run_task(task_id: str) -> Any:
    job = get_current_job()
    worker_name = (job.worker_name or "") if job is not None else ""
    handoff = current_handoff(task_id)
    if handoff is not None:
        claimed = handoff.claimed
    else:
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
        result_json = _result_json(result)
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
        if handoff is None or not handoff.report_result(result_json):
            services.task_complete(task_id=task_id, attempt=claimed.attempt, result_json=result_json)
            if handoff is not None:
                handoff.report_settled()
        return None

    outcome = services.task_fail_attempt(
        task_id=task_id,
        attempt=claimed.attempt,
        message=message,
        traceback=tb,
        permanent=permanent,
        retry_after=retry_after,
    )
    if handoff is not None:
        handoff.report_settled()
    if outcome.retry_in is not None:
        # RQ stores schedule times in whole seconds (truncated), so a job can
        # be released up to a second early; one extra second keeps the
        # configured delay a lower bound.
        interval = outcome.retry_in + 1 if outcome.retry_in else 0
        return Retry(max=_RQ_RETRY_CEILING, interval=interval)
    if outcome.failed:
        raise TaskFailed(message)
    return None
