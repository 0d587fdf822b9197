from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from kbmanager.queues import get_redis
from tasks.models import Task, TaskStatus
from tasks.services import task_create
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

HEALTH = "/api/monitoring/health"
DETAILED = "/api/monitoring/health/detailed"


def test_health_is_healthy_without_credentials_when_redis_and_postgres_answer():
    response = APIClient().get(HEALTH)
    assert response.status_code == 200
    assert response.json() == {"status": "healthy"}


def test_health_names_redis_as_failing_when_redis_is_down_and_reveals_nothing_else(redis_down):
    response = APIClient().get(HEALTH)
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "failing": ["redis"]}
    assert "127.0.0.1" not in response.content.decode()


def test_detailed_health_needs_credentials():
    response = APIClient().get(DETAILED)
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


def test_detailed_health_refuses_a_user_who_is_not_staff(plain_client):
    response = plain_client.get(DETAILED)
    assert response.status_code == 403
    assert "error" in response.json()


def test_detailed_health_refuses_a_wrong_metrics_token(settings):
    settings.METRICS_TOKEN = "the-right-token"
    response = APIClient().get(DETAILED, HTTP_AUTHORIZATION="Bearer a-wrong-token")
    assert response.status_code == 401


def test_detailed_health_ignores_a_token_in_the_url(settings):
    settings.METRICS_TOKEN = "the-right-token"
    assert APIClient().get(DETAILED, {"token": "the-right-token"}).status_code == 401


def test_detailed_health_with_the_metrics_token_reports_a_queue_without_worker_as_unhealthy(settings):
    settings.METRICS_TOKEN = "the-right-token"
    task_create(kind="tests.echo", queue="ai")
    response = APIClient().get(DETAILED, HTTP_AUTHORIZATION="Bearer the-right-token")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy"
    assert body["components"]["queue:ai"] == {
        "status": "unhealthy",
        "reason": "no live worker consumes queue ai; 1 job(s) waiting",
    }
    assert body["stats"]["queues"]["ai"]["queued"] == 1
    assert body["components"]["redis"]["status"] == "healthy"
    assert body["components"]["scheduler"]["status"] == "degraded"


def test_detailed_health_shows_unconfigured_integrations_as_off(staff_client, settings):
    settings.NOTION_ENABLED = False
    settings.AI_BACKEND = "local"
    components = staff_client.get(DETAILED).json()["components"]
    assert components["notion"]["status"] == "off"
    assert components["ai"]["status"] == "off"


def test_detailed_health_is_healthy_with_a_live_worker_and_scheduler_on_every_queue(staff_client, live_worker):
    live_worker("parsing", "ai", "notion", "default")
    response = staff_client.get(DETAILED)
    body = response.json()
    assert response.status_code == 200, body["components"]
    assert body["status"] == "healthy"
    assert all(body["components"][f"queue:{q}"]["status"] == "healthy" for q in ("parsing", "ai", "notion", "default"))
    assert body["components"]["scheduler"]["status"] == "healthy"


def test_detailed_health_reports_a_queue_whose_oldest_job_is_too_old_as_degraded(staff_client, live_worker, settings):
    live_worker("default")
    redis = get_redis()
    # Keep the only worker busy, so the next job has to wait in the queue.
    busy = task_create(kind="tests.sleep_reporting_pid", args={"seconds": 4})
    wait_for(lambda: Task.objects.get(id=busy.id).status == TaskStatus.RUNNING, what="the sleeper to start")
    task_create(kind="tests.echo", queue="default")
    settings.HEALTH_QUEUE_AGE_WARN_SECONDS = 60
    job_id = redis.lindex("rq:queue:default", 0).decode()
    old = (timezone.now() - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    redis.hset(f"rq:job:{job_id}", "enqueued_at", old)

    body = staff_client.get(DETAILED).json()
    verdict = body["components"]["queue:default"]
    assert verdict["status"] == "degraded"
    assert verdict["reason"].startswith("oldest job has waited 300 s (threshold 60 s)")
    assert 299 <= body["stats"]["queues"]["default"]["oldest_queued_age_seconds"] < 400


def test_detailed_health_reports_redis_down_as_unhealthy(staff_client, redis_down):
    response = staff_client.get(DETAILED)
    assert response.status_code == 503
    components = response.json()["components"]
    assert components["redis"]["status"] == "unhealthy"
    assert components["postgres"]["status"] == "healthy"
    assert components["queue:default"]["reason"] == "unknown: Redis did not answer"
