"""Re-parsing: unchanged content stops before the AI step unless forced."""

from __future__ import annotations

import pytest

from ingestion.models import Link, LinkStatus
from ingestion.services import SUMMARIZE_KIND, links_enqueue_stage
from tasks.models import Task, TaskStatus
from tests.conftest import run_burst_worker
from tests.ingestion.conftest import ASTRONOMY_PARAGRAPHS, article_html

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ready_link(api, astronomy, astronomy_page, fetch_from, openai_settings, openai_server, notion_off):
    link_id = api.post("/api/links/", {"urls": [astronomy_page]}, format="json").json()["results"][0]["id"]
    run_burst_worker("parsing", "ai")
    link = Link.objects.get(id=link_id)
    assert link.status == LinkStatus.READY, link.last_error
    assert len(openai_server.requests) == 1
    return link


def test_reparse_of_unchanged_content_does_not_run_the_ai_step_again(ready_link, openai_server):
    links_enqueue_stage(link_ids=[ready_link.id], stage="parse", force=False, actor="tester")

    run_burst_worker("parsing", "ai")

    ready_link.refresh_from_db()
    assert ready_link.status == LinkStatus.READY
    assert len(openai_server.requests) == 1
    assert Task.objects.filter(link_id=ready_link.id, kind=SUMMARIZE_KIND).count() == 1
    reparse = Task.objects.filter(link_id=ready_link.id).order_by("-created_at").first()
    assert reparse.status == TaskStatus.COMPLETED and reparse.result["changed"] is False


def test_forced_reparse_runs_the_ai_step_again(ready_link, openai_server):
    links_enqueue_stage(link_ids=[ready_link.id], stage="parse", force=True, actor="tester")

    run_burst_worker("parsing", "ai")

    assert len(openai_server.requests) == 2
    assert Task.objects.filter(link_id=ready_link.id, kind=SUMMARIZE_KIND).count() == 2
    ready_link.refresh_from_db()
    assert ready_link.status == LinkStatus.READY


def test_reparse_of_changed_content_summarizes_the_new_text(ready_link, web_server, openai_server):
    old_hash = ready_link.content_hash
    web_server.add(
        "/news/young-stars",
        article_html("A cluster of stars that grew up too fast", [*ASTRONOMY_PARAGRAPHS, "Update: a correction."]),
    )
    links_enqueue_stage(link_ids=[ready_link.id], stage="parse", force=False, actor="tester")

    run_burst_worker("parsing", "ai")

    ready_link.refresh_from_db()
    assert ready_link.content_hash != old_hash
    assert ready_link.ai_content_hash == ready_link.content_hash
    assert len(openai_server.requests) == 2
    assert "correction" in openai_server.requests[-1].user_content
