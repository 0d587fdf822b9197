"""Fixtures shared by the monitoring tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from monitoring.stats import monitoring_redis, worker_stats
from tests.conftest import free_port, wait_for


@pytest.fixture
def staff_client(db) -> APIClient:  # noqa: ANN001
    user = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def viewer_client(db) -> APIClient:  # noqa: ANN001
    """A non-staff user holding tasks.view_task."""
    user = get_user_model().objects.create_user("viewer", password="x")
    user.user_permissions.add(Permission.objects.get(codename="view_task", content_type__app_label="tasks"))
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def plain_client(db) -> APIClient:  # noqa: ANN001
    """An authenticated user with no permission and no staff flag."""
    user = get_user_model().objects.create_user("plain", password="x")
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def redis_down(settings) -> str:  # noqa: ANN001
    """Point every queue at a closed loopback port; the shared Redis server keeps running."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    settings.RQ_QUEUES = {name: {**config, "URL": url} for name, config in settings.RQ_QUEUES.items()}
    return url


@pytest.fixture
def live_worker(start_worker) -> Callable[..., dict]:  # noqa: ANN001
    """Start a real `rqworker --with-scheduler` process and wait until it is registered and holds the lock."""

    def start(*queues: str) -> dict:
        proc = start_worker(*queues)
        client = monitoring_redis()

        def registered() -> dict | None:
            assert proc.alive(), proc.output()
            mine = [w for w in worker_stats(client) if w["pid"] == proc.pid and w["alive"]]
            locks = all(client.get(f"rq:scheduler-lock:{q}") for q in queues)
            return mine[0] if mine and locks else None

        return wait_for(registered, timeout=30, what="the worker to register and take the scheduler lock")

    return start
