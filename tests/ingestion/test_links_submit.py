from __future__ import annotations

import pytest

from ingestion.models import Link, LinkStatus
from ingestion.services import PARSE_KIND, links_submit
from tasks.models import Task

pytestmark = pytest.mark.django_db


def test_new_urls_are_created_with_a_parse_task_each(editor):
    results = links_submit(urls=["https://example.com/a", "https://example.com/b"], user=editor)

    assert [r["status"] for r in results] == ["created", "created"]
    links = {link.id: link for link in Link.objects.all()}
    assert set(links) == {r["id"] for r in results}
    for result in results:
        task = Task.objects.get(id=result["task_id"])
        assert task.kind == PARSE_KIND
        assert task.link_id == result["id"]
        assert task.args == {"link_id": result["id"]}
        assert task.queue == "parsing"
        link = links[result["id"]]
        assert link.status == LinkStatus.NEW
        assert link.submitted_by == editor
        assert link.domain == "example.com"


def test_urls_that_normalize_alike_are_one_link():
    results = links_submit(
        urls=[
            "HTTPS://Example.COM:443/story?id=7&utm_source=feed#comments",
            "https://example.com/story?id=7&fbclid=abc",
            "https://example.com/story?gclid=x&id=7",
        ]
    )

    assert [r["status"] for r in results] == ["created", "duplicate", "duplicate"]
    assert {r["id"] for r in results} == {results[0]["id"]}
    link = Link.objects.get()
    assert link.normalized_url == "https://example.com/story?id=7"
    assert link.url == "HTTPS://Example.COM:443/story?id=7&utm_source=feed#comments"
    assert Task.objects.count() == 1


def test_a_url_already_in_the_database_is_a_duplicate_with_the_existing_id():
    first = links_submit(urls=["https://example.com/a"])[0]

    again = links_submit(urls=["https://example.com/a#top"])[0]

    assert again == {"url": "https://example.com/a#top", "status": "duplicate", "id": first["id"]}
    assert Link.objects.count() == 1
    assert Task.objects.count() == 1


def test_invalid_urls_get_a_reason_and_do_not_stop_the_others():
    results = links_submit(urls=["ftp://example.com/file", "not a url", "", "https://example.com/ok"])

    assert [r["status"] for r in results] == ["invalid", "invalid", "invalid", "created"]
    assert "ftp" in results[0]["reason"]
    assert all(r["reason"] for r in results[:3])
    assert Link.objects.count() == 1


def test_submitting_a_failed_link_again_does_not_rerun_it():
    link_id = links_submit(urls=["https://example.com/broken"])[0]["id"]
    Link.objects.filter(id=link_id).update(status=LinkStatus.FAILED, last_error="unsupported content type")

    result = links_submit(urls=["https://example.com/broken"])[0]

    assert result["status"] == "duplicate" and result["id"] == link_id
    assert Task.objects.filter(link_id=link_id).count() == 1
    assert Link.objects.get(id=link_id).status == LinkStatus.FAILED


def test_without_process_links_are_created_without_tasks():
    results = links_submit(urls=["https://example.com/a"], process=False)

    assert results[0]["status"] == "created" and results[0]["task_id"] is None
    assert Task.objects.count() == 0


def test_a_thousand_urls_take_a_fixed_number_of_queries(django_assert_max_num_queries):
    urls = [f"https://example.com/item/{i}?utm_medium=x" for i in range(1000)]

    with django_assert_max_num_queries(12):
        results = links_submit(urls=urls)

    assert sum(r["status"] == "created" for r in results) == 1000
    assert Link.objects.count() == 1000
    assert Task.objects.filter(kind=PARSE_KIND).count() == 1000
