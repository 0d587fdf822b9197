from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db

URL = "/admin/tasks/task/"


def _listed_ids(response) -> set[str]:
    return set(re.findall(r'href="/admin/tasks/task/([0-9a-f-]{36})/change/', response.content.decode()))


def test_changelist_shows_coloured_status_kind_queue_and_progress(staff_client, make_task):
    task = make_task("failed", queue="parsing", progress=40)
    response = staff_client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert str(task.id) in html
    assert "task-status-failed" in html
    assert 'value="40"' in html
    assert "/admin/rq/" in html  # the link to the django-rq dashboard


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"status__exact": "failed"}, {"failed-parsing"}),
        ({"queue": "ai"}, {"completed-ai"}),
        ({"kind": "tests.always_fail"}, {"failed-parsing"}),
    ],
)
def test_changelist_filters_by_status_queue_and_kind(staff_client, make_task, params, expected):
    tasks = {
        "failed-parsing": make_task("failed", queue="parsing", kind="tests.always_fail"),
        "completed-ai": make_task("completed", queue="ai"),
        "queued-default": make_task("queued"),
    }
    response = staff_client.get(URL, params)
    assert _listed_ids(response) == {str(tasks[name].id) for name in expected}


def test_changelist_filters_by_creation_date(staff_client, make_task):
    make_task(age_days=30)
    recent = make_task(age_days=0)
    response = staff_client.get(URL, {"created_at__gte": recent.created_at.date().isoformat()})
    assert _listed_ids(response) == {str(recent.id)}


def test_search_finds_a_task_by_exact_id(staff_client, make_task):
    wanted = make_task()
    make_task()
    assert _listed_ids(staff_client.get(URL, {"q": str(wanted.id)})) == {str(wanted.id)}


def test_search_finds_tasks_by_link_url_and_by_error_text(staff_client, make_task):
    from ingestion.models import Link

    link = Link.objects.create(url="https://blog.example.org/post", normalized_url="https://blog.example.org/post")
    by_link = make_task("completed", link=link)
    by_error = make_task("failed", error_message="ConnectionResetError: peer hung up")
    make_task("failed", error_message="ValueError: something else")
    assert _listed_ids(staff_client.get(URL, {"q": "https://blog.example.org"})) == {str(by_link.id)}
    assert _listed_ids(staff_client.get(URL, {"q": "peer hung"})) == {str(by_error.id)}


def test_changelist_never_counts_the_whole_table(staff_client, make_task):
    for _ in range(3):
        make_task("failed")
    with CaptureQueriesContext(connection) as queries:
        assert staff_client.get(URL, {"status__exact": "failed"}).status_code == 200
        assert staff_client.get(URL).status_code == 200
    counts = [q["sql"] for q in queries if "count(" in q["sql"].lower() and "tasks_task" in q["sql"]]
    # Filtered counts are capped with a LIMIT; the unfiltered page may count only a small table exactly.
    assert counts
    for sql in counts:
        assert "LIMIT" in sql or "WHERE" not in sql, sql
    assert not any("DISTINCT" in q["sql"] and "tasks_task" in q["sql"] for q in queries)


def test_changelist_pages_through_an_estimated_count(staff_client, make_task, settings):
    for _ in range(4):
        make_task()
    response = staff_client.get(URL, {"status__exact": "queued"})
    assert response.context["cl"].result_count == 4
    assert response.context["cl"].show_full_result_count is False
