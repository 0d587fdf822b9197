from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class TaskStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (TaskStatus.PENDING, TaskStatus.QUEUED, TaskStatus.RUNNING)
FINISHED_STATUSES = (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED)
CANCELLABLE_STATUSES = ACTIVE_STATUSES
RETRYABLE_STATUSES = (TaskStatus.FAILED, TaskStatus.CANCELLED)


def seconds_between(start, end) -> float | None:  # noqa: ANN001 - datetimes or None
    """Seconds from ``start`` to ``end`` (never negative), or None when either is missing."""
    if start and end:
        return max(0.0, (end - start).total_seconds())
    return None


def default_max_retries() -> int:
    return settings.MAX_TASK_RETRIES


class Task(models.Model):
    """One unit of background work. Its id is also the id of its RQ job."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=100, help_text="Registered handler name, e.g. ingestion.parse_link")
    queue = models.CharField(max_length=50)
    status = models.CharField(max_length=20, choices=TaskStatus.choices, default=TaskStatus.PENDING)
    args = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error_message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    max_retries = models.PositiveIntegerField(default=default_max_retries)
    # Attempts made before the last manual retry or requeue: automatic retries
    # are counted from here, so a manual retry gets a fresh retry budget while
    # attempt numbers in the history keep increasing.
    retry_base = models.PositiveIntegerField(default=0)
    progress = models.PositiveSmallIntegerField(default=0)
    progress_message = models.CharField(max_length=255, blank=True, default="")
    link = models.ForeignKey("ingestion.Link", null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks")
    worker_name = models.CharField(max_length=255, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_retry_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["-created_at", "-id"], name="task_created_idx"),
            models.Index(fields=["status", "-created_at"], name="task_status_created_idx"),
            models.Index(fields=["queue", "status", "-created_at"], name="task_queue_status_idx"),
            models.Index(fields=["kind", "-created_at"], name="task_kind_created_idx"),
            models.Index(fields=["status", "finished_at"], name="task_status_finished_idx"),
            models.Index(
                fields=["next_retry_at"],
                name="task_retry_due_idx",
                condition=models.Q(status="queued", next_retry_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"

    @property
    def job_id(self) -> str:
        return str(self.id)

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def can_cancel(self) -> bool:
        return self.status in CANCELLABLE_STATUSES

    @property
    def can_retry(self) -> bool:
        return self.status in RETRYABLE_STATUSES

    @property
    def retries_left(self) -> int:
        return max(0, self.max_retries - max(0, self.attempts - self.retry_base - 1))

    @property
    def queue_wait_seconds(self) -> float | None:
        return seconds_between(self.enqueued_at, self.started_at)

    @property
    def run_seconds(self) -> float | None:
        return seconds_between(self.started_at, self.finished_at)


class TaskEventType(models.TextChoices):
    ENQUEUED = "enqueued", "Enqueued"
    STARTED = "started", "Started"
    PROGRESS = "progress", "Progress"
    RETRY_SCHEDULED = "retry_scheduled", "Retry scheduled"
    FAILED = "failed", "Failed"
    COMPLETED = "completed", "Completed"
    CANCEL_REQUESTED = "cancel_requested", "Cancel requested"
    CANCELLED = "cancelled", "Cancelled"
    REQUEUED = "requeued", "Requeued"
    SKIPPED = "skipped", "Skipped"


class TaskEvent(models.Model):
    """One transition in a task's life, kept for the operator's timeline."""

    # The composite index below leads with task_id, so the foreign key needs no index of its own.
    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="events", db_index=False)
    event = models.CharField(max_length=30, choices=TaskEventType.choices)
    created_at = models.DateTimeField(default=timezone.now)
    attempt = models.PositiveIntegerField(default=0)
    worker_name = models.CharField(max_length=255, blank=True, default="")
    actor = models.CharField(max_length=150, blank=True, default="")
    message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["task", "created_at"], name="taskevent_task_created_idx")]

    def __str__(self) -> str:
        return f"{self.event} (attempt {self.attempt})"


class RetentionPolicy(models.Model):
    """How many days finished tasks of one status (optionally one queue) are kept before `purge_tasks` deletes them.

    A policy naming a queue wins over the policy for all queues of the same status.
    """

    status = models.CharField(
        max_length=20,
        choices=[(s.value, s.label) for s in FINISHED_STATUSES],
        help_text="Only finished tasks are ever purged.",
    )
    queue = models.CharField(max_length=50, blank=True, default="", help_text="Empty means every queue.")
    days = models.PositiveIntegerField(help_text="Keep finished tasks this many days after they finished.")

    class Meta:
        ordering = ["status", "queue"]
        verbose_name_plural = "retention policies"
        constraints = [
            models.UniqueConstraint(fields=["status", "queue"], name="retentionpolicy_status_queue_unique"),
            models.CheckConstraint(condition=models.Q(days__gte=1), name="retentionpolicy_days_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.status} in {self.queue or 'every queue'}: {self.days} days"
