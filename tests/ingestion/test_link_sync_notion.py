from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ingestion.models import Link, LinkStatus
from ingestion.services import link_sync_notion, links_enqueue_stage
from tasks.models import TaskStatus
from tests.conftest import run_burst_worker

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ready_link(parsed_link, astronomy):
    link = parsed_link(summary="Stars formed fast.", status=LinkStatus.READY, category=astronomy)
    return link


def test_syncing_a_link_with_a_notion_page_updates_that_page(ready_link, notion_on, notion_server):
    first = link_sync_notion(link_id=ready_link.id)
    assert first["created"] is True
    Link.objects.filter(id=ready_link.id).update(summary="Stars formed very fast.")
    links_enqueue_stage(link_ids=[ready_link.id], stage="notion", actor="tester")

    run_burst_worker("notion")

    ready_link.refresh_from_db()
    assert ready_link.status == LinkStatus.SYNCED
    assert list(notion_server.pages) == [first["page_id"]] == [ready_link.notion_page_id]
    assert len(notion_server.requests_to("POST", "/v1/pages")) == 1
    assert len(notion_server.requests_to("PATCH", f"/v1/pages/{ready_link.notion_page_id}")) == 1
    summary = notion_server.pages[ready_link.notion_page_id]["properties"]["Summary"]["rich_text"]
    assert summary[0]["text"]["content"] == "Stars formed very fast."


def test_a_notion_rate_limit_requeues_the_task_after_retry_after(ready_link, notion_on, notion_server):
    notion_server.rate_limit_next(1, retry_after=25)
    before = timezone.now()
    [(_, task)] = links_enqueue_stage(link_ids=[ready_link.id], stage="notion", actor="tester")

    run_burst_worker("notion")

    task.refresh_from_db()
    assert task.status == TaskStatus.QUEUED
    assert before + timedelta(seconds=24) <= task.next_retry_at <= timezone.now() + timedelta(seconds=26)
    assert not notion_server.pages
