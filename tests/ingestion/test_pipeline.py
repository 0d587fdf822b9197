"""The whole pipeline, from POST /api/links/ to a Notion page, with real burst workers."""

from __future__ import annotations

import pytest

from ingestion.models import Link, LinkStatus
from ingestion.services import NOTION_KIND, PARSE_KIND, SUMMARIZE_KIND
from tasks.models import Task, TaskStatus
from tests.conftest import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


def _submit(api, url):
    response = api.post("/api/links/", {"urls": [url]}, format="json")
    assert response.status_code == 201
    return response.json()["results"][0]["id"]


def test_a_submitted_link_ends_as_a_notion_page_with_its_category_and_tags(
    api, astronomy, astronomy_page, fetch_from, openai_settings, openai_server, notion_on, notion_server
):
    link_id = _submit(api, astronomy_page)

    run_burst_worker("parsing", "ai", "notion")

    link = Link.objects.get(id=link_id)
    assert link.status == LinkStatus.SYNCED, link.last_error
    assert [t.kind for t in Task.objects.filter(link_id=link_id).order_by("created_at")] == [
        PARSE_KIND,
        SUMMARIZE_KIND,
        NOTION_KIND,
    ]
    assert set(Task.objects.filter(link_id=link_id).values_list("status", flat=True)) == {TaskStatus.COMPLETED}
    assert link.title == "A cluster of stars that grew up too fast"
    assert link.category == astronomy
    tags = sorted(link.tags.values_list("name", flat=True))
    assert 1 <= len(tags) <= 5
    assert link.ai_content_hash == link.content_hash

    # The AI server was asked once, with the existing category offered.
    [ai_request] = openai_server.requests
    assert "telescope" in ai_request.user_content

    [page] = notion_server.pages.values()
    assert link.notion_page_id == page["id"] and link.notion_url == page["url"]
    properties = page["properties"]
    assert properties["Category"]["select"]["name"] == "Astronomy"
    assert sorted(o["name"] for o in properties["Tags"]["multi_select"]) == tags
    assert properties["URL"]["url"] == astronomy_page
    assert "telescope" in notion_server.page_text(page["id"])


def test_with_the_local_backend_and_no_notion_links_stop_at_ready(
    api, astronomy, astronomy_page, fetch_from, local_ai, notion_off
):
    link_id = _submit(api, astronomy_page)

    run_burst_worker("parsing", "ai", "notion")

    link = Link.objects.get(id=link_id)
    assert link.status == LinkStatus.READY, link.last_error
    assert link.summary and link.category == astronomy and link.tags.exists()
    assert not Task.objects.filter(kind=NOTION_KIND).exists()
    assert Task.objects.filter(link_id=link_id, status=TaskStatus.COMPLETED).count() == 2


def test_a_pdf_fails_its_task_and_the_link_with_the_content_type(api, web_server, fetch_from, local_ai):
    web_server.add("/paper.pdf", b"%PDF-1.7 not html at all", content_type="application/pdf")
    link_id = _submit(api, web_server.url("/paper.pdf"))

    run_burst_worker("parsing", "ai")

    task = Task.objects.get(link_id=link_id)
    assert task.status == TaskStatus.FAILED
    assert task.attempts == 1  # permanent: not retried
    assert "unsupported content type application/pdf" in task.error_message
    link = Link.objects.get(id=link_id)
    assert link.status == LinkStatus.FAILED
    assert "unsupported content type application/pdf" in link.last_error
    assert not Task.objects.filter(kind=SUMMARIZE_KIND).exists()
