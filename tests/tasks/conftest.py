"""Users and API clients for the task API and admin tests, and a factory for tasks in any state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tasks.models import RetentionPolicy, Task, TaskEvent


def _user_with(username: str, *codenames: str) -> User:
    user = User.objects.create_user(username=username, password="pw")
    if codenames:
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="tasks", codename__in=codenames))
    return user


def _token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def operator(db: Any) -> User:
    """A user who may read and change tasks."""
    return _user_with("operator", "view_task", "change_task")


@pytest.fixture
def api_client(operator: User) -> APIClient:
    return _token_client(operator)


@pytest.fixture
def viewer_client(db: Any) -> APIClient:
    """A token user who may read tasks but not cancel or retry them."""
    return _token_client(_user_with("viewer", "view_task"))


@pytest.fixture
def no_perm_client(db: Any) -> APIClient:
    return _token_client(_user_with("nobody"))


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def staff_client(client: Any, db: Any) -> Any:
    """A Django test client logged in as a staff superuser (the admin)."""
    user = User.objects.create_superuser(username="staff", password="pw", email="staff@example.com")
    client.force_login(user)
    return client


@pytest.fixture
def make_task(db: Any) -> Callable[..., Task]:
    """Insert a task row in any state, with timestamps consistent with that state."""

    def make(status: str = "queued", *, age_days: float = 0, events: bool = False, **fields: Any) -> Task:
        created = timezone.now() - timedelta(days=age_days)
        values: dict[str, Any] = {"kind": "tests.echo", "queue": "default", "status": status, "created_at": created}
        if status in {"completed", "failed", "cancelled"}:
            values["finished_at"] = created
        if status == "failed":
            values.setdefault("error_message", "ValueError: boom")
        values.update(fields)
        task = Task.objects.create(**values)
        if events:
            TaskEvent.objects.create(task=task, event="enqueued", created_at=created, attempt=0)
        return task

    return make


@pytest.fixture
def policies(db: Any) -> None:
    """Policies as seeded from the default settings (transactional tests flush the seeded rows): 7 days for
    completed and cancelled, 30 for failed."""
    RetentionPolicy.objects.all().delete()
    RetentionPolicy.objects.bulk_create(
        [
            RetentionPolicy(status="completed", days=7),
            RetentionPolicy(status="cancelled", days=7),
            RetentionPolicy(status="failed", days=30),
        ]
    )
