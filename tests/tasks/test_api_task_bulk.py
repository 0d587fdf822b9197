from __future__ import annotations

import json

import pytest

from tasks.models import Task, TaskStatus

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/tasks/bulk/"


def test_dry_run_counts_matching_tasks_and_changes_nothing(api_client, make_task):
    for _ in range(3):
        make_task("failed", queue="parsing")
    make_task("failed", queue="ai")
    make_task("completed", queue="parsing")
    response = api_client.post(URL, {"action": "retry", "filter": {"queue": "parsing"}, "dry_run": True}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "action": "retry",
        "dry_run": True,
        "matched": 3,
        "acted": 0,
        "skipped": 0,
        "limit": 10000,
        "truncated": False,
    }
    assert Task.objects.filter(status=TaskStatus.FAILED).count() == 4


def test_bulk_cancel_cancels_only_unfinished_matching_tasks_and_records_the_actor(api_client, make_task):
    queued = [make_task("queued", kind="tests.echo") for _ in range(3)]
    other_kind = make_task("queued", kind="tests.always_fail")
    done = make_task("completed", kind="tests.echo")
    response = api_client.post(URL, {"action": "cancel", "filter": {"kind": "tests.echo"}}, format="json")
    assert response.status_code == 200
    assert response.json()["matched"] == 3
    assert response.json()["acted"] == 3
    for task in queued:
        task.refresh_from_db()
        assert task.status == TaskStatus.CANCELLED
        assert task.cancel_requested_by == "operator"
    assert Task.objects.get(id=other_kind.id).status == TaskStatus.QUEUED
    assert Task.objects.get(id=done.id).status == TaskStatus.COMPLETED


def test_bulk_action_stops_at_the_limit_and_says_so(api_client, make_task, settings):
    settings.TASK_BULK_ACTION_LIMIT = 2
    for _ in range(5):
        make_task("failed")
    body = api_client.post(URL, {"action": "retry", "filter": {"status": "failed"}}, format="json").json()
    assert body["matched"] == 5
    assert body["acted"] == 2
    assert body["truncated"] is True
    assert Task.objects.filter(status=TaskStatus.QUEUED).count() == 2
    # A second call carries on with the rest.
    assert api_client.post(URL, {"action": "retry"}, format="json").json()["acted"] == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"action": "explode"}, "action"),
        ({}, "action"),
        ({"action": "cancel", "filter": {"status": "bogus"}}, "filter"),
        ({"action": "cancel", "filter": "status=failed"}, "filter"),
        ({"action": "cancel", "dry_run": "perhaps"}, "dry_run"),
        ({"action": "cancel", "filter": {"created_after": "soon"}}, "filter"),
    ],
)
def test_bad_bulk_input_gets_400_naming_the_field(api_client, payload, field):
    response = api_client.post(URL, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["detail"]


def test_malformed_json_and_oversized_bodies_are_400(api_client):
    assert api_client.post(URL, "{not json", content_type="application/json").status_code == 400
    huge = json.dumps({"action": "cancel", "padding": "x" * 100_000})
    response = api_client.post(URL, huge, content_type="application/json")
    assert response.status_code == 400
    assert "body" in response.json()["detail"]


def test_bulk_needs_the_change_permission(viewer_client):
    assert viewer_client.post(URL, {"action": "cancel", "dry_run": True}, format="json").status_code == 403
