"""Reads of tasks that need more than a filter: filtering for the API and bulk actions, counts that stay
cheap on millions of rows, and the attempt-by-attempt timeline of one task."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from tasks.models import Task, TaskEvent, TaskEventType, seconds_between

# A filtered count stops here: "more than 10,000" is all an operator needs to know,
# and counting 900,000 matching rows on every page view is what makes a changelist slow.
COUNT_CAP = 10_000

# Below this many (estimated) rows an exact COUNT(*) is cheap, and the estimate
# of a small, freshly filled table may be stale or missing.
EXACT_COUNT_BELOW = 100_000


def tasks_filtered(
    *,
    status: str | None = None,
    queue: str | None = None,
    kind: str | None = None,
    link: int | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    statuses: Sequence[str] | None = None,
) -> QuerySet[Task]:
    """Tasks matching the API's filters, newest first; every filter is backed by an index."""
    qs = Task.objects.all()
    if status:
        qs = qs.filter(status=status)
    if statuses is not None:
        qs = qs.filter(status__in=list(statuses))
    if queue:
        qs = qs.filter(queue=queue)
    if kind:
        qs = qs.filter(kind=kind)
    if link is not None:
        qs = qs.filter(link_id=link)
    if created_after is not None:
        qs = qs.filter(created_at__gte=created_after)
    if created_before is not None:
        qs = qs.filter(created_at__lt=created_before)
    return qs.order_by("-created_at", "-id")


def task_table_estimate() -> int:
    """PostgreSQL's own estimate of the number of tasks (pg_class.reltuples), -1 when it has none yet."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = 'tasks_task'::regclass")
        row = cursor.fetchone()
    return int(row[0]) if row else -1


def tasks_count_capped(queryset: QuerySet[Any], *, cap: int = COUNT_CAP) -> int:
    """Count rows of ``queryset`` but stop at ``cap + 1``, so the answer costs at most cap rows to compute."""
    sql, params = queryset.order_by().values("pk")[: cap + 1].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM ({sql}) AS capped", params)
        return int(cursor.fetchone()[0])


def tasks_count_estimated(queryset: QuerySet[Any], *, cap: int = COUNT_CAP) -> int:
    """A count that is exact for small or filtered results and estimated for the whole big table.

    The unfiltered case reads the planner's estimate; a filtered one counts up
    to ``cap + 1`` rows.
    """
    if not queryset.query.where:
        estimate = task_table_estimate()
        if estimate >= EXACT_COUNT_BELOW:
            return estimate
        return queryset.count()
    return tasks_count_capped(queryset, cap=cap)


# A URL prefix matching more links than this is too vague to search tasks by.
LINK_SEARCH_LIMIT = 1000


def parse_task_id(value: str) -> uuid.UUID | None:
    """The UUID in ``value`` (an operator pasting an id), or None."""
    try:
        return uuid.UUID(value.strip())
    except (ValueError, AttributeError):
        return None


def tasks_search(queryset: QuerySet[Task], term: str) -> QuerySet[Task]:
    """Tasks whose id is ``term`` (exact), whose link URL starts with it, or whose error contains it.

    Each branch uses an index: the primary key, the link foreign key (after
    finding links by URL prefix) and the trigram index on error text.
    """
    term = term.strip()
    if not term:
        return queryset
    task_id = parse_task_id(term)
    if task_id is not None:
        return queryset.filter(id=task_id)
    from ingestion.models import Link

    # Link ids as a literal list (capped): `link_id = ANY(...)` can join the error branch in one
    # bitmap OR, where a subquery would turn the whole search into a scan of every task.
    link_ids = list(
        Link.objects.filter(Q(url__startswith=term) | Q(normalized_url__startswith=term)).values_list("id", flat=True)[
            :LINK_SEARCH_LIMIT
        ]
    )
    condition = Q(link_id__in=link_ids)
    # Three characters make the first trigram; shorter terms would match nearly every error anyway.
    if len(term) >= 3:
        condition |= Q(error_message__icontains=term)
    return queryset.filter(condition)


# --- the timeline of one task -------------------------------------------------

_WAITING_EVENTS = {TaskEventType.ENQUEUED, TaskEventType.REQUEUED}
_ENDING_EVENTS = {TaskEventType.COMPLETED, TaskEventType.FAILED, TaskEventType.RETRY_SCHEDULED}

# A task's history is short in practice; a runaway one is cut here so its page still renders.
TIMELINE_EVENT_LIMIT = 500


@dataclass
class AttemptTimeline:
    """One attempt of a task: the events that led to it and happened in it, and how long it waited and ran."""

    number: int
    events: list[TaskEvent] = field(default_factory=list)
    waiting_since: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str = ""

    @property
    def queue_wait_seconds(self) -> float | None:
        return seconds_between(self.waiting_since, self.started_at)

    @property
    def run_seconds(self) -> float | None:
        return seconds_between(self.started_at, self.ended_at)


def task_timeline(*, task: Task, limit: int = TIMELINE_EVENT_LIMIT) -> list[AttemptTimeline]:
    """The task's events grouped attempt by attempt, with queue wait and run time of each.

    An attempt's wait runs from the event that put it in the queue (enqueued,
    requeued, or the previous attempt's retry_scheduled) to its ``started``
    event; its run time from ``started`` to completed, failed, retry_scheduled
    or cancelled.
    """
    events = list(TaskEvent.objects.filter(task_id=task.id).order_by("created_at", "id")[:limit])
    attempts: dict[int, AttemptTimeline] = {}
    current: int | None = None
    waiting_since: datetime | None = None

    def attempt(number: int) -> AttemptTimeline:
        number = max(1, number)
        if number not in attempts:
            attempts[number] = AttemptTimeline(number=number)
        return attempts[number]

    for event in events:
        if event.event in _WAITING_EVENTS:
            current = event.attempt + 1
            waiting_since = event.created_at
            entry = attempt(current)
            entry.waiting_since = entry.waiting_since or waiting_since
        elif event.event == TaskEventType.STARTED:
            current = event.attempt
            entry = attempt(current)
            entry.waiting_since = waiting_since
            entry.started_at = event.created_at
            waiting_since = None
        else:
            entry = attempt(current if current is not None else event.attempt)
            if event.event in _ENDING_EVENTS or (event.event == TaskEventType.CANCELLED and entry.started_at):
                entry.ended_at = entry.ended_at or event.created_at
            if event.event != TaskEventType.PROGRESS and event.event != TaskEventType.CANCEL_REQUESTED:
                entry.outcome = event.get_event_display()
            if event.event == TaskEventType.RETRY_SCHEDULED:
                # The next attempt waits from here (the retry delay counts as waiting).
                current = event.attempt + 1
                waiting_since = event.created_at
                entry.events.append(event)
                attempt(current).waiting_since = waiting_since
                continue
        entry.events.append(event)
    return [attempts[number] for number in sorted(attempts)]
