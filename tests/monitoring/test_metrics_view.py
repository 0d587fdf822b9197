from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from tasks.models import Task, TaskStatus
from tasks.services import TaskSpec, task_create, tasks_create_bulk
from tests.conftest import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)

METRICS = "/api/monitoring/metrics"

# Every name docs/MONITORING.md documents (as the parser names families: counters without "_total").
DOCUMENTED = {
    "kbmanager_redis_up",
    "kbmanager_redis_latency_seconds",
    "kbmanager_postgres_up",
    "kbmanager_postgres_latency_seconds",
    "kbmanager_integration_enabled",
    "kbmanager_tasks",
    "kbmanager_tasks_finished_counts_age_seconds",
    "kbmanager_task_run_seconds",
    "kbmanager_task_queue_wait_seconds",
    "kbmanager_queue_length",
    "kbmanager_queue_oldest_job_age_seconds",
    "kbmanager_queue_running_jobs",
    "kbmanager_queue_scheduled_jobs",
    "kbmanager_queue_failed_tasks_last_hour",
    "kbmanager_queue_scheduler_up",
    "kbmanager_workers",
    "kbmanager_worker_heartbeat_age_seconds",
    "kbmanager_host_cpu_percent",
    "kbmanager_host_load_1m",
    "kbmanager_host_memory_percent",
    "kbmanager_host_memory_available_bytes",
    "kbmanager_host_disk_percent",
    "kbmanager_host_disk_free_bytes",
    "rq_workers",
    "rq_jobs",
    "rq_workers_success",
    "rq_workers_failed",
    "rq_workers_working_time",
    "django_http_requests_total_by_method",
    "django_http_requests_latency_seconds_by_view_method",
    "django_http_responses_body_total_bytes",
}


def _families(response) -> dict:  # noqa: ANN001
    assert response.status_code == 200, response.content[:500]
    assert response["Content-Type"].startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


def _sample(families: dict, name: str, sample_name: str | None = None, **labels: str) -> float:
    for sample in families[name].samples:
        if sample.name == (sample_name or name) and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    raise AssertionError(f"no sample {sample_name or name} {labels}")


def test_metrics_need_credentials():
    assert APIClient().get(METRICS).status_code == 401


def test_metrics_refuse_an_authenticated_user_who_is_not_staff(plain_client):
    response = plain_client.get(METRICS)
    assert response.status_code == 403
    assert response.json()["error"] == "permission_denied"


def test_metrics_parse_and_carry_every_documented_name_with_the_metrics_token(settings):
    settings.METRICS_TOKEN = "scrape-me"
    APIClient().get("/api/monitoring/health")  # one request, so the request metrics have samples
    tasks_create_bulk(specs=[TaskSpec(kind="tests.echo") for _ in range(3)])
    task_create(kind="tests.permanent_fail")
    run_burst_worker("default")
    task_create(kind="tests.echo", queue="ai")  # stays queued: no worker on ai

    families = _families(APIClient().get(METRICS, HTTP_AUTHORIZATION="Bearer scrape-me"))

    assert DOCUMENTED <= set(families), DOCUMENTED - set(families)
    assert _sample(families, "kbmanager_tasks", status="completed", queue="default", kind="tests.echo") == 3
    assert _sample(families, "kbmanager_tasks", status="failed", queue="default", kind="tests.permanent_fail") == 1
    assert _sample(families, "kbmanager_tasks", status="queued", queue="ai", kind="tests.echo") == 1
    assert _sample(families, "kbmanager_queue_length", queue="ai") == 1
    assert _sample(families, "kbmanager_queue_length", queue="default") == 0
    assert _sample(families, "rq_jobs", queue="ai", status="queued") == 1
    assert _sample(families, "kbmanager_queue_failed_tasks_last_hour", queue="default") == 1
    assert _sample(families, "kbmanager_redis_up") == 1
    # The run time histogram holds the four tasks that finished: three completed, one failed.
    assert families["kbmanager_task_run_seconds"].type == "histogram"
    run_totals = {
        sample.labels["kind"]: sample.value
        for sample in families["kbmanager_task_run_seconds"].samples
        if sample.name == "kbmanager_task_run_seconds_bucket" and sample.labels["le"] == "+Inf"
    }
    assert run_totals == {"tests.echo": 3, "tests.permanent_fail": 1}
    assert (
        _sample(families, "kbmanager_task_queue_wait_seconds", "kbmanager_task_queue_wait_seconds_bucket", le="+Inf")
        == Task.objects.filter(status__in=[TaskStatus.COMPLETED, TaskStatus.FAILED], queue="default").count()
    )


def test_metrics_for_a_staff_session_report_redis_down_without_failing(staff_client, redis_down):
    families = _families(staff_client.get(METRICS))
    assert _sample(families, "kbmanager_redis_up") == 0
    assert _sample(families, "kbmanager_postgres_up") == 1
    assert not families["kbmanager_queue_length"].samples  # no figure rather than a wrong zero
