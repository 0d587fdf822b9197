from __future__ import annotations

import pytest
from django.conf import settings
from django.db import IntegrityError

from tasks.models import RetentionPolicy

pytestmark = pytest.mark.django_db


def test_policies_are_seeded_from_the_retention_settings():
    seeded = {(p.status, p.queue): p.days for p in RetentionPolicy.objects.all()}
    assert seeded == {
        ("completed", ""): settings.TASK_RETENTION_DAYS,
        ("cancelled", ""): settings.TASK_RETENTION_DAYS,
        ("failed", ""): settings.FAILED_TASK_RETENTION_DAYS,
    }


def test_one_policy_per_status_and_queue():
    with pytest.raises(IntegrityError):
        RetentionPolicy.objects.create(status="failed", queue="", days=3)


def test_policies_are_editable_in_the_admin(staff_client):
    policy = RetentionPolicy.objects.get(status="failed", queue="")
    response = staff_client.post(
        f"/admin/tasks/retentionpolicy/{policy.id}/change/", {"status": "failed", "queue": "ai", "days": "90"}
    )
    assert response.status_code == 302
    policy.refresh_from_db()
    assert (policy.queue, policy.days) == ("ai", 90)
    assert staff_client.get("/admin/tasks/retentionpolicy/").status_code == 200
