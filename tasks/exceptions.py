"""Errors that services raise and handlers may raise."""

from __future__ import annotations


class TaskError(Exception):
    """Base class for task service errors."""


class TaskNotFound(TaskError):
    pass


class TaskStateError(TaskError):
    """The task is not in a state that allows the action (e.g. cancel a finished task)."""


class TaskConflict(TaskError):
    """The task kept changing under us; the caller may try again."""


class PermanentTaskError(Exception):
    """Raised by a handler when retrying cannot help (bad input, unsupported content)."""


class RetryAfter(Exception):
    """Raised by a handler to retry after a delay the remote side asked for (HTTP 429)."""

    def __init__(self, message: str, *, seconds: float) -> None:
        super().__init__(message)
        self.seconds = max(0.0, float(seconds))


class TaskFailed(Exception):
    """Raised by the runner when a task has failed for good, so RQ records the failure too."""
