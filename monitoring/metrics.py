"""Prometheus metrics for tasks, queues and workers, computed at scrape time from ``system_stats()``.

Nothing here counts inside a process: every figure is read from PostgreSQL and
Redis when Prometheus scrapes, so any web process on any host answers the same,
and work done in forked work-horses is never lost. The collector is registered
on its own ``CollectorRegistry``; the scrape view appends django-prometheus's
default registry (request count, latency and size) to the same response.

Every name is documented in ``docs/MONITORING.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeHistogramMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from monitoring.stats import system_stats

PREFIX = "kbmanager"


def _gauge(name: str, doc: str, labels: list[str] | None = None) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels or [])


def _number(value: Any) -> float:
    return float(value) if value is not None else float("nan")


class TaskMetricsCollector(Collector):
    """Builds every task, queue and worker metric from one ``system_stats()`` call per scrape."""

    def collect(self) -> Iterator[Metric]:
        stats = system_stats(include_durations=True)
        yield from self._health(stats)
        yield from self._tasks(stats)
        yield from self._durations(stats)
        yield from self._queues(stats)
        yield from self._workers(stats)
        yield from self._host(stats)

    def _health(self, stats: dict[str, Any]) -> Iterator[Metric]:
        for component in ("redis", "postgres"):
            up = _gauge(f"{PREFIX}_{component}_up", f"1 if {component} answered this scrape, else 0.")
            up.add_metric([], 1.0 if stats[component]["up"] else 0.0)
            yield up
            latency = _gauge(f"{PREFIX}_{component}_latency_seconds", f"Round trip of a trivial {component} command.")
            ms = stats[component]["latency_ms"]
            latency.add_metric([], ms / 1000 if ms is not None else float("nan"))
            yield latency
        integration = _gauge(f"{PREFIX}_integration_enabled", "1 if the integration is configured, 0 if off.", ["name"])
        for name, info in stats["integrations"].items():
            integration.add_metric([name], 1.0 if info["state"] == "on" else 0.0)
        yield integration

    def _tasks(self, stats: dict[str, Any]) -> Iterator[Metric]:
        tasks = _gauge(f"{PREFIX}_tasks", "Tasks in PostgreSQL by status, queue and kind.", ["status", "queue", "kind"])
        for row in stats["tasks"]["counts"] or []:
            tasks.add_metric([row["status"], row["queue"], row["kind"]], row["count"])
        yield tasks
        age = _gauge(
            f"{PREFIX}_tasks_finished_counts_age_seconds",
            "Age of the cached counts of finished tasks (unfinished ones are counted on every scrape).",
        )
        age.add_metric([], _number(stats["tasks"]["finished_counts_age_seconds"]))
        yield age

    def _durations(self, stats: dict[str, Any]) -> Iterator[Metric]:
        durations = stats["durations"]
        if not durations:
            return
        window = durations["window_seconds"]
        run = GaugeHistogramMetricFamily(
            f"{PREFIX}_task_run_seconds",
            f"Run time of the tasks that finished (completed or failed) in the last {window} s.",
            labels=["queue", "kind"],
        )
        for h in durations["run_seconds"]:
            run.add_metric([h["queue"], h["kind"]], _buckets(h), h["sum"])
        yield run
        wait = GaugeHistogramMetricFamily(
            f"{PREFIX}_task_queue_wait_seconds",
            f"Time from enqueue (or retry due time) to start, of the tasks that finished in the last {window} s.",
            labels=["queue"],
        )
        for h in durations["queue_wait_seconds"]:
            wait.add_metric([h["queue"]], _buckets(h), h["sum"])
        yield wait

    def _queues(self, stats: dict[str, Any]) -> Iterator[Metric]:
        families = {
            "queued": _gauge(f"{PREFIX}_queue_length", "Jobs waiting in the Redis queue.", ["queue"]),
            "oldest_queued_age_seconds": _gauge(
                f"{PREFIX}_queue_oldest_job_age_seconds", "Age of the oldest waiting job (0 if none).", ["queue"]
            ),
            "running": _gauge(f"{PREFIX}_queue_running_jobs", "Jobs being executed.", ["queue"]),
            "scheduled": _gauge(f"{PREFIX}_queue_scheduled_jobs", "Jobs scheduled for a delayed retry.", ["queue"]),
            "failed_last_hour": _gauge(
                f"{PREFIX}_queue_failed_tasks_last_hour", "Tasks that failed for good in the last hour.", ["queue"]
            ),
            "scheduler": _gauge(
                f"{PREFIX}_queue_scheduler_up", "1 if a scheduler holds the queue's lock (retries run).", ["queue"]
            ),
        }
        rq_jobs = _gauge("rq_jobs", "RQ jobs by queue and status (rq-exporter compatible).", ["queue", "status"])
        for name, q in stats["queues"].items():
            if q["queued"] is None:
                continue  # Redis did not answer: no figure is better than a wrong zero.
            for field, family in families.items():
                if field == "scheduler":
                    family.add_metric([name], 1.0 if q["scheduler"] else 0.0)
                elif field == "oldest_queued_age_seconds":
                    family.add_metric([name], q[field] or 0.0)
                else:
                    family.add_metric([name], _number(q[field]))
            rq_jobs.add_metric([name, "queued"], q["queued"])
            rq_jobs.add_metric([name, "started"], q["running"])
            rq_jobs.add_metric([name, "scheduled"], q["scheduled"])
            rq_jobs.add_metric([name, "failed"], q["rq_failed"])
        yield from families.values()
        yield rq_jobs

    def _workers(self, stats: dict[str, Any]) -> Iterator[Metric]:
        by_state = _gauge(
            f"{PREFIX}_workers", "Workers per queue and state (busy, idle, suspended, stale).", ["queue", "state"]
        )
        rq_workers = _gauge("rq_workers", "RQ workers (rq-exporter compatible).", ["name", "queues", "state"])
        # Counters per worker name: they restart from zero with a new worker, which rate() handles.
        success = CounterMetricFamily(
            "rq_workers_success", "Jobs the worker finished successfully since it started.", labels=["name", "queues"]
        )
        failed = CounterMetricFamily(
            "rq_workers_failed", "Jobs that failed in the worker since it started.", labels=["name", "queues"]
        )
        working = CounterMetricFamily(
            "rq_workers_working_time",
            "Seconds the worker spent running jobs since it started.",
            labels=["name", "queues"],
        )
        heartbeat = _gauge(
            f"{PREFIX}_worker_heartbeat_age_seconds", "Seconds since the worker's last heartbeat.", ["name"]
        )
        workers = stats["workers"]
        if workers is not None:
            for name in stats["queues"]:
                states: dict[str, int] = {"busy": 0, "idle": 0, "suspended": 0, "stale": 0}
                for w in workers:
                    if name in w["queues"]:
                        state = w["state"] if w["state"] in states else "idle"
                        states[state] += 1
                for state, n in states.items():
                    by_state.add_metric([name, state], n)
            for w in workers:
                queues = ",".join(w["queues"])
                rq_workers.add_metric([w["name"], queues, w["state"]], 1.0)
                success.add_metric([w["name"], queues], w["successful_jobs"])
                failed.add_metric([w["name"], queues], w["failed_jobs"])
                working.add_metric([w["name"], queues], w["working_seconds"])
                heartbeat.add_metric([w["name"]], _number(w["heartbeat_age_seconds"]))
        yield from (by_state, rq_workers, success, failed, working, heartbeat)

    def _host(self, stats: dict[str, Any]) -> Iterator[Metric]:
        host = stats["host"]
        labels = [host["hostname"]]
        for field, doc in (
            ("cpu_percent", "CPU use of the host answering the scrape, percent."),
            ("load_1m", "One-minute load average of the host answering the scrape."),
            ("memory_percent", "Memory in use on the host answering the scrape, percent."),
            ("memory_available_bytes", "Memory available on the host answering the scrape."),
            ("disk_percent", "Disk use of the volume holding the application, percent."),
            ("disk_free_bytes", "Free space on the volume holding the application."),
        ):
            family = _gauge(f"{PREFIX}_host_{field}", doc, ["host"])
            family.add_metric(labels, _number(host[field]))
            yield family


def _buckets(h: dict[str, Any]) -> list[tuple[str, float]]:
    buckets = [(_le(bound), float(n)) for bound, n in h["buckets"]]
    buckets.append(("+Inf", float(h["count"])))
    return buckets


def _le(bound: float) -> str:
    return repr(float(bound))


task_registry = CollectorRegistry(auto_describe=False)
task_registry.register(TaskMetricsCollector())


def render_metrics() -> bytes:
    """The text exposition of the task metrics followed by django-prometheus's request metrics."""
    return generate_latest(task_registry) + generate_latest(REGISTRY)
