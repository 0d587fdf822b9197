from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db

URL = "/api/tasks/"


def test_list_returns_tasks_newest_first(api_client, make_task):
    old = make_task("completed", age_days=2)
    new = make_task("queued")
    response = api_client.get(URL)
    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [str(new.id), str(old.id)]


def test_list_filters_by_status_queue_kind_and_link(api_client, make_task):
    from ingestion.models import Link

    link = Link.objects.create(url="https://example.com/a", normalized_url="https://example.com/a")
    wanted = make_task("failed", queue="parsing", kind="tests.always_fail", link=link)
    make_task("failed", queue="default", kind="tests.always_fail", link=link)
    make_task("completed", queue="parsing", kind="tests.always_fail", link=link)
    make_task("failed", queue="parsing", kind="tests.echo")
    response = api_client.get(
        URL, {"status": "failed", "queue": "parsing", "kind": "tests.always_fail", "link": link.id}
    )
    assert [row["id"] for row in response.json()["results"]] == [str(wanted.id)]
    assert response.json()["results"][0]["link"] == link.id


def test_list_filters_by_creation_time_window(api_client, make_task):
    make_task(age_days=10)
    inside = make_task(age_days=5)
    make_task(age_days=1)
    now = timezone.now()
    response = api_client.get(
        URL,
        {
            "created_after": (now - timedelta(days=6)).isoformat(),
            "created_before": (now - timedelta(days=2)).isoformat(),
        },
    )
    assert [row["id"] for row in response.json()["results"]] == [str(inside.id)]


def test_cursor_pagination_walks_every_task_once(api_client, make_task):
    ids = {str(make_task(age_days=i / 100).id) for i in range(7)}
    seen, url, params = [], URL, {"page_size": 3}
    while url:
        page = api_client.get(url, params).json()
        seen += [row["id"] for row in page["results"]]
        url, params = page["next"], None
    assert len(seen) == 7 and set(seen) == ids


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "exploded"}, "status"),
        ({"queue": "nope"}, "queue"),
        ({"kind": "no.such.kind"}, "kind"),
        ({"link": "abc"}, "link"),
        ({"link": "-4"}, "link"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": "2024-13-45"}, "created_before"),
        ({"cursor": "not-a-cursor"}, "cursor"),
    ],
)
def test_bad_filter_values_get_400_naming_the_field(api_client, params, field):
    response = api_client.get(URL, params)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid"
    assert field in body["detail"]


def test_created_before_must_follow_created_after(api_client):
    now = timezone.now()
    response = api_client.get(
        URL, {"created_after": now.isoformat(), "created_before": (now - timedelta(days=1)).isoformat()}
    )
    assert response.status_code == 400
    assert "created_before" in response.json()["detail"]


def test_list_needs_the_view_permission(no_perm_client, viewer_client):
    assert no_perm_client.get(URL).status_code == 403
    assert viewer_client.get(URL).status_code == 200
