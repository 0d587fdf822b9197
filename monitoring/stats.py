"""The one statistics function behind health views, metrics, `monitor` and `start_workers --stats`."""

from __future__ import annotations

from typing import Any

from rq import Worker

from kbmanager.queues import get_queue, get_redis, queue_names


def queue_stats() -> dict[str, dict[str, Any]]:
    """Per queue: queued, running, scheduled and failed job counts and its workers, from Redis."""
    redis = get_redis()
    workers = Worker.all(connection=redis)
    stats: dict[str, dict[str, Any]] = {}
    for name in queue_names():
        queue = get_queue(name)
        queue_workers = [w for w in workers if name in w.queue_names()]
        busy = sum(1 for w in queue_workers if w.get_state() == "busy")
        stats[name] = {
            "queued": queue.count,
            "running": queue.started_job_registry.count,
            "scheduled": queue.scheduled_job_registry.count,
            "failed": queue.failed_job_registry.count,
            "workers": len(queue_workers),
            "workers_busy": busy,
            "workers_idle": len(queue_workers) - busy,
        }
    return stats
