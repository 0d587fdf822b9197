"""The RQ queue table: names, timeouts, and how to reach a queue.

Every job kbmanager puts in Redis is serialized as JSON and carries only a task
id, so queues are always built here with the JSON serializer.
"""

from __future__ import annotations

from collections.abc import Iterable

import django_rq
from django.conf import settings
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

PARSING_QUEUE = "parsing"
AI_QUEUE = "ai"
NOTION_QUEUE = "notion"
DEFAULT_QUEUE = "default"


def queue_names() -> tuple[str, ...]:
    return tuple(settings.QUEUE_NAMES)


def queue_timeout(name: str) -> int:
    return settings.QUEUE_TIMEOUTS[name]


def get_redis() -> Redis:
    """The shared Redis connection (all queues live on one server)."""
    return django_rq.get_connection(DEFAULT_QUEUE)


def get_queue(name: str) -> Queue:
    if name not in settings.RQ_QUEUES:
        raise ValueError(f"unknown queue {name!r}; configured queues: {', '.join(queue_names())}")
    return django_rq.get_queue(name, serializer=JSONSerializer)


def job_ids_by_queue(entries: Iterable[tuple[object, str]]) -> dict[str, list[str]]:
    """Group (job id, queue name) pairs by queue, ids as strings, in their order."""
    by_queue: dict[str, list[str]] = {}
    for job_id, queue_name in entries:
        by_queue.setdefault(queue_name, []).append(str(job_id))
    return by_queue
