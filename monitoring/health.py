"""Health verdicts: each component healthy, degraded, unhealthy or off, with a reason.

``cheap_health()`` is the load balancer's probe (Redis PING, PostgreSQL
``SELECT 1``); ``health_report(stats)`` judges everything ``system_stats()``
gathered, for operators.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from monitoring.stats import probe_postgres, probe_redis

HEALTHY, DEGRADED, UNHEALTHY, OFF = "healthy", "degraded", "unhealthy", "off"
_SEVERITY = {OFF: 0, HEALTHY: 0, DEGRADED: 1, UNHEALTHY: 2}
# A host this full is about to fail in ways no queue figure will explain.
HOST_PERCENT_WARN = 90.0


def cheap_health() -> list[str]:
    """Names of the failing components among Redis and PostgreSQL; empty when both answer."""
    failing = []
    if not probe_redis()["up"]:
        failing.append("redis")
    if not probe_postgres()["up"]:
        failing.append("postgres")
    return failing


def _verdict(status: str, reason: str) -> dict[str, str]:
    return {"status": status, "reason": reason}


def _queue_verdict(name: str, q: dict[str, Any], redis_up: bool) -> dict[str, str]:
    if not redis_up or q["queued"] is None:
        return _verdict(UNHEALTHY, "unknown: Redis did not answer")
    if not q["workers"]:
        stale = f" ({q['workers_stale']} stale)" if q["workers_stale"] else ""
        return _verdict(UNHEALTHY, f"no live worker consumes queue {name}{stale}; {q['queued']} job(s) waiting")
    age = q["oldest_queued_age_seconds"]
    threshold = settings.HEALTH_QUEUE_AGE_WARN_SECONDS
    if age is not None and age > threshold:
        return _verdict(DEGRADED, f"oldest job has waited {age:.0f} s (threshold {threshold} s); {q['queued']} queued")
    return _verdict(HEALTHY, f"{q['workers']} worker(s), {q['workers_busy']} busy, {q['queued']} queued")


def health_report(stats: dict[str, Any]) -> dict[str, Any]:
    """``{"status": worst, "components": {name: {"status", "reason"}}}`` for everything in ``stats``."""
    components: dict[str, dict[str, str]] = {}
    for name in ("redis", "postgres"):
        probe = stats[name]
        if probe["up"]:
            components[name] = _verdict(HEALTHY, f"answered in {probe['latency_ms']} ms")
        else:
            components[name] = _verdict(UNHEALTHY, f"did not answer: {probe['error']}")

    redis_up = stats["redis"]["up"]
    for name, q in stats["queues"].items():
        components[f"queue:{name}"] = _queue_verdict(name, q, redis_up)

    missing = stats["scheduler"]["queues_without_scheduler"]
    if missing is None:
        components["scheduler"] = _verdict(UNHEALTHY, "unknown: Redis did not answer")
    elif missing:
        components["scheduler"] = _verdict(
            DEGRADED,
            f"no scheduler holds the lock of {', '.join(missing)}: delayed retries there will not be enqueued "
            "(start a worker with --with-scheduler)",
        )
    else:
        components["scheduler"] = _verdict(HEALTHY, "every queue has a scheduler")

    for name, info in stats["integrations"].items():
        components[name] = _verdict(HEALTHY if info["state"] == "on" else OFF, info["detail"])

    host = stats["host"]
    full = [f"{what} {host[key]:.0f}%" for what, key in (("memory", "memory_percent"), ("disk", "disk_percent"))]
    if host["memory_percent"] >= HOST_PERCENT_WARN or host["disk_percent"] >= HOST_PERCENT_WARN:
        components["host"] = _verdict(DEGRADED, f"{host['hostname']}: {', '.join(full)} in use")
    else:
        components["host"] = _verdict(HEALTHY, f"{host['hostname']}: {', '.join(full)} in use")

    worst = max((c["status"] for c in components.values()), key=lambda s: _SEVERITY[s])
    return {"status": worst if worst != OFF else HEALTHY, "components": components}
